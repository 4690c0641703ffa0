//! `egressc install`: print (or write) the install manifests of the `egressc sync` controller —
//! CRDs, Namespace, ServiceAccount, RBAC, Deployment, PodDisruptionBudget, and on request the
//! Prometheus Operator objects. Settings come from flags and from `--values FILE` (the Helm
//! chart's values, see [`super::install_values`]); flags win.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};

use super::install_values::InstallValues;
use super::{Cli, build, flags, output, trouble};
use crate::model::cilium::CiliumVersion;
use crate::render::{DEFAULT_AGENT_NAMESPACE, InstallOptions, Renderer, default_image};

/// Flags of `egressc install`.
#[derive(Debug, Args)]
pub(super) struct InstallArgs {
    /// Namespace of the controller; use the same as `build --agent-namespace` (the controller
    /// finds the VIP agents and their Leases there).
    #[arg(long, value_name = "NAMESPACE", default_value = DEFAULT_AGENT_NAMESPACE,
          value_parser = flags::namespace)]
    namespace: String,
    /// Values file of the Helm chart `charts/egressc` (its defaults, not install's, apply to
    /// what it leaves out: no Namespace object unless `namespace.create`); flags win over it.
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// Image running `egressc sync` (default: egressc:<version>, the local build tag of
    /// Dockerfile; a cluster cannot pull it from a registry).
    #[arg(long, value_name = "IMAGE", value_parser = flags::image)]
    image: Option<String>,
    /// Replicas: one leader, the others warm standbys (2 or more also renders a
    /// PodDisruptionBudget) [default: 2].
    #[arg(long, value_name = "N")]
    replicas: Option<u32>,
    /// Cilium release the controller compiles CiliumEgressGatewayPolicies for [default: 1.17].
    #[arg(long, value_name = "X.Y")]
    cilium_version: Option<CiliumVersion>,
    /// Namespace of the cilium-agent Pods (Deckhouse: d8-cni-cilium) [default: kube-system].
    #[arg(long, value_name = "NAMESPACE", value_parser = flags::namespace)]
    cilium_namespace: Option<String>,
    /// Label selector of the cilium-agent Pods (Deckhouse: app=agent,module=cni-cilium)
    /// [default: sync's, k8s-app=cilium].
    #[arg(long, value_name = "SELECTOR")]
    cilium_selector: Option<String>,
    /// `sync --vip-agent-selector`: label selector of the VIP agent Pods.
    #[arg(long, value_name = "SELECTOR")]
    vip_agent_selector: Option<String>,
    /// `sync --node-lease-grace`: a node whose heartbeat is not seen renewed this long is
    /// unhealthy.
    #[arg(long, value_name = "DURATION")]
    node_lease_grace: Option<String>,
    /// `sync --settle`: how long a recovered node waits before new assignments.
    #[arg(long, value_name = "DURATION")]
    settle: Option<String>,
    /// `sync --leader-lease-duration`.
    #[arg(long, value_name = "DURATION")]
    leader_lease_duration: Option<String>,
    /// Any other `egressc sync` flag, as NAME=VALUE without `--` (repeatable), e.g.
    /// `--sync-flag log-format=json`; checked against this binary's `sync`.
    #[arg(long, value_name = "NAME=VALUE")]
    sync_flag: Vec<String>,
    /// Run the controller Pods in the node's network namespace, so that its direct probes
    /// reach the nodes [default: true].
    #[arg(long, value_name = "BOOL")]
    host_network: Option<bool>,
    /// Leave out the Namespace object (when something else creates the namespace).
    #[arg(long)]
    no_namespace: bool,
    /// PriorityClass of the controller Pods; empty for none [default: system-cluster-critical].
    #[arg(long, value_name = "NAME", value_parser = flags::priority_class)]
    priority_class: Option<String>,
    /// Directory with template overrides (files named like the built-in templates, e.g.
    /// sync-deployment.yaml.j2).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Write the manifests to FILE instead of stdout (nothing is written on error).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl InstallArgs {
    fn options(&self) -> Result<InstallOptions, String> {
        let mut options = InstallOptions {
            namespace: self.namespace.clone(),
            ..InstallOptions::default()
        };
        if let Some(path) = &self.values {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            InstallValues::parse(&text)
                .and_then(|values| values.apply(&mut options))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(image) = &self.image {
            options.image = image.clone();
        }
        if let Some(replicas) = self.replicas {
            options.replicas = replicas;
        }
        if let Some(version) = self.cilium_version {
            options.cilium = version;
        }
        if let Some(namespace) = &self.cilium_namespace {
            options.cilium_namespace = namespace.clone();
        }
        if let Some(class) = &self.priority_class {
            options.priority_class = Some(class.clone()).filter(|p| !p.is_empty());
        }
        if let Some(host_network) = self.host_network {
            options.host_network = host_network;
        }
        if self.no_namespace {
            options.create_namespace = false;
        }
        for (flag, value) in [
            ("cilium-selector", &self.cilium_selector),
            ("vip-agent-selector", &self.vip_agent_selector),
            ("node-lease-grace", &self.node_lease_grace),
            ("settle", &self.settle),
            ("leader-lease-duration", &self.leader_lease_duration),
        ] {
            if let Some(value) = value {
                options.sync_flags.insert(flag.to_string(), value.clone());
            }
        }
        for pair in &self.sync_flag {
            let (flag, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--sync-flag `{pair}`: write NAME=VALUE"))?;
            let flag = flag.trim_start_matches("--");
            options
                .sync_flags
                .insert(flag.to_string(), value.to_string());
        }
        check_sync_command_line(&options)?;
        Ok(options)
    }
}

/// The Deployment's arguments must be a command line this very binary's `sync` accepts: a
/// misspelt or unknown flag would only show up as a crash-looping controller.
fn check_sync_command_line(options: &InstallOptions) -> Result<(), String> {
    // The kubelet replaces `$(POD_IP)` with the Pod's address; any address parses alike.
    let args = crate::render::install_sync_args(options)
        .into_iter()
        .map(|arg| arg.replace("$(POD_IP)", "192.0.2.1"));
    match Cli::try_parse_from(std::iter::once("egressc".to_string()).chain(args)) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "the controller's arguments are not a valid `egressc sync` command line: {}",
            error.to_string().lines().next().unwrap_or_default()
        )),
    }
}

/// Runs `egressc install`.
pub(super) fn run(args: InstallArgs) -> ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(message) => return trouble(&message),
    };
    let templates = match build::templates(args.templates.as_deref()) {
        Ok(templates) => templates,
        Err(message) => return trouble(&message),
    };
    let rendered = Renderer::new(&templates).and_then(|r| r.render_install(&options));
    let manifests = match rendered {
        Ok(manifests) => manifests,
        Err(error) if error.code().is_some() => {
            return build::render_failed(&error, args.templates.as_deref());
        }
        Err(error) => return trouble(&error.to_string()),
    };
    if options.image == default_image() {
        super::warn_default_image("--image");
    }
    match output::write(args.output.as_deref(), &manifests) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => trouble(&message),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::Value;

    use super::super::Cli;
    use crate::render::{InstallOptions, Renderer, Templates};

    /// The container arguments the Deployment passes must be a valid `egressc sync` command
    /// line of this very binary.
    #[test]
    fn deployment_args_are_a_valid_sync_command_line() {
        let mut options = InstallOptions {
            cilium_namespace: "cilium".to_string(),
            ..InstallOptions::default()
        };
        options.sync_flags.insert(
            "cilium-selector".into(),
            "app=agent,module=cni-cilium".into(),
        );
        let text = Renderer::new(&Templates::builtin())
            .and_then(|r| r.render_install(&options))
            .unwrap_or_else(|e| panic!("renders: {e}"));
        let docs: Vec<Value> =
            serde_saphyr::from_str_multiple(&text).unwrap_or_else(|e| panic!("YAML: {e}"));
        let deployment: Deployment = docs
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .and_then(|d| serde_json::from_value(d).ok())
            .unwrap_or_else(|| panic!("a Deployment"));
        let args = deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers.into_iter().next())
            .and_then(|c| c.args)
            .unwrap_or_default();
        // As the kubelet expands `$(POD_IP)` (here: an IPv6 node, the harder case).
        let expanded = args.iter().map(|a| a.replace("$(POD_IP)", "2001:db8::7"));
        let command_line = std::iter::once("egressc".to_string()).chain(expanded);
        let parsed = Cli::try_parse_from(command_line)
            .unwrap_or_else(|e| panic!("{args:?} is not a valid command line: {e}"));
        let debug = format!("{parsed:?}");
        assert!(debug.starts_with("Cli { command: Sync("), "{debug}");
        assert!(debug.contains("cilium_namespace: \"cilium\""), "{debug}");
        assert!(
            debug.contains("metrics_addr: [2001:db8::7]:9477"),
            "{debug}"
        );
        assert!(
            debug.contains("cilium_selector: \"app=agent,module=cni-cilium\""),
            "{debug}"
        );
    }

    #[test]
    fn an_unknown_sync_flag_is_refused() {
        let mut options = InstallOptions::default();
        options.sync_flags.insert("no-such-flag".into(), "1".into());
        let error = super::check_sync_command_line(&options).unwrap_err();
        assert!(error.contains("no-such-flag"), "{error}");
        options.sync_flags.clear();
        options.sync_flags.insert("settle".into(), "5s".into());
        assert_eq!(super::check_sync_command_line(&options), Ok(()));
    }
}
