//! The dashboard's actions (`POST`): node operations, deploy and delete, users,
//! API tokens and the join token. Each checks the CSRF token and the role.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use miaas_core::access::Permission;
use miaas_core::model::{
    DeploymentAction, DeploymentRequest, NewUser, NodeUpdate, Role, TokenRequest,
};
use miaas_core::service::PlanInput;
use minijinja::{Value, context};

use super::pages::{refusal, viewer_or_login};
use super::session::{Viewer, csrf_ok};
use super::view::render;
use super::{error_page, page, page_with_status};
use crate::state::AppState;

/// A form's fields, in order (a name may come twice: the last counts).
type Fields = Vec<(String, String)>;

fn field<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn see_other(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The `403` of a request without the CSRF token of its cookie.
fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token: reload the page and try again",
    )
        .into_response()
}

macro_rules! checked {
    ($state:expr, $headers:expr, $form:expr, $permission:expr) => {{
        let viewer = viewer_or_login!($state, $headers);
        if !csrf_ok(&$headers, field(&$form, "csrf")) {
            return csrf_refused();
        }
        if let Some(refused) = refusal(&viewer, $state.auth, $permission) {
            return refused;
        }
        viewer
    }};
}

/// `POST /ui/nodes/{id}/{cordon|uncordon|drain|remove}`.
pub async fn node_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((node_id, action)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Response {
    let permission = if action == "remove" {
        Permission::DeregisterNodes
    } else {
        Permission::ManageNodes
    };
    let viewer = checked!(state, headers, form, permission);
    let service = &state.service;
    let done = match action.as_str() {
        "cordon" | "uncordon" => {
            let update = NodeUpdate {
                schedulable: Some(action == "uncordon"),
                tags: None,
            };
            service.update_node(&node_id, &update).await.map(|_| ())
        }
        "drain" => service.drain_node(&node_id).await.map(|_| ()),
        "remove" => service.deregister_node(&node_id).await.map(|_| ()),
        _ => Err(miaas_core::Error::NotFound(format!("no action {action:?}"))),
    };
    match done {
        Ok(()) if action == "remove" => see_other("/ui/nodes"),
        Ok(()) => see_other(&format!("/ui/nodes/{node_id}")),
        Err(err) => error_page(&viewer, state.auth, &err),
    }
}

/// `POST /ui/deployments/{id}/delete`.
pub async fn delete_deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(deployment_id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let viewer = checked!(state, headers, form, Permission::Deploy);
    match state.service.delete_deployment(&deployment_id).await {
        Ok(_) => see_other(&format!("/ui/deployments/{deployment_id}")),
        Err(err) => error_page(&viewer, state.auth, &err),
    }
}

/// What the deploy form asks for: a template's parameters, or a compose document.
fn request_of(form: &Fields) -> DeploymentRequest {
    let template = field(form, "template").unwrap_or_default().to_string();
    let deployment_id = field(form, "deployment_id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .unwrap_or(&template)
        .to_string();
    let env: BTreeMap<String, String> = field(form, "env")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    let (rendered_compose, params) = if field(form, "mode") == Some("compose") {
        (field(form, "compose").map(str::to_string), None)
    } else {
        (None, Some(params_of(form)))
    };
    DeploymentRequest {
        template_id: if template.is_empty() {
            deployment_id.clone()
        } else {
            template
        },
        deployment_id,
        rendered_compose,
        params,
        env,
        action: DeploymentAction::Apply,
        requirements: None,
    }
}

/// The `param.NAME` fields given (empty ones left to their defaults).
fn params_of(form: &Fields) -> BTreeMap<String, serde_json::Value> {
    let mut params = BTreeMap::new();
    for (key, value) in form {
        if let Some(name) = key.strip_prefix("param.") {
            if value.is_empty() {
                params.remove(name);
            } else {
                params.insert(name.to_string(), serde_json::Value::String(value.clone()));
            }
        }
    }
    params
}

/// `POST /ui/deploy`: deploys, then shows the deployment; the form again with
/// the server's message when refused.
pub async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Fields>,
) -> Response {
    let viewer = checked!(state, headers, form, Permission::Deploy);
    let request = request_of(&form);
    match state
        .service
        .submit_deployment_as(&viewer.principal, &request)
        .await
    {
        Ok(ack) => see_other(&format!("/ui/deployments/{}", ack.deployment_id)),
        Err(err) => {
            let template = field(&form, "template").unwrap_or_default().to_string();
            let status = crate::error::status_of(&err);
            let values: BTreeMap<String, String> = form.into_iter().collect();
            deploy_page(
                &state,
                &viewer,
                &template,
                &values,
                Some(err.to_string()),
                status,
            )
            .await
        }
    }
}

/// `POST /ui/deploy/preview`: where the form's deployment would be placed (a
/// fragment for htmx).
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Fields>,
) -> Response {
    let _viewer = checked!(state, headers, form, Permission::Plan);
    let request = request_of(&form);
    let input = match (request.rendered_compose, request.params) {
        (Some(compose), _) => PlanInput::Compose {
            compose,
            env: request.env,
        },
        (None, params) => PlanInput::Template {
            template_id: request.template_id,
            params: params.unwrap_or_default(),
        },
    };
    let (plan, error) = match state.service.plan(&input).await {
        Ok(plan) => (Some(plan), None),
        Err(err) => (None, Some(err.to_string())),
    };
    render(
        StatusCode::OK,
        "plan.html",
        context! { plan => plan, error => error },
    )
}

/// The deploy page: the catalog, the form of `template` with `values`, and an
/// error to show.
pub(super) async fn deploy_page(
    state: &AppState,
    viewer: &Viewer,
    template: &str,
    values: &BTreeMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    if let Some(refused) = refusal(viewer, state.auth, Permission::Deploy) {
        return refused;
    }
    let templates = match state.service.list_templates(None).await {
        Ok(list) => list,
        Err(err) => return error_page(viewer, state.auth, &err),
    };
    let chosen = if template.is_empty() {
        None
    } else {
        match state.service.get_template(template).await {
            Ok(t) => Some(t),
            Err(err) => return error_page(viewer, state.auth, &err),
        }
    };
    page_with_status(
        viewer,
        state.auth,
        "deploy",
        "deploy.html",
        context! { templates => templates, template => chosen, values => values, error => error },
        status,
    )
}

/// `POST /ui/admin/{action}`: users, API tokens, the join token.
pub async fn admin_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let viewer = checked!(state, headers, form, Permission::ManageAccess);
    let service = &state.service;
    let role = || -> miaas_core::Result<Role> {
        let text = field(&form, "role").unwrap_or("viewer");
        serde_json::from_value(serde_json::Value::String(text.into()))
            .map_err(|_| miaas_core::Error::Invalid(format!("role: {text:?} is not a role")))
    };
    let notice: miaas_core::Result<Value> = match action.as_str() {
        "create-user" => match role() {
            Ok(role) => {
                let new = NewUser {
                    username: field(&form, "username").unwrap_or_default().trim().to_string(),
                    role,
                    password: None,
                };
                service.create_user(&new).await.map(|created| {
                    context! { title => format!("User {} created; their password, shown only now:", created.user.username),
                               secret => created.password }
                })
            }
            Err(err) => Err(err),
        },
        "delete-user" => {
            let username = field(&form, "username").unwrap_or_default();
            service
                .delete_user(username)
                .await
                .map(|()| context! { title => format!("User {username} removed") })
        }
        "create-token" => match role() {
            Ok(role) => {
                let request = TokenRequest {
                    name: field(&form, "name").unwrap_or_default().trim().to_string(),
                    role,
                };
                service
                    .create_api_token_as(&viewer.principal, &request)
                    .await
                    .map(|created| {
                        context! { title => format!("API token {} created; shown only now:", created.info.name),
                                   secret => created.token }
                    })
            }
            Err(err) => Err(err),
        },
        "revoke-token" => {
            let id = field(&form, "id").unwrap_or_default();
            service
                .revoke_api_token(id)
                .await
                .map(|()| context! { title => "API token revoked" })
        }
        "join-token" => service.join_token().await.map(|t| {
            context! { title => "The join token:", secret => t.join_token }
        }),
        "rotate-join-token" => service.rotate_join_token().await.map(|t| {
            context! { title => "The join token was replaced; the new one:", secret => t.join_token }
        }),
        _ => Err(miaas_core::Error::NotFound(format!("no action {action:?}"))),
    };
    match notice {
        Ok(notice) => admin_page(&state, &viewer, context! { notice => notice }).await,
        Err(err) => {
            let status = crate::error::status_of(&err);
            let mut response =
                admin_page(&state, &viewer, context! { error => err.to_string() }).await;
            if response.status().is_success() {
                *response.status_mut() = status;
            }
            response
        }
    }
}

/// The admin page, with `extra` (a notice or an error).
pub(super) async fn admin_page(state: &AppState, viewer: &Viewer, extra: Value) -> Response {
    if let Some(refused) = refusal(viewer, state.auth, Permission::ManageAccess) {
        return refused;
    }
    let users = state.service.list_users().await;
    let tokens = state.service.list_api_tokens().await;
    match (users, tokens) {
        (Ok(users), Ok(tokens)) => page(
            viewer,
            state.auth,
            "admin",
            "admin.html",
            context! { users => users, tokens => tokens, ..extra },
        ),
        (Err(err), _) | (_, Err(err)) => error_page(viewer, state.auth, &err),
    }
}
