//! Writes the benchmarks' synthetic input (see `synthetic.rs` for its shape):
//!
//! ```text
//! cargo run --release --example gen -- --gateways 1000 --groups 50 --policies 10000 \
//!     --nodes 5000 --unhealthy 0.05 --ipv6 0.2 --vip 0.5 --seed 1 --out DIR
//! ```
//!
//! Produces `DIR/sources/gateways.yaml`, `DIR/sources/policies.yaml` and `DIR/nodes.yaml`;
//! compile them with `egressc build DIR/sources --nodes DIR/nodes.yaml --cilium-version 1.19`.

mod synthetic;

use std::path::PathBuf;
use std::process::ExitCode;

use synthetic::Settings;

fn main() -> ExitCode {
    let (settings, out) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("gen: {message}");
            eprintln!(
                "usage: gen [--gateways G] [--groups K] [--policies P] [--nodes N] \
                 [--unhealthy F] [--ipv6 F] [--vip F] [--seed S] --out DIR"
            );
            return ExitCode::from(2);
        }
    };
    match write_all(&settings, &out) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("gen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Settings, PathBuf), String> {
    let mut settings = Settings::default();
    let mut out = None;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        let count = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("`{flag} {value}`: {e}"))
        };
        let share = || match value.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
            _ => Err(format!(
                "`{flag} {value}`: expected a share between 0 and 1"
            )),
        };
        match flag.as_str() {
            "--gateways" => settings.gateways = count()?,
            "--groups" => settings.groups = count()?,
            "--policies" => settings.policies = count()?,
            "--nodes" => settings.nodes = count()?,
            "--unhealthy" => settings.unhealthy = share()?,
            "--ipv6" => settings.ipv6 = share()?,
            "--vip" => settings.vip = share()?,
            "--seed" => {
                settings.seed = value
                    .parse()
                    .map_err(|e| format!("`--seed {value}`: {e}"))?
            }
            "--out" => out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    let out = out.ok_or("`--out DIR` is required")?;
    if settings.groups == 0 {
        return Err("`--groups` must be at least 1".to_owned());
    }
    if settings.policies > 0 && settings.gateways == 0 {
        return Err("policies need at least one gateway".to_owned());
    }
    Ok((settings, out))
}

fn write_all(settings: &Settings, out: &std::path::Path) -> Result<String, String> {
    let cluster = synthetic::generate(settings);
    let sources = out.join("sources");
    std::fs::create_dir_all(&sources)
        .map_err(|e| format!("cannot create {}: {e}", sources.display()))?;
    let files = [
        (sources.join("gateways.yaml"), &cluster.gateways_yaml),
        (sources.join("policies.yaml"), &cluster.policies_yaml),
        (out.join("nodes.yaml"), &cluster.nodes_yaml),
    ];
    let mut bytes = 0;
    for (path, text) in &files {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        bytes += text.len();
    }
    Ok(format!(
        "{} gateways ({} VIP), {} policies, {} nodes ({} unhealthy) → {} ({bytes} bytes)",
        settings.gateways,
        cluster.vip_gateways,
        settings.policies,
        settings.nodes,
        cluster.unhealthy_nodes,
        out.display(),
    ))
}
