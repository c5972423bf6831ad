//! `miaas templates` and `miaas deploy --template`, against a server and on its
//! database directly.

use miaas_tests::{Modes, registration};
use serde_json::{Value, json};

const WHOAMI: &str = "id: whoami\nname: Who am I\ncategory: web\nparameters:\n  \
    - {name: port, type: integer, default: 8080, description: The host port}\n\
    compose: |\n  services:\n    web:\n      image: traefik/whoami\n      \
    ports: [{{ port ~ \":80\" }}]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_render_read_the_catalog_both_ways() {
    let modes = Modes::new().await;
    for run in [
        modes.remote(&["templates", "list"]),
        modes.local(&["templates", "list"]),
    ] {
        let run = run.ok();
        let header = run.stdout.lines().next().unwrap();
        assert!(
            header.starts_with("ID") && header.contains("CATEGORY"),
            "{run:?}"
        );
        for id in ["postgres", "redis", "nginx", "ollama", "vllm", "jupyter"] {
            assert!(
                run.stdout.lines().any(|l| l.starts_with(&format!("{id} "))),
                "{id}: {run:?}"
            );
        }
    }
    let ai = modes
        .remote(&["-o", "json", "templates", "list", "--category", "ai"])
        .ok()
        .json();
    assert_eq!(ai.as_array().unwrap().len(), 4, "{ai}");

    let shown = modes.remote(&["templates", "show", "vllm"]).ok();
    let lines: Vec<&str> = shown.stdout.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.starts_with("NAME"))
        .unwrap_or_else(|| panic!("{shown:?}"));
    for column in ["TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION"] {
        assert!(header.contains(column), "{header}");
    }
    let model: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("model "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&model[..4], ["model", "string", "-", "yes"], "{shown:?}");
    let gpus = lines.iter().find(|l| l.starts_with("gpus ")).unwrap();
    assert!(gpus.contains("integer") && gpus.contains(" 1 "), "{gpus}");

    for run in [
        modes.remote(&["templates", "render", "postgres", "--set", "port=6000"]),
        modes.local(&["templates", "render", "postgres", "--set", "port=6000"]),
    ] {
        let run = run.ok();
        let document: Value = serde_saphyr::from_str(&run.stdout).unwrap();
        assert_eq!(
            document["services"]["postgres"]["ports"],
            json!(["6000:5432"]),
            "{run:?}"
        );
        assert!(run.stdout.contains("MIAAS_SECRET_PASSWORD"), "{run:?}");
    }

    let bad = modes.remote(&[
        "templates",
        "render",
        "vllm",
        "--set",
        "model=m",
        "--set",
        "gpus=two",
    ]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("params.gpus"), "{bad:?}");
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{bad:?}");
    let missing = modes.remote(&["templates", "show", "nope"]);
    assert_eq!(missing.code, 3, "{missing:?}");
    let malformed = modes.remote(&["templates", "render", "redis", "--set", "oops"]);
    assert_eq!(malformed.code, 2, "{malformed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_replace_and_remove_a_template_from_a_file() {
    let modes = Modes::new().await;
    let file = modes.cwd().join("whoami.yaml");
    std::fs::write(&file, WHOAMI).unwrap();
    let file = file.display().to_string();

    let added = modes.remote(&["templates", "add", "-f", &file]).ok();
    assert!(
        added.stdout.contains("whoami added: version 1"),
        "{added:?}"
    );
    let again = modes.remote(&["templates", "add", "-f", &file]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
    let replaced = modes
        .local(&["templates", "add", "-f", &file, "--replace"])
        .ok();
    assert!(replaced.stdout.contains("version 2"), "{replaced:?}");
    let shown = modes
        .remote(&["-o", "json", "templates", "show", "whoami"])
        .ok()
        .json();
    assert_eq!(
        (shown["version"].clone(), shown["source"].clone()),
        (json!(2), json!("stored"))
    );

    let broken = modes.cwd().join("broken.yaml");
    std::fs::write(
        &broken,
        "compose: \"services:\\n  a:\\n    image: {{ image }}\\n\"\n",
    )
    .unwrap();
    let refused = modes.remote(&["templates", "add", "-f", &broken.display().to_string()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("image"), "{refused:?}");

    let builtin = modes.remote(&["templates", "rm", "redis"]);
    assert_eq!(builtin.code, 1, "{builtin:?}");
    assert!(builtin.stderr.contains("built in"), "{builtin:?}");
    modes.remote(&["templates", "rm", "whoami"]).ok();
    assert_eq!(modes.remote(&["templates", "show", "whoami"]).code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_a_template_by_name_with_set_values() {
    let modes = Modes::new().await;
    let mut body = registration("big-gpu");
    body["capabilities"]["gpus"] = json!([
        {"id": 0, "model": "A100", "mem_mb": 81920},
        {"id": 1, "model": "A100", "mem_mb": 81920}
    ]);
    let (node_id, _) = modes.server.register_body(&body).await;
    modes.server.register("small").await;

    let run = modes
        .remote(&[
            "deploy",
            "--template",
            "vllm",
            "--set",
            "model=Qwen/Qwen2.5-7B-Instruct",
            "--set",
            "gpus=2",
            "--name",
            "qwen",
        ])
        .ok();
    assert!(run.stdout.contains("scheduled on node big-gpu"), "{run:?}");
    let d = modes
        .remote(&["-o", "json", "deployments", "get", "qwen"])
        .ok()
        .json();
    assert_eq!(d["node_id"], node_id.as_str());
    assert_eq!(d["params"]["gpus"], 2, "typed by the template: {d}");
    assert_eq!(d["template_version"], 2);
    let shown = modes.remote(&["deployments", "get", "qwen"]).ok();
    assert!(
        shown
            .stdout
            .contains("rendered from template vllm version 2, with:"),
        "{shown:?}"
    );
    assert!(shown.stdout.lines().any(|l| l == "  gpus = 2"), "{shown:?}");
    assert!(
        shown.stdout.lines().any(|l| l == "  hf_token = ***"),
        "{shown:?}"
    );

    // the plan of a template, and a deploy without a name (named after the template)
    let plan = modes
        .local(&["-o", "json", "plan", "--template", "redis"])
        .ok()
        .json();
    assert_eq!(plan["requirements"]["mem_mb"], 256, "{plan}");
    modes.local(&["deploy", "--template", "redis"]).ok();
    let redis = modes
        .remote(&["-o", "json", "deployments", "get", "redis"])
        .ok()
        .json();
    assert_eq!(redis["template_id"], "redis");
    assert_eq!(redis["params"]["password"], "***");

    let neither = modes.remote(&["deploy"]);
    assert_eq!(neither.code, 2, "{neither:?}");
    let unknown = modes.remote(&[
        "deploy",
        "--template",
        "vllm",
        "--set",
        "model=m",
        "--set",
        "nope=1",
    ]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("params.nope"), "{unknown:?}");
}
