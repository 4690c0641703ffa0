#!/usr/bin/env bash
# Where `egressc sync`'s memory goes at scale: runs the sync_scale bench (5,000 nodes, 1,000
# gateways, 10,000 policies unless SCALE_* says otherwise; 20 trials) with egressc under
# heaptrack, and prints the peak heap and the heap still live at the end, each broken down by
# the innermost frames in egressc's own code (`DEPTH` frames, default 2).
#
#   scripts/heap-profile.sh
#   SCALE_NODES=15000 DEPTH=3 ROWS=40 scripts/heap-profile.sh
#
# heaptrack follows malloc, so egressc is built with the system allocator here
# (`--no-default-features` drops mimalloc); the heap is the same, the RSS is not (BENCHMARKS.md
# measures RSS with the shipped allocator). Raw profiles go to $OUT (default
# target/heap-profile): open them with heaptrack_gui or heaptrack_print.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=$(realpath -m "${OUT:-target/heap-profile}")
DEPTH=${DEPTH:-2}
ROWS=${ROWS:-30}

if ! command -v heaptrack >/dev/null || ! command -v heaptrack_print >/dev/null; then
    echo "heap-profile: needs heaptrack (Debian/Ubuntu: apt-get install heaptrack)" >&2
    exit 1
fi
mkdir -p "$OUT"
rm -f "$OUT"/heap.* "$OUT"/pids

cargo build --quiet --release --no-default-features --bin egressc
cp target/release/egressc "$OUT/egressc-sysalloc"
harness=$(cargo bench --bench sync_scale --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
if [[ -z $harness ]]; then
    echo "heap-profile: could not build the sync_scale bench" >&2
    exit 1
fi

# The harness starts the binary it is given with egressc's arguments; this wrapper puts
# heaptrack in between (one profile per egressc process: the first run and the restart, in
# the order `pids` records).
wrapper="$OUT/egressc-under-heaptrack"
printf '#!/bin/sh\necho $$ >>%q/pids\nexec heaptrack -o %q/heap.$$ %q/egressc-sysalloc "$@"\n' \
    "$OUT" "$OUT" "$OUT" >"$wrapper"
chmod +x "$wrapper"

echo "== sync_scale under heaptrack (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
SCALE_TRIALS=${SCALE_TRIALS:-20} SCALE_ALLOCATOR_ENV=off SCALE_EGRESSC="$wrapper" \
    "$harness" --bench >"$OUT/bench.txt" 2>&1
# The first process's profile (process ids may wrap, so not by name or time).
first=$OUT/heap.$(head -1 "$OUT/pids").zst

# Our source files by name: a frame counts as ours when heaptrack names one of them. heaptrack
# gives base names only, so a dependency's file of the same name (serde's de.rs) counts too:
# follow such rows with a larger DEPTH.
ours=$(find core/src src -name '*.rs' ! -name mod.rs ! -name lib.rs ! -name main.rs -printf '%f\n' | sort -u | tr '\n' ' ')

breakdown() { # <cost type> <title>
    heaptrack_print -f "$first" --flamegraph-cost-type "$1" -F "$OUT/$1.stacks" >/dev/null 2>&1
    awk -v ours="$ours" -v depth="$DEPTH" -v rows="$ROWS" -v title="$2" '
        BEGIN { n = split(ours, list, " "); for (i = 1; i <= n; i++) own[list[i]] = 1 }
        {
            bytes = $NF; sub(/ [0-9]+$/, ""); total += bytes
            frames = split($0, f, ";"); key = ""; found = 0
            if (f[frames] == "") frames--
            for (i = frames; i >= 1 && found < depth; i--) {
                if (match(f[i], /\(([A-Za-z0-9_]+\.rs)\)$/) && (substr(f[i], RSTART + 1, RLENGTH - 2) in own)) {
                    key = key (found ? " < " : "") f[i]; found++
                }
            }
            if (!found) key = "(outside egressc: " f[frames] ")"
            by[key] += bytes
        }
        END {
            printf "== %s: %.1f MB, by egressc frame (innermost first)\n", title, total / 1e6
            for (k in by) printf "%8.2f MB  %s\n", by[k] / 1e6, k | "sort -rn | head -" rows
        }' "$OUT/$1.stacks"
}
breakdown peak "peak heap"
close_note=$(grep -E "peak heap memory|total memory leaked" <(heaptrack_print -f "$first" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 0 2>/dev/null) || true)
echo
breakdown leaked "live after the trials (read while the process still runs)"
# The harness stops the process it started, which is heaptrack's launcher: egressc itself is
# left running, its state intact (its watches just fail), which is what makes the "live" figure
# above the live set after the trials. End it now.
pkill -TERM -f "^$OUT/egressc-sysalloc " || true
for _ in $(seq 100); do
    pgrep -f "^$OUT/egressc-sysalloc " >/dev/null || break
    sleep 0.3
done

echo
echo "$close_note" | sed "s/total memory leaked/live when read/"
echo "bench output: $OUT/bench.txt; profiles: $OUT/heap.*.zst"
