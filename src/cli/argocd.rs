//! Settings of `egressc build --argocd`, read the way Argo CD's Config Management Plugin v2
//! passes them: Application `plugin.env` entries arrive as `ARGOCD_ENV_<NAME>`, parameters as
//! the JSON list in `ARGOCD_APP_PARAMETERS` (and as `PARAM_<NAME>` variables, used when the
//! JSON is absent). Parameters win over env entries; command-line flags win over both.
//!
//! Pure: takes the environment as a map. Repository content is untrusted (anyone who can push a
//! branch controls it), so paths must stay inside the application's source directory and
//! unknown parameters are errors rather than silently ignored.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// What the plugin environment asks for; `None`: not set, egressc's own default applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginSettings {
    /// Node inventory file, relative to the source directory.
    pub nodes: Option<PathBuf>,
    /// Target Cilium version (`X.Y`).
    pub cilium_version: Option<String>,
    /// Template override directory, relative to the source directory.
    pub templates: Option<PathBuf>,
    /// VIP agent image.
    pub agent_image: Option<String>,
}

/// One setting: its parameter name and its env name (after `ARGOCD_ENV_` / `PARAM_`).
struct Setting {
    parameter: &'static str,
    env: &'static str,
}

const SETTINGS: [Setting; 4] = [
    Setting {
        parameter: "nodes",
        env: "NODES",
    },
    Setting {
        parameter: "cilium-version",
        env: "CILIUM_VERSION",
    },
    Setting {
        parameter: "templates",
        env: "TEMPLATES",
    },
    Setting {
        parameter: "agent-image",
        env: "AGENT_IMAGE",
    },
];

/// One entry of `ARGOCD_APP_PARAMETERS`.
#[derive(Debug, Deserialize)]
struct Parameter {
    name: String,
    #[serde(default)]
    string: Option<String>,
    #[serde(default)]
    array: Option<Vec<String>>,
    #[serde(default)]
    map: Option<BTreeMap<String, String>>,
}

/// Reads the plugin settings from the process environment `vars`.
pub fn settings(vars: &BTreeMap<String, String>) -> Result<PluginSettings, String> {
    let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
    for setting in &SETTINGS {
        if let Some(value) = vars.get(&format!("ARGOCD_ENV_{}", setting.env)) {
            values.insert(setting.parameter, value.clone());
        }
    }
    for (name, value) in parameters(vars)? {
        let setting = SETTINGS
            .iter()
            .find(|s| s.parameter == name)
            .ok_or_else(|| {
                let known: Vec<&str> = SETTINGS.iter().map(|s| s.parameter).collect();
                format!(
                    "unknown plugin parameter `{name}`; egressc knows: {}",
                    known.join(", ")
                )
            })?;
        values.insert(setting.parameter, value);
    }
    let take = |name: &str| values.get(name).filter(|v| !v.trim().is_empty()).cloned();
    Ok(PluginSettings {
        nodes: take("nodes")
            .map(|p| inside_source_dir("nodes", &p))
            .transpose()?,
        cilium_version: take("cilium-version"),
        templates: take("templates")
            .map(|p| inside_source_dir("templates", &p))
            .transpose()?,
        agent_image: take("agent-image"),
    })
}

/// The explicitly set parameters as (name, string value): from the JSON when present, else
/// from `PARAM_<NAME>` variables.
fn parameters(vars: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    if let Some(json) = vars
        .get("ARGOCD_APP_PARAMETERS")
        .filter(|j| !j.trim().is_empty())
    {
        let list: Vec<Parameter> = serde_json::from_str(json)
            .map_err(|e| format!("ARGOCD_APP_PARAMETERS is not a parameter list: {e}"))?;
        return list
            .into_iter()
            .map(|p| match (p.string, p.array, p.map) {
                (Some(s), None, None) => Ok((p.name, s)),
                _ => Err(format!(
                    "plugin parameter `{}` must be a string (egressc takes no array or map parameters)",
                    p.name
                )),
            })
            .collect();
    }
    let mut found = Vec::new();
    for setting in &SETTINGS {
        if let Some(value) = vars.get(&format!("PARAM_{}", setting.env)) {
            found.push((setting.parameter.to_string(), value.clone()));
        }
    }
    Ok(found)
}

/// Accepts a relative path without `..`, so a branch cannot make egressc read files outside
/// the application's source directory (Argo CD runs the plugin inside it).
fn inside_source_dir(setting: &str, value: &str) -> Result<PathBuf, String> {
    let path = Path::new(value);
    let escapes = path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(format!(
            "plugin setting `{setting}` must be a path inside the application's source \
             directory (relative, without `..`), got `{value}`"
        ));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_means_defaults() {
        assert_eq!(settings(&env(&[])).unwrap(), PluginSettings::default());
    }

    #[test]
    fn env_entries_are_read_and_parameters_win() {
        let vars = env(&[
            ("ARGOCD_ENV_CILIUM_VERSION", "1.18"),
            ("ARGOCD_ENV_NODES", "inv/a.yaml"),
            ("ARGOCD_ENV_AGENT_IMAGE", "registry.example/egressc:1"),
            (
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"nodes","string":"inv/b.yaml"}]"#,
            ),
            // The JSON is authoritative; PARAM_ duplicates are ignored when it is present.
            ("PARAM_NODES", "inv/c.yaml"),
        ]);
        let got = settings(&vars).unwrap();
        assert_eq!(got.nodes, Some(PathBuf::from("inv/b.yaml")));
        assert_eq!(got.cilium_version.as_deref(), Some("1.18"));
        assert_eq!(
            got.agent_image.as_deref(),
            Some("registry.example/egressc:1")
        );
        assert_eq!(got.templates, None);
    }

    #[test]
    fn param_variables_are_used_without_json() {
        let got = settings(&env(&[("PARAM_CILIUM_VERSION", "1.19")])).unwrap();
        assert_eq!(got.cilium_version.as_deref(), Some("1.19"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let got = settings(&env(&[("ARGOCD_ENV_NODES", "  ")])).unwrap();
        assert_eq!(got.nodes, None);
    }

    #[test]
    fn paths_cannot_leave_the_source_directory() {
        for bad in ["../secrets.yaml", "/etc/passwd", "a/../../b"] {
            let err = settings(&env(&[("ARGOCD_ENV_NODES", bad)])).unwrap_err();
            assert!(
                err.contains("inside the application's source directory"),
                "{err}"
            );
        }
        let ok = settings(&env(&[("ARGOCD_ENV_TEMPLATES", "./tpl")])).unwrap();
        assert_eq!(ok.templates, Some(PathBuf::from("./tpl")));
    }

    #[test]
    fn unknown_or_non_string_parameters_are_errors() {
        let unknown = settings(&env(&[(
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"node","string":"x"}]"#,
        )]))
        .unwrap_err();
        assert!(
            unknown.contains("unknown plugin parameter `node`"),
            "{unknown}"
        );
        let array = settings(&env(&[(
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"nodes","array":["a"]}]"#,
        )]))
        .unwrap_err();
        assert!(array.contains("must be a string"), "{array}");
        let garbage = settings(&env(&[("ARGOCD_APP_PARAMETERS", "{")])).unwrap_err();
        assert!(garbage.contains("not a parameter list"), "{garbage}");
    }
}
