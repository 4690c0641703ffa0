//! The `egressc` binary.

fn main() {
    println!("egressc {}", env!("CARGO_PKG_VERSION"));
}
