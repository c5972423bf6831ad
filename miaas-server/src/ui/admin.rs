//! The dashboard's admin page (admins only): users, API tokens and the join
//! token, and the forms that change them.

use axum::extract::{Path, State};
use axum::response::Response;
use miaas_core::model::{NewUser, Role, TokenRequest};
use minijinja::{Value, context};

use super::guard::{Checked, Fields, Permitted, field};
use super::page::{error_page, page};
use super::session::Viewer;
use crate::auth::ManageAccess;
use crate::state::AppState;

/// `GET /ui/admin`: users, API tokens, the join token.
pub async fn show(
    State(state): State<AppState>,
    Permitted { viewer, .. }: Permitted<ManageAccess>,
) -> Response {
    admin_page(&state, &viewer, context! {}).await
}

/// `POST /ui/admin/{action}`: users, API tokens, the join token; the page again
/// with a notice (a secret shown only now) or the error.
pub async fn act(
    State(state): State<AppState>,
    Path(action): Path<String>,
    Checked { viewer, form, .. }: Checked<ManageAccess>,
) -> Response {
    match notice_of(&state, &viewer, &action, &form).await {
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

/// Does `action` with `form`'s fields; what to tell the admin.
async fn notice_of(
    state: &AppState,
    viewer: &Viewer,
    action: &str,
    form: &Fields,
) -> miaas_core::Result<Value> {
    let service = &state.service;
    let role = || -> miaas_core::Result<Role> {
        let text = field(form, "role").unwrap_or("viewer");
        serde_json::from_value(serde_json::Value::String(text.into()))
            .map_err(|_| miaas_core::Error::Invalid(format!("role: {text:?} is not a role")))
    };
    match action {
        "create-user" => {
            let new = NewUser {
                username: field(form, "username").unwrap_or_default().trim().to_string(),
                role: role()?,
                password: None,
            };
            service.create_user(&viewer.principal, &new).await.map(|created| {
                context! { title => format!("User {} created; their password, shown only now:", created.user.username),
                           secret => created.password }
            })
        }
        "delete-user" => {
            let username = field(form, "username").unwrap_or_default();
            service
                .delete_user(&viewer.principal, username)
                .await
                .map(|()| context! { title => format!("User {username} removed") })
        }
        "create-token" => {
            let request = TokenRequest {
                name: field(form, "name").unwrap_or_default().trim().to_string(),
                role: role()?,
            };
            service
                .create_api_token(&viewer.principal, &request)
                .await
                .map(|created| {
                    context! { title => format!("API token {} created; shown only now:", created.info.name),
                               secret => created.token }
                })
        }
        "revoke-token" => {
            let id = field(form, "id").unwrap_or_default();
            service
                .revoke_api_token(&viewer.principal, id)
                .await
                .map(|()| context! { title => "API token revoked" })
        }
        "join-token" => service.join_token().await.map(|t| {
            context! { title => "The join token:", secret => t.join_token }
        }),
        "rotate-join-token" => service.rotate_join_token(&viewer.principal).await.map(|t| {
            context! { title => "The join token was replaced; the new one:", secret => t.join_token }
        }),
        _ => Err(miaas_core::Error::NotFound(format!("no action {action:?}"))),
    }
}

/// The admin page, with `extra` (a notice or an error). Its callers hold a
/// [`Permitted`] or [`Checked`] of [`ManageAccess`].
async fn admin_page(state: &AppState, viewer: &Viewer, extra: Value) -> Response {
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
