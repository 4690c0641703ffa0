//! Helpers shared by egressc-core's integration tests. Each test that needs one declares
//! `mod support;` — the one way tests share code here, as in the root crate's `tests/support/`.
//! Not shipped.

// Each test binary uses a different part of this support code.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use egressc_core::model::catalog::SourceIp;

/// The repository root: the fixtures, examples, schemas and fuzz seeds these tests read are
/// shared with the `egressc` crate's tests and live outside `core/`.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ sits in the repository root")
}

/// The source-IP mode of a test gateway: a VIP (192.0.2.10, on the default interface) or the
/// primary IP of `eth0`.
pub fn test_source(vip: bool) -> SourceIp {
    if vip {
        SourceIp::VirtualIp {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            interfaces: vec![],
        }
    } else {
        SourceIp::PrimaryInterface {
            interface: "eth0".to_owned(),
        }
    }
}
