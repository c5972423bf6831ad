//! Template rendering: the built-in templates with any parameters, and any
//! template text (checked as the API checks a new template, then rendered with
//! its defaults). Rendering has a fuel limit, so no input may run long; nothing
//! may panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use miaas_core::model::{Template, TemplateSource, TemplateSpec};
use serde_json::{Value, json};

fn builtins() -> &'static [Template] {
    static BUILTINS: OnceLock<Vec<Template>> = OnceLock::new();
    BUILTINS.get_or_init(|| miaas_core::templates::builtin_templates().unwrap_or_default())
}

/// A value from fuzz text: JSON when it parses, else the text itself.
fn value_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if selector % 2 == 0 {
        let builtins = builtins();
        if builtins.is_empty() {
            return;
        }
        let template = &builtins[usize::from(selector / 2) % builtins.len()];
        // the pieces between 0x1f bytes are the parameters' values, in order
        let params: BTreeMap<String, Value> = template
            .parameters
            .iter()
            .zip(text.split('\u{1f}'))
            .map(|(parameter, piece)| (parameter.name.clone(), value_of(piece)))
            .collect();
        let _ = miaas_core::templates::render(template, &params);
    } else {
        let spec = json!({
            "id": "fuzzed",
            "name": "Fuzzed",
            "parameters": [
                {"name": "name", "type": "string", "default": "web"},
                {"name": "count", "type": "integer", "default": 2, "min": 0, "max": 8},
                {"name": "password", "type": "secret", "generate": "password", "length": 16},
                {"name": "flavour", "type": "enum", "options": ["a", "b"], "default": "a"}
            ],
            "compose": text,
        });
        let Ok(spec) = serde_json::from_value::<TemplateSpec>(spec) else {
            return;
        };
        if miaas_core::templates::check_spec(&spec).is_err() {
            return;
        }
        let template = miaas_core::templates::describe(spec, 1, TemplateSource::Stored);
        let _ = miaas_core::templates::render(&template, &BTreeMap::new());
    }
});
