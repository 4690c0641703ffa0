//! `egressc build`: compile sources into manifests, print or write them, or compare them with
//! committed ones (`--check-against`). Under `--argocd` the settings Argo CD passes through
//! the environment fill in what the command line leaves open.
//!
//! Fail safe for GitOps: on any error stdout stays empty (an empty render with pruning would
//! delete the user's resources) and the exit status is non-zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::files::{self, Bounded};
use super::inputs::Text;
use super::{
    CommonArgs, EXIT_INVALID, argocd, drift, flags, inputs, output, read, report, test_hooks,
    trouble,
};
use crate::diag::Code;
use crate::diag::render::escape_controls;
use crate::load::Limits;
use crate::pipeline;
use crate::render::{DEFAULT_AGENT_NAMESPACE, RenderError, RenderOptions, Renderer, Templates};

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
    #[arg(long, value_name = "IMAGE", value_parser = flags::image)]
    agent_image: Option<String>,
    /// Namespace of the VIP agent and its Leases.
    #[arg(long, value_name = "NAMESPACE", default_value = DEFAULT_AGENT_NAMESPACE,
          value_parser = flags::namespace)]
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
        if agent_image.is_none()
            && let Some(image) = settings.agent_image
        {
            match flags::image(&image) {
                Ok(image) => agent_image = Some(image),
                Err(error) => return trouble(&format!("plugin setting `agent-image`: {error}")),
            }
        }
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
    if let Some(path) = &args.output {
        let inputs: Vec<PathBuf> = common.paths.iter().chain(&common.nodes).cloned().collect();
        if let Err(message) = output::refuse_overwriting_inputs(path, &inputs) {
            return trouble(&message);
        }
    }
    let gathered = match read(common, &limits) {
        Ok(read) => read,
        Err(message) => return trouble(&message),
    };
    let renderer = match templates(args.templates.as_deref()) {
        Ok(templates) => match Renderer::new(&templates) {
            Ok(renderer) => renderer,
            Err(error) => return render_failed(&error, args.templates.as_deref()),
        },
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
        Err(error) => return render_failed(&error, args.templates.as_deref()),
    };
    gathered.merge_into(&mut compiled);
    super::warn_on_default_agent_image(&mut compiled, default_agent_image, "--agent-image");
    if report(common, &compiled, &gathered) {
        return ExitCode::from(EXIT_INVALID);
    }
    if let Some(path) = &args.check_against {
        return check_against(&compiled.manifests, path, &limits);
    }
    match output::write(args.output.as_deref(), &compiled.manifests) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => trouble(&message),
    }
}

/// Reports a failed render: exit 2 with the code for template and output-budget failures
/// (the templates, not the sources, must change), exit 1 for sources the target Cilium
/// cannot express.
pub(super) fn render_failed(error: &RenderError, templates: Option<&Path>) -> ExitCode {
    let Some(code) = error.code() else {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_INVALID);
    };
    let origin = match (code, templates) {
        (Code::OutputTooLarge, _) | (_, None) => String::new(),
        (_, Some(dir)) => format!(" (templates from {})", dir.display()),
    };
    trouble(&format!(
        "error[{}]: {}{origin}",
        code.as_str(),
        escape_controls(&error.to_string())
    ))
}

/// Largest template override file read: the built-in templates are a few KB each, so a
/// larger file is a mistake (or a sparse 1 GiB file meant to exhaust memory).
pub(super) const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// The built-in templates with the overrides found in `dir` (regular files only; hidden
/// entries skipped; each read only up to [`MAX_TEMPLATE_BYTES`]).
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
        if name.starts_with('.') || !files::is_regular(&entry.path()) {
            continue;
        }
        overrides.push((name, read_template(&entry.path())?));
    }
    overrides.sort();
    Templates::with_overrides(overrides).map_err(|e| format!("{}: {e}", dir.display()))
}

/// One template override: a regular file of at most [`MAX_TEMPLATE_BYTES`], UTF-8.
fn read_template(path: &Path) -> Result<String, String> {
    let regular = files::open_regular(path)?;
    let too_large = || {
        format!(
            "{}: a template may hold at most {MAX_TEMPLATE_BYTES} bytes",
            path.display()
        )
    };
    if regular.len > MAX_TEMPLATE_BYTES as u64 {
        return Err(too_large());
    }
    match files::read_bounded(regular.file, MAX_TEMPLATE_BYTES, Some(regular.len)) {
        Ok(Bounded::Whole(bytes)) => {
            String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
        }
        Ok(Bounded::TooLarge) => Err(too_large()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn check_against(rendered: &str, path: &Path, limits: &Limits) -> ExitCode {
    let committed = match inputs::read_inputs(&[path.to_path_buf()], limits.max_bytes, None) {
        Ok(texts) => texts
            .into_iter()
            .map(|text| match text {
                Text::Decoded(input) => Ok(input),
                Text::Undecodable { lossy, .. } => Err(format!("{} is not UTF-8 text", lossy.name)),
                Text::TooLarge { diagnostic, .. } => {
                    Err(format!("{}: {}", diagnostic.span.file, diagnostic.message))
                }
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
