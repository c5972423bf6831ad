//! `/api/v1/placement/plan`: the placement dry run.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use miaas_core::model::Requirements;
use miaas_core::placement::PlacementPlan;
use miaas_core::service::PlanInput;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, Plan};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The placement routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(plan))
}

/// What to plan for: `requirements`, a `rendered_compose` to derive them from, or
/// a `template_id` with its `params` to render and derive them from.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"requirements": {"cpus": 2, "mem_mb": 4096, "gpus": 1}}))]
pub struct PlanRequest {
    /// Requirements as given.
    #[serde(default)]
    pub requirements: Option<Requirements>,
    /// A compose document whose reservations and constraints are the requirements.
    #[serde(default)]
    pub rendered_compose: Option<String>,
    /// The environment `rendered_compose` is interpolated with, as a deployment's
    /// would be (what it names is judged resolved).
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// A template to render with `params`.
    #[serde(default)]
    pub template_id: Option<String>,
    /// The template's parameters (the defaults fill the rest).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<BTreeMap<String, serde_json::Value>>,
}

/// Dry run: the ranked candidates with their scores and the rejected nodes with
/// their reasons. Changes nothing (operator).
#[utoipa::path(
    post, path = "/api/v1/placement/plan", tag = "placement",
    request_body = PlanRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Candidates and rejections", body = PlacementPlan),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 422, description = "None or several inputs, or an invalid one", body = ErrorBody),
    )
)]
async fn plan(
    State(state): State<AppState>,
    _: Allowed<Plan>,
    ApiJson(request): ApiJson<PlanRequest>,
) -> Result<Json<PlacementPlan>, ApiError> {
    let input = PlanInput::from_parts(
        request.requirements,
        request.rendered_compose,
        request.env,
        request.template_id,
        request.params,
    )?;
    Ok(Json(state.service.plan(&input).await?))
}
