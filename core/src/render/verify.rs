//! Checks of what a template rendered, for overrides (`--templates`) that egressc does not
//! control: the text must be one YAML mapping (no syntax error, no duplicate key) of the kind
//! and name being rendered, and a CiliumEgressGatewayPolicy must read as the strict Cilium
//! types of [`crate::cilium`] (no field Cilium does not have). A failure names the template
//! and the line of its output.

use super::error::RenderError;
use crate::load::{self, Limits, Node, Path, de};
use crate::strict_cegp::CiliumEgressGatewayPolicy;

/// Checks `text`, rendered by `template` for the object `kind`/`name`.
pub fn object(template: &str, kind: &str, name: &str, text: &str) -> Result<(), RenderError> {
    let invalid = |line: u32, message: String| RenderError::InvalidOutput {
        template: template.to_owned(),
        object: format!("{kind}/{name}"),
        line,
        message,
    };
    let documents = load::parse_stream(template, text, &Limits::default())
        .map_err(|diagnostic| invalid(diagnostic.span.line, diagnostic.message))?;
    let root = match documents.as_slice() {
        [document] => &document.root,
        [] => return Err(invalid(1, "no object".to_owned())),
        [_, second, ..] => {
            let line = second.root.pos.line;
            return Err(invalid(
                line,
                "a second document; render one object".to_owned(),
            ));
        }
    };
    if root.as_map().is_none() {
        return Err(invalid(root.pos.line, "not a mapping".to_owned()));
    }
    for (path, expected) in [
        (Path::root().key("kind"), kind),
        (Path::root().key("metadata").key("name"), name),
    ] {
        let found = root.at(&path).and_then(Node::as_str);
        if found != Some(expected) {
            let line = root.locate(&path).line;
            let found = found.map_or_else(|| "nothing".to_owned(), |f| format!("`{f}`"));
            return Err(invalid(
                line,
                format!("`{path}` is {found}, expected `{expected}`"),
            ));
        }
    }
    if root
        .at(&Path::root().key("apiVersion"))
        .and_then(Node::as_str)
        .is_none()
    {
        return Err(invalid(root.pos.line, "no `apiVersion`".to_owned()));
    }
    if kind == crate::strict_cegp::KIND {
        de::from_node::<CiliumEgressGatewayPolicy>(root, &Path::root()).map_err(|error| {
            let line = error.pos.map_or(root.pos.line, |pos| pos.line);
            let at = if error.path.is_root() {
                String::new()
            } else {
                format!(" at `{}`", error.path)
            };
            invalid(line, format!("{}{at}", error.message))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEGP: &str = "apiVersion: cilium.io/v2\nkind: CiliumEgressGatewayPolicy\nmetadata:\n  name: web\nspec:\n  selectors: [{podSelector: {}}]\n  destinationCIDRs: [0.0.0.0/0]\n  egressGateway:\n    nodeSelector: {matchLabels: {a: \"\"}}\n    interface: eth1\n";

    fn line_of(text: &str) -> Option<(u32, String)> {
        match object("cegp.yaml.j2", "CiliumEgressGatewayPolicy", "web", text) {
            Ok(()) => None,
            Err(RenderError::InvalidOutput { line, message, .. }) => Some((line, message)),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_valid_policy_passes() {
        assert_eq!(line_of(CEGP), None);
    }

    #[test]
    fn broken_output_is_located() {
        let duplicate = CEGP.replace("  name: web\n", "  name: web\n  name: web\n");
        let (line, message) = line_of(&duplicate).expect("duplicate key");
        assert_eq!(line, 5);
        assert!(message.contains("duplicate"), "{message}");
        let syntax = CEGP.replace("[0.0.0.0/0]", "[0.0.0.0/0");
        assert!(line_of(&syntax).is_some());
        let unknown = CEGP.replace("    interface: eth1\n", "    interfaces: eth1\n");
        let (line, message) = line_of(&unknown).expect("unknown field");
        assert_eq!(line, 10);
        assert!(message.contains("interfaces"), "{message}");
        let renamed = CEGP.replace("name: web", "name: other");
        assert_eq!(line_of(&renamed).map(|(l, _)| l), Some(4));
        let two = format!("{CEGP}---\n{CEGP}");
        assert_eq!(line_of(&two).map(|(l, _)| l), Some(12));
        assert!(line_of("").is_some());
        assert!(line_of("- a\n").is_some());
    }
}
