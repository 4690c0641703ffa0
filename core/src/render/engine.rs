//! The minijinja environment: built once per template set and reused for every object, with
//! strict undefined values, block trimming, the `yaml` filter, and YAML auto-escaping so that a
//! value interpolated without the filter is still quoted safely.
//!
//! Templates may be overrides from a repository, so each render is bounded: minijinja's fuel
//! caps the instructions it runs and the data it creates, and the text it writes stops at
//! [`MAX_OBJECT_BYTES`]. What an override renders is checked before it is used (`verify`).

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::error::RenderError;
use super::templates::Templates;
use super::yaml_scalar;

/// Name of the auto-escape mode every template renders in.
const YAML_ESCAPE: &str = "yaml";

/// Fuel of one render (one object): about this many instructions, or 64 times as many bytes
/// of data. The CiliumEgressGatewayPolicy of a policy with 10,000 CIDRs takes about 120,000;
/// three nested `range(100000)` loops stop after well under a second.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// Largest text one render may write. The API server stores objects of at most about
/// 1.5 MiB (etcd's default request limit), so this only stops runaway templates.
pub const MAX_OBJECT_BYTES: usize = 16 * 1024 * 1024;

/// Compiled templates.
pub struct Engine {
    env: Environment<'static>,
    /// Check what templates render (see `verify`): always for overrides; for the built-in
    /// set only in debug builds, where every test then proves the check accepts their output.
    verify: bool,
}

impl Engine {
    /// Compiles every template of `templates`; a syntax error names the template and line.
    pub fn new(templates: &Templates) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        // Block tags on their own lines leave no trace, so templates read like the YAML they
        // produce. The default syntax always builds; keep the default if that ever changes.
        if let Ok(syntax) = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_auto_escape_callback(|_| AutoEscape::Custom(YAML_ESCAPE.into()));
        env.set_formatter(|out, state, value| {
            if value.is_safe() || matches!(state.auto_escape(), AutoEscape::None) {
                // Already YAML (the `yaml` filter's output), or the template explicitly turned
                // escaping off with `{% autoescape false %}`.
                return write!(out, "{value}").map_err(minijinja::Error::from);
            }
            let mut scalar = String::new();
            yaml_scalar::write_value(&mut scalar, value)?;
            out.write_str(&scalar).map_err(minijinja::Error::from)
        });
        env.add_filter("yaml", yaml_scalar::yaml_filter);
        for (name, source) in templates.iter() {
            env.add_template_owned(name.to_string(), source.to_string())
                .map_err(|err| RenderError::template(name, err))?;
        }
        let verify = cfg!(debug_assertions) || *templates != Templates::builtin();
        Ok(Engine { env, verify })
    }

    /// Renders `template` for the object `kind`/`name` and checks the result when the
    /// template set calls for it (see [`Engine::verify`]).
    pub fn object(
        &self,
        template: &str,
        kind: &str,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, RenderError> {
        let text = self.render(template, context, || format!("{kind}/{name}"))?;
        if self.verify {
            super::verify::object(template, kind, name, &text)?;
        }
        Ok(text)
    }

    /// Renders template `name` with `context`, stopping at [`MAX_OBJECT_BYTES`]; the result
    /// ends with exactly one newline. `object` names what was being rendered for the error.
    fn render(
        &self,
        name: &str,
        context: impl Serialize,
        object: impl FnOnce() -> String,
    ) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|err| RenderError::template(name, err))?;
        let mut out = Capped::default();
        if let Err(err) = template.render_captured_to(Value::from(Serde(context)), &mut out) {
            return Err(if out.overflowed {
                RenderError::ObjectTooLarge {
                    template: name.to_owned(),
                    object: object(),
                    limit: MAX_OBJECT_BYTES,
                }
            } else {
                RenderError::template(name, err)
            });
        }
        // Only text the formatter wrote, and every write was valid UTF-8 on its own.
        let mut text = String::from_utf8(out.bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let content_len = text.trim_end_matches(['\n', ' ']).len();
        text.truncate(content_len);
        text.push('\n');
        Ok(text)
    }
}

/// A buffer that refuses to grow past [`MAX_OBJECT_BYTES`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OBJECT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("object too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
