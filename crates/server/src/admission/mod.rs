//! Who may connect, and which requests may proceed: the checks every
//! transport shares (the WebSocket at `/ws`, the mailbox at `/sig`, and any
//! other endpoint that lets a stranger hold a connection or reach the hub).
//!
//! Two layers:
//!
//! - [`Gate`], at accept time: the connection caps. A connection holds a
//!   [`Pass`] for as long as it is open, whatever it turns into.
//! - [`check_request`], per request: the rules on a request's headers (the
//!   `Origin` rule, against cross-site WebSocket hijacking). A handler
//!   calls it before doing anything and answers its [`Refusal`] as it is.

mod origin;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Config;

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
    /// A browser page from an origin that may not use this server.
    Origin,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Origin => (
                StatusCode::FORBIDDEN,
                "this page's origin may not use this peerchat server (see --allowed-origin)\n",
            )
                .into_response(),
        }
    }
}

/// Checks a request's headers against the server's rules.
pub(crate) fn check_request(config: &Config, headers: &HeaderMap) -> Result<(), Refusal> {
    if !origin::allowed(headers, &config.allowed_origins) {
        tracing::info!(origin = ?headers.get("origin"), "request refused: origin not allowed");
        return Err(Refusal::Origin);
    }
    Ok(())
}
