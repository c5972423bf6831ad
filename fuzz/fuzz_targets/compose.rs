//! Compose documents: parsing, requirement derivation and service names, as the
//! server does for every deployment, must never panic on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miaas_core::compose::{parse_compose, requirements_from_compose, requirements_of, service_names};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(document) = parse_compose(&text) {
        if let Ok(requirements) = requirements_of(&document) {
            let _ = requirements.validate();
        }
    }
    let _ = requirements_from_compose(&text);
    let _ = service_names(&text);
});
