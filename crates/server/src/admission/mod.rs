//! Who may connect, and which requests may proceed: the checks every
//! transport shares (the WebSocket at `/ws`, the mailbox at `/sig`, and any
//! other endpoint that lets a stranger hold a connection or reach the hub).
//!
//! Two layers:
//!
//! - [`Gate`], at accept time: the connection caps. A connection holds a
//!   [`Pass`] for as long as it is open, whatever it turns into.
//! - Per request: the `Host` allow-list ([`host`], against DNS rebinding),
//!   which [`guard`] applies to every route, and the `Origin` rule
//!   ([`origin`], against cross-site requests), which [`check_request`]
//!   adds for endpoints that act for a browser's visitor. Such a handler
//!   calls it before doing anything and answers its [`Refusal`] as it is.

mod host;
mod origin;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{AppState, Config};

/// The connection caps, checked when a connection is accepted.
#[derive(Debug)]
pub(crate) struct Gate {
    connections: Arc<Semaphore>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turned {
    /// `--max-connections` are open.
    ServerFull,
}

/// A connection's place under the caps, given back when dropped.
#[derive(Debug)]
pub(crate) struct Pass {
    _connection: OwnedSemaphorePermit,
}

impl Gate {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(config.max_connections)),
        }
    }

    /// Lets a new connection in, or says why not.
    pub(crate) fn admit(&self) -> Result<Pass, Turned> {
        let permit = self
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| Turned::ServerFull)?;
        Ok(Pass {
            _connection: permit,
        })
    }
}

/// A request refused by [`check_request`]; answer it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request has no `Host`.
    NoHost,
    /// The request names a host this server does not answer to.
    Host,
    /// A browser page from an origin that may not use this server.
    Origin,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoHost => {
                (StatusCode::BAD_REQUEST, "the request has no Host header\n").into_response()
            }
            Refusal::Host => (
                StatusCode::MISDIRECTED_REQUEST,
                "this peerchat server does not answer to that host name (see --allowed-host)\n",
            )
                .into_response(),
            Refusal::Origin => (
                StatusCode::FORBIDDEN,
                "this page's origin may not use this peerchat server (see --allowed-origin)\n",
            )
                .into_response(),
        }
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

/// Middleware for every route: the `Host` allow-list.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_host(state.config(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}
