//! Template rules: the catalog (built in, a folder, and stored through the API),
//! adding, changing and removing templates, and rendering one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::Service;
use crate::access::Principal;
use crate::model::{
    Event, RenderedTemplate, Template, TemplateSource, TemplateSpec, TemplateSummary,
};
use crate::store::StoredTemplate;
use crate::templates::{self, Catalog, Rendering};
use crate::{Error, Result};

fn summary(t: &Template) -> TemplateSummary {
    TemplateSummary {
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        category: t.category.clone(),
        version: t.version,
        source: t.source,
        parameter_count: t.parameters.len(),
    }
}

fn from_store(stored: StoredTemplate) -> Template {
    templates::describe(stored.spec, stored.version, TemplateSource::Stored)
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("template {id} not found"))
}

impl Service {
    /// Uses `catalog` for the built-in and folder templates from now on.
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
    }

    /// The built-in and folder templates.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Every template (built in, then the folder's, then stored), of `category`
    /// when given.
    pub async fn list_templates(&self, category: Option<&str>) -> Result<Vec<TemplateSummary>> {
        let catalog = self.catalog();
        let mut all = catalog.list();
        let stored = self.store.templates().list_templates().await?;
        // a folder file that came after a stored template of its id hides it
        all.extend(
            (stored.into_iter())
                .filter(|t| catalog.get(&t.spec.id).is_none())
                .map(from_store),
        );
        Ok(all
            .iter()
            .filter(|t| category.is_none_or(|c| t.category.eq_ignore_ascii_case(c)))
            .map(summary)
            .collect())
    }

    /// The template `id`, when there is one.
    pub async fn find_template(&self, id: &str) -> Result<Option<Template>> {
        if let Some(template) = self.catalog().get(id) {
            return Ok(Some(template));
        }
        Ok(self.store.templates().template(id).await?.map(from_store))
    }

    /// The template `id`.
    pub async fn get_template(&self, id: &str) -> Result<Template> {
        self.find_template(id).await?.ok_or_else(|| not_found(id))
    }

    /// Renders template `id` with `params`, changing nothing: the document (secrets
    /// as references), the parameters (secrets `***`) and the requirements.
    pub async fn render_template(
        &self,
        id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<RenderedTemplate> {
        Ok(self.render_with(id, params).await?.view())
    }

    pub(super) async fn render_with(
        &self,
        id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<Rendering> {
        templates::render_bounded(&self.renderer, &self.get_template(id).await?, params).await
    }

    /// Refuses a change of a template that is not stored (built in, or a file).
    fn require_stored(&self, id: &str) -> Result<()> {
        match self.catalog().get(id).map(|t| t.source) {
            Some(TemplateSource::Builtin) => Err(Error::Conflict(format!(
                "template {id} is built in: it cannot be changed or removed (add yours under \
                 another id)"
            ))),
            Some(_) => Err(Error::Conflict(format!(
                "template {id} comes from the templates folder: change its file instead"
            ))),
            None => Ok(()),
        }
    }

    /// Checks `spec` as template `id` (the body's own `id`, when given, must
    /// match).
    async fn checked(&self, id: &str, mut spec: TemplateSpec) -> Result<TemplateSpec> {
        if !spec.id.is_empty() && spec.id != id {
            return Err(Error::Invalid(format!(
                "id: the body names {:?}, the path {id:?}",
                spec.id
            )));
        }
        spec.id = id.to_string();
        templates::check_spec_bounded(&self.renderer, &spec).await?;
        Ok(spec)
    }

    /// Adds template `id` (version 1, or the next after a removed one).
    pub async fn create_template(
        &self,
        caller: &Principal,
        id: &str,
        spec: TemplateSpec,
    ) -> Result<Template> {
        self.put_template(caller, id, spec, false).await
    }

    /// Replaces template `id` with a new version.
    pub async fn replace_template(
        &self,
        caller: &Principal,
        id: &str,
        spec: TemplateSpec,
    ) -> Result<Template> {
        self.put_template(caller, id, spec, true).await
    }

    async fn put_template(
        &self,
        caller: &Principal,
        id: &str,
        spec: TemplateSpec,
        replace: bool,
    ) -> Result<Template> {
        templates::check_id(id)?;
        self.require_stored(id)?;
        let spec = self.checked(id, spec).await?;
        let version = (self.store.templates())
            .put_template(&spec, self.now(), replace)
            .await?;
        let (kind, verb) = if replace {
            ("template.updated", "updated to")
        } else {
            ("template.created", "created at")
        };
        tracing::info!(%id, version, "{kind}");
        self.record(
            Some(caller),
            vec![Event::new(
                kind,
                "template",
                id,
                format!("template {id} {verb} version {version}"),
            )],
        );
        Ok(templates::describe(spec, version, TemplateSource::Stored))
    }

    /// Removes template `id`; deployments rendered from it keep running.
    pub async fn remove_template(&self, caller: &Principal, id: &str) -> Result<()> {
        self.require_stored(id)?;
        if !self
            .store
            .templates()
            .remove_template(id, self.now())
            .await?
        {
            return Err(not_found(id));
        }
        tracing::info!(%id, "template removed");
        self.record(
            Some(caller),
            vec![Event::new(
                "template.removed",
                "template",
                id,
                format!("template {id} removed"),
            )],
        );
        Ok(())
    }
}
