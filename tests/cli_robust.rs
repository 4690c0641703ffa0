//! The real binary against hostile surroundings rather than hostile YAML: special files,
//! endless streams, runaway templates, failing writes, bad flag values, control characters.
//! Every run is killed after a bound against hangs (not a timing assertion); memory is
//! asserted as a generous bound on the child's peak RSS (`wait4`, `support/measured.rs`).

mod support;

use std::ffi::CString;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use support::measured::{Run, run_with};

const GATEWAY: &str = "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: gw\nspec:\n  nodeSelector: {role: egress}\n  sourceIP:\n    mode: PrimaryIPFromEgressGatewayNodeInterface\n    primaryIPFromEgressGatewayNodeInterface: {interfaceName: eth1}\n";
const POLICY: &str = "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGatewayPolicy\nmetadata:\n  name: web\nspec:\n  egressGatewayName: gw\n  destinationCIDRs: [198.51.100.0/24]\n  selectors: [{podSelector: {matchLabels: {app: web}}}]\n";
const VIP_GATEWAY: &str = "apiVersion: network.deckhouse.io/v1alpha1\nkind: EgressGateway\nmetadata:\n  name: gw\nspec:\n  nodeSelector: {role: egress}\n  sourceIP:\n    mode: VirtualIPAddress\n    virtualIPAddress: {ip: 192.0.2.10}\n";

fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, Stdio::null(), None)
}

/// Runs `args`, which must fail with exit 2, nothing on stdout and `why` on stderr.
fn refused(dir: &Path, args: &[&str], why: &str) -> Run {
    let out = run(dir, args);
    assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{args:?}");
    assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    out
}

/// Asserts that a run that should not have read much stayed small.
fn assert_small(out: &Run, what: &str) {
    assert!(
        out.max_rss_kib < 64 * 1024,
        "{what}: peak RSS {} KiB",
        out.max_rss_kib
    );
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: `name` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn sources(dir: &Path) {
    fs::write(dir.join("gw.yaml"), GATEWAY).expect("write");
    fs::write(dir.join("policy.yaml"), POLICY).expect("write");
}

// ---- special files -------------------------------------------------------------------------

#[test]
fn a_fifo_in_a_source_directory_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    sources(&src);
    mkfifo(&src.join("pipe.yaml"));
    let out = run(dir.path(), &["check", "src"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

#[test]
fn named_special_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    mkfifo(&dir.path().join("pipe.yaml"));
    for args in [
        &["check", "pipe.yaml"][..],
        &["check", "gw.yaml", "--nodes", "pipe.yaml"],
        &[
            "build",
            "gw.yaml",
            "policy.yaml",
            "--check-against",
            "pipe.yaml",
        ],
        &["check", "/dev/zero"],
        &["check", "gw.yaml", "--nodes", "/dev/zero"],
        &[
            "build",
            "gw.yaml",
            "policy.yaml",
            "--check-against",
            "/dev/zero",
        ],
    ] {
        let out = refused(dir.path(), args, "not a regular file");
        assert_small(&out, &format!("{args:?}"));
    }
}

#[test]
fn an_endless_stdin_stops_at_the_byte_budget() {
    // The budget edge: 192 MiB are read, one byte more proves the stream too large, and the
    // buffer is dropped. Before, the copies of the oversized text reached 2.3 GB.
    let dir = tempfile::tempdir().expect("tempdir");
    let zero = fs::File::open("/dev/zero").expect("/dev/zero");
    let out = run_with(
        dir.path(),
        &["check", "-", "--format", "json"],
        Stdio::from(zero),
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("\"E002\""), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    // 192 MiB of input held once, plus the program: well under twice the budget.
    assert!(
        out.max_rss_kib < 320 * 1024,
        "peak RSS {} KiB for a 192 MiB budget",
        out.max_rss_kib
    );
}

#[test]
fn an_oversized_file_is_refused_by_its_size_without_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = fs::File::create(dir.path().join("sparse.yaml")).expect("create");
    file.set_len(1 << 30).expect("sparse 1 GiB");
    let out = run(dir.path(), &["check", "sparse.yaml", "--format", "json"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("\"E002\""), "{}", out.stderr);
    assert!(out.stderr.contains("1073741824 bytes"), "{}", out.stderr);
    assert_small(&out, "1 GiB");
}

// ---- templates -----------------------------------------------------------------------------

fn build_with_template(name: &str, template: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    let templates = dir.path().join("templates");
    fs::create_dir(&templates).expect("mkdir");
    fs::write(templates.join(name), template).expect("write");
    run(dir.path(), &BUILD_WITH_TEMPLATES)
}

const BUILD_WITH_TEMPLATES: [&str; 5] = [
    "build",
    "gw.yaml",
    "policy.yaml",
    "--templates",
    "templates",
];

#[test]
fn a_template_that_never_ends_runs_out_of_fuel() {
    let endless = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}\n";
    let out = build_with_template("cegp.yaml.j2", endless);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("error[E050]"), "{}", out.stderr);
    assert!(out.stderr.contains("cegp.yaml.j2"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn a_template_that_grows_without_bound_stops_before_memory_runs_out() {
    // Was: "memory allocation of 2684354560 bytes failed", SIGABRT.
    for template in [
        "{% set s = 'x' * 10000 %}{% for i in range(100000) %}{{ s }}{% endfor %}\n",
        "{{ 'x' * 2684354560 }}\n",
        "{% set s = 'x' * 1000000 %}{{ s * 1000 }}\n",
    ] {
        let out = build_with_template("cegp.yaml.j2", template);
        assert_eq!(out.code(), Some(2), "{template}: {}", out.stderr);
        assert!(out.status.signal().is_none());
        assert!(out.stderr.contains("error[E050]"), "{}", out.stderr);
        assert!(out.max_rss_kib < 400 * 1024, "{} KiB", out.max_rss_kib);
    }
}

#[test]
fn a_huge_template_file_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    let templates = dir.path().join("templates");
    fs::create_dir(&templates).expect("mkdir");
    let file = fs::File::create(templates.join("cegp.yaml.j2")).expect("create");
    file.set_len(1 << 30).expect("sparse 1 GiB");
    mkfifo(&templates.join("node.yaml.j2"));
    let out = run(dir.path(), &BUILD_WITH_TEMPLATES);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("at most 1048576 bytes"),
        "{}",
        out.stderr
    );
    assert_small(&out, "1 GiB");
}

#[test]
fn template_errors_exit_2_with_code_name_and_line() {
    for broken in [
        "kind: X\nmetadata:\n  name: {{ name | yaml }\n",
        "kind: X\n\n{{ nmae }}\n",
    ] {
        let out = build_with_template("cegp.yaml.j2", broken);
        assert_eq!(out.code(), Some(2), "{}", out.stderr);
        let expected = "error[E050]: template `cegp.yaml.j2` line 3";
        assert!(out.stderr.contains(expected), "{}", out.stderr);
    }
}

/// The built-in CEGP template with one line replaced.
fn cegp_with(from: &str, to: &str) -> String {
    let builtin = include_str!("../templates/cegp.yaml.j2");
    assert!(builtin.contains(from), "{from}");
    builtin.replacen(from, to, 1)
}

#[test]
fn an_override_rendering_an_invalid_object_is_refused() {
    for (template, expected) in [
        // A duplicate key: last-wins would silently change the policy.
        (
            cegp_with(
                "kind: CiliumEgressGatewayPolicy\n",
                "kind: CiliumEgressGatewayPolicy\nkind: CiliumEgressGatewayPolicy\n",
            ),
            "line 3 of its output: duplicate mapping key `kind`",
        ),
        // Broken YAML.
        (cegp_with("spec:\n", "spec: [\n"), "line"),
        // A field Cilium does not have (the API server would prune it).
        (
            cegp_with("  egressGateway:\n", "  egressGatway:\n"),
            "unknown field `egressGatway`",
        ),
        // Another object's name.
        (
            cegp_with("  name: {{ name | yaml }}\n", "  name: other\n"),
            "`metadata.name` is `other`, expected `web`",
        ),
    ] {
        let out = build_with_template("cegp.yaml.j2", &template);
        assert_eq!(out.code(), Some(2), "{template}\n{}", out.stderr);
        assert!(out.stderr.contains("error[E051]"), "{}", out.stderr);
        assert!(
            out.stderr.contains("template `cegp.yaml.j2`"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

// ---- output --------------------------------------------------------------------------------

#[test]
fn output_naming_an_input_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    fs::create_dir(dir.path().join("src")).expect("mkdir");
    fs::rename(dir.path().join("gw.yaml"), dir.path().join("src/gw.yaml")).expect("mv");
    for (args, victim) in [
        (
            &["build", "src", "policy.yaml", "-o", "policy.yaml"][..],
            "policy.yaml",
        ),
        (
            &["build", "src", "policy.yaml", "-o", "src/gw.yaml"],
            "src/gw.yaml",
        ),
        (
            &["build", "src", "policy.yaml", "-o", "./src/../src/gw.yaml"],
            "src/gw.yaml",
        ),
    ] {
        let before = fs::read(dir.path().join(victim)).expect("read");
        let out = run(dir.path(), args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("is the input"), "{}", out.stderr);
        assert_eq!(fs::read(dir.path().join(victim)).expect("read"), before);
    }
}

#[test]
fn output_replaces_the_file_atomically_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    let target = dir.path().join("out.yaml");
    fs::write(&target, "old\n").expect("write");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = run(
        dir.path(),
        &["build", "gw.yaml", "policy.yaml", "-o", "out.yaml"],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let written = fs::read_to_string(&target).expect("read");
    assert!(
        written.contains("kind: CiliumEgressGatewayPolicy"),
        "{written}"
    );
    let mode = fs::metadata(&target).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let names: Vec<String> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_full_disk_leaves_the_previous_output_whole() {
    // A 64 KiB tmpfs cannot hold a policy with 10,000 CIDRs (about 250 KB rendered).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut policy = POLICY.replace("  destinationCIDRs: [198.51.100.0/24]\n", "");
    policy.push_str("  destinationCIDRs:\n");
    for i in 0..10_000u32 {
        policy.push_str(&format!("  - 10.{}.{}.0/24\n", i / 256, i % 256));
    }
    fs::write(dir.path().join("gw.yaml"), GATEWAY).expect("write");
    fs::write(dir.path().join("policy.yaml"), policy).expect("write");
    let mount = dir.path().join("small");
    fs::create_dir(&mount).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mount);
    let target = mount.join("out.yaml");
    fs::write(&target, "previous\n").expect("write");
    let out = run(
        dir.path(),
        &["build", "gw.yaml", "policy.yaml", "-o", "small/out.yaml"],
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&target).expect("read"), "previous\n");
    let left: Vec<_> = fs::read_dir(&mount).expect("ls").collect();
    assert_eq!(left.len(), 1, "temporary file left behind");
}

#[test]
fn stdout_write_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    sources(dir.path());
    let args = ["build", "gw.yaml", "policy.yaml"];
    // A full device.
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = run_with(dir.path(), &args, Stdio::null(), Some(Stdio::from(full)));
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot write to stdout"),
        "{}",
        out.stderr
    );
    // A reader that went away (EPIPE).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = run_with(dir.path(), &args, Stdio::null(), Some(Stdio::from(writer)));
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    // A closed stdout (`>&-`).
    let exe = env!("CARGO_BIN_EXE_egressc");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("exec '{exe}' build gw.yaml policy.yaml >&-"))
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .status()
        .expect("sh");
    assert_eq!(status.code(), Some(2));
    // `-o /dev/full` is written in place (never replaced) and fails.
    let out = run(
        dir.path(),
        &["build", "gw.yaml", "policy.yaml", "-o", "/dev/full"],
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
}

// ---- flags ---------------------------------------------------------------------------------

#[test]
fn flag_values_that_end_up_in_objects_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("gw.yaml"), VIP_GATEWAY).expect("write");
    fs::write(dir.path().join("policy.yaml"), POLICY).expect("write");
    for args in [
        &["build", "gw.yaml", "--agent-namespace", "Bad_NS"][..],
        &["build", "gw.yaml", "--agent-namespace", ""],
        &["build", "gw.yaml", "--agent-image", ""],
        &[
            "build",
            "gw.yaml",
            "--agent-image",
            "egressc:1 --privileged",
        ],
        &["build", "gw.yaml", "--agent-image", "Egressc:1"],
        &["install", "--namespace", "a.b"],
        &["install", "--image", " "],
        &["install", "--cilium-namespace", "Kube-System"],
        &["install", "--priority-class", "Not Valid"],
    ] {
        refused(dir.path(), args, "invalid value");
    }
    let ok = run(
        dir.path(),
        &[
            "build",
            "gw.yaml",
            "policy.yaml",
            "--agent-namespace",
            "egress",
            "--agent-image",
            "registry.example.com:5000/egressc:1.0",
        ],
    );
    assert_eq!(ok.code(), Some(0), "{}", ok.stderr);
}

#[test]
fn sync_and_agent_flags_are_checked_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Every case is refused by clap (exit 2 naming the flag) before the kubeconfig, which does
    // not exist, is looked at.
    let missing = ["--kubeconfig", "missing-kubeconfig"];
    let cases: &[(&[&str], &str)] = &[
        (&["sync", "--namespace", "Bad_NS"], "--namespace"),
        (
            &["sync", "--cilium-namespace", "kube.system"],
            "--cilium-namespace",
        ),
        (
            &["sync", "--cilium-selector", "k8s app=cilium"],
            "--cilium-selector",
        ),
        (&["sync", "--cilium-selector", ""], "--cilium-selector"),
        (
            &["sync", "--vip-agent-selector", "a=b,"],
            "--vip-agent-selector",
        ),
        (&["sync", "--node-lease-grace", "0s"], "--node-lease-grace"),
        (
            &["sync", "--leader-lease-duration", "0ms"],
            "--leader-lease-duration",
        ),
        (
            &["sync", "--node-probe-interval", "0s"],
            "--node-probe-interval",
        ),
        (
            &["sync", "--node-probe-timeout", "0s"],
            "--node-probe-timeout",
        ),
        (&["sync", "--node-probe-path", "hello"], "--node-probe-path"),
        (&["sync", "--node-probe-port", "70000"], "--node-probe-port"),
        (&["sync", "--identity", "a b"], "--identity"),
        (&["sync", "--settle", "10"], "--settle"),
        (&["agent", "--node", "Node_1"], "--node"),
        (&["agent", "--node", "n1", "--namespace=-ns"], "--namespace"),
        (
            &["agent", "--node", "n1", "--renew-interval", "0s"],
            "--renew-interval",
        ),
        (
            &["agent", "--node", "n1", "--address-lifetime", "500ms"],
            "--address-lifetime",
        ),
        (
            &["agent", "--node", "n1", "--health-addr", "0.0.0.0"],
            "--health-addr",
        ),
    ];
    for (args, flag) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&missing);
        let out = refused(dir.path(), &all, "invalid value");
        assert!(out.stderr.contains(flag), "{all:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("cannot read"),
            "{all:?}: {}",
            out.stderr
        );
    }
    // `install` renders the controller's command line and checks it with the same parsers.
    refused(
        dir.path(),
        &["install", "--sync-flag", "node-lease-grace=0s"],
        "not a valid `egressc sync` command line",
    );
    // Values from the environment (as the manifests pass them) are checked the same way.
    let env = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["agent", "--kubeconfig", "missing-kubeconfig"])
        .env("NODE_NAME", "node 1")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&env.stderr);
    assert_eq!(env.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--node"), "{stderr}");
    // Good values pass the flags and stop only at the missing kubeconfig.
    for args in [
        &[
            "sync",
            "--namespace",
            "egress",
            "--cilium-selector",
            "k8s-app in (cilium, cilium-agent),!canary",
            "--identity",
            "sync-0",
            "--settle",
            "0s",
            "--metrics-addr",
            "127.0.0.1:0",
        ][..],
        &[
            "agent",
            "--node",
            "worker-1.example",
            "--address-lifetime",
            "1s",
            "--advert-interval",
            "0s",
            "--health-addr",
            "127.0.0.1:0",
        ],
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&missing);
        let out = run(dir.path(), &all);
        assert!(
            !out.stderr.contains("invalid value"),
            "{all:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("missing-kubeconfig"),
            "{all:?}: {}",
            out.stderr
        );
    }
}

// ---- terminal safety -----------------------------------------------------------------------

#[test]
fn control_characters_never_reach_the_terminal_in_any_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = GATEWAY.replace("name: gw", "name: \"gw\\e]0;owned\\a\\e[2J\\u009b31m\"");
    fs::write(dir.path().join("gw.yaml"), hostile).expect("write");
    for format in ["human", "github", "json"] {
        let out = run(dir.path(), &["check", "gw.yaml", "--format", format]);
        assert_eq!(out.code(), Some(1), "{format}: {}", out.stderr);
        assert!(out.stderr.contains("E020"), "{format}: {}", out.stderr);
        assert!(
            !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: {:?}",
            out.stderr
        );
    }
}
