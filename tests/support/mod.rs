//! Test support for the network-namespace tests: topology harness (`netns`), the ARP/NDP
//! observer (`observer`), the kernel-side driver (`agent`), and for the end-to-end agent tests
//! the API network (`apinet`), the test controller (`vipctl`) and agent processes (`agents`).
//! Not shipped.

// Each tests/*netns*.rs binary uses a different part of this support code.
#![allow(dead_code)]

pub mod agent;
pub mod agents;
pub mod apinet;
pub mod netns;
pub mod observer;
pub mod vipctl;
