#!/bin/sh
# Failover benchmark: loss of the VIP holder -> the observer's first ARP answer from the new
# node's MAC, over EGRESSC_TRIALS (default 20) trials with default agent timings, in real network
# namespaces (root). EGRESSC_LOSS=poweroff kills the agent and takes the node's link down (B's
# first probe round is free); otherwise a dead agent on a live node (SIGKILL: B waits until the
# old kernel stops answering). The test controller takes over at once, as the real one does on
# evidence. Prints min/p50/p99/max; any overlap of two MACs fails the run.
set -eu
cd "$(dirname "$0")/.."
EGRESSC_REQUIRE_NETNS=1 exec cargo test --test agent_e2e_netns failover_bench -- --ignored --nocapture
