//! Templates: a compose document in Jinja syntax with typed parameters, and the
//! shapes of their API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Requirements;

/// The type of a template parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// One of `options`.
    Enum,
    /// Text kept secret: sealed at rest with the deployment's environment and
    /// shown as `***`.
    Secret,
}

impl ParameterType {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Enum => "enum",
            Self::Secret => "secret",
        }
    }
}

/// How a secret parameter's value is made when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// Letters and digits.
    Password,
    /// Hex digits.
    Hex,
}

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParameter {
    /// The name the template uses (letters, digits and `_`, not starting with a
    /// digit).
    pub name: String,
    /// A short label for forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What it means, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// The value used when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Whether a value must be given (when there is no default and nothing to
    /// generate).
    #[serde(default)]
    pub required: bool,
    /// A regular expression the whole value must match (`string`, `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The least value (`integer`, `number`), or the least length (`string`,
    /// `secret`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_when_whole"
    )]
    pub min: Option<f64>,
    /// The greatest value (`integer`, `number`), or the greatest length
    /// (`string`, `secret`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_when_whole"
    )]
    pub max: Option<f64>,
    /// The allowed values of an `enum`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// For a `secret`: made once per deployment when no value is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generator>,
    /// How many characters `generate` makes (24 for a password, 32 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
}

/// A bound as JSON: `8`, not `8.0`, when it is a whole number.
fn whole_when_whole<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => s.serialize_i64(*n as i64),
        Some(n) => s.serialize_f64(*n),
        None => s.serialize_none(),
    }
}

/// A template as written: its definition and its compose document in Jinja
/// syntax. The body of `POST`/`PUT /api/v1/templates/{id}`, and of a file in
/// `--templates-dir`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "whoami", "name": "whoami", "description": "A web server that echoes requests",
    "category": "web",
    "parameters": [{"name": "port", "type": "integer", "default": 8080, "min": 1, "max": 65535}],
    "compose": "services:\n  web:\n    image: traefik/whoami\n    ports:\n      - {{ port ~ \":80\" }}\n"
}))]
pub struct TemplateSpec {
    /// The id (as in URLs; set by the path in the API).
    #[serde(default)]
    pub id: String,
    /// A display name (the id when absent).
    #[serde(default)]
    pub name: String,
    /// What it runs, for people.
    #[serde(default)]
    pub description: String,
    /// A group for listing (`database`, `web`, `ai`, ...).
    #[serde(default)]
    pub category: String,
    /// The version; the server numbers the templates it stores (1, then +1 for
    /// each change), and a file gives its own (1 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Its parameters, in form order.
    #[serde(default)]
    pub parameters: Vec<TemplateParameter>,
    /// The compose document in Jinja syntax. Every `{{ value }}` is written as a
    /// YAML scalar (JSON-escaped, so a value stays data): join text with `~`
    /// inside the braces (`{{ "postgres:" ~ version }}`).
    pub compose: String,
    /// `source` of a template as `GET` shows it: ignored, so that a template read
    /// can be sent back.
    #[serde(default, rename = "source", skip_serializing)]
    #[schema(ignore)]
    pub shown_source: Option<serde::de::IgnoredAny>,
    /// `schema` of a template as `GET` shows it: ignored, as `source`.
    #[serde(default, rename = "schema", skip_serializing)]
    #[schema(ignore)]
    pub shown_schema: Option<serde::de::IgnoredAny>,
}

/// Where a template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateSource {
    /// Embedded in the binary; cannot be changed or removed.
    Builtin,
    /// A file of `--templates-dir`; changed by editing the file.
    Directory,
    /// Stored in the database through the API.
    Stored,
}

/// A template as the server knows it: `GET /api/v1/templates/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    /// The id.
    pub id: String,
    /// A display name.
    pub name: String,
    /// What it runs.
    pub description: String,
    /// A group for listing.
    pub category: String,
    /// Its version.
    pub version: u32,
    /// Where it comes from.
    pub source: TemplateSource,
    /// Its parameters, in form order.
    pub parameters: Vec<TemplateParameter>,
    /// The parameters as a JSON Schema (for form generators and validators).
    #[schema(value_type = Object)]
    pub schema: Value,
    /// The compose document in Jinja syntax.
    pub compose: String,
}

/// A line of `GET /api/v1/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateSummary {
    /// The id.
    pub id: String,
    /// A display name.
    pub name: String,
    /// What it runs.
    pub description: String,
    /// A group for listing.
    pub category: String,
    /// Its version.
    pub version: u32,
    /// Where it comes from.
    pub source: TemplateSource,
    /// How many parameters it has.
    pub parameter_count: usize,
}

/// Body of `POST /api/v1/templates/{id}/render`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// Parameter values by name; the defaults fill the rest.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
}

/// A template rendered without deploying it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderedTemplate {
    /// The template.
    pub template_id: String,
    /// The version rendered.
    pub template_version: u32,
    /// The compose document. Secret parameters appear as `${MIAAS_SECRET_…}`
    /// references, which the node fills from the deployment's environment.
    pub rendered_compose: String,
    /// Every parameter's value (defaults applied; secrets shown as `***`).
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// The environment variables secret parameters become (values `***`).
    pub secret_env: Vec<String>,
    /// What the document needs from a node.
    pub requirements: Requirements,
}
