//! Opening named files without surprises: a name must be a regular file (a FIFO, socket or
//! device named as an input would block in `open()` or stream for ever), the open itself never
//! blocks, and reads stop at a byte budget instead of reading whatever the file holds.
//!
//! The check is made on the opened descriptor (`fstat`), not on the name, so a file swapped
//! for a FIFO between a directory walk and the open is refused rather than waited on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// An opened regular file and its size in bytes.
pub struct Regular {
    /// The open file.
    pub file: File,
    /// Its size when opened (it may still grow; reads are bounded anyway).
    pub len: u64,
}

/// A file's device and inode: two names of one file have the same identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    /// The identity of `meta`'s file.
    pub fn of(meta: &fs::Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Opens `path` for reading if it is a regular file (symbolic links followed). `O_NONBLOCK`
/// keeps `open()` of a FIFO from waiting for a writer; it has no effect on regular files.
pub fn open_regular(path: &Path) -> Result<Regular, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "cannot read {}: it is {}, not a regular file{}",
            path.display(),
            kind_of(&meta.file_type()),
            if meta.file_type().is_fifo() || meta.file_type().is_char_device() {
                " (read a stream from standard input with `-`)"
            } else {
                ""
            }
        ));
    }
    Ok(Regular {
        len: meta.len(),
        file,
    })
}

/// Is `path` (symbolic links followed) a regular file? Directory walks keep only these.
pub fn is_regular(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// What kind of file `kind` is, in words.
fn kind_of(kind: &fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// What a bounded read found.
pub enum Bounded {
    /// Everything, at most the budget.
    Whole(Vec<u8>),
    /// More than the budget: the bytes are not kept.
    TooLarge,
}

/// Reads `reader` to its end unless it holds more than `max_bytes`: reading stops at
/// `max_bytes + 1` and the bytes read are dropped, so an endless stream (`/dev/zero` on
/// stdin) costs at most the budget in memory.
///
/// The buffer is allocated once: of the file's size when it is known (`expected`), else of
/// the whole budget, which costs address space only — pages become resident as they are
/// written. Grown by doubling instead, a 256 MiB stream would leave the 128, 64, … MiB
/// buffers it outgrew resident in the allocator as well (measured: 2× the input).
pub fn read_bounded(
    reader: impl Read,
    max_bytes: usize,
    expected: Option<u64>,
) -> io::Result<Bounded> {
    let limit = max_bytes.saturating_add(1);
    let capacity = match expected {
        // One byte more than expected lets the reader see the end without growing.
        Some(len) => usize::try_from(len).unwrap_or(usize::MAX).min(max_bytes) + 1,
        None => limit,
    };
    let mut bytes = Vec::with_capacity(capacity);
    let mut reader = reader.take(u64::try_from(limit).unwrap_or(u64::MAX));
    let mut chunk = vec![0; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let needed = bytes.len() + n;
        if needed > bytes.capacity() {
            // A file that grew, or reports no size (`/proc`): double, never past the limit.
            let grown = bytes
                .capacity()
                .saturating_mul(2)
                .clamp(needed, limit.max(needed));
            bytes.reserve_exact(grown - bytes.len());
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    if bytes.len() > max_bytes {
        return Ok(Bounded::TooLarge);
    }
    Ok(Bounded::Whole(bytes))
}

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_one_byte_past_the_budget() {
        let endless = io::repeat(b'#');
        assert!(matches!(
            read_bounded(endless, 1000, None),
            Ok(Bounded::TooLarge)
        ));
        match read_bounded(&b"abc"[..], 3, Some(3)) {
            Ok(Bounded::Whole(bytes)) => assert_eq!(bytes, b"abc"),
            _ => panic!("three bytes fit a budget of three"),
        }
        // A wrong size: the buffer doubles, but never past the budget.
        let stream = io::repeat(b'#').take(300_000);
        match read_bounded(stream, 300_000, Some(0)) {
            Ok(Bounded::Whole(bytes)) => {
                assert_eq!(bytes.len(), 300_000);
                assert!(bytes.capacity() <= 300_001, "{}", bytes.capacity());
            }
            _ => panic!("fits"),
        }
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("pipe.yaml");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: `name` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = open_regular(&fifo).err().expect("a FIFO is refused");
        assert!(error.contains("FIFO"), "{error}");
        assert!(!is_regular(&fifo));
        let error = open_regular(Path::new("/dev/zero")).err().expect("refused");
        assert!(error.contains("character device"), "{error}");
        assert!(open_regular(dir.path()).is_err());
    }
}
