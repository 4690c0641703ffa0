//! `egressc build`: compile sources into manifests, print or write them, or compare them with
//! committed ones (`--check-against`). Under `--argocd` the settings Argo CD passes through
//! the environment fill in what the command line leaves open.
//!
//! Fail safe for GitOps: on any error stdout stays empty (an empty render with pruning would
//! delete the user's resources) and the exit status is non-zero.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::inputs::Text;
use super::{CommonArgs, EXIT_INVALID, argocd, drift, inputs, read, report, test_hooks, trouble};
use crate::load::Limits;
use crate::pipeline;
use crate::render::{DEFAULT_AGENT_NAMESPACE, RenderOptions, Renderer, Templates};

/// Flags of `egressc build`.
#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory with template overrides (files named like the built-in templates, e.g.
    /// cegp.yaml.j2).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Write the manifests to FILE instead of stdout (nothing is written on error).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Image of the VIP agent DaemonSet.
    #[arg(long, value_name = "IMAGE")]
    agent_image: Option<String>,
    /// Namespace of the VIP agent and its Leases.
    #[arg(long, value_name = "NAMESPACE", default_value = DEFAULT_AGENT_NAMESPACE)]
    agent_namespace: String,
    /// Compare with the committed manifests at PATH (file or directory) instead of printing;
    /// exit 1 with a diff on stderr when they are stale.
    #[arg(long, value_name = "PATH")]
    check_against: Option<PathBuf>,
    /// Also read settings from Argo CD's plugin environment (ARGOCD_ENV_*, ARGOCD_APP_PARAMETERS).
    #[arg(long)]
    argocd: bool,
}

/// Runs `egressc build`.
pub(super) fn run(mut args: BuildArgs) -> ExitCode {
    let mut agent_image = args.agent_image.take();
    if args.argocd {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let settings = match argocd::settings(&vars) {
            Ok(settings) => settings,
            Err(message) => return trouble(&message),
        };
        let common = &mut args.common;
        common.nodes = common.nodes.take().or(settings.nodes);
        args.templates = args.templates.take().or(settings.templates);
        agent_image = agent_image.or(settings.agent_image);
        if common.cilium_version.is_none()
            && let Some(version) = settings.cilium_version
        {
            match version.parse() {
                Ok(version) => common.cilium_version = Some(version),
                Err(error) => return trouble(&format!("plugin setting `cilium-version`: {error}")),
            }
        }
    }
    let common = &args.common;
    let limits = match test_hooks::limits() {
        Ok(limits) => limits,
        Err(message) => return trouble(&message),
    };
    let gathered = match read(common, &limits) {
        Ok(read) => read,
        Err(message) => return trouble(&message),
    };
    let renderer = match templates(args.templates.as_deref())
        .and_then(|t| Renderer::new(&t).map_err(|e| format!("cannot use the templates: {e}")))
    {
        Ok(renderer) => renderer,
        Err(message) => return trouble(&message),
    };
    let default_agent_image = agent_image.is_none();
    let mut render = RenderOptions {
        agent_namespace: args.agent_namespace.clone(),
        ..RenderOptions::default()
    };
    if let Some(image) = agent_image {
        render.agent_image = image;
    }
    let options = super::options(common);
    let mut compiled = match pipeline::compile(
        &gathered.sources,
        gathered.nodes.as_ref(),
        &options,
        &limits,
        &renderer,
        &render,
    ) {
        Ok(compiled) => compiled,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    gathered.merge_into(&mut compiled);
    if default_agent_image
        && !compiled.has_errors()
        && compiled.catalog.gateways.iter().any(|g| g.is_vip())
    {
        compiled
            .diagnostics
            .push(super::default_image_warning("--agent-image"));
    }
    if report(common, &compiled, &gathered) {
        return ExitCode::from(EXIT_INVALID);
    }
    if let Some(path) = &args.check_against {
        return check_against(&compiled.manifests, path, &limits);
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &compiled.manifests)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(compiled.manifests.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => trouble(&message),
    }
}

/// The built-in templates with the overrides found in `dir`.
pub(super) fn templates(dir: Option<&Path>) -> Result<Templates, String> {
    let Some(dir) = dir else {
        return Ok(Templates::builtin());
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut overrides = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let source = std::fs::read_to_string(entry.path())
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        overrides.push((name, source));
    }
    overrides.sort();
    Templates::with_overrides(overrides).map_err(|e| format!("{}: {e}", dir.display()))
}

fn check_against(rendered: &str, path: &Path, limits: &Limits) -> ExitCode {
    let committed = match inputs::read_inputs(&[path.to_path_buf()], limits.max_bytes, None) {
        Ok(texts) => texts
            .into_iter()
            .map(|text| match text {
                Text::Decoded(input) => Ok(input),
                Text::Undecodable { lossy, .. } => Err(format!("{} is not UTF-8 text", lossy.name)),
            })
            .collect::<Result<Vec<_>, _>>(),
        Err(message) => Err(message),
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(message) => return trouble(&message),
    };
    match drift::compare(rendered, &committed) {
        Ok(drift) if drift.differences == 0 => ExitCode::SUCCESS,
        Ok(drift) => {
            eprint!("{}", drift.report);
            eprintln!(
                "stale: {} object{} in {} differ from what egressc renders; \
                 re-run `egressc build … -o` and commit the result",
                drift.differences,
                if drift.differences == 1 { "" } else { "s" },
                path.display()
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(message) => trouble(&message),
    }
}
