//! Keeps the templates folder's templates current: read again when a file
//! changes (looked at every two seconds) or at once on SIGHUP.

use std::sync::Arc;
use std::time::Duration;

use miaas_core::templates::Catalog;

/// How often the folder is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Runs until aborted; returns at once when there is no folder.
pub async fn watch(catalog: Arc<Catalog>) {
    let Some(folder) = catalog.folder().map(|f| f.display().to_string()) else {
        return;
    };
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hangup.as_mut() {
            Some(signal) => tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => false,
                _ = signal.recv() => true,
            },
            None => {
                tokio::time::sleep(LOOK_EVERY).await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            tokio::time::sleep(LOOK_EVERY).await;
            false
        };
        match catalog.reload(forced) {
            None => {}
            Some(Ok((templates, errors))) => {
                for err in &errors {
                    tracing::warn!(%folder, %err, "template file left out");
                }
                tracing::info!(%folder, templates, left_out = errors.len(), "templates read again");
            }
            Some(Err(err)) => tracing::warn!(%folder, %err, "cannot read the templates folder"),
        }
    }
}
