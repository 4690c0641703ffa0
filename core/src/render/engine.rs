//! The minijinja environment: built once per template set and reused for every object, with
//! strict undefined values, block trimming, the `yaml` filter, and YAML auto-escaping so that a
//! value interpolated without the filter is still quoted safely.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::error::RenderError;
use super::templates::Templates;
use super::yaml_scalar;

/// Name of the auto-escape mode every template renders in.
const YAML_ESCAPE: &str = "yaml";

/// Compiled templates.
pub struct Engine {
    env: Environment<'static>,
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
        Ok(Engine { env })
    }

    /// Renders template `name` with `context`; the result ends with exactly one newline.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|err| RenderError::template(name, err))?;
        let mut text = template
            .render(Value::from(Serde(context)))
            .map_err(|err| RenderError::template(name, err))?;
        let content_len = text.trim_end_matches(['\n', ' ']).len();
        text.truncate(content_len);
        text.push('\n');
        Ok(text)
    }
}
