//! Where a change comes from: the request being served (its id and the client's
//! address). A server sets it around each request, and nothing changes it
//! afterwards; the service reads it when it records an event. Who made the change
//! is not here: every write takes its caller as an argument.

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
}

impl Origin {
    /// A request with this id from this address.
    pub fn new(request_id: Option<String>, client: Option<String>) -> Self {
        Self { request_id, client }
    }

    /// Runs `work` on behalf of this origin.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        ORIGIN.scope(self, work).await
    }

    /// The origin of the work running now, if any.
    pub fn current() -> Option<Origin> {
        ORIGIN.try_with(Clone::clone).ok()
    }
}

/// The current request's id, if any (for error bodies and logs).
pub fn request_id() -> Option<String> {
    ORIGIN.try_with(|o| o.request_id.clone()).ok().flatten()
}
