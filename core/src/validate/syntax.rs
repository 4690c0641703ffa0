//! Lexical rules of Kubernetes and Linux names: DNS-1123 subdomains (object names), label keys
//! and values, network interface names. Each check returns `Err(reason)` with a sentence that
//! says what exactly is wrong, so messages can name the offending character.

/// Maximum length of a DNS-1123 subdomain (object names, label key prefixes).
const MAX_SUBDOMAIN: usize = 253;
/// Maximum length of a label name part and of a label value.
const MAX_LABEL_PART: usize = 63;
/// Linux IFNAMSIZ is 16 including the terminating NUL.
const MAX_INTERFACE: usize = 15;

/// The first character that is not ASCII, described for humans: "non-ASCII character U+0430
/// (`а`)". Look-alikes (Cyrillic `а` for Latin `a`) are invisible otherwise.
fn non_ascii(s: &str) -> Option<String> {
    s.chars()
        .find(|c| !c.is_ascii())
        .map(|c| format!("non-ASCII character U+{:04X} (`{c}`)", u32::from(c)))
}

/// A DNS-1123 subdomain: ≤ 253 characters of lowercase `a-z`, `0-9`, `-`, `.`, each
/// dot-separated label starting and ending alphanumeric.
pub fn check_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if let Some(what) = non_ascii(s) {
        return Err(format!("contains a {what}"));
    }
    if s.len() > MAX_SUBDOMAIN {
        return Err(format!(
            "is {} characters long, more than {MAX_SUBDOMAIN}",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(if c.is_ascii_uppercase() {
            format!("contains the uppercase letter `{c}`; only lowercase is allowed")
        } else {
            format!("contains `{c}`; only `a-z`, `0-9`, `-` and `.` are allowed")
        });
    }
    for part in s.split('.') {
        let ok_ends = part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok_ends {
            return Err(
                "every dot-separated part must start and end with a letter or digit".to_owned(),
            );
        }
    }
    Ok(())
}

/// A DNS-1123 label (namespace names): a subdomain without dots, at most 63 characters.
pub fn check_dns_label(s: &str) -> Result<(), String> {
    check_subdomain(s)?;
    if s.contains('.') {
        return Err("contains `.`; only `a-z`, `0-9` and `-` are allowed".to_owned());
    }
    if s.len() > MAX_LABEL_PART {
        return Err(format!(
            "is {} characters long, more than {MAX_LABEL_PART}",
            s.len()
        ));
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?` of at most 63 characters (empty allowed only
/// where `allow_empty`).
fn check_label_part(s: &str, what: &str, allow_empty: bool) -> Result<(), String> {
    if s.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(format!("{what} must not be empty"))
        };
    }
    if let Some(c) = non_ascii(s) {
        return Err(format!("{what} contains a {c}"));
    }
    if s.len() > MAX_LABEL_PART {
        return Err(format!(
            "{what} is {} characters long, more than {MAX_LABEL_PART}",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{what} contains `{c}`; only letters, digits, `-`, `_` and `.` are allowed"
        ));
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if !s.starts_with(alnum) || !s.ends_with(alnum) {
        return Err(format!("{what} must start and end with a letter or digit"));
    }
    Ok(())
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name part.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_subdomain(prefix).map_err(|why| format!("the prefix `{prefix}` {why}"))?;
    }
    check_label_part(name, "the name part", false)
}

/// A label value: empty, or a name part of at most 63 characters.
pub fn check_label_value(value: &str) -> Result<(), String> {
    check_label_part(value, "the value", true)
}

/// A Linux interface name: 1–15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
pub fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.len() > MAX_INTERFACE {
        return Err(format!(
            "is {} bytes long; Linux allows at most {MAX_INTERFACE}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is reserved"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("contains {c:?}, which Linux does not allow"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        for ok in ["a", "myegressgw", "my-gw.example", "0gw", &"a".repeat(253)] {
            assert!(check_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "My",
            "a_b",
            &"a".repeat(254),
            "a.-b",
        ] {
            assert!(check_subdomain(bad).is_err(), "{bad}");
        }
        let cyrillic = check_subdomain("myegressgw\u{0430}").unwrap_err();
        assert!(
            cyrillic.contains("non-ASCII character U+0430"),
            "{cyrillic}"
        );
        assert!(check_subdomain("Gw").unwrap_err().contains("uppercase"));
    }

    #[test]
    fn label_keys_and_values() {
        for ok in [
            "app",
            "node-role.deckhouse.io/egress",
            "io.kubernetes.pod.namespace",
            "A_b.c",
        ] {
            assert!(check_label_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "Example.com/a",
            "a/b/c",
            "-a",
            "a b",
            &"k".repeat(64),
        ] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        for ok in ["", "backend", "v1.2_3-x", &"v".repeat(63)] {
            assert!(check_label_value(ok).is_ok(), "{ok}");
        }
        for bad in ["-x", "x.", "a b", "ä", &"v".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces() {
        for ok in ["eth1", "bond0.100", "enp0s31f6", "a", &"i".repeat(15)] {
            assert!(check_interface(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "eth 1", "eth0:1", "a/b", &"i".repeat(16)] {
            assert!(check_interface(bad).is_err(), "{bad}");
        }
    }
}
