//! The WebSocket handshake of `/ws` (and of the PeerJS endpoint's
//! `/peerjs/peerjs`): the checks a WebSocket upgrade request must pass
//! (RFC 6455's, then the server's [admission rules](crate::admission)),
//! and the `101 Switching Protocols` answer.

use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite;

use super::{Endpoint, Upgrade};
use crate::{AppState, ConnectionInfo, admission};

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    info: Option<Extension<ConnectionInfo>>,
    req: Request,
) -> Response {
    accept(state, info, req, Endpoint::Rooms)
}

/// Checks a WebSocket upgrade request and, when it may proceed, answers
/// `101 Switching Protocols` and leaves the connection to be served as
/// `endpoint`.
pub(crate) fn accept(
    state: AppState,
    info: Option<Extension<ConnectionInfo>>,
    mut req: Request,
    endpoint: Endpoint,
) -> Response {
    let headers = req.headers();
    if req.method() != Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request method must be `GET`",
        );
    }
    if !header_contains(headers, &header::CONNECTION, "upgrade") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Connection header did not include 'upgrade'",
        );
    }
    if !header_eq(headers, &header::UPGRADE, "websocket") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`Upgrade` header did not include 'websocket'",
        );
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        );
    };
    if !header_eq(headers, &header::SEC_WEBSOCKET_VERSION, "13") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Version` header did not include '13'",
        );
    }
    let pass = info.as_ref().map(|Extension(info)| &*info.pass);
    if let Err(refusal) = admission::admit_session(&state, pass, headers) {
        return refusal.into_response();
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        );
    };
    let upgrade = Upgrade {
        on_upgrade,
        state,
        endpoint,
    };
    match info {
        Some(Extension(info)) => {
            // The connection's own task goes on to serve the WebSocket.
            let mut slot = info.upgrade.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(upgrade);
        }
        None => {
            tokio::spawn(upgrade.serve(None));
        }
    }
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
        .header(header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_default()
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

fn header_eq(headers: &HeaderMap, name: &HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

fn header_contains(headers: &HeaderMap, name: &HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.to_ascii_lowercase().contains(value))
}
