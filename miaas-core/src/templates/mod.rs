//! Templates: checking a template before it is stored, and rendering one into a
//! compose document with its requirements.
//!
//! Every `{{ value }}` is written as a YAML scalar (JSON-escaped), so a value can
//! never break out of its place. Secret parameters are never written into the
//! document: they appear as `${MIAAS_SECRET_NAME}` references, which Compose fills
//! on the node from the deployment's environment (sealed at rest, shown `***`).

mod catalog;
mod params;
mod render;
pub mod sandbox;
mod schema;

use std::collections::BTreeMap;

use serde_json::Value;

pub use catalog::{Catalog, builtin_templates};
pub use params::SecretValue;
pub use render::secret_env_name;
pub use sandbox::{Isolation, Renderer};
pub use schema::parameters_schema;

use crate::compose::{parse_compose, requirements_of};
use crate::model::{
    MAX_COMPOSE_BYTES, RenderedTemplate, Requirements, Template, TemplateSource, TemplateSpec,
};
use crate::validate;
use crate::{Error, Result};

/// The longest template id, in characters.
const MAX_ID_CHARS: usize = 63;

/// Checks a template id: a letter or digit, then letters, digits, `.`, `_`, `-`.
pub fn check_id(id: &str) -> Result<()> {
    let valid = id.len() <= MAX_ID_CHARS
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "id: {id:?} is not a template id (a letter or digit, then letters, digits, `.`, \
             `_` or `-`; at most {MAX_ID_CHARS})"
        )))
    }
}

/// Checks a template as it is added: its fields, its parameters, its Jinja
/// syntax (errors give the line), that every variable it uses is a declared
/// parameter, and that its defaults render into a compose document.
pub fn check_spec(spec: &TemplateSpec) -> Result<()> {
    let values = check_definition(spec)?;
    renders_with_defaults(&render::render(&spec.compose, &values)?)
}

/// As [`check_spec`], rendering the defaults within `renderer`'s bounds (a
/// template that would take too much is refused when it is added).
pub async fn check_spec_bounded(renderer: &Renderer, spec: &TemplateSpec) -> Result<()> {
    let values = check_definition(spec)?;
    renders_with_defaults(&renderer.render(&spec.compose, &values).await?)
}

/// Everything [`check_spec`] checks but the rendering; the values the defaults
/// render with.
fn check_definition(spec: &TemplateSpec) -> Result<BTreeMap<String, Value>> {
    check_id(&spec.id)?;
    for (field, value) in [
        ("name", &spec.name),
        ("description", &spec.description),
        ("category", &spec.category),
    ] {
        if value.chars().count() > 1024 || value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::Invalid(format!(
                "{field}: at most 1024 characters, no control characters"
            )));
        }
    }
    validate::non_blank("compose", &spec.compose)?;
    validate::list_len("compose", spec.compose.len(), MAX_COMPOSE_BYTES)?;
    if spec.compose.contains('\0') {
        return Err(Error::Invalid("compose: must not contain NUL".into()));
    }
    params::check_definitions(&spec.parameters)?;
    let mut undeclared: Vec<String> = render::variables_of(&spec.compose)?
        .into_iter()
        .filter(|name| !spec.parameters.iter().any(|p| &p.name == name))
        .collect();
    if !undeclared.is_empty() {
        undeclared.sort();
        return Err(Error::Invalid(format!(
            "compose: uses {} not declared as parameters",
            undeclared.join(", ")
        )));
    }
    Ok(params::resolve(&spec.parameters, &BTreeMap::new(), true)?.values)
}

fn renders_with_defaults(compose: &str) -> Result<()> {
    document_of(compose)
        .map(|_| ())
        .map_err(|err| Error::Invalid(format!("with its defaults, {err}")))
}

/// A checked spec as the server shows it.
pub fn describe(spec: TemplateSpec, version: u32, source: TemplateSource) -> Template {
    let name = if spec.name.trim().is_empty() {
        spec.id.clone()
    } else {
        spec.name
    };
    Template {
        schema: parameters_schema(&spec.parameters),
        id: spec.id,
        name,
        description: spec.description,
        category: spec.category,
        version,
        source,
        parameters: spec.parameters,
        compose: spec.compose,
    }
}

/// A template rendered with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendering {
    /// The template.
    pub template_id: String,
    /// Its version.
    pub template_version: u32,
    /// The compose document (secrets as `${MIAAS_SECRET_…}` references).
    pub compose: String,
    /// The document, parsed.
    pub document: Value,
    /// What it needs from a node.
    pub requirements: Requirements,
    /// Every parameter's value, secrets as `***`.
    pub params: BTreeMap<String, Value>,
    /// The secret parameters, resolved against the deployment.
    pub secrets: Vec<SecretValue>,
}

impl Rendering {
    /// The dry run's answer.
    pub fn view(&self) -> RenderedTemplate {
        RenderedTemplate {
            template_id: self.template_id.clone(),
            template_version: self.template_version,
            rendered_compose: self.compose.clone(),
            params: self.params.clone(),
            secret_env: self.secrets.iter().map(|s| s.env.clone()).collect(),
            requirements: self.requirements.clone(),
        }
    }
}

/// Renders `template` with `params` (the defaults fill the rest): the document
/// must parse as compose with `services`; its requirements are derived from it.
pub fn render(template: &Template, params: &BTreeMap<String, Value>) -> Result<Rendering> {
    let resolved = params::resolve(&template.parameters, params, false)?;
    let compose = render::render(&template.compose, &resolved.values)?;
    rendering(template, resolved, compose)
}

/// As [`render`], within `renderer`'s bounds.
pub async fn render_bounded(
    renderer: &Renderer,
    template: &Template,
    params: &BTreeMap<String, Value>,
) -> Result<Rendering> {
    let resolved = params::resolve(&template.parameters, params, false)?;
    let compose = renderer.render(&template.compose, &resolved.values).await?;
    rendering(template, resolved, compose)
}

fn rendering(
    template: &Template,
    resolved: params::Resolved,
    compose: String,
) -> Result<Rendering> {
    let (document, requirements) = document_of(&compose)?;
    Ok(Rendering {
        template_id: template.id.clone(),
        template_version: template.version,
        compose,
        document,
        requirements,
        params: resolved.shown,
        secrets: resolved.secrets,
    })
}

fn document_of(compose: &str) -> Result<(Value, Requirements)> {
    validate::list_len("rendered_compose", compose.len(), MAX_COMPOSE_BYTES)?;
    let document = parse_compose(compose)?;
    crate::compose::runnable::check_runnable(&document, &Default::default())?;
    let requirements = requirements_of(&document)?;
    Ok((document, requirements))
}
