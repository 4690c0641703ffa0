//! `egressc krm`: egressc as a Kustomize / kpt function. Speaks both protocols Kustomize has:
//!
//! - **KRM function** (no argument): a `ResourceList` on stdin, a `ResourceList` on stdout —
//!   what containerized functions (`config.kubernetes.io/function: {container: …}`, the only
//!   kind kubectl's built-in Kustomize runs), kpt, and standalone `kustomize build
//!   --enable-alpha-plugins --enable-exec` use. Diagnostics come back as `results`.
//! - **Exec plugin** (`egressc krm CONFIG`): the plugin config file as the argument and the
//!   resources as a YAML stream on stdin, the new stream on stdout — what kubectl 1.32's
//!   Kustomize runs from `$KUSTOMIZE_PLUGIN_HOME` with `--enable-alpha-plugins` (it has no
//!   `--enable-exec`, so it skips `exec:` KRM functions).
//!
//! Either way: EgressGateways and EgressGatewayPolicies among the items are compiled exactly as
//! `egressc build` would, Nodes are the inventory, every other item passes through unchanged,
//! settings come from the function config (`spec` of any kind, or `data` of a ConfigMap), and
//! on errors the exit status is 1 with the diagnostics on stderr.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use super::{EXIT_INVALID, build, test_hooks, trouble};
use crate::diag::render::{self as diag_render, Sources};
use crate::diag::{Diagnostic, Severity, Tally};
use crate::pipeline::{self, Input};
use crate::render::{RenderOptions, Renderer};
use crate::validate::Options;

/// Flags of `egressc krm`.
#[derive(Debug, Args)]
pub(super) struct KrmArgs {
    /// Exec-plugin mode: the plugin config file Kustomize passes (resources then arrive as a
    /// YAML stream on stdin). Without it, stdin is a KRM `ResourceList`.
    #[arg(value_name = "CONFIG")]
    config: Option<PathBuf>,
}

/// Annotations Kustomize and kpt use to say where an item came from.
const PATH_ANNOTATIONS: [&str; 2] = [
    "internal.config.kubernetes.io/path",
    "config.kubernetes.io/path",
];
const INDEX_ANNOTATIONS: [&str; 2] = [
    "internal.config.kubernetes.io/index",
    "config.kubernetes.io/index",
];
const SOURCE_API_VERSION: &str = "network.deckhouse.io/v1alpha1";

/// The function's settings.
#[derive(Debug, Default, PartialEq, Eq)]
struct Settings {
    cilium_version: Option<String>,
    agent_image: Option<String>,
    agent_namespace: Option<String>,
    deny_warnings: bool,
}

impl Settings {
    /// From a function config: `spec` (camelCase keys) or a ConfigMap's `data`.
    fn of(config: &Value) -> Result<Settings, String> {
        let fields = match (config.get("spec"), config.get("data")) {
            (Some(spec), _) => spec,
            (None, Some(data)) => data,
            (None, None) => return Ok(Settings::default()),
        };
        let Some(fields) = fields.as_object() else {
            return Err("the function config's spec/data must be a mapping".to_string());
        };
        let mut settings = Settings::default();
        for (key, value) in fields {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            match key.as_str() {
                "ciliumVersion" => settings.cilium_version = Some(text),
                "agentImage" => settings.agent_image = Some(text),
                "agentNamespace" => settings.agent_namespace = Some(text),
                "denyWarnings" => settings.deny_warnings = text == "true",
                other => {
                    return Err(format!(
                        "unknown setting `{other}` in the function config; egressc knows \
                         ciliumVersion, agentImage, agentNamespace, denyWarnings"
                    ));
                }
            }
        }
        Ok(settings)
    }
}

/// Where an item came from, for `results` and for messages.
#[derive(Clone, Debug, PartialEq)]
struct Origin {
    file: Option<String>,
    index: Option<u64>,
    resource: Value,
}

fn annotation<'a>(item: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let annotations = item.pointer("/metadata/annotations")?;
    keys.iter().find_map(|k| annotations.get(*k)?.as_str())
}

fn origin(item: &Value) -> Origin {
    let mut resource = json!({
        "apiVersion": item.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": item.get("kind").cloned().unwrap_or(Value::Null),
        "name": item.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
    });
    if let Some(namespace) = item.pointer("/metadata/namespace") {
        resource["namespace"] = namespace.clone();
    }
    Origin {
        file: annotation(item, &PATH_ANNOTATIONS).map(str::to_owned),
        index: annotation(item, &INDEX_ANNOTATIONS).and_then(|i| i.parse().ok()),
        resource,
    }
}

/// What the items are to egressc.
#[derive(Debug, Default)]
struct Sorted {
    /// Gateways and policies, named for diagnostics, with their origins.
    sources: Vec<(Input, Origin)>,
    /// Node objects: the inventory.
    nodes: Vec<Value>,
    /// Everything else, unchanged.
    others: Vec<Value>,
}

fn is_source(item: &Value) -> bool {
    item["apiVersion"] == SOURCE_API_VERSION
        && matches!(
            item["kind"].as_str(),
            Some("EgressGateway" | "EgressGatewayPolicy")
        )
}

/// The item as the loader should see it: without the annotations tools add on the way.
fn without_tool_annotations(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(annotations) = item
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.retain(|key, _| {
            !key.starts_with("config.kubernetes.io/")
                && !key.starts_with("internal.config.kubernetes.io/")
                && !key.starts_with("kustomize.config.k8s.io/")
                && !key.starts_with("config.k8s.io/")
        });
        if annotations.is_empty()
            && let Some(metadata) = item.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
    }
    item
}

fn sort(items: Vec<Value>) -> Sorted {
    let mut sorted = Sorted::default();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        if is_source(&item) {
            let origin = origin(&item);
            let base = origin.file.clone().unwrap_or_else(|| {
                format!(
                    "{}/{}",
                    item["kind"].as_str().unwrap_or_default(),
                    item.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
            });
            let seen = names.entry(base.clone()).or_default();
            *seen += 1;
            let name = match *seen {
                1 => base,
                n => format!("{base} (document {n})"),
            };
            let text =
                serde_json::to_string_pretty(&without_tool_annotations(&item)).unwrap_or_default();
            sorted.sources.push((Input { name, text }, origin));
        } else if item["apiVersion"] == "v1" && item["kind"] == "Node" {
            sorted.nodes.push(without_tool_annotations(&item));
        } else {
            sorted.others.push(item);
        }
    }
    sorted
}

/// What one run produced.
#[derive(Debug)]
struct Outcome {
    /// Compiled objects (empty when it failed).
    compiled: Vec<Value>,
    /// The diagnostics, in order.
    diagnostics: Vec<Diagnostic>,
    /// Errors, or warnings under `denyWarnings`.
    failed: bool,
    /// The inputs, for quoting in human diagnostics.
    sources: Vec<(Input, Origin)>,
    /// Items passed through.
    others: Vec<Value>,
}

/// Compiles the items with `settings`: the functional core of both protocols.
fn compile(items: Vec<Value>, settings: &Settings) -> Result<Outcome, String> {
    let sorted = sort(items);
    let limits = test_hooks::limits()?;
    let mut options = Options::default();
    if let Some(version) = &settings.cilium_version {
        options.cilium = version
            .parse()
            .map_err(|e| format!("setting ciliumVersion: {e}"))?;
    }
    let mut render = RenderOptions {
        cilium: options.cilium,
        ..RenderOptions::default()
    };
    if let Some(image) = &settings.agent_image {
        render.agent_image = image.clone();
    }
    if let Some(namespace) = &settings.agent_namespace {
        render.agent_namespace = namespace.clone();
    }
    let inventory = (!sorted.nodes.is_empty()).then(|| Input {
        name: "Nodes".to_string(),
        text: json!({"apiVersion": "v1", "kind": "List", "items": sorted.nodes}).to_string(),
    });
    render.include_node_labels = inventory.is_some();
    let renderer = build::templates(None)
        .and_then(|t| Renderer::new(&t).map_err(|e| format!("cannot use the templates: {e}")))?;
    let inputs: Vec<Input> = sorted.sources.iter().map(|(i, _)| i.clone()).collect();
    let mut compiled = pipeline::compile(
        &inputs,
        inventory.as_ref(),
        &options,
        &limits,
        &renderer,
        &render,
    )
    .map_err(|e| e.to_string())?;
    super::warn_on_default_agent_image(&mut compiled, settings.agent_image.is_none(), "agentImage");
    let tally = Tally::of(&compiled.diagnostics);
    let failed = tally.errors > 0 || (settings.deny_warnings && tally.warnings > 0);
    let objects = if failed {
        Vec::new()
    } else {
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&compiled.manifests)
            .map_err(|e| format!("internal error: rendered manifests do not parse: {e}"))?;
        docs.into_iter().filter(|d| !d.is_null()).collect()
    };
    Ok(Outcome {
        compiled: objects,
        diagnostics: compiled.diagnostics,
        failed,
        sources: sorted.sources,
        others: sorted.others,
    })
}

/// One KRM `results` entry for `diagnostic`.
fn result(diagnostic: &Diagnostic, origins: &BTreeMap<&str, &Origin>) -> Value {
    let mut message = format!("{}: {}", diagnostic.code.as_str(), diagnostic.message);
    if let Some(hint) = &diagnostic.hint {
        message.push_str(&format!(" (help: {hint})"));
    }
    let severity = match diagnostic.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut result = json!({
        "severity": severity,
        "message": message,
        "tags": {"code": diagnostic.code.as_str()},
    });
    if let Some(path) = &diagnostic.span.path {
        result["field"] = json!({"path": path});
    }
    if let Some(origin) = origins.get(diagnostic.span.file.as_str()) {
        result["resourceRef"] = origin.resource.clone();
        if let Some(file) = &origin.file {
            result["file"] = json!({"path": file});
            if let Some(index) = origin.index {
                result["file"]["index"] = json!(index);
            }
        }
    }
    result
}

impl Outcome {
    /// The output ResourceList: passed-through items, then the compiled objects, and results.
    fn resource_list(&self, input_items: Option<&[Value]>) -> Value {
        let origins: BTreeMap<&str, &Origin> = self
            .sources
            .iter()
            .map(|(input, origin)| (input.name.as_str(), origin))
            .collect();
        let items: Vec<Value> = match input_items {
            // On failure the items go back as they came.
            Some(items) if self.failed => items.to_vec(),
            _ => self.others.iter().chain(&self.compiled).cloned().collect(),
        };
        let mut list = json!({
            "apiVersion": "config.kubernetes.io/v1",
            "kind": "ResourceList",
            "items": items,
        });
        if !self.diagnostics.is_empty() {
            list["results"] = self
                .diagnostics
                .iter()
                .map(|d| result(d, &origins))
                .collect();
        }
        list
    }

    /// The diagnostics as `build` prints them, for stderr (Kustomize shows it on failure).
    fn human(&self) -> String {
        let mut texts = Sources::default();
        for (input, _) in &self.sources {
            texts.insert(input.name.clone(), input.text.clone());
        }
        diag_render::render(diag_render::Format::Human, &self.diagnostics, &texts)
    }
}

fn read_stdin(limit: usize) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "stdin is larger than the input budget ({limit} bytes)"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "stdin is not UTF-8".to_string())
}

fn parse_documents(text: &str, what: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| format!("{what}: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Runs `egressc krm`.
pub(super) fn run(args: KrmArgs) -> ExitCode {
    let limit = match test_hooks::limits() {
        Ok(limits) => limits.max_bytes,
        Err(message) => return trouble(&message),
    };
    let input = match read_stdin(limit) {
        Ok(input) => input,
        Err(message) => return trouble(&message),
    };
    let produced = match &args.config {
        Some(path) => exec_plugin(path, &input),
        None => resource_list(&input),
    };
    let (stdout, outcome) = match produced {
        Ok(produced) => produced,
        Err(message) => return trouble(&message),
    };
    let _ = std::io::stderr()
        .lock()
        .write_all(outcome.human().as_bytes());
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(stdout.as_bytes()).and_then(|()| out.flush()) {
        return trouble(&format!("cannot write to stdout: {e}"));
    }
    if outcome.failed {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    }
}

/// The KRM protocol: ResourceList in, ResourceList out.
fn resource_list(input: &str) -> Result<(String, Outcome), String> {
    let list: Value = serde_saphyr::from_str(input).map_err(|e| format!("ResourceList: {e}"))?;
    if list["kind"] != "ResourceList" {
        return Err(
            "stdin is not a ResourceList (give the plugin config file as the \
                    argument for the exec-plugin protocol)"
                .to_string(),
        );
    }
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let settings = Settings::of(&list["functionConfig"])?;
    let outcome = compile(items.clone(), &settings)?;
    let output = outcome.resource_list(Some(&items));
    let text = serde_json::to_string_pretty(&output).unwrap_or_default() + "\n";
    Ok((text, outcome))
}

/// The exec-plugin protocol: config file argument, YAML stream in and out.
fn exec_plugin(config: &std::path::Path, input: &str) -> Result<(String, Outcome), String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let config: Value = serde_saphyr::from_str(&text).map_err(|e| format!("plugin config: {e}"))?;
    let settings = Settings::of(&config)?;
    let outcome = compile(parse_documents(input, "stdin")?, &settings)?;
    if outcome.failed {
        return Ok((String::new(), outcome));
    }
    let mut stream = String::new();
    for item in outcome.others.iter().chain(&outcome.compiled) {
        stream.push_str("---\n");
        stream.push_str(&serde_json::to_string(item).unwrap_or_default());
        stream.push('\n');
    }
    Ok((stream, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(annotations: Value) -> Value {
        json!({
            "apiVersion": SOURCE_API_VERSION,
            "kind": "EgressGateway",
            "metadata": {"name": "gw", "annotations": annotations},
            "spec": {
                "nodeSelector": {"role": "egress"},
                "sourceIP": {
                    "mode": "PrimaryIPFromEgressGatewayNodeInterface",
                    "primaryIPFromEgressGatewayNodeInterface": {"interfaceName": "eth1"},
                },
            },
        })
    }

    fn policy(gateway: &str) -> Value {
        json!({
            "apiVersion": SOURCE_API_VERSION,
            "kind": "EgressGatewayPolicy",
            "metadata": {
                "name": "p",
                "annotations": {"config.kubernetes.io/path": "egress/p.yaml",
                                "config.kubernetes.io/index": "1"},
            },
            "spec": {
                "egressGatewayName": gateway,
                "destinationCIDRs": ["198.51.100.0/24"],
                "selectors": [{"podSelector": {"matchLabels": {"app": "a"}}}],
            },
        })
    }

    #[test]
    fn sources_compile_and_the_rest_passes_through() {
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                           "data": {"k": "v"}});
        let items = vec![gateway(json!({})), policy("gw"), other.clone()];
        let outcome = compile(items, &Settings::default()).unwrap();
        assert!(!outcome.failed, "{:?}", outcome.diagnostics);
        assert_eq!(outcome.others, [other]);
        let kinds: Vec<&str> = outcome
            .compiled
            .iter()
            .filter_map(|o| o["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["CiliumEgressGatewayPolicy"]);
    }

    #[test]
    fn errors_become_results_with_file_field_and_resource() {
        let items = vec![gateway(json!({})), policy("gw-typo")];
        let outcome = compile(items.clone(), &Settings::default()).unwrap();
        assert!(outcome.failed);
        let list = outcome.resource_list(Some(&items));
        assert_eq!(list["items"], json!(items), "items come back unchanged");
        let result = &list["results"][0];
        assert_eq!(result["severity"], "error");
        assert_eq!(result["tags"]["code"], "E022");
        assert_eq!(result["field"]["path"], "spec.egressGatewayName");
        assert_eq!(result["file"]["path"], "egress/p.yaml");
        assert_eq!(result["file"]["index"], 1);
        assert_eq!(result["resourceRef"]["kind"], "EgressGatewayPolicy");
        assert_eq!(result["resourceRef"]["name"], "p");
    }

    #[test]
    fn settings_come_from_spec_or_a_config_map() {
        let spec = json!({"spec": {"ciliumVersion": "1.19", "denyWarnings": true}});
        let data = json!({"kind": "ConfigMap", "data": {"ciliumVersion": "1.19",
                                                        "denyWarnings": "true"}});
        assert_eq!(Settings::of(&spec), Settings::of(&data));
        assert_eq!(
            Settings::of(&spec).unwrap().cilium_version.as_deref(),
            Some("1.19")
        );
        assert!(Settings::of(&json!({"spec": {"ciliumversion": "1"}})).is_err());
    }

    #[test]
    fn tool_annotations_are_not_judged() {
        let item = gateway(json!({"config.kubernetes.io/path": "g.yaml"}));
        assert!(
            without_tool_annotations(&item)["metadata"]
                .get("annotations")
                .is_none()
        );
    }
}
