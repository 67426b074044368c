//! `/poll`: the signaling protocol over plain HTTP requests, for clients
//! whose WebSocket cannot get through (a proxy that strips upgrades, a
//! tunnel that cuts them). One more thin adapter around the same hub as
//! `/ws`: a long-poll session is a hub connection, with the same limits
//! (message size, rate, bounded queue), the same admission rules (`Host`,
//! `Origin`, connection caps, join rate) and the same resume rules.
//!
//! - `POST /poll` opens a session: `{"session": TOKEN, "wait_ms": N}`.
//! - `POST /poll/TOKEN` with a JSON array of client messages sends them, in
//!   order; `204`.
//! - `GET /poll/TOKEN?ack=SEQ` waits (up to `wait_ms`) for server messages
//!   and answers `{"seq": SEQ', "messages": [...]}`; a batch is sent again
//!   until a later request acknowledges its `seq`, so a lost response loses
//!   nothing. The session's last answer carries `"closed"`.
//! - `DELETE /poll/TOKEN` ends the session like a dropped connection (the
//!   member may resume); a `leave` message leaves for good.
//!
//! A session whose client makes no request for `--idle-timeout` is lost.

mod session;

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::{ClientMessage, RawValue};
use peerchat_rooms::Departure;

pub(crate) use session::Sessions;
use session::{Closed, Session};

use crate::state::{Next, Outbound};
use crate::{AppState, ConnectionInfo, admission};

/// Most bytes of messages in one answer (at least one message goes,
/// whatever its size).
const BATCH_BYTES: usize = 64 * 1024;

/// Most messages in one send request.
const MAX_SEND_MESSAGES: usize = 64;

/// How often quiet sessions are looked for.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long a receive request waits for messages: the WebSocket ping
/// interval, so that a proxy's idle timeout treats both alike.
fn wait(state: &AppState) -> Duration {
    state.config().ping_interval
}

fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unknown_session() -> Response {
    json(
        StatusCode::NOT_FOUND,
        r#"{"error":"unknown_session","message":"no such session (it ended, or the server restarted): open a new one"}"#,
    )
}

/// `POST /poll`: opens a session.
pub(crate) async fn open(
    State(state): State<AppState>,
    info: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
) -> Response {
    let pass = info.as_ref().map(|Extension(info)| &*info.pass);
    let session_pass = match admission::admit_poll(&state, pass, &headers) {
        Ok(pass) => pass,
        Err(refusal) => return refusal.into_response(),
    };
    let token = state.poll_sessions().open(&state, session_pass);
    let body = serde_json::json!({
        "session": token,
        "wait_ms": wait(&state).as_millis() as u64,
    });
    json(StatusCode::CREATED, body.to_string())
}

/// `POST /poll/TOKEN`: client messages, a JSON array of them.
pub(crate) async fn send(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refusal) = admission::check_request(state.config(), &headers) {
        return refusal.into_response();
    }
    let Some(session) = state.poll_sessions().get(&token) else {
        return unknown_session();
    };
    let max = state.config().max_message_size;
    let limit = max * MAX_SEND_MESSAGES;
    let read = tokio::time::timeout(
        state.config().handshake_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    r#"{{"error":"too_large","message":"a send may be at most {limit} bytes"}}"#
                ),
            );
        }
        Err(_) => return json(StatusCode::REQUEST_TIMEOUT, r#"{"error":"timeout"}"#),
    };
    let messages: Vec<&RawValue> = match serde_json::from_slice(&body) {
        Ok(messages) => messages,
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"bad_json","message":"the body must be a JSON array of client messages"}"#,
            );
        }
    };
    if messages.len() > MAX_SEND_MESSAGES {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                r#"{{"error":"too_large","message":"at most {MAX_SEND_MESSAGES} messages per send"}}"#
            ),
        );
    }
    session.lock().last_seen = Instant::now();
    let conn = session.conn;
    // Parsed before the hub's lock is taken, as on `/ws`.
    let parsed: Vec<_> = messages
        .iter()
        .map(|m| {
            let text = m.get();
            let message = (text.len() <= max).then(|| ClientMessage::parse(text));
            (text, message)
        })
        .collect();
    let now = Instant::now();
    let mut joined = false;
    state.with_hub_and_queues(|hub, queues, out| {
        for (text, message) in parsed {
            let Some(message) = message else {
                hub.close(
                    conn,
                    ErrorCode::TooLarge,
                    &format!("messages may be at most {max} bytes"),
                    now,
                    out,
                );
                break;
            };
            hub.handle_message(conn, text, message, now, queues, out);
        }
        joined = hub.is_joined(conn);
    });
    if joined {
        // The join deadline no longer applies.
        session.lock().join_by = None;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /poll/TOKEN?ack=SEQ`: waits for server messages.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admission::check_request(state.config(), &headers) {
        return refusal.into_response();
    }
    let Some(session) = state.poll_sessions().get(&token) else {
        return unknown_session();
    };
    let ack = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("ack="))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let me = {
        let mut inner = session.lock();
        inner.last_seen = Instant::now();
        if inner.unacked.as_ref().is_some_and(|(seq, _)| ack >= *seq) {
            inner.unacked = None;
        }
        if let Some((_, body)) = &inner.unacked {
            return json(StatusCode::OK, body.clone());
        }
        inner.receiver += 1;
        inner.receiving = true;
        inner.receiver
    };
    // An older request still waiting is sent away with nothing.
    session.superseded.notify_waiters();
    let answer = wait_for_messages(&state, &session, me).await;
    let mut inner = session.lock();
    if inner.receiver == me {
        inner.receiving = false;
    }
    inner.last_seen = Instant::now();
    let Some(batch) = answer else {
        drop(inner);
        return json(StatusCode::OK, r#"{"messages":[]}"#);
    };
    let seq = inner.next_batch;
    inner.next_batch += 1;
    let body = batch.body(seq);
    inner.unacked = Some((seq, body.clone()));
    let closed = batch.closed;
    if let Some(closed) = closed {
        inner.closed = Some(closed);
    }
    drop(inner);
    if closed.is_some() {
        // The last words are out: the session is over.
        state.poll_sessions().end(&state, &token, Departure::Lost);
    }
    json(StatusCode::OK, body)
}

/// `DELETE /poll/TOKEN`: ends the session as a dropped connection would.
pub(crate) async fn close(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admission::check_request(state.config(), &headers) {
        return refusal.into_response();
    }
    if state.poll_sessions().get(&token).is_none() {
        return unknown_session();
    }
    state.poll_sessions().end(&state, &token, Departure::Lost);
    StatusCode::NO_CONTENT.into_response()
}

/// What one answer carries.
#[derive(Debug, Default)]
struct Batch {
    frames: Vec<Bytes>,
    bytes: usize,
    closed: Option<Closed>,
}

impl Batch {
    /// The answer's JSON: the frames are JSON texts already, put in an
    /// array as they are.
    fn body(&self, seq: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes + self.frames.len() + 64);
        out.put_slice(format!(r#"{{"seq":{seq},"messages":["#).as_bytes());
        for (i, frame) in self.frames.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(frame);
        }
        out.put_u8(b']');
        match self.closed {
            None => {}
            Some(Closed::Left) => out.put_slice(br#","closed":"left""#),
            Some(Closed::Lost) => out.put_slice(br#","closed":"lost""#),
            Some(Closed::Reason(code)) => {
                out.put_slice(format!(r#","closed":"{}""#, code.as_str()).as_bytes());
            }
        }
        out.put_u8(b'}');
        out.freeze()
    }
}

/// Waits until the session has messages (or its end) to hand out, a newer
/// receive request takes over, or the wait is over (then `None`).
async fn wait_for_messages(state: &AppState, session: &Arc<Session>, me: u64) -> Option<Batch> {
    let superseded = session.superseded.notified();
    tokio::pin!(superseded);
    superseded.as_mut().enable();
    if session.lock().receiver != me {
        return None;
    }
    if let Some(closed) = session.lock().closed {
        return Some(Batch {
            closed: Some(closed),
            ..Batch::default()
        });
    }
    let collect = poll_fn(|cx| {
        let mut batch = Batch::default();
        loop {
            match session.outbox.poll_next(cx) {
                Next::Item(Outbound::Frame(frame)) => {
                    let frame = frame.into_bytes();
                    batch.bytes += frame.len();
                    batch.frames.push(frame);
                    if batch.bytes >= BATCH_BYTES {
                        return Poll::Ready(batch);
                    }
                }
                Next::Item(Outbound::Close(reason)) => {
                    batch.closed = Some(reason.map_or(Closed::Left, Closed::Reason));
                    return Poll::Ready(batch);
                }
                // (`Shut` is the PeerJS endpoint's, never a session's.)
                Next::Item(Outbound::Shut { .. }) | Next::Closed | Next::Killed => {
                    batch.closed = Some(Closed::Lost);
                    return Poll::Ready(batch);
                }
                Next::Empty if batch.frames.is_empty() => return Poll::Pending,
                Next::Empty => return Poll::Ready(batch),
            }
        }
    });
    tokio::select! {
        batch = collect => Some(batch),
        () = &mut superseded => None,
        () = tokio::time::sleep(wait(state)) => None,
    }
}
