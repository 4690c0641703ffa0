//! The `egressc` binary: everything lives in the library; `cli::main` parses, runs and maps
//! the outcome to an exit status.

fn main() -> std::process::ExitCode {
    egressc::cli::main()
}
