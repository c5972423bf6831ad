//! Which external services the end-to-end tests can use here. A test that needs
//! one that is missing is marked ignored, with the reason and how to provide it,
//! so `cargo test --workspace` says what it did not run (`N ignored`). In CI
//! (`CI` set) nothing is ignored: a missing service fails its tests.

use std::path::Path;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() {
    for cfg in ["no_postgres", "no_docker", "no_browser"] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    for var in ["CI", "MIAAS_TEST_POSTGRES_URL", "MIAAS_TEST_DOCKER_HOST"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // installing chromium-driver changes the folder: the tests are built again
    let watched = if Path::new(CHROMEDRIVER).exists() {
        CHROMEDRIVER
    } else {
        "/usr/bin"
    };
    println!("cargo::rerun-if-changed={watched}");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CI").is_some() {
        return;
    }
    let missing = |var: &str| std::env::var_os(var).is_none_or(|v| v.is_empty());
    if missing("MIAAS_TEST_POSTGRES_URL") {
        println!("cargo::rustc-cfg=no_postgres");
    }
    if missing("MIAAS_TEST_DOCKER_HOST") {
        println!("cargo::rustc-cfg=no_docker");
    }
    if !Path::new(CHROMEDRIVER).exists() {
        println!("cargo::rustc-cfg=no_browser");
    }
}
