//! `egressc install`: print (or write) the install manifests of the `egressc sync` controller —
//! CRDs, Namespace, ServiceAccount, RBAC, Deployment, PodDisruptionBudget.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{build, flags, output, trouble};
use crate::model::cilium::CiliumVersion;
use crate::render::{DEFAULT_AGENT_NAMESPACE, InstallOptions, Renderer};

/// Flags of `egressc install`.
#[derive(Debug, Args)]
pub(super) struct InstallArgs {
    /// Namespace of the controller; use the same as `build --agent-namespace` (the controller
    /// finds the VIP agents and their Leases there).
    #[arg(long, value_name = "NAMESPACE", default_value = DEFAULT_AGENT_NAMESPACE,
          value_parser = flags::namespace)]
    namespace: String,
    /// Image running `egressc sync` (default: egressc:<version>).
    #[arg(long, value_name = "IMAGE", value_parser = flags::image)]
    image: Option<String>,
    /// Replicas: one leader, the others warm standbys (2 or more also renders a
    /// PodDisruptionBudget).
    #[arg(long, value_name = "N", default_value_t = 2)]
    replicas: u32,
    /// Cilium release the controller compiles CiliumEgressGatewayPolicies for.
    #[arg(long, value_name = "X.Y", default_value_t = CiliumVersion::OLDEST)]
    cilium_version: CiliumVersion,
    /// Namespace of the cilium-agent Pods.
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-system",
          value_parser = flags::namespace)]
    cilium_namespace: String,
    /// PriorityClass of the controller Pods; empty for none.
    #[arg(long, value_name = "NAME", default_value = "system-cluster-critical",
          value_parser = flags::priority_class)]
    priority_class: String,
    /// Directory with template overrides (files named like the built-in templates, e.g.
    /// sync-deployment.yaml.j2).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Write the manifests to FILE instead of stdout (nothing is written on error).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl InstallArgs {
    fn options(&self) -> InstallOptions {
        let defaults = InstallOptions::default();
        InstallOptions {
            namespace: self.namespace.clone(),
            image: self.image.clone().unwrap_or(defaults.image),
            replicas: self.replicas,
            cilium: self.cilium_version,
            cilium_namespace: self.cilium_namespace.clone(),
            priority_class: Some(self.priority_class.clone()).filter(|p| !p.is_empty()),
        }
    }
}

/// Runs `egressc install`.
pub(super) fn run(args: InstallArgs) -> ExitCode {
    let templates = match build::templates(args.templates.as_deref()) {
        Ok(templates) => templates,
        Err(message) => return trouble(&message),
    };
    let rendered = Renderer::new(&templates).and_then(|r| r.render_install(&args.options()));
    let manifests = match rendered {
        Ok(manifests) => manifests,
        Err(error) if error.code().is_some() => {
            return build::render_failed(&error, args.templates.as_deref());
        }
        Err(error) => return trouble(&error.to_string()),
    };
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
        let options = InstallOptions {
            cilium_namespace: "cilium".to_string(),
            ..InstallOptions::default()
        };
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
    }
}
