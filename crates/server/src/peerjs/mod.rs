//! The PeerJS endpoint (`peerchat serve --peerjs`): the PeerJS server
//! protocol under `/peerjs`, so that apps built on the `peerjs` npm client
//! use this server by setting `path: '/peerjs'` (and its host and port).
//! The protocol's logic is the sans-IO [`peerchat_peerjs::Server`]; this
//! module only moves bytes, behind the same admission rules as `/ws`.
//!
//! - `GET /peerjs/{key}/id`: a fresh id (what the client asks for when the
//!   app gives none).
//! - `GET /peerjs/{key}/peers`: the registered ids, with
//!   `--peerjs-discovery` only (401 otherwise, as `peer` 1.0.2 answers).
//! - `GET /peerjs/{key}/ice-servers`: `{"iceServers": [...]}` with
//!   short-lived TURN credentials for this server's relay, for the app to
//!   pass as the client's `config`.
//! - WebSocket `/peerjs/peerjs?key=&id=&token=&version=`: the protocol.
//!
//! Browsers' requests from other origins are refused unless the origin is
//! allowed (`--allowed-origin`), as on `/ws`; an allowed origin gets the
//! CORS header that lets its page read the answer.

mod args;
mod state;

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use args::{PeerjsArgs, PeerjsConfigError};
pub(crate) use state::Peerjs;

use crate::admission::{self, Refusal};
use crate::ws::{self, Endpoint};
use crate::{AppState, ConnectionInfo};

/// The routes of the PeerJS endpoint, for a server that has it turned on.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/peerjs", get(info))
        .route("/peerjs/", get(info))
        .route("/peerjs/peerjs", get(upgrade))
        .route("/peerjs/{key}/id", get(id))
        .route("/peerjs/{key}/peers", get(peers))
        .route("/peerjs/{key}/ice-servers", get(ice_servers))
}

/// Why a request may not use the endpoint.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// The endpoint is turned off.
    Off,
    /// The server's admission rules refuse it (a browser page from an
    /// origin that may not use this server, say).
    Admission(Refusal),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Off => StatusCode::NOT_FOUND.into_response(),
            Refused::Admission(refusal) => refusal.into_response(),
        }
    }
}

/// The endpoint, if this request may use it: the rules of requests that act
/// for a browser's visitor, as on `/sig`.
fn admit<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Peerjs, Refused> {
    let peerjs = state.peerjs().ok_or(Refused::Off)?;
    admission::check_request(state.config(), headers).map_err(Refused::Admission)?;
    Ok(peerjs)
}

/// `response`, readable by the page that asked (its origin passed
/// [`admit`]), never cached.
fn answer(request: &HeaderMap, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    if let Some(origin) = request.get(ORIGIN) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /peerjs/`: what this is.
async fn info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return refused.into_response();
    }
    let info = serde_json::json!({
        "name": "peerchat",
        "description": "The PeerJS server protocol, served by peerchat",
    });
    answer(&headers, axum::Json(info))
}

/// The WebSocket `/peerjs/peerjs?key=&id=&token=&version=`, behind the
/// same checks as `/ws`. Whatever its parameters, the upgrade is accepted:
/// the client is told over the WebSocket if they are wrong, as `peer` 1.0.2
/// does.
async fn upgrade(
    State(state): State<AppState>,
    info: Option<Extension<ConnectionInfo>>,
    req: Request,
) -> Response {
    if state.peerjs().is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let params = peerchat_peerjs::Params::from_query(req.uri().query().unwrap_or(""));
    ws::accept(state, info, req, Endpoint::Peerjs(Box::new(params)))
}

/// `GET /peerjs/{key}/id`: a random id nobody holds (any key, as with
/// `peer` 1.0.2: the key is checked when the client connects).
async fn id(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let peerjs = match admit(&state, &headers) {
        Ok(peerjs) => peerjs,
        Err(refused) => return refused.into_response(),
    };
    let text = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        peerjs.generate_id(),
    );
    answer(&headers, text)
}

/// `GET /peerjs/{key}/peers`: the registered ids as a JSON array, with
/// `--peerjs-discovery` only.
async fn peers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let peerjs = match admit(&state, &headers) {
        Ok(peerjs) => peerjs,
        Err(refused) => return refused.into_response(),
    };
    match peerjs.discover() {
        Some(ids) => answer(&headers, axum::Json(ids)),
        None => answer(
            &headers,
            (
                StatusCode::UNAUTHORIZED,
                "listing peers is turned off on this server (see --peerjs-discovery)\n",
            ),
        ),
    }
}

/// `GET /peerjs/{key}/ice-servers`: an `RTCConfiguration` with this
/// server's STUN and TURN, the TURN credentials made for this request
/// (valid for `--turn-ttl`).
async fn ice_servers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return refused.into_response();
    }
    // Each request gets credentials of its own, so the relay's
    // per-user quota applies to each PeerJS peer.
    let user = format!("peerjs-{:016x}", rand::random::<u64>());
    let servers = state.config().hub.ice.ice_servers(&user);
    answer(
        &headers,
        axum::Json(serde_json::json!({ "iceServers": servers })),
    )
}
