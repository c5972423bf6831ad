//! The built-in templates' healthchecks: every service checks its health with a
//! tool its image has (as the template's header cites), on the container's port
//! whatever port it is published on, after a start period long enough for what it
//! loads; no check holds a secret, and a `$` meant for the container's shell
//! reaches it through Compose's interpolation.

use std::collections::BTreeMap;

use miaas_core::compose::interpolate::interpolate;
use miaas_core::compose::node_document::{for_node, resolve};
use miaas_core::model::{Env, ParameterType, Template};
use miaas_core::templates::{self, Rendering, builtin_templates};
use serde_json::{Value, json};

/// What each built-in's check is held to.
struct Expected {
    template: &'static str,
    service: &'static str,
    /// The program the check runs, which the header shows the image has.
    tool: &'static str,
    /// The container port the template publishes.
    target_port: u16,
    /// Where an HTTP or TCP check asks, when it names it.
    asks: Option<&'static str>,
    /// The shortest start period that lets it load what it needs.
    min_start_secs: u64,
}

const EXPECTED: [Expected; 7] = [
    Expected {
        template: "postgres",
        service: "postgres",
        tool: "pg_isready",
        target_port: 5432,
        asks: Some("127.0.0.1"),
        min_start_secs: 30,
    },
    Expected {
        template: "redis",
        service: "redis",
        tool: "redis-cli",
        target_port: 6379,
        asks: None,
        min_start_secs: 10,
    },
    Expected {
        template: "nginx",
        service: "web",
        tool: "curl",
        target_port: 80,
        asks: Some("http://127.0.0.1/"),
        min_start_secs: 10,
    },
    Expected {
        template: "ollama",
        service: "ollama",
        tool: "ollama",
        target_port: 11434,
        asks: None,
        min_start_secs: 30,
    },
    Expected {
        template: "jupyter",
        service: "jupyter",
        tool: "/etc/jupyter/docker_healthcheck.py",
        target_port: 8888,
        asks: None,
        min_start_secs: 30,
    },
    Expected {
        template: "text-embeddings-inference",
        service: "tei",
        tool: "curl",
        target_port: 80,
        asks: Some("http://127.0.0.1:80/health"),
        min_start_secs: 5 * 60,
    },
    Expected {
        template: "vllm",
        service: "vllm",
        tool: "python3",
        target_port: 8000,
        asks: Some("http://127.0.0.1:8000/health"),
        min_start_secs: 10 * 60,
    },
];

fn builtin(id: &str) -> Template {
    builtin_templates()
        .expect("the built-ins check")
        .into_iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no built-in {id}"))
}

/// `template` rendered with `given` over what it requires.
fn render(template: &Template, given: Value) -> Rendering {
    let mut params = json!({});
    if template.id == "vllm" {
        params["model"] = json!("Qwen/Qwen2.5-7B-Instruct");
    }
    for (name, value) in given.as_object().expect("an object") {
        params[name] = value.clone();
    }
    let params: BTreeMap<String, Value> = serde_json::from_value(params).expect("params");
    templates::render(template, &params).unwrap_or_else(|err| panic!("{}: {err}", template.id))
}

/// A Compose duration (`1m30s`, `20m`, `500ms`) in seconds, rounded down.
fn seconds(duration: &str) -> u64 {
    let mut total_ms = 0;
    let mut rest = duration;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().expect("a number");
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total_ms += number
            * match &rest[..unit] {
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1_000,
                "ms" => 1,
                other => panic!("unit {other:?} in {duration:?}"),
            };
        rest = &rest[unit..];
    }
    total_ms / 1000
}

/// The programs a check may run and the words it runs them with: for `CMD`, its
/// program and its arguments; for `CMD-SHELL`, every word of the line.
fn programs_and_words(test: &[Value]) -> (Vec<String>, Vec<String>) {
    let strings: Vec<&str> = test.iter().map(|v| v.as_str().expect("text")).collect();
    match strings.first() {
        Some(&"CMD") => (
            vec![strings[1].to_string()],
            strings[1..].iter().map(|s| s.to_string()).collect(),
        ),
        Some(&"CMD-SHELL") => {
            let words: Vec<String> = strings[1]
                .split(|c: char| c.is_whitespace() || "()|&;=$\"'".contains(c))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            (words.clone(), words)
        }
        other => panic!("a test starts with CMD or CMD-SHELL, not {other:?}"),
    }
}

#[test]
fn every_builtin_checks_its_health_with_its_images_tool_after_a_start_period() {
    let all = builtin_templates().expect("the built-ins check");
    assert_eq!(
        all.len(),
        EXPECTED.len(),
        "every built-in is held to a check"
    );
    for expected in &EXPECTED {
        let template = builtin(expected.template);
        let id = &template.id;
        let rendering = render(&template, json!({}));
        let services = rendering.document["services"]
            .as_object()
            .expect("services");
        assert_eq!(services.len(), 1, "{id}: one service");
        let service = &services[expected.service];
        let check = &service["healthcheck"];
        let test = check["test"]
            .as_array()
            .unwrap_or_else(|| panic!("{id}: {check}"));
        let (programs, words) = programs_and_words(test);
        assert!(
            programs.iter().any(|p| p == expected.tool),
            "{id} runs {}: {test:?}",
            expected.tool
        );
        if let Some(asks) = expected.asks {
            assert!(words.iter().any(|w| w.contains(asks)), "{id}: {test:?}");
        }
        let start = seconds(check["start_period"].as_str().expect("start_period"));
        assert!(
            start >= expected.min_start_secs,
            "{id}: start period {start} s"
        );
        let interval = seconds(check["interval"].as_str().expect("interval"));
        let timeout = seconds(check["timeout"].as_str().expect("timeout"));
        assert!(timeout > 0 && timeout <= interval, "{id}: {check}");
        assert!(check["retries"].as_u64().is_some_and(|r| r >= 1), "{id}");
        assert!(check.get("disable").is_none(), "{id}");

        // published on the `port` parameter; the check asks the container's port
        let default_port = template
            .parameters
            .iter()
            .find(|p| p.name == "port")
            .and_then(|p| p.default.clone())
            .unwrap_or_else(|| panic!("{id}: a port parameter with a default"));
        let target = expected.target_port;
        assert_eq!(
            service["ports"],
            json!([format!("{default_port}:{target}")]),
            "{id}"
        );
        let moved = render(&template, json!({"port": 40999}));
        let moved_service = &moved.document["services"][expected.service];
        assert_eq!(
            moved_service["ports"],
            json!([format!("40999:{target}")]),
            "{id}"
        );
        assert_eq!(moved_service["healthcheck"], *check, "{id}: same check");
    }
}

#[test]
fn no_healthcheck_holds_a_secret_and_redis_takes_its_password_from_the_environment() {
    for template in builtin_templates().expect("the built-ins check") {
        let secrets: Vec<&str> = (template.parameters.iter())
            .filter(|p| p.kind == ParameterType::Secret)
            .map(|p| p.name.as_str())
            .collect();
        let given: serde_json::Map<String, Value> = (secrets.iter())
            .map(|name| (name.to_string(), json!(format!("Sealed{name}Value"))))
            .collect();
        let rendering = render(&template, Value::Object(given.clone()));
        let env: BTreeMap<String, String> = (rendering.secrets.iter())
            .map(|s| {
                let value = s.resolve(None).expect("given");
                (s.env.clone(), value)
            })
            .collect();
        assert_eq!(env.len(), secrets.len(), "{}", template.id);
        assert!(!rendering.compose.contains("Sealed"), "{}", template.id);
        // what Compose on the node runs: every reference filled
        let resolved = resolve(&rendering.compose, &Env::from(env)).expect("resolves");
        for (name, service) in resolved["services"].as_object().expect("services") {
            let test = service["healthcheck"]["test"].to_string();
            assert!(
                !test.contains("Sealed") && !test.contains("MIAAS_SECRET"),
                "{}: {name}: {test}",
                template.id
            );
        }
    }

    let redis = render(&builtin("redis"), json!({"password": "hunter2-redis"}));
    let service = &redis.document["services"]["redis"];
    assert_eq!(
        service["environment"]["REDISCLI_AUTH"], "${MIAAS_SECRET_PASSWORD}",
        "a reference in the document"
    );
    let env = Env::from(BTreeMap::from([(
        "MIAAS_SECRET_PASSWORD".to_string(),
        "hunter2-redis".to_string(),
    )]));
    let resolved = resolve(&redis.compose, &env).expect("resolves");
    let service = &resolved["services"]["redis"];
    assert_eq!(service["environment"]["REDISCLI_AUTH"], "hunter2-redis");
    assert_eq!(
        service["healthcheck"]["test"],
        json!(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
        "the check passes no password: redis-cli reads REDISCLI_AUTH"
    );
}

#[test]
fn a_dollar_in_a_healthcheck_reaches_the_containers_shell() {
    let nginx = render(&builtin("nginx"), json!({}));
    let shell_line = "code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/) \
                      && [ \"$code\" -lt 500 ]";
    // the template writes `$$`, which Compose reads as `$`
    assert!(nginx.compose.contains("code=$$(curl"), "{}", nginx.compose);
    let resolved = resolve(&nginx.compose, &Env::default()).expect("resolves");
    assert_eq!(
        resolved["services"]["web"]["healthcheck"]["test"],
        json!(["CMD-SHELL", shell_line])
    );
    // the node's document escapes it again, so the node's Compose gives the same
    let for_compose: Value = serde_json::from_str(&for_node(&resolved, &Env::default()))
        .expect("the node's document is JSON");
    let on_node = interpolate(&for_compose, &|_| None).expect("interpolates");
    assert_eq!(
        on_node["services"]["web"]["healthcheck"]["test"],
        json!(["CMD-SHELL", shell_line])
    );
}
