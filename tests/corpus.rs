//! The bad-input corpus, run through the real `egressc check` binary.
//!
//! Every `tests/corpus/<case>.expect` names a case: the sibling file `<case>.yaml`/`.yml`/
//! `.json` (or directory `<case>/`). Its lines are:
//! - `# …` a comment (the first says what the case is about);
//! - `args: --cilium-version 1.17` extra arguments for `egressc check`;
//! - `exit: N` the expected exit status (default: 1 if any `E` code is expected, else 0);
//! - `E012 3:7 [file]` one expected diagnostic: code, line:column and, when it is not the case
//!   file itself, the file relative to `tests/corpus` (e.g. `dir-case/b.yaml`).
//!
//! The expected diagnostics must match exactly (as a multiset), stdout must stay empty, and
//! every run is killed after [`HANG_BOUND`] to catch hangs (a bound, not a timing assertion).
//! Inputs too large to commit (budget breaches, a big valid stream) are generated into a temp
//! directory by the tests at the bottom.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::measured;

/// Generous upper bound on one run; only a hang (or a pathological slowdown) reaches it.
const HANG_BOUND: Duration = Duration::from_secs(20);
/// The corpus must keep at least this many cases.
const MIN_CASES: usize = 60;

/// What one run of the binary produced.
struct Run {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `egressc` with `args` in `dir`, killing it after [`HANG_BOUND`].
fn egressc(dir: &Path, args: &[String], envs: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let out_reader = measured::drain(child.stdout.take());
    let err_reader = measured::drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break status;
        }
        if started.elapsed() > HANG_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("egressc {args:?} did not finish within {HANG_BOUND:?} (hang?)");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        status: status.code(),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// One expected diagnostic: code, line, column, file.
type Expected = (String, u32, u32, String);

struct Case {
    name: String,
    input: PathBuf,
    args: Vec<String>,
    exit: i32,
    expected: Vec<Expected>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_case(expect_path: &Path) -> Result<Case, String> {
    let dir = corpus_dir();
    let stem = expect_path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad name")?;
    let input = ["yaml", "yml", "json"]
        .iter()
        .map(|ext| PathBuf::from(format!("{stem}.{ext}")))
        .chain([PathBuf::from(stem)])
        .find(|p| dir.join(p).exists())
        .ok_or_else(|| format!("{stem}: no input next to the .expect file"))?;
    let default_file = input.to_string_lossy().into_owned();
    let text = fs::read_to_string(expect_path).map_err(|e| format!("{stem}: {e}"))?;
    let mut args = Vec::new();
    let mut exit = None;
    let mut expected = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("args:") {
            args.extend(rest.split_whitespace().map(str::to_owned));
        } else if let Some(rest) = line.strip_prefix("exit:") {
            exit = Some(
                rest.trim()
                    .parse()
                    .map_err(|_| format!("{stem}: bad exit"))?,
            );
        } else {
            let mut words = line.split_whitespace();
            let code = words.next().ok_or("empty")?.to_owned();
            let (l, c) = words
                .next()
                .and_then(|p| p.split_once(':'))
                .ok_or_else(|| format!("{stem}: `{line}` lacks line:col"))?;
            let pos = |s: &str| s.parse::<u32>().map_err(|_| format!("{stem}: `{line}`"));
            let file = words.next().map_or(default_file.clone(), str::to_owned);
            expected.push((code, pos(l)?, pos(c)?, file));
        }
    }
    let exit = exit.unwrap_or(i32::from(expected.iter().any(|e| e.0.starts_with('E'))));
    expected.sort();
    Ok(Case {
        name: stem.to_owned(),
        input,
        args,
        exit,
        expected,
    })
}

fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "expect"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| load_case(p).unwrap_or_else(|e| panic!("bad expect file: {e}")))
        .collect()
}

/// Diagnostics of a JSON report as sorted (code, line, column, file).
fn reported(stderr: &[u8]) -> Result<Vec<Expected>, String> {
    let list: serde_json::Value =
        serde_json::from_slice(stderr).map_err(|e| format!("stderr is not JSON ({e})"))?;
    let mut found: Vec<Expected> = list
        .as_array()
        .ok_or("not an array")?
        .iter()
        .map(|d| {
            let num = |k: &str| {
                d[k].as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0)
            };
            (
                d["code"].as_str().unwrap_or("?").to_owned(),
                num("line"),
                num("column"),
                d["file"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Runs one case in JSON and human format; returns what went wrong, if anything.
fn check_case(case: &Case) -> Option<String> {
    let mut args = vec![
        "check".to_owned(),
        case.input.to_string_lossy().into_owned(),
    ];
    args.extend(case.args.iter().cloned());
    let mut json_args = args.clone();
    json_args.extend(["--format".to_owned(), "json".to_owned()]);
    let json = egressc(&corpus_dir(), &json_args, &[]);
    let mut problems = Vec::new();
    if json.status != Some(case.exit) {
        problems.push(format!("exit {:?}, expected {}", json.status, case.exit));
    }
    if !json.stdout.is_empty() {
        problems.push("stdout is not empty".to_owned());
    }
    match reported(&json.stderr) {
        Ok(found) if found == case.expected => {}
        Ok(found) => problems.push(format!(
            "diagnostics differ:\n    expected {:?}\n    found    {:?}",
            case.expected, found
        )),
        Err(e) => problems.push(format!("{e}: {}", String::from_utf8_lossy(&json.stderr))),
    }
    // The human renderer quotes source lines: it must cope with every input as well.
    let human = egressc(&corpus_dir(), &args, &[]);
    let text = String::from_utf8_lossy(&human.stderr);
    if human.status != Some(case.exit) || !human.stdout.is_empty() {
        problems.push(format!("human format: exit {:?}", human.status));
    }
    for (code, line, col, file) in &case.expected {
        if !text.contains(&format!("[{code}]")) || !text.contains(&format!("{file}:{line}:{col}")) {
            problems.push(format!("human format lacks {code} at {file}:{line}:{col}"));
        }
    }
    (!problems.is_empty()).then(|| format!("{}: {}", case.name, problems.join("; ")))
}

#[test]
fn corpus_cases_report_their_diagnostics() {
    let cases = cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} corpus cases, expected at least {MIN_CASES}",
        cases.len()
    );
    let failures: Vec<String> = cases.iter().filter_map(check_case).collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_covers_every_loader_and_encoding_code() {
    let mut seen = BTreeMap::new();
    for case in cases() {
        for (code, ..) in case.expected {
            *seen.entry(code).or_insert(0) += 1;
        }
    }
    for code in [
        "E001", "E004", "E005", "E008", "E010", "E011", "E012", "E013",
    ] {
        assert!(seen.contains_key(code), "no corpus case expects {code}");
    }
}

/// Writes `text` to `name` in a fresh temp dir and runs `egressc check` on it.
fn check_generated(name: &str, text: &[u8], envs: &[(&str, &str)]) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join(name), text).expect("input written");
    let args = ["check", name, "--format", "json"].map(str::to_owned);
    let run = egressc(dir.path(), &args, envs);
    (dir, run)
}

/// Asserts a run failed with exactly one diagnostic, of `code`.
fn assert_single(run: &Run, code: &str) {
    assert_eq!(
        run.status,
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stdout.is_empty());
    let found = reported(&run.stderr).expect("json report");
    let codes: Vec<&str> = found.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(codes, [code], "{found:?}");
}

#[test]
fn byte_budget_rejects_an_oversized_file() {
    // One byte over the default 192 MiB budget; the CLI reads at most budget + 1 bytes.
    let text = vec![b'#'; 192 * 1024 * 1024 + 1];
    let (_dir, run) = check_generated("huge.yaml", &text, &[]);
    assert_single(&run, "E002");
}

#[test]
fn document_budget_rejects_a_separator_storm() {
    let text = "a: 1\n---\n".repeat(100_001);
    let (_dir, run) = check_generated("docs.yaml", text.as_bytes(), &[]);
    assert_single(&run, "E003");
}

#[test]
fn depth_budget_rejects_ten_thousand_brackets() {
    let text = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let (_dir, run) = check_generated("deep.yaml", text.as_bytes(), &[]);
    assert_single(&run, "E004");
}

#[test]
fn alias_budget_rejects_a_wide_bomb() {
    // 12 levels of 20 aliases each: 20^12 events if expanded.
    let mut text =
        String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let refs = vec![format!("*l{}", level - 1); 20].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    let (_dir, run) = check_generated("bomb.yaml", text.as_bytes(), &[]);
    assert_single(&run, "E005");
}

#[test]
fn node_budget_rejects_too_many_nodes() {
    // The default (20 million nodes) takes a 40 MB input and about a minute in a debug build;
    // the debug-only override makes the same CLI path reachable with 200 KB.
    let text = format!("[{}1]\n", "1,".repeat(100_000));
    let (_dir, run) = check_generated(
        "nodes.yaml",
        text.as_bytes(),
        &[("EGRESSC_TEST_LIMITS", "max_nodes=50000")],
    );
    assert_single(&run, "E006");
}

#[test]
fn scalar_budget_rejects_many_values_over_the_total() {
    // 17 values of 8 MiB (each at the per-value cap): 136 MiB of scalar text in a stream
    // under the byte budget.
    let value = "x".repeat(8 * 1024 * 1024);
    let text: String = (0..17).map(|i| format!("k{i}: {value}\n")).collect();
    let (_dir, run) = check_generated("scalars.yaml", text.as_bytes(), &[]);
    assert_single(&run, "E007");
}

#[test]
fn one_value_over_the_cap_is_e060_at_its_position() {
    let cap = 8 * 1024 * 1024;
    let text = format!("a: b\nc: {}\n", "x".repeat(cap + 1));
    let (_dir, run) = check_generated("long.yaml", text.as_bytes(), &[]);
    assert_single(&run, "E060");
    let found = reported(&run.stderr).expect("json");
    assert_eq!(found[0].1, 2, "line of the value");
    assert_eq!(found[0].2, 4, "column of the value");
    // At the cap it is an ordinary value.
    let text = format!("a: {}\n", "x".repeat(cap));
    let (_dir, run) = check_generated("at-cap.yaml", text.as_bytes(), &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("E060"), "{stderr}");
}

#[test]
fn large_valid_stream_passes() {
    let mut text = String::new();
    for i in 0..5_000u32 {
        let (hi, lo) = (i / 250, i % 250 + 1);
        text.push_str(&format!(
            "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: gw-{i}\nspec:\n  nodeSelector: {{egress: \"g{i}\"}}\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress: {{ip: 10.{hi}.0.{lo}}}\n---\n\
             apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGatewayPolicy\nmetadata:\n  name: p-{i}\nspec:\n  egressGatewayName: gw-{i}\n  destinationCIDRs: [198.51.100.0/24]\n  selectors:\n  - podSelector: {{matchLabels: {{app: a{i}}}}}\n---\n"
        ));
    }
    let (_dir, run) = check_generated("big.yaml", text.as_bytes(), &[]);
    assert_eq!(
        run.status,
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(reported(&run.stderr).expect("json"), vec![]);
}

#[test]
fn very_long_name_is_reported_without_trouble() {
    let name = "a".repeat(1_000_000);
    let text = format!(
        "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: {name}\nspec:\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress: {{ip: 192.0.2.10}}\n"
    );
    let (dir, run) = check_generated("long.yaml", text.as_bytes(), &[]);
    assert_eq!(run.status, Some(1));
    let found = reported(&run.stderr).expect("json");
    assert!(
        found.contains(&("E020".to_owned(), 4, 9, "long.yaml".to_owned())),
        "{found:?}"
    );
    // The human report must not echo the megabyte name more than a bounded number of times.
    let human = egressc(
        dir.path(),
        &["check".to_owned(), "long.yaml".to_owned()],
        &[],
    );
    assert_eq!(human.status, Some(1));
    assert!(
        human.stderr.len() < 8 * name.len(),
        "{} bytes",
        human.stderr.len()
    );
}

#[test]
fn internal_error_exits_2_asking_for_a_bug_report() {
    let dir = corpus_dir();
    let args = ["check", "empty-file.yaml"].map(str::to_owned);
    let run = egressc(
        &dir,
        &args,
        &[("EGRESSC_TEST_PANIC", "1"), ("RUST_BACKTRACE", "1")],
    );
    assert_eq!(run.status, Some(2));
    assert!(run.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("internal error"), "{stderr}");
    assert!(stderr.contains("Please report it"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn twenty_thousand_errors_in_one_file_render_within_the_bound() {
    // Regression: quoting each diagnostic's line used to rescan the file from the start,
    // so this 4 MB input took minutes in the default (human) format.
    let doc = "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: gw-NUM\nspec:\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress: {ip: 192.0.2.300}\n---\n";
    let text: String = (0..20_000)
        .map(|i| doc.replace("NUM", &i.to_string()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("many.yaml"), text).expect("written");
    let run = egressc(
        dir.path(),
        &["check".to_owned(), "many.yaml".to_owned()],
        &[],
    );
    assert_eq!(run.status, Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.matches("error[E024]").count(), 20_000);
    assert!(
        stderr.ends_with("failed: 20000 errors, 0 warnings\n"),
        "{}",
        &stderr[stderr.len().saturating_sub(200)..]
    );
}

// ---- generated inputs with a memory bound ---------------------------------------------------
// Peak RSS of the child (`wait4`) against a generous bound: memory must follow the input
// (docs/arch/hostile-input.md, "Memory model"), not multiply it. Debug binary; the release
// numbers are in that document.

/// Writes `text` to `name` in a fresh temp dir and runs `egressc check` on it, measured.
fn check_measured(name: &str, text: &[u8], extra: &[&str]) -> measured::Run {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join(name), text).expect("input written");
    let mut args = vec!["check", name, "--format", "json"];
    args.extend_from_slice(extra);
    let run = measured::run_with(dir.path(), &args, Stdio::null(), None);
    assert!(run.stdout.is_empty(), "`check` prints nothing on stdout");
    run
}

const MIB: i64 = 1024;

#[test]
fn a_100_mb_comment_costs_its_size_once() {
    // Was: the scanner collected the comment (E006 "CommentBytes", 927 MB RSS in release).
    let mut text = b"# ".to_vec();
    text.resize(100 * 1024 * 1024, b'x');
    text.push(b'\n');
    let run = check_measured("comment.yaml", &text, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(run.max_rss_kib < 200 * MIB, "{} KiB", run.max_rss_kib);
}

#[test]
fn a_128_mib_scalar_costs_its_size_once() {
    // The old budget edge (128 MiB + 1 of scalar text, E007): 1050 MiB in release, copied
    // into the tree, then scanned again by the reference route. Now E060 as the fast route
    // meets it, a slice of the input; the human report windows its line (a `Vec<char>` of
    // it was 4 bytes per character).
    let mut text = b"a: ".to_vec();
    text.resize(128 * 1024 * 1024 + 4, b'x');
    text.push(b'\n');
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("scalar.yaml"), &text).expect("input written");
    let run = measured::run_with(dir.path(), &["check", "scalar.yaml"], Stdio::null(), None);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("error[E060]"),
        "{}",
        &run.stderr[..200.min(run.stderr.len())]
    );
    assert!(
        run.stderr.len() < 2_000,
        "{} bytes of report",
        run.stderr.len()
    );
    assert!(run.max_rss_kib < 200 * MIB, "{} KiB", run.max_rss_kib);
}

#[test]
fn a_multi_line_value_filling_the_byte_budget_stays_under_512_mib() {
    // A block scalar is built by the scanner (it cannot be a slice of the input): one
    // `String` grown by doubling, which the per-value cap can only see once it is complete.
    // The byte budget (192 MiB) and mimalloc returning outgrown blocks at once keep it under
    // 512 MiB: the text once plus at most 2 × 128 MiB while the value grows.
    let line = format!("  {}\n", "x".repeat(1021));
    let lines = (192 * 1024 * 1024 - 16) / line.len();
    let mut text = String::with_capacity(lines * line.len() + 8);
    text.push_str("a: |\n");
    for _ in 0..lines {
        text.push_str(&line);
    }
    let run = check_measured("block.yaml", text.as_bytes(), &[]);
    drop(text);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("\"E060\""), "{}", run.stderr);
    assert!(run.max_rss_kib < 512 * MIB, "{} KiB", run.max_rss_kib);
}

#[test]
fn a_hundred_thousand_documents_stay_bounded() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n";
    let run = check_measured("docs.yaml", doc.repeat(99_999).as_bytes(), &[]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(run.max_rss_kib < 400 * MIB, "{} KiB", run.max_rss_kib);
}

#[test]
fn a_hundred_thousand_nodes_stay_bounded() {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..100_000 {
        text.push_str(&format!(
            "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: n{i}\n    labels: {{role: egress}}\n  status:\n    conditions: [{{type: Ready, status: \"True\"}}]\n"
        ));
    }
    let gateway = corpus_dir().join("../../examples/seed/01-egressgateway-primary-ip.yaml");
    let gateway = gateway.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("nodes.yaml"), text).expect("written");
    let run = measured::run_with(
        dir.path(),
        &[
            "check",
            &gateway,
            "--nodes",
            "nodes.yaml",
            "--format",
            "json",
        ],
        Stdio::null(),
        None,
    );
    assert!(matches!(run.code(), Some(0 | 1)), "{}", run.stderr);
    assert!(!run.stderr.contains("\"E0"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.max_rss_kib < 400 * MIB, "{} KiB", run.max_rss_kib);
}
