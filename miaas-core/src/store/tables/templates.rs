//! The templates added through the API (see `crate::store::templates`).

use async_trait::async_trait;

use super::{RowsAffected, SqlTables};
use crate::model::TemplateSpec;
use crate::store::templates::{StoredTemplate, TemplateExport, TemplateStore};
use crate::{Error, Result};

const LATEST_SQL: &str = "SELECT t.id, t.version, t.spec, t.created_at FROM templates t \
     WHERE t.removed_at IS NULL AND t.version = \
     (SELECT MAX(version) FROM templates WHERE id = t.id) ORDER BY t.id";
const ONE_LATEST_SQL: &str = "SELECT id, version, spec, created_at FROM templates \
     WHERE id = $1 AND removed_at IS NULL ORDER BY version DESC LIMIT 1";
const LAST_VERSION_SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM templates WHERE id = $1";
const LIVE_COUNT_SQL: &str = "SELECT COUNT(*) FROM templates WHERE id = $1 AND removed_at IS NULL";
const INSERT_SQL: &str =
    "INSERT INTO templates (id, version, spec, created_at) VALUES ($1, $2, $3, $4)";
const REMOVE_SQL: &str =
    "UPDATE templates SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL";

/// A `templates` row: id, version, spec, created_at.
type TemplateRow = (String, i64, String, f64);

fn stored((id, version, spec, created_at): TemplateRow) -> Result<StoredTemplate> {
    let mut spec: TemplateSpec = serde_json::from_str(&spec)
        .map_err(|err| Error::Corrupt(format!("template {id}: {err}")))?;
    let version = u32::try_from(version)
        .map_err(|_| Error::Corrupt(format!("template {id}: version {version}")))?;
    spec.id = id;
    spec.version = Some(version);
    Ok(StoredTemplate {
        spec,
        version,
        created_at,
    })
}

#[async_trait]
impl<DB> TemplateStore for SqlTables<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    TemplateRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::QueryResult: RowsAffected,
{
    async fn list_templates(&self) -> Result<Vec<StoredTemplate>> {
        let rows: Vec<TemplateRow> = sqlx::query_as(LATEST_SQL).fetch_all(&self.reader).await?;
        rows.into_iter().map(stored).collect()
    }

    async fn template(&self, id: &str) -> Result<Option<StoredTemplate>> {
        let row: Option<TemplateRow> = sqlx::query_as(ONE_LATEST_SQL)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(stored).transpose()
    }

    async fn put_template(&self, spec: &TemplateSpec, now: f64, replace: bool) -> Result<u32> {
        let mut body = spec.clone();
        body.version = None;
        let body = serde_json::to_string(&body)
            .map_err(|err| Error::Corrupt(format!("template: {err}")))?;
        let mut tx = self.writer.begin_with(self.begin).await?;
        let (live,): (i64,) = sqlx::query_as(LIVE_COUNT_SQL)
            .bind(spec.id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        match (live > 0, replace) {
            (true, false) => {
                return Err(Error::Conflict(format!(
                    "template {:?} already exists (PUT replaces it with a new version)",
                    spec.id
                )));
            }
            (false, true) => {
                return Err(Error::NotFound(format!("template {} not found", spec.id)));
            }
            _ => {}
        }
        let (last,): (i64,) = sqlx::query_as(LAST_VERSION_SQL)
            .bind(spec.id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let version = last.saturating_add(1);
        let inserted = sqlx::query(INSERT_SQL)
            .bind(spec.id.as_str())
            .bind(version)
            .bind(body.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                return Err(Error::Conflict(format!(
                    "template {:?} was changed meanwhile; try again",
                    spec.id
                )));
            }
            other => other?,
        };
        tx.commit().await?;
        u32::try_from(version).map_err(|_| Error::Corrupt(format!("template version {version}")))
    }

    async fn remove_template(&self, id: &str, now: f64) -> Result<bool> {
        let removed = sqlx::query(REMOVE_SQL)
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(removed.affected() > 0)
    }
}

const EXPORT_SQL: &str =
    "SELECT id, version, spec, created_at, removed_at FROM templates ORDER BY id, version";
const IMPORT_SQL: &str = "INSERT INTO templates (id, version, spec, created_at, removed_at) \
     VALUES ($1, $2, $3, $4, $5)";
const COUNT_SQL: &str = "SELECT COUNT(*) FROM templates";

/// An exported `templates` row.
type ExportRow = (String, i64, String, f64, Option<f64>);

impl<DB> SqlTables<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    ExportRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    /// Every version of every template (for `miaas db copy`).
    pub(crate) async fn export_templates(&self) -> Result<Vec<TemplateExport>> {
        let rows: Vec<ExportRow> = sqlx::query_as(EXPORT_SQL).fetch_all(&self.reader).await?;
        rows.into_iter()
            .map(|(id, version, spec, created_at, removed_at)| {
                let version = u32::try_from(version)
                    .map_err(|_| Error::Corrupt(format!("template {id}: version {version}")))?;
                Ok(TemplateExport {
                    id,
                    version,
                    spec,
                    created_at,
                    removed_at,
                })
            })
            .collect()
    }

    /// Writes the templates of an import inside `tx`; refused (`Conflict`) when
    /// the target holds templates already.
    pub(crate) async fn import_templates(
        tx: &mut sqlx::Transaction<'_, DB>,
        templates: &[TemplateExport],
    ) -> Result<()> {
        let (count,): (i64,) = sqlx::query_as(COUNT_SQL).fetch_one(&mut **tx).await?;
        if count > 0 {
            return Err(Error::Conflict(
                "the target database already holds templates; copy into an empty one".into(),
            ));
        }
        for t in templates {
            sqlx::query(IMPORT_SQL)
                .bind(t.id.as_str())
                .bind(i64::from(t.version))
                .bind(t.spec.as_str())
                .bind(t.created_at)
                .bind(t.removed_at)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
