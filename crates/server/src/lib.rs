//! The peerchat signaling server as a library.
//!
//! [`app`] builds the HTTP router (web client, `/ws`, `/healthz`) and [`run`]
//! serves it on a listener until a shutdown future resolves, so tests can
//! bind `127.0.0.1:0` and run a real server in-process. Room and presence
//! logic lives in the sans-IO [`peerchat_rooms::Hub`]; this crate only moves
//! bytes between it and sockets.
#![forbid(unsafe_code)]

mod accept;
mod admission;
mod assets;
pub mod cluster;
pub mod config;
pub mod ice;
mod mailbox;
pub mod peerjs;
mod state;
mod ws;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use accept::{FdLimitTooLow, descriptors_needed, raise_fd_limit};
pub use admission::{BadNet, IpNet};
pub use config::{Config, ConfigError, ServeArgs};
pub use ice::start_relay;
pub use state::AppState;

/// The HTTP routes: the web client, the `/ws` signaling endpoint and
/// `/healthz`.
pub fn app(state: AppState) -> Router {
    let peerjs = match state.peerjs() {
        Some(_) => peerjs::routes(),
        None => Router::new(),
    };
    Router::new()
        .merge(peerjs)
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/sig", post(mailbox::handle))
        .route("/", get(assets::index))
        .route("/r/{room}", get(assets::index))
        .route("/manual", get(assets::manual))
        .fallback(assets::file)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::guard,
        ))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    let stats = state.stats();
    let mut health = serde_json::json!({
        "status": "ok",
        "connections": stats.connections,
        "rooms": stats.rooms,
        "members": stats.members,
        "away": stats.away,
    });
    if let (Some(cluster), Some(io)) = (state.cluster_stats(), state.cluster()) {
        health["node"] = cluster.node.to_string().into();
        health["redis"] = if io.redis_up() { "up" } else { "down" }.into();
        health["serving"] = cluster.serving.into();
        health["peers"] = cluster.peers.into();
        health["rooms_owned"] = cluster.rooms_owned.into();
        if !cluster.serving {
            health["status"] = "degraded".into();
        }
    }
    if let Some(mailbox) = state.mailbox() {
        let (waiting, queued) = mailbox.counts();
        health["mailbox_waiting"] = waiting.into();
        health["mailbox_queued"] = queued.into();
    }
    if let Some(peerjs) = state.peerjs() {
        let stats = peerjs.stats();
        health["peerjs_clients"] = stats.clients.into();
        health["peerjs_queued"] = stats.queued_messages.into();
    }
    axum::Json(health)
}

/// Serves `state` on `listener` until `shutdown` resolves, then tells every
/// WebSocket client that the server is going away and waits (briefly) for
/// open connections to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = state.config().clone();
    let router = app(state.clone());
    let gate = state.gate();
    // Every HTTP connection task holds a receiver; once all are dropped,
    // `stop.closed()` resolves.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    // Ends the resume grace periods of members whose connection was lost.
    let timers = tokio::spawn(state.clone().drive_timers());
    let peerjs_timers = state
        .peerjs()
        .cloned()
        .map(|p| tokio::spawn(p.drive_timers()));
    // Talk to Redis, when the server is one of a cluster.
    let cluster = cluster::ClusterIo::start(&state);
    let mut accept_errors = accept::AcceptErrors::default();

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: the listener
                    // itself is fine, so keep accepting, after a pause.
                    let after = accept_errors.on_error(&err, std::time::Instant::now());
                    if let Some(n) = after.log {
                        tracing::warn!(%err, failures = n, "accept failed; retrying every second while it does");
                    }
                    if !after.wait.is_zero() {
                        tokio::select! {
                            () = tokio::time::sleep(after.wait) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let pass = match gate.admit(peer) {
            Ok(pass) => Arc::new(pass),
            Err(admission::Turned::ServerFull) => {
                tracing::warn!(%peer, "connection refused: --max-connections reached");
                drop(stream);
                continue;
            }
            Err(admission::Turned::AddressFull) => {
                tracing::info!(%peer, "connection refused: --max-connections-per-address reached");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stopping = stopping.clone();
        tokio::spawn(serve_connection(
            stream,
            peer,
            pass,
            router.clone(),
            config.handshake_timeout,
            stopping,
        ));
    }

    tracing::info!("shutting down");
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    state.shutdown();
    if let Some(io) = state.cluster() {
        // The rooms owned here are closed, their members elsewhere told,
        // and the server leaves the cluster.
        io.flush(config.handshake_timeout).await;
    }
    for task in cluster {
        task.abort();
    }
    timers.abort();
    if let Some(peerjs_timers) = peerjs_timers {
        peerjs_timers.abort();
    }
    let drain = async {
        stop.closed().await;
        state.closed().await;
    };
    if tokio::time::timeout(config.handshake_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    Ok(())
}

/// Serves one accepted connection: HTTP until it ends, or, when `/ws`
/// accepted an upgrade, the WebSocket after it, in the same task. The
/// connection holds its place under the caps (`pass`) throughout.
fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    pass: Arc<admission::Pass>,
    router: Router,
    handshake_timeout: std::time::Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let upgrade = ws::UpgradeSlot::default();
    let info = ConnectionInfo {
        pass: pass.clone(),
        upgrade: upgrade.clone(),
    };
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(info.clone());
        router.clone().oneshot(req)
    });
    // On the heap, so that once it is done the connection's task holds
    // only what a WebSocket needs.
    let mut http = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(handshake_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades(),
    );
    async move {
        let result = tokio::select! {
            result = http.as_mut() => result,
            _ = stopping.changed() => {
                http.as_mut().graceful_shutdown();
                http.as_mut().await
            }
        };
        drop(http);
        if let Err(err) = result {
            tracing::debug!(%peer, %err, "HTTP connection ended with an error");
        }
        // Only HTTP connections hold up the server's shutdown; WebSockets
        // are told to close by the hub.
        drop(stopping);
        let accepted = upgrade.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(accepted) = accepted {
            accepted.serve(Some(peer)).await;
        }
        drop(pass);
    }
}

/// Per-connection facts the router's handlers may read from request
/// extensions. Holding it holds the connection's place under the caps.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    pub(crate) pass: Arc<admission::Pass>,
    /// Where `/ws` leaves an accepted upgrade for the connection's task.
    pub(crate) upgrade: ws::UpgradeSlot,
}
