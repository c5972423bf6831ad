//! Where a change comes from: the request being served (its id and the client's
//! address) and who made it. A server sets it around each request; the service
//! reads it when it records an event, so that the event log doubles as an audit
//! log without every operation taking these as arguments.

use std::sync::{Arc, Mutex};

use crate::access::Principal;

tokio::task_local! {
    static ORIGIN: Origin;
}

/// The request a change is made for.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The request's id (`X-Request-Id`).
    pub request_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// Who it authenticated as, once known.
    actor: Arc<Mutex<Option<String>>>,
}

impl Origin {
    /// A request with this id from this address.
    pub fn new(request_id: Option<String>, client: Option<String>) -> Self {
        Self {
            request_id,
            client,
            actor: Arc::default(),
        }
    }

    /// Work done by `actor` outside any request (the `miaas` command in local
    /// mode is `console`).
    pub fn acting(actor: &str) -> Self {
        Self {
            actor: Arc::new(Mutex::new(Some(actor.to_string()))),
            ..Self::default()
        }
    }

    /// Runs `work` on behalf of this origin.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        ORIGIN.scope(self, work).await
    }

    /// The origin of the work running now, if any.
    pub fn current() -> Option<Origin> {
        ORIGIN.try_with(Clone::clone).ok()
    }

    /// Who the current request authenticated as, if it did.
    pub fn actor(&self) -> Option<String> {
        self.actor.lock().ok().and_then(|actor| actor.clone())
    }
}

/// Records who the current request is (a no-op outside a request).
pub(crate) fn note_principal(principal: &Principal) {
    let actor = match principal {
        Principal::User { username, .. } => format!("user:{username}"),
        Principal::ApiToken { name, .. } => format!("token:{name}"),
        Principal::Node { node_id } => format!("node:{node_id}"),
        Principal::Joiner => "join-token".into(),
        Principal::Console => "console".into(),
        Principal::Anonymous | Principal::Unrestricted => return,
    };
    let _ = ORIGIN.try_with(|origin| {
        if let Ok(mut slot) = origin.actor.lock() {
            *slot = Some(actor);
        }
    });
}

/// The current request's id, if any (for error bodies and logs).
pub fn request_id() -> Option<String> {
    ORIGIN.try_with(|o| o.request_id.clone()).ok().flatten()
}
