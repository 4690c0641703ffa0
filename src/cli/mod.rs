//! The command line: argument parsing (clap), reading inputs, running the pipeline and
//! printing. The only module that writes to stdout/stderr.
//!
//! Exit codes: 0 success, 1 invalid input (diagnostics on stderr, nothing on stdout),
//! 2 usage, I/O or internal error.

mod agent;
mod argocd;
mod build;
mod daemon;
mod discover;
mod docs;
mod drift;
mod files;
mod flags;
mod inputs;
mod install;
mod install_values;
mod krm;
mod output;
mod sync;
mod test_hooks;

use inputs::Text;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::diag::render::{self, Format, Sources};
use crate::diag::{Diagnostic, Tally};
use crate::load::Limits;
use crate::model::cilium::CiliumVersion;
use crate::pipeline::{self, Compiled, Input};
use crate::validate::Options;

/// Exit code for invalid input.
pub(super) const EXIT_INVALID: u8 = 1;
/// Exit code for usage, I/O and internal errors.
const EXIT_TROUBLE: u8 = 2;

const AFTER_HELP: &str = "\
Examples:
  egressc check examples/                       validate every *.yaml/*.yml/*.json under examples/
  egressc build gateways/ -o manifests.yaml     compile to CiliumEgressGatewayPolicy manifests
  kubectl get nodes -o yaml > nodes.yaml
  egressc build . --nodes nodes.yaml            also elect active nodes from an inventory
  egressc check - --format github < all.yaml    read stdin, annotate a GitHub Actions run

Exit status: 0 ok, 1 invalid input, 2 usage, I/O or internal error.";

/// Hot-standby egress gateways for Cilium.
#[derive(Debug, Parser)]
#[command(name = "egressc", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile EgressGateway/EgressGatewayPolicy documents into Cilium manifests.
    #[command(after_help = AFTER_HELP)]
    Build(build::BuildArgs),
    /// Validate documents without producing output.
    #[command(after_help = AFTER_HELP)]
    Check(CheckArgs),
    /// Print the CustomResourceDefinitions of EgressGateway and EgressGatewayPolicy.
    Crds,
    /// Run the in-cluster controller: election, failover, CEGPs, status.
    Sync(sync::SyncArgs),
    /// Print the install manifests of the controller: CRDs, Namespace, RBAC, Deployment.
    Install(install::InstallArgs),
    /// Print the first egressc source file under DIR (Argo CD plugin discovery); nothing if none.
    Discover {
        /// Directory to search.
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Run the VIP agent (DaemonSet): hold gateway VIPs on this node per their Leases.
    Agent(agent::AgentArgs),
    /// Run as a Kustomize/kpt function: a KRM ResourceList on stdin (or, with CONFIG, an exec
    /// plugin's YAML stream), sources compiled, other items passed through, to stdout.
    Krm(krm::KrmArgs),
    /// Print a shell completion script (e.g. `egressc completion bash > /etc/bash_completion.d/egressc`).
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `egressc man > egressc.1 && man ./egressc.1`.
    Man,
    /// Explain a diagnostic code: what it flags, why it matters, how to fix it.
    Explain {
        /// The code, e.g. E022.
        #[arg(value_name = "CODE")]
        code: String,
    },
}

/// Flags shared by `build` and `check`.
#[derive(Debug, Args)]
pub(super) struct CommonArgs {
    /// Files or directories to read (directories recursively: *.yaml, *.yml, *.json); `-` is stdin.
    #[arg(value_name = "PATH", default_value = ".")]
    pub(super) paths: Vec<PathBuf>,
    /// Node inventory: `kubectl get nodes -o yaml` output, a NodeList, or Node documents.
    #[arg(long, value_name = "FILE")]
    pub(super) nodes: Option<PathBuf>,
    /// Cilium release to compile for (1.17, 1.18, 1.19, 1.20; default 1.17, the strictest).
    #[arg(long, value_name = "X.Y")]
    pub(super) cilium_version: Option<CiliumVersion>,
    /// Diagnostics format on stderr: human, json, github (workflow annotations) or codequality
    /// (GitLab Code Quality report; e.g. `2> gl-code-quality.json`).
    #[arg(long, value_name = "FORMAT", default_value = "human")]
    format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Skip documents of other kinds silently instead of reporting them.
    #[arg(long)]
    ignore_unknown_kinds: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// Runs the CLI with the process arguments; never panics outward (see [`main`]).
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_TROUBLE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    test_hooks::maybe_panic();
    let code = match cli.command {
        Command::Check(args) => check(&args.common),
        Command::Build(args) => build::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Install(args) => install::run(args),
        Command::Crds => print_stdout(&crate::crds::render_crds()),
        Command::Discover { dir } => {
            match discover::first_source(&dir, Limits::default().max_bytes) {
                Ok(found) => print_stdout(&found.map(|f| f + "\n").unwrap_or_default()),
                Err(message) => trouble(&message),
            }
        }
        Command::Agent(args) => agent::agent(args),
        Command::Krm(args) => krm::run(args),
        Command::Completion { shell } => docs::completion(shell),
        Command::Man => docs::man(),
        Command::Explain { code } => docs::explain(&code),
    };
    test_hooks::record_peak_rss();
    code
}

/// Entry point for `main`: installs a panic hook that asks for a bug report instead of
/// printing a backtrace, and maps a panic to exit status 2.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "egressc: internal error{location}: {}\n\
             This is a bug in egressc {}. Please report it with the input that triggered it.",
            panic_message(info.payload()),
            env!("CARGO_PKG_VERSION"),
        );
    }));
    std::panic::catch_unwind(run).unwrap_or(ExitCode::from(EXIT_TROUBLE))
}

fn panic_message(payload: &dyn std::any::Any) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn print_stdout(text: &str) -> ExitCode {
    match output::write_stdout(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => trouble(&message),
    }
}

/// Adds W030 to `compiled` when it renders the VIP agent with the default image (`defaulted`:
/// no image was given; `flag` names how to give one).
pub(super) fn warn_on_default_agent_image(compiled: &mut Compiled, defaulted: bool, flag: &str) {
    let renders_agent = compiled
        .catalog
        .gateways
        .iter()
        .any(|g| g.needs_vip_agent());
    if defaulted && !compiled.has_errors() && renders_agent {
        compiled.diagnostics.push(default_image_warning(flag));
    }
}

/// The W030 diagnostic: the default image reference would be rendered unchanged; `flag` is
/// the flag that sets it.
pub(super) fn default_image_warning(flag: &str) -> Diagnostic {
    let image = crate::render::default_image();
    Diagnostic::new(
        crate::diag::Code::DefaultImage,
        crate::diag::Span {
            path: Some(flag.to_string()),
            ..crate::diag::Span::file("<command line>")
        },
        format!(
            "the manifests run the default image `{image}`, the local build tag of Dockerfile, \
             which no registry serves"
        ),
    )
    .with_hint(format!(
        "push the image built from Dockerfile and pass {flag} REGISTRY/egressc:{}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// Prints the W030 warning to stderr (commands without `--format`).
pub(super) fn warn_default_image(flag: &str) {
    let text = render::render(
        Format::Human,
        &[default_image_warning(flag)],
        &Sources::default(),
    );
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub(super) fn trouble(message: &str) -> ExitCode {
    eprintln!("egressc: {message}");
    ExitCode::from(EXIT_TROUBLE)
}

/// What `read` gathered: decoded inputs, plus files that are not UTF-8 or over the byte budget
/// (reported as diagnostics beside the pipeline's own; the lossy text of an undecodable file
/// feeds source snippets only, an oversized one has none).
pub(super) struct Gathered {
    pub(super) sources: Vec<Input>,
    pub(super) nodes: Option<Input>,
    undecodable: Vec<(Input, Diagnostic)>,
}

impl Gathered {
    fn take(&mut self, text: Text) -> Option<Input> {
        match text {
            Text::Decoded(input) => Some(input),
            Text::Undecodable { lossy, diagnostic } => {
                self.undecodable.push((lossy, *diagnostic));
                None
            }
            Text::TooLarge { name, diagnostic } => {
                // Nothing to quote: the text was never kept.
                let empty = Input {
                    name,
                    text: String::new(),
                };
                self.undecodable.push((empty, *diagnostic));
                None
            }
        }
    }

    /// Adds the undecodable files' diagnostics to `compiled`, in reading order.
    pub(super) fn merge_into(&self, compiled: &mut Compiled) {
        compiled
            .diagnostics
            .extend(self.undecodable.iter().map(|(_, d)| d.clone()));
        crate::diag::sort(&mut compiled.diagnostics);
    }

    /// Every text a diagnostic may quote.
    fn texts(&self) -> impl Iterator<Item = &Input> {
        self.sources
            .iter()
            .chain(&self.nodes)
            .chain(self.undecodable.iter().map(|(input, _)| input))
    }
}

/// Reads the inputs of `args` or explains why not. A `--nodes` file inside a source directory
/// is read as the inventory only.
pub(super) fn read(args: &CommonArgs, limits: &Limits) -> Result<Gathered, String> {
    let texts = inputs::read_inputs(&args.paths, limits.max_bytes, args.nodes.as_deref())?;
    let nodes = args
        .nodes
        .as_deref()
        .map(|path| inputs::read_one(path, limits.max_bytes))
        .transpose()?;
    let mut gathered = Gathered {
        sources: Vec::new(),
        nodes: None,
        undecodable: Vec::new(),
    };
    for text in texts {
        if let Some(input) = gathered.take(text) {
            gathered.sources.push(input);
        }
    }
    gathered.nodes = nodes.and_then(|text| gathered.take(text));
    Ok(gathered)
}

pub(super) fn options(args: &CommonArgs) -> Options {
    Options {
        cilium: args.cilium_version.unwrap_or_default(),
        ignore_unknown_kinds: args.ignore_unknown_kinds,
    }
}

fn check(args: &CommonArgs) -> ExitCode {
    let limits = match test_hooks::limits() {
        Ok(limits) => limits,
        Err(message) => return trouble(&message),
    };
    let gathered = match read(args, &limits) {
        Ok(read) => read,
        Err(message) => return trouble(&message),
    };
    let mut compiled = pipeline::check(
        &gathered.sources,
        gathered.nodes.as_ref(),
        &options(args),
        &limits,
    );
    gathered.merge_into(&mut compiled);
    if report(args, &compiled, &gathered) {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the diagnostics to stderr; true when the run failed (errors, or warnings under
/// `--deny-warnings`).
pub(super) fn report(args: &CommonArgs, compiled: &Compiled, gathered: &Gathered) -> bool {
    let tally = Tally::of(&compiled.diagnostics);
    let failed = tally.errors > 0 || (args.deny_warnings && tally.warnings > 0);
    let format = args.format;
    let mut texts = Sources::default();
    // Source lines are quoted only from the files diagnostics name, and only the lines they
    // name are indexed: the texts are borrowed, so quoting costs memory in proportion to the
    // diagnostics, not to the inputs (a 256 MiB file of empty lines with one error).
    let mut named: std::collections::BTreeMap<&str, std::collections::BTreeSet<u32>> =
        std::collections::BTreeMap::new();
    for span in compiled
        .diagnostics
        .iter()
        .flat_map(|d| std::iter::once(&d.span).chain(d.related.iter().map(|r| &r.span)))
    {
        named
            .entry(span.file.as_str())
            .or_default()
            .insert(span.line);
    }
    if format == Format::Human {
        for input in gathered.texts() {
            if let Some(lines) = named.get(input.name.as_str()) {
                texts.insert_lines(input.name.clone(), input.text.as_str(), lines);
            }
        }
    }
    let mut out = render::render(format, &compiled.diagnostics, &texts);
    if format == Format::Human && (tally.errors > 0 || tally.warnings > 0) {
        out.push_str(&format!(
            "{}: {} error{}, {} warning{}\n",
            if failed { "failed" } else { "passed" },
            tally.errors,
            if tally.errors == 1 { "" } else { "s" },
            tally.warnings,
            if tally.warnings == 1 { "" } else { "s" },
        ));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(out.as_bytes());
    failed
}
