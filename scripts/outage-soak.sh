#!/bin/sh
# API outage soak: the VIP holder keeps answering for the VIP through an outage of
# EGRESSC_OUTAGE_SECS (default 300 s) of the test API server (503 to everything, watches
# dropped), with an observer probing every 100 ms; no other MAC may answer and the Lease must
# still name the holder afterwards. Real network namespaces (root); the default `cargo test`
# runs the 30 s variant.
set -eu
cd "$(dirname "$0")/.."
EGRESSC_REQUIRE_NETNS=1 exec cargo test --test agent_e2e_netns long_api_outage -- --ignored --nocapture
