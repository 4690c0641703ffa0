//! Writing manifests: to stdout, or to `-o FILE` through a temporary file in the same
//! directory renamed over the target, so a failed write (a full disk) leaves the previous
//! file whole instead of a half-written policy that `kubectl apply` would accept. An `-o`
//! naming one of the inputs is refused before anything is read or written.
//!
//! Every write error is reported, stdout included: a closed stdout (`>&-`, which Rust's
//! standard library treats as a sink), a reader that went away (EPIPE) or a full device.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::files::Identity;

/// Writes `text` to `output`, or to stdout when it is `None`.
pub fn write(output: Option<&Path>, text: &str) -> Result<(), String> {
    match output {
        Some(path) => write_file(path, text),
        None => write_stdout(text),
    }
}

/// Writes `text` to stdout and flushes it; a closed stdout is an error, not a sink.
pub fn write_stdout(text: &str) -> Result<(), String> {
    let failed = |e: io::Error| format!("cannot write to stdout: {e}");
    if stdout_was_closed() {
        return Err("cannot write to stdout: it is closed".to_owned());
    }
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(failed)
}

/// Was the process started with stdout closed (`>&-`)? Rust's runtime reopens a closed
/// standard descriptor on `/dev/null` before `main`, read-write, so writes would vanish with
/// exit status 0. A shell's `>/dev/null` opens it write-only, which stays allowed.
fn stdout_was_closed() -> bool {
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::os::unix::fs::FileTypeExt;
    let fd = io::stdout().as_raw_fd();
    // SAFETY: F_GETFL only reads the status flags of the descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return true;
    }
    if flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    // SAFETY: fd 1 stays open for the life of the process.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let (Ok(ours), Ok(null)) = (
        borrowed
            .try_clone_to_owned()
            .map(fs::File::from)
            .and_then(|f| f.metadata()),
        fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    ours.file_type().is_char_device() && ours.rdev() == null.rdev()
}

/// Writes `text` to the file `path`: a new file or a regular one is replaced atomically (a
/// temporary file beside it, synced, then renamed; its permissions are kept); anything else
/// that exists (`/dev/stdout`, `/dev/null`, a FIFO with a reader) is written in place.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let failed = |e: io::Error| format!("cannot write {}: {e}", path.display());
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => write_in_place(path, text).map_err(failed),
        Ok(meta) => {
            // Through a symbolic link the link's target is replaced, not the link.
            let target = fs::canonicalize(path).map_err(failed)?;
            replace(&target, text, Some(meta.permissions())).map_err(failed)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace(path, text, None).map_err(failed),
        Err(e) => Err(failed(e)),
    }
}

/// Writes into an existing special file. `O_NONBLOCK` makes opening a FIFO nobody reads fail
/// (ENXIO) instead of waiting; it is cleared again for the writes.
fn write_in_place(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    set_blocking(&file)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn set_blocking(file: &fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: plain fcntl calls on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes `text` to a temporary file in `target`'s directory and renames it over `target`.
/// On any error the temporary file is removed and `target` is untouched.
fn replace(target: &Path, text: &str, permissions: Option<fs::Permissions>) -> io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(
        ".{}.",
        target
            .file_name()
            .map_or_else(|| "egressc".into(), |n| n.to_string_lossy())
    );
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        // What `File::create` would give a new file (0666 less the umask).
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.flush()?;
    if let Some(permissions) = permissions {
        temp.as_file().set_permissions(permissions)?;
    }
    // Some file systems report a full disk only when the data reaches it.
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Refuses an `-o` that names one of `inputs` (files, or directories read recursively):
/// writing it would overwrite a source before it could be compared or fixed.
pub fn refuse_overwriting_inputs(output: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    let Ok(meta) = fs::metadata(output) else {
        return Ok(()); // a new file cannot be an input
    };
    if !meta.is_file() {
        return Ok(()); // `/dev/stdout` and the like are written in place, not replaced
    }
    let target = Identity::of(&meta);
    for input in inputs.iter().filter(|p| p.as_os_str() != "-") {
        let named = match fs::metadata(input) {
            Ok(meta) if meta.is_dir() => super::inputs::list_files(input)?,
            Ok(_) => vec![input.clone()],
            Err(_) => continue, // reading it will explain
        };
        for file in named {
            if fs::metadata(&file).is_ok_and(|meta| Identity::of(&meta) == target) {
                return Err(format!(
                    "-o {} is the input {}; write the manifests to another file",
                    output.display(),
                    file.display()
                ));
            }
        }
    }
    Ok(())
}
