//! The dashboard's "Add a node" page (admins only): the one-liner that installs
//! and joins the agent, the `miaas agent` and `docker run` equivalents, all with
//! the current join token (pinned to this server's CA when it has its own), and
//! the nodes that joined since the page was opened, live.

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;

use super::guard::Permitted;
use super::page::{error_page, page};
use crate::auth::ManageAccess;
use crate::routes::install::{install_command, install_warnings, shell_quoted};
use crate::state::AppState;

/// The nodes shown are those registered after `since` (epoch seconds).
#[derive(Debug, Default, serde::Deserialize)]
pub struct AddNodeQuery {
    since: Option<f64>,
}

/// The image the `docker run` command starts (`packaging/Dockerfile`'s `agent`
/// target).
const AGENT_IMAGE: &str = "miaas-agent";

/// `GET /ui/admin/add-node`.
pub async fn show(
    State(state): State<AppState>,
    Query(query): Query<AddNodeQuery>,
    Permitted { viewer, .. }: Permitted<ManageAccess>,
) -> Response {
    let ca_hash = state.tls.as_ref().map(crate::tls::ServerTls::ca_hash);
    let token = match state.service.join_token().await {
        Ok(token) => token.with_ca(ca_hash.as_deref()),
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let since = query.since.unwrap_or_else(|| state.service.now());
    let nodes = match state.service.list_nodes().await {
        Ok(nodes) => nodes,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let mut joined: Vec<_> = (nodes.into_iter())
        .filter(|n| n.registered_at >= since)
        .collect();
    joined.sort_by(|a, b| b.registered_at.total_cmp(&a.registered_at));
    let joining = token.for_joining();
    let server = shell_quoted(&state.public_url);
    let agent = format!(
        "MIAAS_JOIN_TOKEN={} miaas agent --server {server}",
        shell_quoted(joining)
    );
    let docker = format!(
        "docker run -d --name miaas-agent --restart unless-stopped --network host \\\n  \
         -v /var/run/docker.sock:/var/run/docker.sock \\\n  \
         -v /var/lib/miaas-agent:/var/lib/miaas-agent \\\n  \
         -e MIAAS_SERVER={server} \\\n  \
         -e MIAAS_JOIN_TOKEN={} \\\n  \
         {AGENT_IMAGE} agent",
        shell_quoted(joining)
    );
    page(
        &viewer,
        state.auth,
        "admin",
        "add_node.html",
        context! {
            install => install_command(&state, joining),
            warnings => install_warnings(&state),
            agent => agent,
            docker => docker,
            since => since,
            joined => joined,
        },
    )
}
