#!/usr/bin/env bash
# Bounded fuzzing of the front end, or a replay of the committed seeds.
#
#   scripts/fuzz.sh run [SECONDS_PER_TARGET]   fuzz each target (default 150 s) from fuzz/seeds
#   scripts/fuzz.sh replay                     replay fuzz/seeds without cargo-fuzz (stable)
#
# `run` needs cargo-fuzz (`cargo install cargo-fuzz --locked`). No nightly toolchain is
# required: RUSTC_BOOTSTRAP=1 lets the stable compiler accept the sanitizer flags. The
# working corpus grows in fuzz/corpus/<target> (ignored by git); crashes land in
# fuzz/artifacts/<target>: add each to fuzz/seeds and a case to tests/corpus after fixing.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
seconds="${2:-150}"
targets=(parse_stream check)

case "$mode" in
  run)
    export RUSTC_BOOTSTRAP=1
    (cd fuzz && cargo fuzz build --sanitizer none)
    for target in "${targets[@]}"; do
      mkdir -p "fuzz/corpus/$target"
      (cd fuzz && cargo fuzz run --sanitizer none "$target" "corpus/$target" seeds -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1)
    done
    ;;
  replay)
    cargo test -p egressc-core --test fuzz_replay
    ;;
  *)
    echo "usage: $0 run [SECONDS_PER_TARGET] | replay" >&2
    exit 2
    ;;
esac
