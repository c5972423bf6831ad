//! What is worked out of a deployment's document, once per revision: the document
//! its node is sent, and the ports it publishes (its endpoints). Resolving a
//! document (parse, interpolate, write out) costs up to tens of milliseconds for
//! a large one, and a node may poll its desired state as often as it likes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::compose::node_document::{for_node, resolve};
use crate::compose::ports::{PublishedPort, published_ports};
use crate::model::Deployment;

/// What the cache may hold, in bytes of documents, before it starts afresh.
const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

/// What is worked out of one revision of a deployment's document.
#[derive(Debug)]
pub(super) struct Resolved {
    /// The document its node is sent, or why it does not resolve.
    pub document: Result<String, String>,
    /// The host ports it publishes.
    pub published: Vec<PublishedPort>,
}

impl Resolved {
    fn size(&self) -> usize {
        self.document.as_ref().map_or_else(String::len, String::len)
            + self.published.len() * std::mem::size_of::<PublishedPort>()
    }
}

/// A deployment's [`Resolved`], shared.
pub(super) type NodeDocument = Arc<Resolved>;

/// Which deployment, at which revision, with which environment: a deployment
/// deleted and made again under its id starts at revision 1 again, with another
/// creation time; and a copy of it whose environment is shown redacted must
/// never stand for the one its node runs.
#[derive(PartialEq)]
struct Made {
    created_at: u64,
    revision: u32,
    env: u64,
}

/// A fingerprint of an environment (names and values).
fn env_fingerprint(env: &crate::model::Env) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (name, value) in env.iter() {
        name.hash(&mut hasher);
        value.hash(&mut hasher);
    }
    hasher.finish()
}

/// Node documents by deployment id.
#[derive(Default)]
pub(super) struct NodeDocuments {
    cached: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    documents: HashMap<String, (Made, NodeDocument)>,
    bytes: usize,
}

impl NodeDocuments {
    /// The document the node running `deployment` is sent ([`for_node`] of its
    /// [`resolve`]d document), made at most once per revision.
    pub(super) fn of(&self, deployment: &Deployment) -> NodeDocument {
        let made = Made {
            created_at: deployment.created_at.to_bits(),
            revision: deployment.revision,
            env: env_fingerprint(&deployment.env),
        };
        let lock = || self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, document)) = lock().documents.get(&deployment.deployment_id)
            && *at == made
        {
            return document.clone();
        }
        let env = &deployment.env;
        let resolved = resolve(&deployment.rendered_compose, env);
        let published = (resolved.as_ref().ok())
            .and_then(|document| published_ports(document, env).ok())
            .unwrap_or_default();
        let document: NodeDocument = Arc::new(Resolved {
            document: resolved
                .map(|resolved| for_node(&resolved, env))
                .map_err(|err| err.to_string()),
            published,
        });
        let size = document.size();
        let mut cached = lock();
        if cached.bytes + size > MAX_CACHED_BYTES {
            cached.documents.clear();
            cached.bytes = 0;
        }
        let id = deployment.deployment_id.clone();
        if let Some((_, replaced)) = cached.documents.insert(id, (made, document.clone())) {
            let freed = replaced.size();
            cached.bytes = cached.bytes.saturating_sub(freed);
        }
        cached.bytes += size;
        document
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(revision: u32, image: &str) -> Deployment {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "deployment_id": "web", "template_id": "t", "action": "apply",
            "status": "scheduled", "message": "", "node_id": null,
            "requirements": {}, "gpu_ids": [], "env": {"TAG": "1"},
            "rendered_compose": format!("services:\n  a:\n    image: {image}:${{TAG}}\n"),
            "revision": revision, "created_at": 1.0, "updated_at": 1.0
        }))
        .expect("a deployment");
        d.revision = revision;
        d
    }

    #[test]
    fn a_document_is_made_once_per_revision() {
        let documents = NodeDocuments::default();
        let first = documents.of(&deployment(1, "nginx"));
        assert!(first.document.as_ref().is_ok_and(|t| t.contains("nginx:1")));
        // the same revision is not made again, whatever the stored text says
        let again = documents.of(&deployment(1, "other"));
        assert!(Arc::ptr_eq(&first, &again));
        let next = documents.of(&deployment(2, "other"));
        assert!(next.document.as_ref().is_ok_and(|t| t.contains("other:1")));
        let mut remade = deployment(2, "third");
        remade.created_at = 2.0;
        let third = documents.of(&remade);
        assert!(third.document.as_ref().is_ok_and(|t| t.contains("third:1")));
    }

    #[test]
    fn a_redacted_copy_never_stands_for_the_document_its_node_runs() {
        let documents = NodeDocuments::default();
        let shown = deployment(1, "nginx").redacted();
        let redacted = documents.of(&shown);
        assert!(
            redacted
                .document
                .as_ref()
                .is_ok_and(|t| t.contains("nginx:***"))
        );
        let real = documents.of(&deployment(1, "nginx"));
        assert!(real.document.as_ref().is_ok_and(|t| t.contains("nginx:1")));
    }
}
