//! The `egressc` binary: everything lives in the library; `cli::main` parses, runs and maps
//! the outcome to an exit status.

// Parsing, validation and election allocate many small strings and nodes; mimalloc serves
// them markedly faster than glibc malloc (see BENCHMARKS.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    egressc::cli::main()
}
