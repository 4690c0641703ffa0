//! Diagnostics as data: a stable [`Code`], a severity, a message, the most specific source span
//! (file, line:col, YAML path), an optional hint and related spans. Checks produce them; the
//! renderers in [`render`] turn the same list into human, JSON or GitHub output.

pub mod codes;
pub mod render;

pub use codes::Code;

/// How bad a diagnostic is. Errors fail `build`/`check`; warnings only with `--deny-warnings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; never fails a run.
    Warning,
    /// The input cannot be compiled as written.
    Error,
}

impl Severity {
    /// Lowercase name used by every renderer.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A place in an input file. Lines and columns are 1-based and count characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The file as the user named it (`-` shows as `<stdin>`).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// Length of the offending token in characters (0: unknown); used for carets only.
    pub len: u32,
    /// The YAML path of the value, e.g. `spec.selectors[0].podSelector`.
    pub path: Option<String>,
}

impl Span {
    /// A span covering a whole file, for problems that have no better position.
    pub fn file(file: impl Into<String>) -> Self {
        Span {
            file: file.into(),
            line: 1,
            col: 1,
            len: 0,
            path: None,
        }
    }
}

/// A secondary place that explains the primary one (e.g. the first definition of a duplicate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    /// Where.
    pub span: Span,
    /// What is there, e.g. "first defined here".
    pub message: String,
}

/// One finding of the loader or a validation check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code; also fixes the severity.
    pub code: Code,
    /// One sentence saying what is wrong with this input.
    pub message: String,
    /// Where it is wrong.
    pub span: Span,
    /// What to write instead, if we can tell.
    pub hint: Option<String>,
    /// Other places that explain this one.
    pub related: Vec<Related>,
}

impl Diagnostic {
    /// A diagnostic with `code` at `span`.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            hint: None,
            related: Vec::new(),
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    #[must_use]
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Adds a related span.
    #[must_use]
    pub fn with_related(mut self, span: Span, message: impl Into<String>) -> Self {
        self.related.push(Related {
            span,
            message: message.into(),
        });
        self
    }

    /// The severity fixed by the code.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

/// Sorts diagnostics into reading order: by file, position, then code.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.span.file, a.span.line, a.span.col, a.code).cmp(&(
            &b.span.file,
            b.span.line,
            b.span.col,
            b.code,
        ))
    });
}

/// Counts of errors and warnings in a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
}

impl Tally {
    /// Counts `diagnostics`.
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Tally {
            errors,
            warnings: diagnostics.len() - errors,
        }
    }
}
