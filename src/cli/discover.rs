//! `egressc discover [DIR]`: the Argo CD plugin's discovery command. Prints the first source
//! file (sorted) under DIR that holds an EgressGateway or EgressGatewayPolicy and exits 0;
//! prints nothing (still exit 0) when there is none — Argo CD treats empty output as "not
//! mine". It only scans text, so a broken file still lets the plugin claim the directory and
//! `build` then explains what is wrong.

use std::path::Path;

use super::inputs;

/// Does this document text contain a document of one of egressc's kinds?
pub fn is_egressc_source(text: &str) -> bool {
    let mentions_group = text.contains("network.deckhouse.io/");
    mentions_group
        && text.lines().any(|line| {
            let line = line.trim();
            // YAML `kind: EgressGateway` (optionally quoted) or JSON `"kind": "EgressGateway"`.
            let rest = line
                .strip_prefix("kind:")
                .or_else(|| line.strip_prefix("\"kind\":"))
                .or_else(|| line.split_once("\"kind\":").map(|(_, r)| r));
            rest.is_some_and(|r| {
                let value = r
                    .trim()
                    .trim_end_matches(',')
                    .trim_matches(['"', '\'', ' ']);
                let value = value.split(['"', '\'', ',', '}', ' ']).next().unwrap_or("");
                value == "EgressGateway" || value == "EgressGatewayPolicy"
            })
        })
}

/// The first egressc source file under `dir`, if any.
pub fn first_source(dir: &Path, max_bytes: usize) -> Result<Option<String>, String> {
    for file in inputs::list_files(dir)? {
        // A file that is not UTF-8 cannot be a source; `build` reports it if it is one.
        if let inputs::Text::Decoded(input) = inputs::read_one(&file, max_bytes)?
            && is_egressc_source(&input.text)
        {
            return Ok(Some(input.name));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::is_egressc_source;

    #[test]
    fn recognises_yaml_and_json_sources() {
        assert!(is_egressc_source(
            "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\n"
        ));
        assert!(is_egressc_source(
            "apiVersion: \"network.deckhouse.io/v1alpha1\"\nkind: 'EgressGatewayPolicy'\n"
        ));
        assert!(is_egressc_source(
            r#"{"apiVersion":"network.deckhouse.io/v1alpha1","kind":"EgressGatewayPolicy"}"#
        ));
    }

    #[test]
    fn ignores_other_kinds() {
        assert!(!is_egressc_source("apiVersion: v1\nkind: ConfigMap\n"));
        assert!(!is_egressc_source(
            "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGatewayInstance\n"
        ));
        assert!(!is_egressc_source(
            "apiVersion: cilium.io/v2\nkind: EgressGateway\n"
        ));
    }
}
