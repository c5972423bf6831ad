//! Templates: the built-in catalog renders, values stay data, bad templates are
//! refused with a useful message.

use std::collections::BTreeMap;

use miaas_core::model::{Template, TemplateSpec};
use miaas_core::templates::{self, Catalog, builtin_templates};
use serde_json::{Value, json};

fn params(value: Value) -> BTreeMap<String, Value> {
    serde_json::from_value(value).expect("params")
}

fn builtin(id: &str) -> Template {
    Catalog::builtin()
        .expect("catalog")
        .get(id)
        .unwrap_or_else(|| panic!("no built-in {id}"))
}

fn spec(yaml: &str) -> TemplateSpec {
    serde_saphyr::from_str(yaml).expect("spec")
}

#[test]
fn the_catalog_has_the_promised_templates_and_each_renders_with_its_defaults() {
    let all = builtin_templates().expect("the built-ins check");
    let mut ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "jupyter",
            "nginx",
            "ollama",
            "postgres",
            "redis",
            "text-embeddings-inference",
            "vllm"
        ]
    );
    for template in &all {
        let given = if template.id == "vllm" {
            params(json!({"model": "Qwen/Qwen2.5-7B-Instruct"}))
        } else {
            BTreeMap::new()
        };
        let rendering = templates::render(template, &given)
            .unwrap_or_else(|err| panic!("{} renders: {err}", template.id));
        let services = rendering.document["services"]
            .as_object()
            .expect("services");
        assert!(!services.is_empty(), "{}", template.id);
        for service in services.values() {
            let image = service["image"].as_str().expect("an image");
            assert!(image.contains(':'), "{}: {image}", template.id);
        }
        assert_eq!(rendering.template_version, template.version);
        assert_eq!(template.schema["type"], "object");
    }
}

#[test]
fn vllm_asks_for_its_gpus_and_passes_its_options() {
    let vllm = builtin("vllm");
    let rendering = templates::render(
        &vllm,
        &params(json!({
            "model": "Qwen/Qwen2.5-7B-Instruct", "gpus": 2, "max_model_len": 8192
        })),
    )
    .expect("renders");
    assert_eq!(rendering.requirements.gpus, 2);
    let command: Vec<&str> = rendering.document["services"]["vllm"]["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = |flag: &str| {
        let at = command.iter().position(|c| *c == flag).expect(flag);
        command[at + 1]
    };
    assert_eq!(after("--model"), "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(after("--tensor-parallel-size"), "2");
    assert_eq!(after("--max-model-len"), "8192");
    let without = templates::render(&vllm, &params(json!({"model": "m"}))).expect("renders");
    assert!(!without.compose.contains("--max-model-len"));
    assert_eq!(without.requirements.gpus, 1);
}

#[test]
fn gpus_are_optional_where_the_catalog_says_so() {
    for id in ["ollama", "jupyter"] {
        let template = builtin(id);
        let cpu = templates::render(&template, &BTreeMap::new()).expect("renders");
        assert_eq!(cpu.requirements.gpus, 0, "{id}");
        let gpu = templates::render(&template, &params(json!({"gpus": 3}))).expect("renders");
        assert_eq!(gpu.requirements.gpus, 3, "{id}");
    }
    let tei = builtin("text-embeddings-inference");
    let cpu = templates::render(&tei, &params(json!({"gpus": 0}))).expect("renders");
    let image = cpu.document["services"]["tei"]["image"]
        .as_str()
        .expect("image");
    assert!(image.ends_with(":cpu-1.7"), "{image}");
    assert_eq!(cpu.requirements.gpus, 0);
}

#[test]
fn edge_values_render_and_parse() {
    let cases = [
        (
            "postgres",
            json!({"port": 1, "memory_mb": 64, "version": "16.4-alpine"}),
        ),
        (
            "postgres",
            json!({"port": 65535, "user": "a", "database": "_"}),
        ),
        (
            "redis",
            json!({"persistence": false, "eviction": "volatile-ttl", "maxmemory_mb": 16}),
        ),
        ("nginx", json!({"site_dir": "/srv/www", "replicas": 16})),
        ("ollama", json!({"gpus": 16, "keep_alive": "-1"})),
        (
            "vllm",
            json!({"model": "m", "gpus": 16, "gpu_memory_utilization": 1, "dtype": "bfloat16"}),
        ),
        (
            "jupyter",
            json!({"image": "pytorch-notebook", "tag": "cuda12-latest", "gpus": 1}),
        ),
        ("text-embeddings-inference", json!({"max_batch_tokens": 1})),
    ];
    for (id, given) in cases {
        let rendering = templates::render(&builtin(id), &params(given.clone()))
            .unwrap_or_else(|err| panic!("{id} with {given}: {err}"));
        assert!(rendering.document["services"].is_object());
    }
    let nginx =
        templates::render(&builtin("nginx"), &params(json!({"replicas": 3}))).expect("renders");
    assert!((nginx.requirements.cpus - 0.3).abs() < 1e-9);
}

#[test]
fn values_that_look_like_yaml_or_jinja_stay_data() {
    let template = templates::describe(
        spec(
            "id: echo\nparameters:\n  - {name: text, type: string, default: x}\n\
             compose: |\n  services:\n    app:\n      image: busybox\n      \
             environment:\n        TEXT: {{ text }}\n",
        ),
        1,
        miaas_core::model::TemplateSource::Stored,
    );
    for attack in [
        "x\"\n    privileged: true\n    image: \"evil",
        "x\nservices:\n  evil:\n    image: evil",
        "a: b",
        "{{ 7 * 7 }}{% raw %}",
        "&anchor",
        "*alias",
        "${HOME} $(id)",
        "[1, 2]",
        "- item",
        "'single' \"double\" \\back",
    ] {
        let rendering = templates::render(&template, &params(json!({"text": attack})))
            .unwrap_or_else(|err| panic!("{attack:?}: {err}"));
        let services = rendering.document["services"]
            .as_object()
            .expect("services");
        assert_eq!(services.len(), 1, "{attack:?}");
        let app = &services["app"];
        assert_eq!(app.as_object().map(|o| o.len()), Some(2), "{attack:?}");
        // Compose reads `$$` as `$`
        let text = app["environment"]["TEXT"].as_str().expect("text");
        assert_eq!(text.replace("$$", "$"), attack);
    }
}

#[test]
fn secrets_never_enter_the_document() {
    let postgres = builtin("postgres");
    let rendering = templates::render(
        &postgres,
        &params(json!({"password": "hunter2-secret-value"})),
    )
    .expect("renders");
    assert!(!rendering.compose.contains("hunter2"));
    assert_eq!(
        rendering.document["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"],
        "${MIAAS_SECRET_PASSWORD}"
    );
    assert_eq!(rendering.params["password"], "***");
    let secret = &rendering.secrets[0];
    assert_eq!(secret.env, "MIAAS_SECRET_PASSWORD");
    assert_eq!(
        secret.resolve(Some("old")).expect("given"),
        "hunter2-secret-value"
    );
    let generated = templates::render(&postgres, &BTreeMap::new()).expect("renders");
    let secret = &generated.secrets[0];
    let made = secret.resolve(None).expect("generated");
    assert_eq!(made.len(), 24);
    assert!(made.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(made, secret.resolve(None).expect("generated"));
    assert_eq!(secret.resolve(Some("kept")).expect("kept"), "kept");
}

#[test]
fn errors_name_the_parameter() {
    let vllm = builtin("vllm");
    let cases = [
        (
            json!({"model": "m", "nope": 1}),
            "params.nope: unknown parameter",
        ),
        (json!({}), "params.model: missing"),
        (
            json!({"model": "m", "gpus": "two"}),
            "params.gpus: expected an integer",
        ),
        (
            json!({"model": "m", "gpus": 2.5}),
            "params.gpus: expected an integer",
        ),
        (
            json!({"model": "m", "gpus": true}),
            "params.gpus: expected an integer",
        ),
        (
            json!({"model": "m", "gpus": 0}),
            "params.gpus: 0 is out of range: at least 1",
        ),
        (
            json!({"model": "m", "gpus": 99}),
            "params.gpus: 99 is out of range: at most 16",
        ),
        (
            json!({"model": "bad model"}),
            "params.model: \"bad model\" does not match",
        ),
        (
            json!({"model": "m", "dtype": "int3"}),
            "params.dtype: must be one of",
        ),
        (json!({"model": 7}), "params.model: expected text"),
        (
            json!({"model": "m", "gpu_memory_utilization": 2}),
            "params.gpu_memory_utilization",
        ),
    ];
    for (given, expected) in cases {
        let err = templates::render(&vllm, &params(given.clone()))
            .expect_err(&given.to_string())
            .to_string();
        assert!(err.starts_with(expected), "{given}: {err}");
    }
    // what a form or `--set` sends as text is read by type
    let rendering =
        templates::render(&vllm, &params(json!({"model": "m", "gpus": "2"}))).expect("renders");
    assert_eq!(rendering.requirements.gpus, 2);
    assert_eq!(rendering.params["gpus"], 2);
}

#[test]
fn bad_templates_are_refused_with_a_useful_message() {
    let cases = [
        (
            "id: a\ncompose: |\n  services:\n    x:\n      image: {{ image \n",
            "compose: line",
        ),
        (
            "id: a\ncompose: |\n  services:\n    x:\n      image: {{ image }}\n",
            "compose: uses image not declared",
        ),
        (
            "id: a\nparameters:\n  - {name: n, type: integer, default: x}\n\
             compose: \"services: {x: {image: {{ n }}}}\"\n",
            "parameters.n: the default is not valid",
        ),
        (
            "id: a\nparameters:\n  - {name: e, type: enum}\ncompose: \"services: {}\"\n",
            "parameters.e: `options`",
        ),
        (
            "id: a\nparameters:\n  - {name: p, type: string, pattern: \"(\"}\n\
             compose: \"services: {x: {image: {{ p }}}}\"\n",
            "parameters.p: `pattern` is not a regular expression",
        ),
        (
            "id: a\ncompose: \"image: x\"\n",
            "with its defaults, rendered_compose",
        ),
        (
            "id: \"a b\"\ncompose: \"services: {x: {image: y}}\"\n",
            "id:",
        ),
        (
            "id: a\ncompose: \"{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}\"\n",
            "compose:",
        ),
    ];
    for (yaml, expected) in cases {
        let err = templates::check_spec(&spec(yaml))
            .expect_err(yaml)
            .to_string();
        assert!(err.contains(expected), "{yaml}\n=> {err}");
    }
    let good = spec(
        "id: whoami\nparameters:\n  - {name: port, type: integer, default: 8080}\n\
         compose: |\n  services:\n    web:\n      image: traefik/whoami\n      \
         ports: [{{ port ~ \":80\" }}]\n",
    );
    templates::check_spec(&good).expect("a good template passes");
}

#[test]
fn a_folder_of_templates_is_read_and_read_again_when_it_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("whoami.yaml");
    let write = |port: u32| {
        std::fs::write(
            &file,
            format!(
                "name: Who am I\nversion: {port}\nparameters:\n  - {{name: port, type: integer, default: {port}}}\n\
                 compose: |\n  services:\n    web:\n      image: traefik/whoami\n      \
                 ports: [{{{{ port ~ \":80\" }}}}]\n"
            ),
        )
        .expect("write");
    };
    write(1);
    let catalog = Catalog::with_folder(dir.path()).expect("reads the folder");
    let whoami = catalog.get("whoami").expect("named by its file");
    assert_eq!(whoami.version, 1);
    assert!(catalog.reload(false).is_none(), "nothing changed");
    write(22);
    let (count, errors) = catalog.reload(false).expect("changed").expect("read");
    assert_eq!((count, errors.len()), (1, 0));
    assert_eq!(catalog.get("whoami").expect("still there").version, 22);
    std::fs::write(
        dir.path().join("postgres.yaml"),
        "compose: \"services: {a: {image: b}}\"",
    )
    .expect("write");
    std::fs::write(dir.path().join("broken.yaml"), "compose: \"{{ x\"").expect("write");
    let (count, errors) = catalog.reload(false).expect("changed").expect("read");
    assert_eq!(count, 1, "a built-in's id and a broken file are left out");
    assert_eq!(errors.len(), 2);
    assert!(
        Catalog::with_folder(dir.path()).is_err(),
        "a bad folder stops a start"
    );
}

#[test]
fn every_builtin_is_an_operators_to_deploy_unless_it_serves_a_folder_of_the_node() {
    use miaas_core::compose::baseline::host_access_of;
    use miaas_core::compose::node_document::resolve;
    let required = json!({"model": "Qwen/Qwen2.5-7B-Instruct"});
    for template in builtin_templates().expect("the built-ins check") {
        let given = if template.id == "vllm" {
            required.clone()
        } else {
            json!({})
        };
        let rendering = templates::render(&template, &params(given))
            .unwrap_or_else(|err| panic!("{}: {err}", template.id));
        let resolved = resolve(&rendering.compose, &Default::default()).expect("resolves");
        assert_eq!(
            host_access_of(&resolved),
            Vec::<String>::new(),
            "{}",
            template.id
        );
    }
    let served = templates::render(&builtin("nginx"), &params(json!({"site_dir": "/srv/www"})))
        .expect("renders");
    let resolved = resolve(&served.compose, &Default::default()).expect("resolves");
    let found = host_access_of(&resolved);
    assert!(
        found[0].starts_with("services.web: volumes: host path /srv/www"),
        "{found:?}"
    );
}
