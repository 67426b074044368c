//! The `/ws` endpoint: a thin adapter between a WebSocket and the hub.
//!
//! A WebSocket costs as little as it can while it is idle, since a server
//! holds many of them: it is driven by the task that served its HTTP
//! upgrade (no second task), by one future that reads frames into the hub,
//! writes what the hub queued for it in batches, and keeps one timer for
//! pings, the join deadline and the idle timeout ([`conn`]); the socket's
//! reads go through a buffer shared by all connections on a thread
//! ([`socket::Socket`]), so a connection keeps no read buffer of its own
//! beyond a small one for the message being parsed. Why one future and not
//! axum's split socket with a reader and a writer task: see "One task, one
//! future" under "Where the memory and time go" in `docs/benchmarks.md`
//! (it halved the memory of an idle connection), before simplifying it.
//!
//! - [`upgrade`]: the handshake, behind the server's admission checks.
//! - [`conn`]: the connection loop.
//! - [`socket`]: the socket's read and write buffering.

mod conn;
mod socket;
mod upgrade;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::future::Either;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::AppState;
use conn::{Conn, serve};
use socket::Socket;
pub(crate) use upgrade::{accept, upgrade};

/// An accepted upgrade, handed from the `/ws` handler to the task that
/// serves the HTTP connection, which goes on to serve the WebSocket once
/// the response is out.
#[derive(Debug)]
pub(crate) struct Upgrade {
    on_upgrade: OnUpgrade,
    state: AppState,
    endpoint: Endpoint,
}

/// The protocol a WebSocket speaks.
#[derive(Debug)]
pub(crate) enum Endpoint {
    /// peerchat's own, at `/ws`: rooms, through the hub.
    Rooms,
    /// The PeerJS server protocol, at `/peerjs/peerjs`, with the query
    /// parameters of the WebSocket URL.
    Peerjs(Box<peerchat_peerjs::Params>),
}

/// Where the `/ws` handler leaves an accepted [`Upgrade`] for its
/// connection's task.
pub(crate) type UpgradeSlot = Arc<Mutex<Option<Upgrade>>>;

impl Upgrade {
    /// Waits for the HTTP connection to hand over its socket, then serves
    /// the WebSocket until it closes.
    pub(crate) fn serve(self, peer: Option<SocketAddr>) -> impl Future<Output = ()> {
        let Upgrade {
            on_upgrade,
            state,
            endpoint,
        } = self;
        async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(?peer, %err, "WebSocket upgrade failed");
                    return;
                }
            };
            tracing::debug!(?peer, "WebSocket open");
            // The server's own connections are plain TCP streams: take the
            // stream back from hyper rather than reading through its boxed
            // IO.
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let socket = Socket::new(parts.io.into_inner(), &parts.read_buf);
                    Either::Left(serve(Conn::open(socket, &state, endpoint)))
                }
                Err(upgraded) => {
                    let socket = Socket::new(TokioIo::new(upgraded), &[]);
                    Either::Right(serve(Conn::open(socket, &state, endpoint)))
                }
            }
            .await;
            tracing::debug!(?peer, "WebSocket closed");
        }
    }
}
