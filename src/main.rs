//! The `egressc` binary: everything lives in the library; `cli::main` parses, runs and maps
//! the outcome to an exit status.

// Parsing, validation and election allocate many small strings and nodes; mimalloc serves
// them markedly faster than glibc malloc (see BENCHMARKS.md for the measured difference).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's own option setter (the library is linked by the `mimalloc` crate, whose
// `libmimalloc-sys` declares it only behind a feature; the C API is stable).
#[cfg(feature = "mimalloc")]
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

#[cfg(feature = "mimalloc")]
/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the 16th option since v2.1).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // Freed memory goes back to the OS at once instead of after mimalloc's delay (1 s in v3):
    // a huge scalar grows in the scanner by doubling, and the outgrown blocks would otherwise
    // stay resident (docs/arch/hostile-input.md, "Memory model"). The controller's manifests
    // set MIMALLOC_PURGE_DELAY=0 for the same reason.
    // SAFETY: sets a process-wide allocator option; takes plain integers, no pointers.
    #[cfg(feature = "mimalloc")]
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, 0)
    };
    egressc::cli::main()
}
