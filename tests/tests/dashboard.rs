//! The dashboard in a real headless Chromium, against the real server and a
//! simulated agent: sign in, see the node, deploy a template from its form, watch
//! it turn running without reloading, read its logs live, cordon the node, sign
//! out; no page writes an error to the console.

use miaas_tests::{AgentProcess, Browser, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_browser,
    ignore = "needs Chromium: apt-get install chromium chromium-driver"
)]
async fn an_operator_deploys_a_template_and_watches_it_run_in_a_browser() {
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let server = TestServer::secure().await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = AgentProcess::simulated(&server.base, &server.join_token, dir.path(), "sim-1");
    let admin = server.admin_token().await;
    let deadline = std::time::Instant::now() + miaas_tests::PAGE_PATIENCE;
    while server.get_as(&admin, "/api/v1/nodes").await.1 == serde_json::json!([]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never joined"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut errors = Vec::new();

    // signed out: the login form; then signed in as the admin
    browser.open(&server.url("/ui")).await;
    assert!(browser.url().await.ends_with("/ui/login"));
    browser.fill("#username", "admin").await;
    browser.fill("#password", &server.admin_password).await;
    browser.click("#sign-in").await;
    assert_eq!(browser.text("#user").await, "admin");
    errors.extend(browser.console_errors().await);

    // the node is listed
    browser.click("nav a[href='/ui/nodes']").await;
    let row = browser.text("#nodes tbody tr").await;
    assert!(row.contains("sim-1") && row.contains("online"), "{row}");
    errors.extend(browser.console_errors().await);

    // deploy redis from its form, with a placement preview first
    browser.open(&server.url("/ui/deploy?template=redis")).await;
    browser.fill("#deployment_id", "cache").await;
    browser.fill("#p-maxmemory_mb", "128").await;
    browser.click("#preview-button").await;
    let plan = browser.text("#plan").await;
    assert!(plan.contains("sim-1"), "{plan}");
    browser.click("#deploy-button").await;
    // the deployment's page, which turns running live (the page is not reloaded)
    browser
        .wait_for_text("h1", |t| t == "Deployment cache")
        .await;
    browser
        .wait_for_text("#deployment-status", |t| t == "running")
        .await;
    let compose = browser.text("#compose").await;
    assert!(compose.contains("128mb"), "{compose}");
    errors.extend(browser.console_errors().await);

    // its logs, arriving live
    browser.click("#show-logs").await;
    let first = browser
        .wait_for_text("#logs", |t| !t.trim().is_empty())
        .await;
    let more = browser
        .wait_for_text("#logs", |t| t.lines().count() > first.lines().count())
        .await;
    // the simulated runtime's lines, each after its service's name
    assert!(
        more.lines()
            .all(|l| l.starts_with("app ") && l.ends_with("of cache")),
        "{more}"
    );
    errors.extend(browser.console_errors().await);

    // cordon the node from its page
    browser.open(&server.url("/ui/nodes")).await;
    browser.click("#nodes tbody tr a").await;
    browser.click("#cordon").await;
    browser
        .wait_for_text("#node-schedulable", |t| t == "cordoned")
        .await;
    let (_, nodes) = server.get_as(&admin, "/api/v1/nodes").await;
    assert_eq!(nodes[0]["schedulable"], false);
    errors.extend(browser.console_errors().await);

    // sign out: back to the login form, and the pages need a login again
    browser.click("#sign-out").await;
    browser.text("#sign-in").await;
    browser.open(&server.url("/ui/nodes")).await;
    assert!(browser.url().await.ends_with("/ui/login"));
    errors.extend(browser.console_errors().await);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_browser,
    ignore = "needs Chromium: apt-get install chromium chromium-driver"
)]
async fn the_pages_work_at_phone_width_without_authentication() {
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    let server = TestServer::spawn().await;
    server.register("worker-01").await;
    for page in [
        "/ui",
        "/ui/nodes",
        "/ui/deployments",
        "/ui/deploy?template=vllm",
        "/ui/admin",
    ] {
        browser.open(&server.url(page)).await;
        browser.text("main h1").await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, false, "{page} is wider than the screen");
    }
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_browser,
    ignore = "needs Chromium: apt-get install chromium chromium-driver"
)]
async fn an_admin_opens_add_a_node_copies_the_command_and_sees_the_node_arrive() {
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let server = TestServer::secure().await;
    let dir = tempfile::tempdir().unwrap();
    browser.open(&server.url("/ui/login")).await;
    browser.fill("#username", "admin").await;
    browser.fill("#password", &server.admin_password).await;
    browser.click("#sign-in").await;
    assert_eq!(browser.text("#user").await, "admin");

    browser.open(&server.url("/ui/admin")).await;
    browser.click("#add-node").await;
    let install = browser.text("#install-command").await;
    assert!(
        install.starts_with("curl -fsSL '")
            && install.contains("/install.sh' | sh -s - --join-token '")
            && install.contains(&server.join_token),
        "{install}"
    );
    browser.click("#copy-install").await;
    browser
        .wait_for_text("#copy-install", |t| t == "Copied")
        .await;
    let docker = browser.text("#docker-command").await;
    assert!(
        docker.starts_with("docker run") && docker.contains(&server.join_token),
        "{docker}"
    );
    browser.text("#waiting-for-node").await;

    // the token the page gives joins a node, which the page shows arriving
    let agent = browser.text("#agent-command").await;
    let token = agent
        .split('\'')
        .nth(1)
        .expect("the command quotes the token")
        .to_string();
    let _agent = AgentProcess::simulated(&server.base, &token, dir.path(), "from-the-page");
    let joined = browser
        .wait_for_text("#joined", |t| t.contains("from-the-page"))
        .await;
    assert!(joined.contains("online"), "{joined}");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
