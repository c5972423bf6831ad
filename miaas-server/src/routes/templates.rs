//! `/api/v1/templates`: the catalog, rendering, and the templates operators add.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use miaas_core::model::{RenderRequest, RenderedTemplate, Template, TemplateSpec, TemplateSummary};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, ManageTemplates, Read};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// The template routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(
            get_template,
            create_template,
            replace_template,
            remove_template
        ))
        .routes(routes!(render_template))
}

/// Query of `GET /api/v1/templates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct TemplateQuery {
    /// Only templates of this category (`database`, `web`, `ai`, ...; any case).
    pub category: Option<String>,
}

/// List the templates: built in, then from the templates folder, then added
/// through the API.
#[utoipa::path(
    get, path = "/api/v1/templates", tag = "templates",
    params(TemplateQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The templates", body = Vec<TemplateSummary>),
        AuthErrors,
        (status = 422, description = "Invalid query", body = ErrorBody),
    )
)]
async fn list_templates(
    State(state): State<AppState>,
    _: Allowed<Read>,
    ApiQuery(query): ApiQuery<TemplateQuery>,
) -> Result<Json<Vec<TemplateSummary>>, ApiError> {
    let list = (state.service)
        .list_templates(query.category.as_deref())
        .await?;
    Ok(Json(list))
}

/// One template: its definition, its compose document in Jinja syntax, and its
/// parameters as a JSON Schema (`schema`).
#[utoipa::path(
    get, path = "/api/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, description = "The template's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The template", body = Template),
        AuthErrors,
        (status = 404, description = "Unknown template", body = ErrorBody),
    )
)]
async fn get_template(
    State(state): State<AppState>,
    _: Allowed<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(state.service.get_template(&id).await?))
}

/// Add a template (operator). It is checked first: Jinja syntax (errors give the
/// line), every variable it uses declared as a parameter, and its defaults must
/// render into a compose document with `services`. Stored as version 1.
#[utoipa::path(
    post, path = "/api/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, description = "The new template's id")),
    request_body = TemplateSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Added", body = Template),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "The id is taken (built in, a file, or stored)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a valid template", body = ErrorBody),
    )
)]
async fn create_template(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageTemplates>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    let template = state.service.create_template(&caller, &id, spec).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// Replace a template added through the API with a new version (operator),
/// checked as when added. Deployments keep the version they were rendered from
/// until they are applied again.
#[utoipa::path(
    put, path = "/api/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, description = "The template's id")),
    request_body = TemplateSpec,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new version", body = Template),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 409, description = "A built-in or folder template", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a valid template", body = ErrorBody),
    )
)]
async fn replace_template(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageTemplates>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(
        state.service.replace_template(&caller, &id, spec).await?,
    ))
}

/// Remove a template added through the API (operator); deployments rendered
/// from it keep running.
#[utoipa::path(
    delete, path = "/api/v1/templates/{template_id}", tag = "templates",
    params(("template_id" = String, Path, description = "The template's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        AuthErrors,
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 409, description = "A built-in or folder template", body = ErrorBody),
    )
)]
async fn remove_template(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageTemplates>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.remove_template(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Render a template without deploying it: the compose document (secret
/// parameters appear as `${MIAAS_SECRET_…}` references, never their values), the
/// parameters with defaults applied (secrets `***`), and the requirements
/// placement would use.
#[utoipa::path(
    post, path = "/api/v1/templates/{template_id}/render", tag = "templates",
    params(("template_id" = String, Path, description = "The template's id")),
    request_body = RenderRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rendering", body = RenderedTemplate),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A parameter is unknown, missing or invalid", body = ErrorBody),
    )
)]
async fn render_template(
    State(state): State<AppState>,
    _: Allowed<Read>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<RenderRequest>,
) -> Result<Json<RenderedTemplate>, ApiError> {
    let rendered = state.service.render_template(&id, &request.params).await?;
    Ok(Json(rendered))
}
