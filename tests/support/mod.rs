//! Test support for the network-namespace tests: topology harness (`netns`), the ARP/NDP
//! observer (`observer`), the kernel-side driver (`agent`), and for the end-to-end agent tests
//! the API network (`apinet`), the test controller (`vipctl`) and agent processes (`agents`);
//! for the full-stack VIP tests the seeded cluster (`fleet`) and the real controller (`syncproc`);
//! for the data-plane lab the Cilium datapath stand-in (`datapath`), the pod traffic
//! (`traffic`) and the lab itself (`lab`).
//! Not shipped.

// Each tests/*netns*.rs binary uses a different part of this support code.
#![allow(dead_code)]

pub mod agent;
pub mod agents;
pub mod api;
pub mod apinet;
pub mod datapath;
pub mod fleet;
pub mod lab;
pub mod netns;
pub mod observer;
pub mod syncproc;
pub mod traffic;
pub mod vipctl;
