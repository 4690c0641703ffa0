//! Test support for the network-namespace tests: topology harness (`netns`) and the ARP/NDP
//! observer (`observer`). Not shipped.

// Each tests/netns_*.rs binary uses a different part of this support code.
#![allow(dead_code)]

pub mod agent;
pub mod netns;
pub mod observer;
