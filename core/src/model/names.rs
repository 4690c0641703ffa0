//! The one name shortener: fits a name derived from an object name (a label key, a label value,
//! a Lease name) into a length limit by keeping a stem of the name and appending a hash of it.
//! Its users are `model::labels::active_for_name_part`, `lease_protocol::lease_name` and
//! `render::provenance::label_value`.
//!
//! # Why the results do not collide
//! - A name that fits is returned verbatim, and distinct names stay distinct.
//! - A hashed result ends in the separator and [`HASH_HEX`] hex digits (40 bits) of
//!   SHA-256 of the whole name. Two hashed results are equal only when both names share the kept
//!   stem *and* those 40 bits: among `n` long names with a common stem that happens with a
//!   probability of about n²/2⁴¹ (5·10⁻⁵ for 10,000 names). Where a collision would matter the
//!   caller checks for it (validation refuses two gateways with one `active-for` key, E041).
//! - A verbatim result could equal a hashed one only if some short name were spelt like a hashed
//!   result. Callers rule that out: the `active-for` key uses the separator `_`, which label
//!   name parts allow and object names (DNS subdomains) never contain; the Lease name puts
//!   `egressc-vip-` before a verbatim name and `egressc-vip.` before a hashed one. Provenance
//!   label values accept the remote chance: nothing selects on them.

use std::fmt;

use sha2::{Digest, Sha256};

/// Hex digits of SHA-256(name) at the end of a hashed name.
pub const HASH_HEX: usize = 10;

/// A name fitted into a length limit by [`shorten`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shortened<'a> {
    /// The name fits and is used as it is.
    Verbatim(&'a str),
    /// The name is too long: a stem of it, the separator and the hash (see [`hashed`]).
    Hashed(String),
}

impl Shortened<'_> {
    /// The name as text, whichever form it took.
    pub fn as_str(&self) -> &str {
        match self {
            Shortened::Verbatim(name) => name,
            Shortened::Hashed(name) => name,
        }
    }
}

impl fmt::Display for Shortened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `name` itself when it has at most `max_len` bytes, otherwise [`hashed`]`(name, name, …)`:
/// at most `max_len` bytes either way (for `max_len` > [`HASH_HEX`] + `separator`'s length).
pub fn shorten(name: &str, max_len: usize, separator: char) -> Shortened<'_> {
    if name.len() <= max_len {
        Shortened::Verbatim(name)
    } else {
        Shortened::Hashed(hashed(name, name, max_len, separator))
    }
}

/// The hashed form: the longest prefix of `stem` that leaves room for the rest (cut on a
/// character boundary, trailing characters other than ASCII letters and digits trimmed so the
/// stem never ends in a `-` or `.`), then `separator`, then the first [`HASH_HEX`] hex digits
/// of SHA-256(`name`). `stem` is usually `name`; a caller that must drop characters from the
/// stem (a label value allows fewer than a name holds) passes the cleaned name, and the hash
/// still tells apart the names that clean to the same stem.
pub fn hashed(stem: &str, name: &str, max_len: usize, separator: char) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest
        .iter()
        .take(HASH_HEX / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let room = max_len.saturating_sub(separator.len_utf8() + HASH_HEX);
    let mut keep = room.min(stem.len());
    while !stem.is_char_boundary(keep) {
        keep -= 1;
    }
    let stem = stem[..keep].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{stem}{separator}{hex}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Is `name` what [`hashed`] makes of `name`, written out independently: a stem that is a
    /// prefix of `name` ending in a letter or digit (or empty), `separator`, and 10 lowercase
    /// hex digits of SHA-256(`name`)?
    fn is_hashed_form(result: &str, name: &str, separator: char) -> bool {
        let Some((stem, hex)) = result.rsplit_once(separator) else {
            return false;
        };
        let full: String = Sha256::digest(name.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        name.starts_with(stem)
            && stem
                .chars()
                .last()
                .is_none_or(|c| c.is_ascii_alphanumeric())
            && hex == &full[..HASH_HEX]
    }

    /// Object names: DNS subdomains (lowercase letters, digits, `-`, `.`), up to 253 bytes.
    fn object_name() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn fits_the_limit_and_keeps_what_fits(
            name in ".{0,300}",
            max_len in (HASH_HEX + 2)..300usize,
            separator in prop::sample::select(vec!['_', '-', '.']),
        ) {
            let result = shorten(&name, max_len, separator);
            prop_assert!(result.as_str().len() <= max_len, "{result}");
            match &result {
                Shortened::Verbatim(kept) => prop_assert_eq!(*kept, name.as_str()),
                Shortened::Hashed(text) => {
                    prop_assert!(name.len() > max_len);
                    prop_assert!(is_hashed_form(text, &name, separator), "{text}");
                }
            }
            // Deterministic.
            prop_assert_eq!(shorten(&name, max_len, separator), result);
        }

        #[test]
        fn the_stem_is_as_long_as_the_limit_allows(name in object_name(), max_len in 12..80usize) {
            prop_assume!(name.len() > max_len);
            let result = hashed(&name, &name, max_len, '_');
            let stem = &result[..result.len() - 1 - HASH_HEX];
            // Only the trimmed separators are missing from the cut.
            let cut = &name[..max_len - 1 - HASH_HEX];
            prop_assert_eq!(stem, cut.trim_end_matches(['-', '.']));
        }

        #[test]
        fn a_separator_names_lack_keeps_verbatim_and_hashed_apart(
            a in object_name(),
            b in object_name(),
        ) {
            let (a, b) = (shorten(&a, 52, '_'), shorten(&b, 52, '_'));
            if let (Shortened::Verbatim(verbatim), Shortened::Hashed(long))
            | (Shortened::Hashed(long), Shortened::Verbatim(verbatim)) = (&a, &b)
            {
                prop_assert_ne!(*verbatim, long.as_str());
            }
        }

        #[test]
        fn names_that_clean_to_one_stem_keep_their_own_hash(
            stem in "[a-z]{0,70}",
            a in ".{1,20}",
            b in ".{1,20}",
        ) {
            prop_assume!(a != b);
            let (name_a, name_b) = (format!("{stem}{a}"), format!("{stem}{b}"));
            let (hashed_a, hashed_b) = (hashed(&stem, &name_a, 63, '-'), hashed(&stem, &name_b, 63, '-'));
            prop_assert!(is_hashed_form(&hashed_a, &name_a, '-'));
            prop_assert!(is_hashed_form(&hashed_b, &name_b, '-'));
        }
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // `ä` occupies bytes 40 and 41; the 41-byte room ends inside it.
        let name = format!("{}ä{}", "n".repeat(40), "o".repeat(20));
        let result = hashed(&name, &name, 52, '_');
        assert!(
            result.starts_with(&format!("{}_", "n".repeat(40))),
            "{result}"
        );
    }

    #[test]
    fn a_stem_of_separators_only_leaves_the_hash() {
        let name = "-".repeat(70);
        let result = hashed(&name, &name, 52, '_');
        assert_eq!(result.len(), 1 + HASH_HEX);
        assert!(is_hashed_form(&result, &name, '_'), "{result}");
    }
}
