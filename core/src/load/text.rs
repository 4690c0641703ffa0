//! Bytes → text: inputs must be UTF-8. An undecodable file becomes a located diagnostic
//! (E008 at the first invalid byte) rather than an I/O failure, so `check` can still report
//! every other file and the user learns where the bad byte is.

use crate::diag::{Code, Diagnostic, Span};

/// A file that is not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecodable {
    /// E008 at the first invalid byte.
    pub diagnostic: Box<Diagnostic>,
    /// The text with invalid sequences replaced by U+FFFD, for source snippets only.
    pub lossy: String,
}

/// Decodes `bytes` as UTF-8 (a leading byte-order mark is kept; the YAML parser skips it).
pub fn decode(file: &str, bytes: Vec<u8>) -> Result<String, Undecodable> {
    String::from_utf8(bytes).map_err(|error| {
        let valid = error.utf8_error().valid_up_to();
        let diagnostic = Box::new(not_utf8(file, error.as_bytes(), valid));
        let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
        Undecodable { diagnostic, lossy }
    })
}

fn not_utf8(file: &str, bytes: &[u8], valid: usize) -> Diagnostic {
    // The prefix up to `valid` is UTF-8 by definition; count lines and characters in it.
    let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let line = prefix.matches('\n').count() + 1;
    let col = prefix[line_start..].chars().count() + 1;
    let span = Span {
        file: file.to_owned(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        len: 1,
        path: None,
    };
    let byte = bytes.get(valid).copied().unwrap_or_default();
    let hint = if looks_like_utf16(bytes) {
        "the file looks like UTF-16; save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)"
    } else {
        "save the file as UTF-8, or remove it if it is not a manifest"
    };
    Diagnostic::new(
        Code::NotUtf8,
        span,
        format!("byte 0x{byte:02X} at offset {valid} is not valid UTF-8"),
    )
    .with_hint(hint)
}

/// A UTF-16 byte-order mark, or a NUL in one of the first two bytes (ASCII text as UTF-16).
fn looks_like_utf16(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
        || bytes.iter().take(2).any(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_passes_unchanged() {
        let text = "\u{feff}a: 1\nname: прод\n";
        assert_eq!(decode("f", text.as_bytes().to_vec()).as_deref(), Ok(text));
    }

    #[test]
    fn first_invalid_byte_is_located_in_characters() {
        let mut bytes = "a: 1\nname: прод".as_bytes().to_vec();
        bytes.push(0xFF);
        let d = decode("f.yaml", bytes).expect_err("invalid").diagnostic;
        assert_eq!(d.code, Code::NotUtf8);
        assert_eq!((d.span.line, d.span.col), (2, 11));
        assert!(d.message.contains("0xFF"), "{}", d.message);
        assert!(d.message.contains("offset 19"), "{}", d.message);
    }

    #[test]
    fn utf16_gets_its_own_hint() {
        let bytes = vec![0xFF, 0xFE, b'a', 0, b':', 0];
        let d = decode("f.yaml", bytes).expect_err("invalid").diagnostic;
        assert_eq!((d.span.line, d.span.col), (1, 1));
        assert!(d.hint.as_deref().unwrap_or("").contains("UTF-16"));
    }
}
