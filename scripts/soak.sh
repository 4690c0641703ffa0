#!/bin/sh
# Long fault-injection soak of `egressc sync` (tests/soak/): two real replicas against
# kube-testserver under seeded random faults for SOAK_SECONDS (default 600) of faults in rounds
# of SOAK_ROUND_SECONDS (20), SOAK_NODES (48) nodes. SOAK_SEED replays a schedule (printed at
# the start); SOAK_PROFILE=release builds optimised; SOAK_KEEP=1 keeps the replicas' logs.
# Prints faults by kind, convergence times, label moves, RSS per process and every violation;
# exits non-zero on any violation.
set -eu
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export SOAK_ROUND_SECONDS="${SOAK_ROUND_SECONDS:-20}"
export SOAK_NODES="${SOAK_NODES:-48}"
# Outages up to 6 s: longer than the leader Lease (3 s), so the leader fence is exercised.
export SOAK_OUTAGE_SECONDS="${SOAK_OUTAGE_SECONDS:-6}"
profile=""
if [ "${SOAK_PROFILE:-debug}" = release ]; then profile="--release"; fi
exec cargo test $profile --test sync_soak -- --nocapture
