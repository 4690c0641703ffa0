#!/usr/bin/env bash
# Runs every egressc benchmark and prints one results table (see BENCHMARKS.md).
#
#   scripts/bench.sh            # full run
#   RUNS=3 scripts/bench.sh     # fewer repetitions of the end-to-end compile
#   LONG=1 scripts/bench.sh     # long form: sync_scale with 1,000 reaction trials, then again
#                               # at 15,000 nodes (10,000 of them selected by no gateway)
#
# Builds release binaries once (egressc, examples gen + floor), generates the synthetic input,
# times `egressc build` and the floor on the same files with /usr/bin/time -v (wall clock, CPU and
# peak RSS, median of RUNS interleaved runs), then runs the divan benches: compile stages
# (benches/compile.rs) and election (benches/elect.rs).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-5}
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
GATEWAYS=${GATEWAYS:-1000}
GROUPS_=${GROUPS_:-50}
POLICIES=${POLICIES:-10000}
NODES=${NODES:-5000}
SEED=${SEED:-1}

if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time (for peak RSS)" >&2
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

echo "== build (release, once)" >&2
cargo build --release --quiet --bin egressc --example gen --example floor
BIN=$ROOT/target/release
GEN=$BIN/examples/gen
FLOOR=$BIN/examples/floor

echo "== generate" >&2
rm -rf "$DATA"
mkdir -p "$DATA"
"$GEN" --gateways "$GATEWAYS" --groups "$GROUPS_" --policies "$POLICIES" --nodes "$NODES" \
    --unhealthy 0.05 --ipv6 0.2 --vip 0.5 --seed "$SEED" --out "$DATA" >&2
INPUT_BYTES=$(cat "$DATA"/sources/*.yaml "$DATA"/nodes.yaml | wc -c)

# measure LABEL CMD... → appends "wall_seconds max_rss_kib cpu_seconds" to $DATA/LABEL.runs
# (cpu = user + system: less disturbed than wall time when other work shares the cores)
measure() {
    local label=$1
    shift
    local log=$DATA/$label.time
    /usr/bin/time -v -o "$log" "$@" >/dev/null
    local wall rss cpu
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    cpu=$(awk -F': ' '/User time|System time/ {sum += $2} END {print sum}' "$log")
    echo "$wall $rss $cpu" >>"$DATA/$label.runs"
}

# median COLUMN FILE
median() {
    sort -g -k"$1","$1" "$2" | awk -v c="$1" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}

echo "== compile: egressc build vs floor, $RUNS runs each (interleaved)" >&2
OUT=$DATA/out
mkdir -p "$OUT"
for _ in $(seq "$RUNS"); do
    measure egressc "$BIN/egressc" build "$DATA/sources" --nodes "$DATA/nodes.yaml" \
        --cilium-version 1.19 -o "$OUT/manifests.yaml"
    measure floor "$FLOOR" "$DATA/sources" "$DATA/nodes.yaml" -o "$OUT/floor.yaml"
done
E_WALL=$(median 1 "$DATA/egressc.runs"); E_RSS=$(median 2 "$DATA/egressc.runs")
F_WALL=$(median 1 "$DATA/floor.runs"); F_RSS=$(median 2 "$DATA/floor.runs")
E_CPU=$(median 3 "$DATA/egressc.runs"); F_CPU=$(median 3 "$DATA/floor.runs")
OUTPUT_BYTES=$(wc -c <"$OUT/manifests.yaml")
DOCS=$(grep -c '^---$' "$OUT/manifests.yaml" || true)

echo "== election (divan)" >&2
ELECT_LOG=$DATA/elect.txt
cargo bench --quiet --bench elect >"$ELECT_LOG" 2>&1
# divan rows: "├─ name  fastest │ slowest │ median │ mean │ samples │ iters"
divan_median() {
    grep -E "[├╰]─ $1 " "$ELECT_LOG" | awk -F'│' '{ gsub(/^ +| +$/, "", $3); print $3 }'
}
FULL=$(divan_median full_election)
REELECT=$(divan_median reelect_after_one_node_fails)

echo "== compile stages in process (divan)" >&2
STAGES_LOG=$DATA/compile.txt
cargo bench --quiet --bench compile >"$STAGES_LOG" 2>&1
stage_median() {
    grep -E "[├╰]─ $1 " "$STAGES_LOG" | awk -F'│' '{ gsub(/^ +| +$/, "", $3); print $3 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; }

echo
echo "egressc benchmarks — $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "input: $GATEWAYS gateways / $GROUPS_ groups, $POLICIES policies, $NODES nodes, seed $SEED" \
    "($INPUT_BYTES bytes); output $DOCS documents ($OUTPUT_BYTES bytes)"
echo
printf '%-44s %14s %14s %10s\n' "benchmark" "egressc" "floor" "ratio"
printf '%-44s %14s %14s %10s\n' "compile wall time (median of $RUNS)" "${E_WALL} s" "${F_WALL} s" "$(ratio "$E_WALL" "$F_WALL")"
printf '%-44s %14s %14s %10s\n' "compile CPU time, user+sys (median of $RUNS)" "${E_CPU} s" "${F_CPU} s" "$(ratio "$E_CPU" "$F_CPU")"
printf '%-44s %14s %14s %10s\n' "compile peak RSS (median of $RUNS)" "$((E_RSS / 1024)) MiB" "$((F_RSS / 1024)) MiB" "$(ratio "$E_RSS" "$F_RSS")"
for stage in parse check elect_catalog render compile; do
    printf '%-44s %14s %14s %10s\n' "  in-process stage: $stage (median)" "$(stage_median "$stage")" "" ""
done
printf '%-44s %14s %14s %10s\n' "full election 5,000 nodes × 1,000 gw (median)" "$FULL" "target 20 ms" ""
printf '%-44s %14s %14s %10s\n' "re-election after one node fails (median)" "$REELECT" "target 1 ms" ""
echo
# The controller's reaction at scale (in process: watch event -> plan, 5,000 nodes, 1,000
# gateways, 10,000 policies) and the VIP failover in real network namespaces (root only).
echo "== Sync reaction (cargo bench --bench sync_reaction)"
cargo bench --quiet --bench sync_reaction 2>&1 | grep -E "^[├╰│ ]*[─ ]|fastest" || true
echo
# --- sync end to end at scale (benches/sync_scale.rs; owner: sync) ---------------------------
# The release `egressc sync` against an in-process kube-testserver with 5,000 nodes, 1,000
# gateways, 10,000 policies: initial sync milestones, NotReady -> label reaction p50/p99
# (server-side arrival times), controller peak RSS. SCALE_TRIALS etc. override (see the file).
# The long form (LONG=1) runs 1,000 trials, where a rare slow reaction shows in the max, and a
# second run at 15,000 nodes.
echo "== Sync at scale (cargo bench --bench sync_scale; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
if [[ -n ${LONG:-} ]]; then
    SCALE_TRIALS=${SCALE_TRIALS:-1000} cargo bench --quiet --bench sync_scale 2>&1 | grep -vE "^(running|$)" || true
    echo "== Sync at scale, 15,000 nodes (SCALE_NODES=15000; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    SCALE_NODES=15000 cargo bench --quiet --bench sync_scale 2>&1 | grep -vE "^(running|$)" || true
else
    cargo bench --quiet --bench sync_scale 2>&1 | grep -vE "^(running|$)" || true
fi
echo
# --- end of the sync_scale block --------------------------------------------------------------
if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null; then
    echo "== Failover (scripts/failover-bench.sh: SIGKILL of the VIP holder -> new MAC, 20 trials)"
    scripts/failover-bench.sh 2>&1 | grep -E "failover|overlap|p50|p99" || true
else
    echo "== Failover: skipped (needs root and ip for network namespaces)"
fi
# --- the data-plane lab (scripts/lab-bench.sh; owner: lab) ------------------------------------
# What a pod sees per failure scenario: blackout p50/p99/max and the safety counters.
# LAB_TRIALS overrides the trials per scenario (default 20; the outage scenarios take ~75 s).
if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null && command -v nft >/dev/null; then
    echo "== Data-plane lab (scripts/lab-bench.sh, ${LAB_TRIALS:-20} trials per scenario)"
    TRIALS=${LAB_TRIALS:-20} scripts/lab-bench.sh 2>/dev/null || true
else
    echo "== Data-plane lab: skipped (needs root, ip and nft)"
fi
