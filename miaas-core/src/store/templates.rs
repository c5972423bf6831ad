//! Storage of the templates added through the API: every version kept, the
//! newest of a template not removed is the one used. Both backends implement it
//! once, in `super::tables`.

use async_trait::async_trait;

use crate::Result;
use crate::model::TemplateSpec;

/// One stored version of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTemplate {
    /// The template as added (its `id` set).
    pub spec: TemplateSpec,
    /// Its version: 1 for the first, +1 for each change.
    pub version: u32,
    /// When this version was stored (epoch seconds).
    pub created_at: f64,
}

/// A `templates` row as `miaas db copy` moves it: every version, removed ones
/// included.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateExport {
    /// The template.
    pub id: String,
    /// The version.
    pub version: u32,
    /// The spec, as stored (JSON).
    pub spec: String,
    /// When this version was stored.
    pub created_at: f64,
    /// When the template was removed, if it was.
    pub removed_at: Option<f64>,
}

/// The stored templates. Every write is committed before the method returns.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// The newest version of every template not removed, by id.
    async fn list_templates(&self) -> Result<Vec<StoredTemplate>>;

    /// The newest version of template `id`, unless it was removed.
    async fn template(&self, id: &str) -> Result<Option<StoredTemplate>>;

    /// Stores `spec` as the next version of its template: a new template
    /// (`Conflict` when one of that id exists) or, with `replace`, a new version of
    /// an existing one (`NotFound` when there is none). Answers the version.
    async fn put_template(&self, spec: &TemplateSpec, now: f64, replace: bool) -> Result<u32>;

    /// Removes template `id` (every version); `false` when there was none.
    async fn remove_template(&self, id: &str, now: f64) -> Result<bool>;
}
