//! Container image references (`--agent-image`, `install --image`), checked against the
//! grammar of the distribution project's `reference` package, which the container runtimes
//! and the API server's image pulls use:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path          (at most 255 characters)
//! domain     := host [ ":" port ]            host: DNS-ish components joined by ".", or [IPv6]
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" [0-9a-fA-F]{32,}
//! ```
//!
//! The first `/`-separated part is the domain when it has a `.` or `:`, is `localhost`, or
//! has an uppercase letter (as the runtimes decide).

/// Longest name (domain and path) the grammar allows.
const MAX_NAME: usize = 255;
/// Longest tag.
const MAX_TAG: usize = 128;

/// Checks `reference`; the error says which part is wrong.
pub fn check_image_reference(reference: &str) -> Result<(), String> {
    if reference.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if let Some(c) = reference
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "contains {}; an image reference is ASCII without spaces",
            c.escape_debug()
        ));
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    // A tag follows the last `:` that comes after the last `/` (a port comes before it).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    check_name(name)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("has no repository name".to_owned());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "has a name of {} characters, more than {MAX_NAME}",
            name.len()
        ));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "has the path component `{component}`; components are lowercase letters and \
                 digits, separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Between alphanumeric runs: one `.`, one or two `_`, or any number of `-`.
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            let ok = matches!(separator.as_str(), "" | "." | "_" | "__")
                || separator.bytes().all(|s| s == b'-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

fn check_domain(domain: &str) -> Result<(), String> {
    let bad =
        || format!("has the registry `{domain}`, which is not a host name with an optional port");
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            _ => ("", Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if !domain.starts_with('[') {
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !host.split('.').all(component_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= MAX_TAG
        && tag.as_bytes().first().is_some_and(|&b| word(b))
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "has the tag `{tag}`; a tag is 1 to {MAX_TAG} of `A-Za-z0-9_.-`, not starting \
             with `.` or `-`"
        ))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let bad = || format!("has the digest `{digest}`; write e.g. `sha256:` and 64 hex digits");
    let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = algorithm.split(['+', '.', '-', '_']).all(|c| {
        c.starts_with(|c: char| c.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_references_pass() {
        for good in [
            "egressc:0.1.0",
            "egressc",
            "ghcr.io/deckhouse/egressc:v1.2.3",
            "registry.example.com:5000/team/egressc:latest",
            "localhost/egressc",
            "localhost:5000/a__b/c-d--e.f:1_0",
            "[2001:db8::1]:5000/egressc:1",
            "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "egressc:1@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image_reference(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn broken_references_say_why() {
        for (bad, why) in [
            ("", "empty"),
            (" egressc", "spaces"),
            ("egressc:1.0\n", "spaces"),
            ("Egressc", "path component"),
            ("egressc:", "tag"),
            ("egressc:-x", "tag"),
            ("egressc:a/b", "registry"),
            ("egressc@sha256:xyz", "digest"),
            ("a..b/egressc", "registry"),
            ("reg.io:port/egressc", "registry"),
            ("team//egressc", "path component"),
            ("egressc_:1", "path component"),
            ("a._b", "path component"),
            ("a___b", "path component"),
        ] {
            let error = check_image_reference(bad).expect_err(bad);
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        assert!(check_image_reference(&format!("{}:1", "a".repeat(256))).is_err());
        assert!(check_image_reference(&format!("a:{}", "1".repeat(129))).is_err());
    }
}
