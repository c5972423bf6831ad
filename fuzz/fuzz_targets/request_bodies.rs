//! Every route's JSON request body, decoded exactly as the server decodes it
//! (`miaas_server::decode_json_body`) and, once decoded, validated by the rules
//! the service applies; and the node log batches (NDJSON). The first byte picks
//! the body type. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miaas_core::model::{
    DeploymentRequest, Heartbeat, LogLine, LoginRequest, NewUser, NodeRegistration, NodeUpdate,
    PasswordChange, RenderRequest, StatusReport, TemplateSpec, TokenRequest,
};
use miaas_server::{PlanRequest, decode_json_body};

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    decode_json_body::<T>(body).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 14 {
        0 => {
            if let Some(r) = decode::<NodeRegistration>(body) {
                let _ = r.validate();
            }
        }
        1 => {
            if let Some(h) = decode::<Heartbeat>(body) {
                let _ = h.validate();
            }
        }
        2 => {
            if let Some(d) = decode::<DeploymentRequest>(body) {
                let _ = d.validate();
            }
        }
        3 => {
            let _ = decode::<StatusReport>(body);
        }
        4 => {
            if let Some(u) = decode::<NewUser>(body) {
                let _ = u.validate();
            }
        }
        5 => {
            let _ = decode::<LoginRequest>(body);
        }
        6 => {
            let _ = decode::<PasswordChange>(body);
        }
        7 => {
            if let Some(t) = decode::<TokenRequest>(body) {
                let _ = t.validate();
            }
        }
        8 => {
            let _ = decode::<NodeUpdate>(body);
        }
        9 => {
            if let Some(spec) = decode::<TemplateSpec>(body) {
                let _ = miaas_core::templates::check_spec(&spec);
            }
        }
        10 => {
            let _ = decode::<RenderRequest>(body);
        }
        11 => {
            if let Some(plan) = decode::<PlanRequest>(body)
                && let Some(requirements) = plan.requirements
            {
                let _ = requirements.validate();
            }
        }
        12 => {
            // a node's log batch: one JSON log line per line
            for line in String::from_utf8_lossy(body).lines() {
                let _ = serde_json::from_str::<LogLine>(line);
            }
        }
        _ => {
            let _ = decode::<serde_json::Value>(body);
        }
    }
});
