//! Who may call what: every route of the OpenAPI document × every kind of caller,
//! with the exact status. A route without a row here fails the test.

use std::collections::BTreeSet;

use miaas_core::access::jwt::SigningKey;
use miaas_core::model::Role;
use miaas_tests::{TestServer, deployment, heartbeat, registration, send};
use serde_json::{Value, json};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Viewer,
    Operator,
    Admin,
    OwnNode,
    OtherNode,
    JoinToken,
    WrongToken,
    ExpiredJwt,
    RevokedToken,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::Viewer,
    Caller::Operator,
    Caller::Admin,
    Caller::OwnNode,
    Caller::OtherNode,
    Caller::JoinToken,
    Caller::WrongToken,
    Caller::ExpiredJwt,
    Caller::RevokedToken,
];

/// What a route needs.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone, credentials ignored.
    Public,
    /// A user (access token or API token) with at least this role.
    User(Role),
    /// The node itself (own node token).
    Node,
    /// The join token.
    Join,
}

/// One route: method, OpenAPI path, rule, and the status of an allowed call.
struct Route {
    method: &'static str,
    path: &'static str,
    rule: Rule,
    ok: u16,
}

const fn route(method: &'static str, path: &'static str, rule: Rule, ok: u16) -> Route {
    Route {
        method,
        path,
        rule,
        ok,
    }
}

const VIEWER: Rule = Rule::User(Role::Viewer);
const OPERATOR: Rule = Rule::User(Role::Operator);
const ADMIN: Rule = Rule::User(Role::Admin);

const ROUTES: &[Route] = &[
    route("get", "/health", Rule::Public, 200),
    // this server serves plain HTTP: no CA to give (tls.rs covers HTTPS)
    route("get", "/cacerts", Rule::Public, 404),
    route("get", "/", Rule::Public, 200),
    route("get", "/openapi.json", Rule::Public, 200),
    route("get", "/docs", Rule::Public, 200),
    route("get", "/redoc", Rule::Public, 200),
    route("post", "/api/v1/auth/token", Rule::Public, 200),
    route("post", "/api/v1/nodes/register", Rule::Join, 201),
    route("get", "/api/v1/nodes", VIEWER, 200),
    route("get", "/api/v1/nodes/{node_id}", VIEWER, 200),
    route("patch", "/api/v1/nodes/{node_id}", OPERATOR, 200),
    route("delete", "/api/v1/nodes/{node_id}", ADMIN, 200),
    route("post", "/api/v1/nodes/{node_id}/drain", OPERATOR, 200),
    route("post", "/api/v1/nodes/{node_id}/heartbeat", Rule::Node, 200),
    route(
        "get",
        "/api/v1/nodes/{node_id}/deployments",
        Rule::Node,
        200,
    ),
    route("post", "/api/v1/deployments", OPERATOR, 202),
    route("get", "/api/v1/deployments", VIEWER, 200),
    route("get", "/api/v1/deployments/{deployment_id}", VIEWER, 200),
    route(
        "delete",
        "/api/v1/deployments/{deployment_id}",
        OPERATOR,
        200,
    ),
    route(
        "post",
        "/api/v1/deployments/{deployment_id}/status",
        Rule::Node,
        200,
    ),
    route("post", "/api/v1/placement/plan", OPERATOR, 200),
    route("get", "/api/v1/templates", VIEWER, 200),
    route("get", "/api/v1/templates/{template_id}", VIEWER, 200),
    route("post", "/api/v1/templates/{template_id}", OPERATOR, 201),
    route("put", "/api/v1/templates/{template_id}", OPERATOR, 200),
    route("delete", "/api/v1/templates/{template_id}", OPERATOR, 204),
    route(
        "post",
        "/api/v1/templates/{template_id}/render",
        VIEWER,
        200,
    ),
    route("get", "/api/v1/users", ADMIN, 200),
    route("post", "/api/v1/users", ADMIN, 201),
    route("delete", "/api/v1/users/{username}", ADMIN, 204),
    // another user's password (one's own is the user's too: see user_tokens.rs)
    route("put", "/api/v1/users/{username}/password", ADMIN, 204),
    route("get", "/api/v1/tokens", ADMIN, 200),
    route("post", "/api/v1/tokens", ADMIN, 201),
    route("delete", "/api/v1/tokens/{id}", ADMIN, 204),
    route("get", "/api/v1/cluster/join-token", ADMIN, 200),
    route("post", "/api/v1/cluster/join-token/rotate", ADMIN, 200),
    route("get", "/metrics", VIEWER, 200),
    route("get", "/api/v1/events", VIEWER, 200),
    route(
        "get",
        "/api/v1/deployments/{deployment_id}/logs",
        VIEWER,
        200,
    ),
    route(
        "post",
        "/api/v1/nodes/{node_id}/logs/{session_id}",
        Rule::Node,
        204,
    ),
];

/// The status `caller` must get on a route with `rule`.
fn expected(rule: Rule, ok: u16, caller: Caller) -> u16 {
    use Caller::*;
    if let Rule::Public = rule {
        return ok;
    }
    match caller {
        Anonymous | WrongToken | ExpiredJwt | RevokedToken => 401,
        Viewer | Operator | Admin => match rule {
            Rule::User(least) => {
                let role = match caller {
                    Viewer => Role::Viewer,
                    Operator => Role::Operator,
                    _ => Role::Admin,
                };
                if role >= least { ok } else { 403 }
            }
            _ => 403,
        },
        OwnNode => match rule {
            Rule::Node => ok,
            _ => 403,
        },
        OtherNode => 403,
        JoinToken => match rule {
            Rule::Join => ok,
            _ => 403,
        },
    }
}

/// The cluster the table runs against.
struct Fixture {
    server: TestServer,
    admin: String,
    viewer: String,
    operator: String,
    own_node: (String, String),
    other_node: (String, String),
    expired: String,
    revoked: String,
    /// The join token in force (the table rotates it).
    join_token: std::sync::Mutex<String>,
    /// A log session of the own node, and the stream that keeps it open.
    session: tokio::sync::Mutex<Option<(String, reqwest::Response)>>,
}

impl Fixture {
    async fn new() -> Self {
        // every route is tried with failing credentials: more than the default
        // limit of failures a minute from one address (auth_limits.rs tests it)
        let server = TestServer::spawn_with(|c| {
            c.auth = miaas_server::AuthMode::On;
            c.auth_failure_limit = 10_000;
        })
        .await;
        let admin = server.admin_token().await;
        for (name, role) in [("vera", "viewer"), ("otto", "operator")] {
            let (status, body) = server
                .post_as(
                    &admin,
                    "/api/v1/users",
                    &json!({"username": name, "password": "long-enough-pw", "role": role}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        let viewer = server.login("vera", "long-enough-pw").await;
        let operator = server.login("otto", "long-enough-pw").await;
        let own_node = server.register("own-node").await;
        let other_node = server.register("other-node").await;
        let (status, body) = server
            .post_as(&admin, "/api/v1/deployments", &deployment("placed"))
            .await;
        assert_eq!(status, 202, "{body}");
        // the own node is the one the deployment went to; the other one has none
        let placed = wait_placed(&server, &admin, "placed").await;
        let own_node = if placed == own_node.0 {
            own_node
        } else {
            other_node.clone()
        };
        // running there, so that it has logs to ask for
        let path = "/api/v1/deployments/placed/status";
        let running = json!({"status": "running"});
        let (status, body) = server.post_as(&own_node.1, path, &running).await;
        assert_eq!(status, 200, "{body}");
        let other_node = server.register("third-node").await;
        let key = server
            .store
            .access()
            .cluster_secret("access_token_signing_key")
            .await
            .expect("read the signing key")
            .expect("a signing key");
        let expired = SigningKey::from_hex(&key)
            .expect("key")
            .issue("admin", Role::Admin, "", 1_000_000, 60)
            .expect("sign");
        let revoked = server.api_token("admin").await;
        let (status, tokens) = server.get_as(&admin, "/api/v1/tokens").await;
        assert_eq!(status, 200);
        let id = tokens[0]["id"].as_str().expect("token id").to_string();
        let (status, _) = send(
            server
                .client
                .delete(server.url(&format!("/api/v1/tokens/{id}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(status, 204);
        Self {
            admin,
            viewer,
            operator,
            own_node,
            other_node,
            expired,
            revoked,
            join_token: std::sync::Mutex::new(server.join_token.clone()),
            session: tokio::sync::Mutex::default(),
            server,
        }
    }

    fn join_token(&self) -> String {
        self.join_token.lock().expect("join token").clone()
    }

    fn credential(&self, caller: Caller) -> Option<String> {
        match caller {
            Caller::Anonymous => None,
            Caller::Viewer => Some(self.viewer.clone()),
            Caller::Operator => Some(self.operator.clone()),
            Caller::Admin => Some(self.admin.clone()),
            Caller::OwnNode => Some(self.own_node.1.clone()),
            Caller::OtherNode => Some(self.other_node.1.clone()),
            Caller::JoinToken => Some(self.join_token()),
            Caller::WrongToken => Some("miaas_api_0123456789abcdef".into()),
            Caller::ExpiredJwt => Some(self.expired.clone()),
            Caller::RevokedToken => Some(self.revoked.clone()),
        }
    }

    /// The concrete request for `route`: targets that an allowed call destroys are
    /// made fresh for each call.
    async fn request(&self, route: &Route, n: usize) -> (String, Option<Value>) {
        let node = &self.own_node.0;
        let path = match route.path {
            "/api/v1/nodes/{node_id}" if route.method == "delete" => {
                format!("/api/v1/nodes/{}", self.fresh_node(n).await)
            }
            "/api/v1/nodes/{node_id}/drain" => {
                format!("/api/v1/nodes/{}/drain", self.fresh_node(n).await)
            }
            "/api/v1/deployments/{deployment_id}" if route.method == "delete" => {
                let id = format!("doomed-{n}");
                let (status, _) = self
                    .server
                    .post_as(&self.admin, "/api/v1/deployments", &deployment(&id))
                    .await;
                assert_eq!(status, 202);
                format!("/api/v1/deployments/{id}")
            }
            "/api/v1/users/{username}" => {
                let name = format!("doomed-{n}");
                let (status, _) = self
                    .server
                    .post_as(&self.admin, "/api/v1/users", &json!({"username": name}))
                    .await;
                assert_eq!(status, 201);
                format!("/api/v1/users/{name}")
            }
            "/api/v1/users/{username}/password" => {
                let name = format!("reset-{n}");
                let (status, _) = self
                    .server
                    .post_as(&self.admin, "/api/v1/users", &json!({"username": name}))
                    .await;
                assert_eq!(status, 201);
                format!("/api/v1/users/{name}/password")
            }
            "/api/v1/tokens/{id}" => {
                let (status, body) = self
                    .server
                    .post_as(&self.admin, "/api/v1/tokens", &json!({"name": "doomed"}))
                    .await;
                assert_eq!(status, 201);
                format!("/api/v1/tokens/{}", body["id"].as_str().expect("id"))
            }
            "/api/v1/templates/{template_id}" if route.method == "post" => {
                format!("/api/v1/templates/new-{n}")
            }
            "/api/v1/templates/{template_id}" if route.method != "get" => {
                let id = format!("stored-{n}");
                let (status, body) = self
                    .server
                    .post_as(&self.admin, &format!("/api/v1/templates/{id}"), &template())
                    .await;
                assert_eq!(status, 201, "{body}");
                format!("/api/v1/templates/{id}")
            }
            "/api/v1/templates/{template_id}/render" => "/api/v1/templates/redis/render".into(),
            "/api/v1/templates/{template_id}" => "/api/v1/templates/redis".into(),
            "/api/v1/events" => "/api/v1/events?follow=false".into(),
            "/api/v1/nodes/{node_id}/logs/{session_id}" => {
                format!("/api/v1/nodes/{node}/logs/{}", self.open_session().await)
            }
            other => other
                .replace("{node_id}", node)
                .replace("{deployment_id}", "placed"),
        };
        let body = match (route.method, route.path) {
            ("post", "/api/v1/auth/token") => {
                Some(json!({"username": "vera", "password": "long-enough-pw"}))
            }
            ("post", "/api/v1/nodes/register") => Some(registration(&format!("joiner-{n}"))),
            ("patch", _) => Some(json!({"schedulable": true})),
            ("post", "/api/v1/nodes/{node_id}/heartbeat") => Some(heartbeat()),
            ("post", "/api/v1/deployments") => Some(deployment("placed")),
            ("post", "/api/v1/deployments/{deployment_id}/status") => {
                Some(json!({"status": "running"}))
            }
            ("post", "/api/v1/nodes/{node_id}/logs/{session_id}") => {
                Some(json!({"ts": null, "service": "web", "stream": "stdout", "line": "hello"}))
            }
            ("post", "/api/v1/placement/plan") => Some(json!({"requirements": {"cpus": 1}})),
            ("post" | "put", "/api/v1/templates/{template_id}") => Some(template()),
            ("post", "/api/v1/users") => Some(json!({"username": format!("new-{n}")})),
            ("post", "/api/v1/tokens") => Some(json!({"name": format!("t-{n}"), "role": "viewer"})),
            ("put", "/api/v1/users/{username}/password") => {
                Some(json!({"password": "a-new-password"}))
            }
            ("post", _) => Some(json!({})),
            _ => None,
        };
        (path, body)
    }

    /// A log session of the own node kept open by a viewer (one for the table).
    async fn open_session(&self) -> String {
        let mut session = self.session.lock().await;
        if let Some((id, _)) = &*session {
            return id.clone();
        }
        let server = &self.server;
        let viewer = (server.client)
            .get(server.url("/api/v1/deployments/placed/logs?follow=true"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("logs answer");
        assert_eq!(viewer.status(), 200);
        let path = format!("/api/v1/nodes/{}/deployments", self.own_node.0);
        let (status, desired) = server.get_as(&self.own_node.1, &path).await;
        assert_eq!(status, 200, "{desired}");
        let sessions = desired["logs"].as_array().expect("log sessions");
        let newest = sessions.last().expect("a log session");
        let id = newest["session_id"]
            .as_str()
            .expect("session id")
            .to_string();
        *session = Some((id.clone(), viewer));
        id
    }

    async fn fresh_node(&self, n: usize) -> String {
        let (status, body) = self
            .server
            .post_as(
                &self.join_token(),
                "/api/v1/nodes/register",
                &registration(&format!("spare-{n}")),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["node_id"].as_str().expect("node_id").to_string()
    }
}

/// A template body (`POST`/`PUT /api/v1/templates/{id}`).
fn template() -> Value {
    json!({"compose": "services:\n  web:\n    image: traefik/whoami\n"})
}

async fn wait_placed(server: &TestServer, token: &str, id: &str) -> String {
    let (status, body) = server
        .get_as(token, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["node_id"]
        .as_str()
        .unwrap_or_else(|| panic!("placed at once: {body}"))
        .to_string()
}

/// Every (method, path) the OpenAPI document lists, plus the documentation pages.
async fn documented_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    for page in ["/openapi.json", "/docs", "/redoc"] {
        routes.insert(("get".into(), page.into()));
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_with_the_exact_status() {
    let fixture = Fixture::new().await;
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let documented = documented_routes(&fixture.server).await;
    assert_eq!(
        documented.difference(&table).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without an access rule in this table"
    );
    assert_eq!(
        table.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "rows for routes that do not exist"
    );

    let mut failures = Vec::new();
    let mut n = 0;
    for route in ROUTES {
        for caller in CALLERS {
            n += 1;
            let (path, body) = fixture.request(route, n).await;
            let method = route.method.to_uppercase().parse().expect("method");
            let mut request = fixture
                .server
                .client
                .request(method, fixture.server.url(&path));
            if let Some(token) = fixture.credential(caller) {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let (status, answer) = if route.path.ends_with("/logs") {
                // a stream: its status is what counts (dropping it ends the session)
                let response = request.send().await.expect("logs answer");
                let status = response.status().as_u16();
                let body = if status == 200 {
                    Value::Null
                } else {
                    response.json().await.unwrap_or(Value::Null)
                };
                (status, body)
            } else {
                send(request).await
            };
            if route.path.ends_with("/rotate") && status == 200 {
                let fresh = answer["join_token"].as_str().expect("join_token");
                *fixture.join_token.lock().expect("join token") = fresh.to_string();
            }
            let want = expected(route.rule, route.ok, caller);
            if status != want {
                failures.push(format!(
                    "{} {path} as {caller:?}: {status} (want {want}) {answer}",
                    route.method
                ));
            }
            if status == 401 || status == 403 {
                assert!(
                    answer["detail"].is_string(),
                    "{path}: a JSON detail: {answer}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
