//! Compose documents: parsing, interpolation, the operator allow-list, requirement
//! derivation, the node's document and service names, as the server does for every
//! deployment, must never panic on any text; and the node's document must leave
//! Compose nothing to interpolate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miaas_core::compose::baseline::host_access_of;
use miaas_core::compose::interpolate::{interpolate, substitute};
use miaas_core::compose::node_document::{for_node, resolve};
use miaas_core::compose::{parse_compose, requirements_from_compose, requirements_of, service_names};
use miaas_core::model::Env;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(document) = parse_compose(&text) {
        if let Ok(requirements) = requirements_of(&document) {
            let _ = requirements.validate();
        }
    }
    let env: Env = std::collections::BTreeMap::from([("A".to_string(), "$x".to_string())]).into();
    if let Ok(resolved) = resolve(&text, &env) {
        let _ = host_access_of(&resolved);
        let sent: serde_json::Value =
            serde_json::from_str(&for_node(&resolved, &env)).expect("the node's document is JSON");
        let read = interpolate(&sent, &|_| Some("injected")).expect("nothing to interpolate");
        assert_eq!(read, interpolate(&sent, &|_| None).expect("nothing to interpolate"));
    }
    let _ = substitute(&text, &|name| (name == "A").then_some("a"));
    let _ = requirements_from_compose(&text);
    let _ = service_names(&text);
});
