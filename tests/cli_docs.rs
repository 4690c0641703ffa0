//! The operator-facing CLI: shell completions, the man page, `explain CODE`, and JSON logs of
//! `sync` with `--kubeconfig`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn egressc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .output()
        .expect("egressc runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_know_every_command_and_bash_parses_its_script() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&egressc(&["completion", shell]));
        for command in ["build", "install", "krm", "explain"] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egressc.bash");
    std::fs::write(&path, stdout(&egressc(&["completion", "bash"]))).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    assert_eq!(egressc(&["completion", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_with_the_commands() {
    let page = stdout(&egressc(&["man"]));
    assert!(page.contains(".TH egressc 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains("egressc\\-install"), "{page}");
}

#[test]
fn explain_prints_a_code_s_documentation() {
    let text = stdout(&egressc(&["explain", "e022"]));
    assert!(
        text.starts_with("E022 (error): unknown EgressGateway"),
        "{text}"
    );
    assert!(text.contains("Fix:"), "{text}");
    let unknown = egressc(&["explain", "E999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(unknown.stdout.is_empty());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("E022"));
}

/// `sync --kubeconfig FILE --log-format json`: the file's server is the one dialled (a closed
/// loopback port here), and every log line is a JSON object.
#[test]
fn sync_logs_json_and_uses_the_given_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{}}\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(["sync", "--log-format", "json", "--leader-elect", "false"])
        .args(["--metrics-addr", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Every line is JSON; read until the start line and a connection failure were both seen
    // (tasks log concurrently, so their order varies).
    let mut logs: Vec<Value> = Vec::new();
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines().take(200) {
        let line = line.unwrap();
        logs.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}")));
        lines.push(line);
        let started = logs
            .iter()
            .any(|l| l["fields"]["message"] == "egressc sync started");
        let failed = logs
            .iter()
            .any(|l| l["level"] == "WARN" || l["level"] == "ERROR");
        if started && failed {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "egressc sync started"),
        "{lines:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "the unreachable server of the kubeconfig is reported: {lines:?}"
    );
}
