//! The dashboard's HTML without a browser: sign-in and its cookies, CSRF refusal,
//! what each role is shown and allowed, escaping of names and messages.

use miaas_tests::{TestServer, deployment, registration, send};
use reqwest::redirect::Policy;
use serde_json::json;

/// A browser's worth of state: its cookies and the CSRF token of its pages.
struct Session {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    csrf: String,
}

/// The value of `name="csrf"` in a page.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_string()
}

impl Session {
    fn new(server: &TestServer) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    fn cookie_header(&self) -> String {
        (self.cookies.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies a response sets; answers the `Set-Cookie` lines.
    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut lines = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let line = value.to_str().unwrap().to_string();
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
            lines.push(line);
        }
        lines
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let response = (self.client.get(format!("{}{path}", self.base)))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let status = response.status().as_u16();
        let location =
            (response.headers().get("location")).map(|l| l.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        if body.contains("name=\"csrf\"") {
            self.csrf = csrf_in(&body);
        }
        (status, location.unwrap_or(body))
    }

    /// Posts a form (the CSRF token added unless `csrf` is `None`); answers the
    /// response and the cookies it set.
    async fn send_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> (reqwest::Response, Vec<String>) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(token) = csrf {
            form.push(("csrf", token));
        }
        let response = (self.client.post(format!("{}{path}", self.base)))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).unwrap())
            .send()
            .await
            .unwrap();
        let set = self.keep(&response);
        (response, set)
    }

    /// As [`Self::send_form`]: the status and the redirect's target or the page.
    async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> (u16, String) {
        let (response, _) = self.send_form(path, fields, csrf).await;
        let status = response.status().as_u16();
        let location =
            (response.headers().get("location")).map(|l| l.to_str().unwrap().to_string());
        (status, location.unwrap_or(response.text().await.unwrap()))
    }

    async fn sign_in(server: &TestServer, username: &str, password: &str) -> Self {
        let mut session = Self::new(server);
        session.get("/ui/login").await;
        let csrf = session.csrf.clone();
        let (status, to) = session
            .post(
                "/ui/login",
                &[("username", username), ("password", password)],
                Some(&csrf),
            )
            .await;
        assert_eq!((status, to.as_str()), (303, "/ui"), "{username} signs in");
        session
    }
}

async fn user(server: &TestServer, admin: &str, name: &str, role: &str) -> String {
    let password = format!("{name}-password-1");
    let (status, body) = server
        .post_as(
            admin,
            "/api/v1/users",
            &json!({"username": name, "role": role, "password": password}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    password
}

#[tokio::test]
async fn signing_in_sets_a_safe_session_cookie_and_signing_out_ends_it() {
    let server = TestServer::secure().await;
    let mut anonymous = Session::new(&server);
    let (status, to) = anonymous.get("/ui/nodes").await;
    assert_eq!((status, to.as_str()), (303, "/ui/login"));

    let (status, page) = anonymous.get("/ui/login").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<label for=\"password\">"),
        "inputs have labels"
    );
    let csrf = anonymous.csrf.clone();
    let (status, page) = anonymous
        .post(
            "/ui/login",
            &[("username", "admin"), ("password", "wrong-password")],
            Some(&csrf),
        )
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("Wrong username or password."), "{page}");

    let mut session = Session::new(&server);
    session.get("/ui/login").await;
    let csrf = session.csrf.clone();
    let password = server.admin_password.clone();
    let (response, set) = session
        .send_form(
            "/ui/login",
            &[("username", "admin"), ("password", &password)],
            Some(&csrf),
        )
        .await;
    assert_eq!(response.status(), 303);
    let cookie = set
        .iter()
        .find(|c| c.starts_with("miaas_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=3600"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let (status, page) = session.get("/ui").await;
    assert_eq!(status, 200);
    assert!(page.contains("Signed in as <strong id=\"user\">admin</strong>"));

    let csrf = session.csrf.clone();
    let (status, to) = session.post("/ui/logout", &[], Some(&csrf)).await;
    assert_eq!((status, to.as_str()), (303, "/ui/login"));
    assert_eq!(session.get("/ui").await, (303, "/ui/login".to_string()));

    // behind HTTPS the cookies are Secure
    let https = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        c.public_url = Some("https://cp.example".into());
    })
    .await;
    let mut session = Session::new(&https);
    let response = (session.client.get(https.url("/ui/login")))
        .send()
        .await
        .unwrap();
    let set = session.keep(&response);
    assert!(set.iter().all(|c| c.contains("; Secure")), "{set:?}");
}

#[tokio::test]
async fn every_form_needs_the_csrf_token_of_its_cookie() {
    let server = TestServer::secure().await;
    let (node_id, _) = server.register("worker-01").await;
    let mut session = Session::sign_in(&server, "admin", &server.admin_password).await;
    session.get(&format!("/ui/nodes/{node_id}")).await;
    let path = format!("/ui/nodes/{node_id}/cordon");
    let (status, _) = session.post(&path, &[], None).await;
    assert_eq!(status, 403, "no token");
    let wrong = "0".repeat(64);
    let (status, _) = session.post(&path, &[], Some(&wrong)).await;
    assert_eq!(status, 403, "another token");
    let admin = server.admin_token().await;
    let (_, node) = server
        .get_as(&admin, &format!("/api/v1/nodes/{node_id}"))
        .await;
    assert_eq!(node["schedulable"], true, "nothing changed");

    let csrf = session.csrf.clone();
    let (status, to) = session.post(&path, &[], Some(&csrf)).await;
    assert_eq!((status, to), (303, format!("/ui/nodes/{node_id}")));
    let (_, node) = server
        .get_as(&admin, &format!("/api/v1/nodes/{node_id}"))
        .await;
    assert_eq!(node["schedulable"], false);

    // a login form posted from elsewhere (no CSRF cookie) is refused too
    let mut stranger = Session::new(&server);
    let (status, _) = stranger
        .post(
            "/ui/login",
            &[("username", "admin"), ("password", &server.admin_password)],
            Some(&csrf),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn each_role_sees_only_its_buttons_and_the_server_refuses_the_rest() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (node_id, _) = server.register("worker-01").await;
    let node_page = format!("/ui/nodes/{node_id}");

    let password = user(&server, &admin, "vera", "viewer").await;
    let mut viewer = Session::sign_in(&server, "vera", &password).await;
    let (status, page) = viewer.get(&node_page).await;
    assert_eq!(status, 200);
    for hidden in [
        "id=\"cordon\"",
        "id=\"drain\"",
        "id=\"remove\"",
        "href=\"/ui/deploy\"",
        "href=\"/ui/admin\"",
    ] {
        assert!(!page.contains(hidden), "a viewer is shown {hidden}");
    }
    let csrf = viewer.csrf.clone();
    let (status, _) = viewer
        .post(&format!("{node_page}/cordon"), &[], Some(&csrf))
        .await;
    assert_eq!(status, 403);
    assert_eq!(viewer.get("/ui/deploy").await.0, 403);
    assert_eq!(viewer.get("/ui/admin").await.0, 403);
    let (status, _) = viewer.post("/ui/admin/join-token", &[], Some(&csrf)).await;
    assert_eq!(status, 403);

    let password = user(&server, &admin, "otto", "operator").await;
    let mut operator = Session::sign_in(&server, "otto", &password).await;
    let (_, page) = operator.get(&node_page).await;
    assert!(page.contains("id=\"cordon\"") && page.contains("id=\"drain\""));
    assert!(page.contains("href=\"/ui/deploy\""));
    assert!(!page.contains("id=\"remove\"") && !page.contains("href=\"/ui/admin\""));
    let csrf = operator.csrf.clone();
    let (status, _) = operator
        .post(&format!("{node_page}/remove"), &[], Some(&csrf))
        .await;
    assert_eq!(status, 403, "removing a node is an admin's");

    let mut root = Session::sign_in(&server, "admin", &server.admin_password).await;
    let (_, page) = root.get(&node_page).await;
    assert!(page.contains("id=\"remove\"") && page.contains("href=\"/ui/admin\""));
    // an API token is shown once, when it is made
    let csrf = root.csrf.clone();
    let (status, page) = root
        .post(
            "/ui/admin/create-token",
            &[("name", "ci"), ("role", "viewer")],
            Some(&csrf),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("shown only now") && page.contains("miaas_api_"),
        "{page}"
    );
    let (_, again) = root.get("/ui/admin").await;
    assert!(!again.contains("miaas_api_"));
}

#[tokio::test]
async fn names_and_messages_are_text_never_markup() {
    let server = TestServer::spawn().await;
    let (status, body) = server
        .post(
            "/api/v1/nodes/register",
            &registration("<script>alert(1)</script>"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut hostile = deployment("d1");
    hostile["template_id"] = json!("<img src=x onerror=alert(2)>");
    hostile["requirements"] = json!({"gpus": 9});
    assert_eq!(server.post("/api/v1/deployments", &hostile).await.0, 202);

    let mut session = Session::new(&server);
    for page in ["/ui/nodes", "/ui", "/ui/deployments", "/ui/deployments/d1"] {
        let (status, html) = session.get(page).await;
        assert_eq!(status, 200, "{page}");
        assert!(!html.contains("<script>alert(1)"), "{page}");
        assert!(!html.contains("<img src=x"), "{page}");
    }
    let (_, nodes) = session.get("/ui/nodes").await;
    assert!(
        nodes.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{nodes}"
    );
    let (_, d) = session.get("/ui/deployments/d1").await;
    assert!(d.contains("&lt;img src=x onerror=alert(2)&gt;"), "{d}");
    assert!(d.contains("Why it is pending"), "the placement explanation");
}

#[tokio::test]
async fn with_auth_off_there_is_no_login() {
    let server = TestServer::spawn().await;
    let mut session = Session::new(&server);
    let (status, to) = session.get("/ui/login").await;
    assert_eq!((status, to.as_str()), (303, "/ui"));
    let (status, page) = session.get("/ui").await;
    assert_eq!(status, 200);
    assert!(page.contains("Authentication is off"));
    assert!(!page.contains("Sign out"));
    // forms still need their CSRF token
    let (node_id, _) = server.register("worker-01").await;
    let (status, _) = session
        .post(&format!("/ui/nodes/{node_id}/cordon"), &[], None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = send(server.client.get(server.url("/ui/assets/htmx.min.js"))).await;
    assert_eq!(status, 200, "the scripts are served by the binary");
}

#[tokio::test]
async fn a_deployments_page_links_its_endpoints() {
    let server = TestServer::spawn().await;
    let mut session = Session::new(&server);
    server.register("worker-01").await;
    let compose = "services:\n  web:\n    image: nginx\n    ports: ['8080:80', '53:53/udp']\n";
    let (status, _) = server
        .post(
            "/api/v1/deployments",
            &serde_json::json!({"deployment_id": "site", "template_id": "t", "rendered_compose": compose}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, page) = session.get("/ui/deployments/site").await;
    assert_eq!(status, 200);
    // the template engine escapes `/` too
    let page = page.replace("&#x2f;", "/");
    assert!(
        page.contains(r#"<a href="http://192.168.1.10:8080" rel="noopener noreferrer" target="_blank">http://192.168.1.10:8080</a>"#),
        "{page}"
    );
    assert!(page.contains("192.168.1.10:53/udp"), "{page}");
}

/// The deployment page follows it to ready: its status says its health, and a
/// line says whether it is ready yet; the deployments list says the health too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_page_says_its_health_and_whether_it_is_ready() {
    let server = TestServer::spawn().await;
    let mut session = Session::new(&server);
    let (_, token) = server.register("worker-01").await;
    let compose = "services:\n  web:\n    image: nginx\n";
    let (status, _) = server
        .post(
            "/api/v1/deployments",
            &serde_json::json!({"deployment_id": "site", "template_id": "t", "rendered_compose": compose}),
        )
        .await;
    assert_eq!(status, 202);
    let (_, page) = session.get("/ui/deployments/site").await;
    assert!(page.contains("its node is starting it"), "{page}");

    let report = |health: &str, restarts: u32| serde_json::json!({"status": "running", "health": health, "restarts": restarts});
    let (status, _) = server
        .post_as(
            &token,
            "/api/v1/deployments/site/status",
            &report("starting", 0),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = session.get("/ui/deployments/site").await;
    assert!(
        page.contains(r#"id="deployment-status">running</span> <span id="deployment-health" class="health health-starting">(starting)</span>"#),
        "{page}"
    );
    assert!(
        page.contains("its healthchecks have not passed yet"),
        "{page}"
    );

    let (status, _) = server
        .post_as(
            &token,
            "/api/v1/deployments/site/status",
            &report("unhealthy", 2),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = session.get("/ui/deployments/site").await;
    assert!(page.contains(">(unhealthy, 2 restarts)</span>"), "{page}");
    assert!(page.contains("a healthcheck fails"), "{page}");
    let (_, list) = session.get("/ui/deployments").await;
    assert!(
        list.contains(r#">running</span> <span class="health health-unhealthy">(unhealthy, 2 restarts)</span>"#),
        "{list}"
    );

    let (status, _) = server
        .post_as(
            &token,
            "/api/v1/deployments/site/status",
            &report("healthy", 2),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = session.get("/ui/deployments/site").await;
    assert!(
        page.contains(r#"id="deployment-readiness" class="ready""#),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_is_checked_for_a_login_then_its_token_then_the_right() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (node_id, _) = server.register("worker-01").await;
    let node_page = format!("/ui/nodes/{node_id}");

    // signed out: every page and form sends the browser to the login page
    let mut stranger = Session::new(&server);
    assert_eq!(stranger.get("/ui/deploy").await, (303, "/ui/login".into()));
    assert_eq!(stranger.get("/ui/admin").await, (303, "/ui/login".into()));
    for path in [
        format!("{node_page}/cordon"),
        format!("{node_page}/remove"),
        "/ui/deploy".to_string(),
        "/ui/admin/join-token".to_string(),
    ] {
        let (status, to) = stranger.post(&path, &[], None).await;
        assert_eq!((status, to.as_str()), (303, "/ui/login"), "{path}");
    }

    // a viewer: a wrong token is refused before the missing right
    let password = user(&server, &admin, "vera", "viewer").await;
    let mut viewer = Session::sign_in(&server, "vera", &password).await;
    viewer.get(&node_page).await;
    let wrong = "0".repeat(64);
    let (status, body) = viewer
        .post(&format!("{node_page}/remove"), &[], Some(&wrong))
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("CSRF token"), "{body}");
    let csrf = viewer.csrf.clone();
    let (status, body) = viewer
        .post(&format!("{node_page}/remove"), &[], Some(&csrf))
        .await;
    assert_eq!(status, 403);
    assert!(
        !body.contains("CSRF token") && body.contains("<html"),
        "{body}"
    );

    // an admin: an unknown action is 404, drain and remove are done
    let mut root = Session::sign_in(&server, "admin", &server.admin_password).await;
    root.get(&node_page).await;
    let csrf = root.csrf.clone();
    let (status, _) = root
        .post(&format!("{node_page}/explode"), &[], Some(&csrf))
        .await;
    assert_eq!(status, 404);
    let (status, to) = root
        .post(&format!("{node_page}/drain"), &[], Some(&csrf))
        .await;
    assert_eq!((status, to), (303, node_page.clone()));
    let (status, to) = root
        .post(&format!("{node_page}/remove"), &[], Some(&csrf))
        .await;
    assert_eq!((status, to.as_str()), (303, "/ui/nodes"));
    let (status, _) = server
        .get_as(&admin, &format!("/api/v1/nodes/{node_id}"))
        .await;
    assert_eq!(status, 404, "the node is gone");
}
