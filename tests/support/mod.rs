//! Helpers shared by the `egressc` crate's integration tests. A test that needs any of them
//! declares `mod support;` and uses `support::<module>` — the one way tests share code (the
//! core crate's tests do the same with `core/tests/support/`). A test's own submodules sit in a
//! directory beside it (`soak/`).
//!
//! For the CLI tests: the binary run with a hang bound and peak RSS (`measured`) and the
//! external tools of the install tests (`tools`); for `sync` against kube-testserver the seeded
//! cluster (`cluster`); for the RBAC tests the recording relay (`relay`) and the RBAC
//! evaluator (`rbac`). For the network-namespace tests: topology harness (`netns`), the ARP/NDP
//! observer (`observer`), the kernel-side driver (`agent`), and for the end-to-end agent tests
//! the API network (`apinet`), the test controller (`vipctl`) and agent processes (`agents`);
//! for the full-stack VIP tests the seeded cluster (`fleet`) and the real controller (`syncproc`);
//! for the data-plane lab the Cilium datapath stand-in (`datapath`), the pod traffic
//! (`traffic`) and the lab itself (`lab`).
//! Not shipped.

// Each test binary uses a different part of this support code.
#![allow(dead_code)]

pub mod agent;
pub mod agents;
pub mod api;
pub mod apinet;
pub mod cluster;
pub mod datapath;
pub mod fleet;
pub mod lab;
pub mod measured;
pub mod netns;
pub mod observer;
pub mod rbac;
pub mod relay;
pub mod syncproc;
pub mod tools;
pub mod traffic;
pub mod vipctl;
