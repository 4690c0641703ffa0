#!/usr/bin/env bash
# The data-plane lab as a benchmark (docs/arch/datapath-lab.md): runs lab scenarios TRIALS
# times each with the release binaries and prints, per scenario, the blackout a pod saw
# (p50 / p99 / max, nearest rank), packets lost, and the safety counters over all trials
# (wrong-source packets, samples with the label on two CiliumNodes, ARP probes answered by
# two MACs — all must be 0).
#
#   scripts/lab-bench.sh                         # every scenario, 20 trials
#   TRIALS=5 scripts/lab-bench.sh cordon power-off-vip
#   JOBS=3 scripts/lab-bench.sh                  # three labs at once (more CPU noise)
#
# Needs root, iproute2 and nftables. Raw lines go to $OUT (default target/lab-bench.txt).
set -euo pipefail

cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-20}
JOBS=${JOBS:-1}
OUT=${OUT:-target/lab-bench.txt}

if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    echo "lab-bench: needs root, ip (iproute2) and nft (nftables)" >&2
    exit 1
fi

if [[ $# -gt 0 ]]; then
    scenarios=("$@")
else
    mapfile -t scenarios < <(sed -n 's/^ *name: "\([a-z0-9-]*\)",$/\1/p' tests/support/lab.rs)
fi
list=$(IFS=,; echo "${scenarios[*]}")

echo "== build (release, once)" >&2
# The test binary itself runs the trials (cargo would hold its build lock while jobs run).
BIN=$(cargo test --release --quiet --test dataplane_lab --no-run --message-format=json |
    grep -o '"executable":"[^"]*dataplane_lab[^"]*"' | tail -1 | cut -d'"' -f4)
[[ -x $BIN ]] || { echo "lab-bench: no test binary" >&2; exit 1; }

# Every job runs its share of the trials of every scenario, one lab at a time.
per_job=$(((TRIALS + JOBS - 1) / JOBS))
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
echo "== ${#scenarios[@]} scenarios × $TRIALS trials, $JOBS lab(s) at a time" >&2
for job in $(seq "$JOBS"); do
    EGRESSC_LAB_SCENARIOS=$list EGRESSC_LAB_TRIALS=$per_job \
        "$BIN" --ignored --exact lab_bench --nocapture 2>"$OUT.job$job.err" |
        grep --line-buffered '^LAB ' >>"$OUT" &
done
wait

echo
echo "data-plane lab — $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $TRIALS trials"
printf '%-38s %6s %9s %9s %9s %9s %6s %6s %6s %6s\n' scenario runs p50_ms p99_ms max_ms \
    lost_max wrong double 2macs errors
# field NAME: the NAME=value fields of the LAB lines on stdin, one per line.
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
for s in "${scenarios[@]}"; do
    lines=$(grep " scenario=$s " "$OUT" | grep -v ' error=' || true)
    errors=$(grep " scenario=$s " "$OUT" | grep -c ' error=' || true)
    if [[ -z $lines ]]; then
        printf '%-38s %6d %9s %9s %9s %9s %6s %6s %6s %6d\n' "$s" 0 - - - - - - - "$errors"
        continue
    fi
    read -r n p50 p99 max < <(field blackout_ms <<<"$lines" | sort -n | awk '
        { v[NR] = $1 }
        function rank(p,   r) { r = int(p * NR + 0.999999); if (r < 1) r = 1; return v[r] }
        END { print NR, rank(0.5), rank(0.99), v[NR] }')
    lost=$(field lost <<<"$lines" | sort -n | tail -1)
    wrong=$(field wrong_source <<<"$lines" | awk '{ t += $1 } END { print t + 0 }')
    double=$(field doubled_label <<<"$lines" | grep -c true || true)
    macs=$(field two_macs <<<"$lines" | grep -c true || true)
    printf '%-38s %6d %9d %9d %9d %9d %6d %6d %6d %6d\n' "$s" "$n" "$p50" "$p99" "$max" "$lost" \
        "$wrong" "$double" "$macs" "$errors"
done
