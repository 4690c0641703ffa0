//! Documentation commands: `egressc completion SHELL` (clap_complete), `egressc man` (a roff
//! man page by clap_mangen) and `egressc explain CODE` (a diagnostic code's documentation).

use std::process::ExitCode;

use clap::CommandFactory;

use super::{Cli, print_stdout, trouble};
use crate::diag::Code;

/// Prints the completion script of `shell`.
pub(super) fn completion(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "egressc", &mut out);
    print_stdout(&String::from_utf8_lossy(&out))
}

/// Prints the man page egressc(1) (subcommands listed; `egressc help CMD` details each).
pub(super) fn man() -> ExitCode {
    let mut out = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut out) {
        Ok(()) => print_stdout(&String::from_utf8_lossy(&out)),
        Err(e) => trouble(&format!("cannot render the man page: {e}")),
    }
}

/// The text `egressc explain` prints for `code`.
pub fn explanation(code: Code) -> String {
    let mut text = format!(
        "{} ({}): {}\n\n",
        code.as_str(),
        code.severity().as_str(),
        code.title()
    );
    for line in code.explanation().lines() {
        text.push_str(
            line.strip_prefix(' ')
                .unwrap_or(line)
                .replace("**", "")
                .as_str(),
        );
        text.push('\n');
    }
    text
}

/// Prints the explanation of `code`, or exits 2 naming the known codes.
pub(super) fn explain(code: &str) -> ExitCode {
    match Code::parse(code) {
        Some(code) => print_stdout(&explanation(code)),
        None => {
            let known: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            trouble(&format!(
                "unknown diagnostic code `{code}`; known: {}",
                known.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explanation_says_what_why_and_fix() {
        let text = explanation(Code::UnknownGateway);
        assert!(
            text.starts_with("E022 (error): unknown EgressGateway\n\n"),
            "{text}"
        );
        for part in ["Flags", "Why", "Fix"] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains("**"), "{text}");
    }
}
