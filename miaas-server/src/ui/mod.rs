//! The web dashboard at `/ui`: server-rendered HTML with htmx (vendored, embedded)
//! for live parts. Signed in with the existing users (a session cookie); every
//! form carries a CSRF token; the roles decide which buttons show, and every
//! action checks the role again.
//!
//! One module per resource (`overview`, `nodes`, `deployments`, `deploy`,
//! `admin`), each built on the shared ones (`page`, `guard`, `session`, `view`,
//! `events`, `gpus`) and none on another; this file only routes.

mod add_node;
mod admin;
mod assets;
mod deploy;
mod deployments;
mod events;
mod gpus;
mod guard;
mod live;
mod login;
mod nodes;
mod overview;
mod page;
mod session;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(overview::overview))
        .route("/ui/", get(overview::overview))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/nodes", get(nodes::list))
        .route("/ui/nodes/{node_id}", get(nodes::show))
        .route("/ui/nodes/{node_id}/remove", post(nodes::remove))
        .route("/ui/nodes/{node_id}/{action}", post(nodes::operate))
        .route("/ui/deployments", get(deployments::list))
        .route("/ui/deployments/{deployment_id}", get(deployments::show))
        .route(
            "/ui/deployments/{deployment_id}/delete",
            post(deployments::delete),
        )
        .route("/ui/deploy", get(deploy::form).post(deploy::submit))
        .route("/ui/deploy/preview", post(deploy::preview))
        .route("/ui/admin", get(admin::show))
        .route("/ui/admin/add-node", get(add_node::show))
        .route("/ui/admin/{action}", post(admin::act))
        .route("/ui/stream", get(live::changes))
        .route("/ui/assets/{name}", get(assets::asset))
}
