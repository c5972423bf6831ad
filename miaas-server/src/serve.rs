//! Serving connections with timers. `axum::serve` sets no timer, so hyper's
//! header read timeout never runs and a client that sends its headers slowly (or
//! never) holds a connection, and a graceful shutdown, for as long as it likes.
//! Here every connection gets `--header-read-timeout` to send its request head,
//! and a shutdown stops accepting, lets requests in flight finish and closes idle
//! connections. (The whole-request limit, `--request-timeout`, is a layer of the
//! router: [`crate::overload`].)

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use crate::tls::ServerTls;

/// The router with the connection's peer address, as hyper calls it.
type ConnectionService = TowerToHyperService<
    axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>,
>;

/// Connections the kernel may queue before they are accepted. A fleet of agents
/// reconnecting at once (or a burst of logins) must not overflow it: a dropped
/// connection attempt is only retried by the client a second later.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `host:port` (the first address the host resolves to) with a backlog of
/// [`LISTEN_BACKLOG`] (capped by the kernel's `somaxconn`).
pub async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown`
/// completes, then waits for the connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    // `stop` tells connections to finish; each holds an `in_flight` receiver until
    // it ends, so `tracker.closed()` completes when the last one has
    let (stop, stopping) = watch::channel(false);
    let (tracker, in_flight) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // out of file descriptors and the like: pass, do not spin
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(service) = make_service.call(peer).await;
        let builder = builder.clone();
        let stopping = stopping.clone();
        let held = in_flight.clone();
        let acceptor = tls.as_ref().map(ServerTls::acceptor);
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            match acceptor {
                None => connection(&builder, TokioIo::new(stream), service, stopping, peer).await,
                Some(acceptor) => {
                    // the handshake is part of the request head: same time limit
                    match tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            connection(&builder, TokioIo::new(stream), service, stopping, peer)
                                .await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(held);
        });
    }
    drop(listener);
    drop(in_flight);
    let _ = stop.send(true);
    tracker.closed().await;
}

/// Serves one connection until it ends, or finishes it gracefully once `stopping`
/// changes.
async fn connection<I>(
    builder: &Builder<TokioExecutor>,
    io: TokioIo<I>,
    service: ConnectionService,
    mut stopping: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopping.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(err) = finished {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}
