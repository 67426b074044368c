//! Who may connect, and which requests may proceed: the checks every
//! transport shares (the WebSocket at `/ws`, the mailbox at `/sig`, and any
//! other endpoint that lets a stranger hold a connection or reach the hub).
//!
//! - At accept time, [`Gate::admit`]: `--max-connections` in all and
//!   `--max-connections-per-address` from one client network ([`addresses`]).
//!   A connection holds a [`Pass`] for as long as it is open, whatever it
//!   turns into.
//! - Per request: the `Host` allow-list ([`host`], against DNS rebinding),
//!   which [`guard`] applies to every route; [`check_request`] adds the
//!   `Origin` rule ([`origin`], against cross-site requests) for endpoints
//!   that act for a browser's visitor; [`admit_session`] adds the
//!   per-address limits on opening sessions (a WebSocket: a membership).
//!   Behind a proxy named with `--trusted-proxy`, the client's address is
//!   taken from its forwarding headers ([`forwarded`]). A handler calls
//!   these before doing anything and answers a [`Refusal`] as it is.
//!
//! Loopback clients (this host: local tools, or a local proxy not named
//! with `--trusted-proxy`) are not held to the per-address limits.

mod addresses;
mod forwarded;
mod host;
mod origin;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use forwarded::{BadNet, IpNet};

use crate::{AppState, Config};
use addresses::{Addresses, Limits, Network, Over};

/// The connection caps and per-address limits.
#[derive(Debug)]
pub(crate) struct Gate {
    connections: Arc<Semaphore>,
    addresses: Arc<Mutex<Addresses>>,
    trusted: Vec<IpNet>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turned {
    /// `--max-connections` are open.
    ServerFull,
    /// Its address holds `--max-connections-per-address`.
    AddressFull,
}

/// A connection's place under the caps, given back when dropped.
#[derive(Debug)]
pub(crate) struct Pass {
    _connection: OwnedSemaphorePermit,
    /// Its address's place, unless it is exempt (loopback, or a proxy).
    _address: Option<Slot>,
    /// For a connection from a trusted proxy: the place of the client it
    /// carries a session for.
    forwarded: Mutex<Option<Slot>>,
    /// Where it comes from.
    peer: IpAddr,
}

/// One connection counted against a network.
#[derive(Debug)]
struct Slot {
    addresses: Arc<Mutex<Addresses>>,
    net: Network,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.addresses).close(self.net);
    }
}

fn lock(addresses: &Mutex<Addresses>) -> MutexGuard<'_, Addresses> {
    addresses.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            addresses: Arc::new(Mutex::new(Addresses::new(Limits {
                connections: config.max_connections_per_address,
                joins_per_sec: config.join_rate_per_address,
                join_burst: config.join_burst_per_address,
            }))),
            trusted: config.trusted_proxies.clone(),
        }
    }

    /// Whether `ip` is held to the per-address limits itself.
    fn limited(&self, ip: IpAddr) -> bool {
        !(forwarded::canonical(ip).is_loopback() || self.trusted.iter().any(|n| n.contains(ip)))
    }

    /// Lets a new connection from `peer` in, or says why not.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<Pass, Turned> {
        let permit = self
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| Turned::ServerFull)?;
        let address = if self.limited(peer.ip()) {
            Some(self.open(peer.ip()).ok_or(Turned::AddressFull)?)
        } else {
            None
        };
        Ok(Pass {
            _connection: permit,
            _address: address,
            forwarded: Mutex::new(None),
            peer: peer.ip(),
        })
    }

    fn open(&self, ip: IpAddr) -> Option<Slot> {
        let net = Network::of(ip);
        lock(&self.addresses).open(net, Instant::now()).ok()?;
        Some(Slot {
            addresses: self.addresses.clone(),
            net,
        })
    }
}

/// A request refused by the admission rules; answer it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request has no `Host`.
    NoHost,
    /// The request names a host this server does not answer to.
    Host,
    /// A browser page from an origin that may not use this server.
    Origin,
    /// The client's address holds its share of connections.
    AddressFull,
    /// The client's address opens sessions too fast.
    JoinRate,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, why) = match self {
            Refusal::NoHost => (StatusCode::BAD_REQUEST, "the request has no Host header\n"),
            Refusal::Host => (
                StatusCode::MISDIRECTED_REQUEST,
                "this peerchat server does not answer to that host name (see --allowed-host)\n",
            ),
            Refusal::Origin => (
                StatusCode::FORBIDDEN,
                "this page's origin may not use this peerchat server (see --allowed-origin)\n",
            ),
            Refusal::AddressFull => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from your address (see --max-connections-per-address)\n",
            ),
            Refusal::JoinRate => (
                StatusCode::TOO_MANY_REQUESTS,
                "connecting too fast from your address; try again in a few seconds\n",
            ),
        };
        (status, why).into_response()
    }
}

/// Checks a request's `Host` against the allow-list.
pub(crate) fn check_host(config: &Config, headers: &HeaderMap) -> Result<(), Refusal> {
    if !headers.contains_key(axum::http::header::HOST) {
        return Err(Refusal::NoHost);
    }
    if !host::allowed(headers, &config.allowed_hosts) {
        tracing::debug!(host = ?headers.get("host"), "request refused: host not allowed");
        return Err(Refusal::Host);
    }
    Ok(())
}

/// Checks a request's headers against every rule: the `Host` allow-list,
/// then the `Origin` rule.
pub(crate) fn check_request(config: &Config, headers: &HeaderMap) -> Result<(), Refusal> {
    check_host(config, headers)?;
    if !origin::allowed(headers, &config.allowed_origins) {
        tracing::info!(origin = ?headers.get("origin"), "request refused: origin not allowed");
        return Err(Refusal::Origin);
    }
    Ok(())
}

/// Checks a request that opens a session (a WebSocket, which holds a
/// membership): [`check_request`]'s rules, then the per-address join rate;
/// behind a trusted proxy, the client's place under
/// `--max-connections-per-address` is taken too, and held by the
/// connection's `pass` from then on. `pass` is `None` only for a router
/// served without [`crate::run`] (no caps apply then).
pub(crate) fn admit_session(
    state: &AppState,
    pass: Option<&Pass>,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let config = state.config();
    check_request(config, headers)?;
    let Some(pass) = pass else {
        return Ok(());
    };
    let gate = state.gate();
    let client = forwarded::client_addr(pass.peer, headers, &gate.trusted);
    if !gate.limited(client) {
        return Ok(());
    }
    let net = Network::of(client);
    match lock(&gate.addresses).join(net, Instant::now()) {
        Ok(()) => {}
        Err(Over::JoinRate | Over::Connections) => {
            tracing::info!(%client, "session refused: --join-rate-per-address");
            return Err(Refusal::JoinRate);
        }
    }
    if client != forwarded::canonical(pass.peer) {
        // Through a proxy: the connection counts for the client.
        let slot = gate.open(client).ok_or_else(|| {
            tracing::info!(%client, "session refused: --max-connections-per-address");
            Refusal::AddressFull
        })?;
        *pass.forwarded.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
    }
    Ok(())
}

/// Middleware for every route: the `Host` allow-list.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_host(state.config(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}
