//! `POST /sig`: the long-poll mailbox, a thin adapter around
//! [`peerchat_mailbox::Mailbox`].
//!
//! `POST /sig?get=ID&timeoutms=N` waits for a text posted to ID;
//! `POST /sig?set=ID&timeoutms=N` posts its body and waits until a reader
//! took it. A request that hangs up stops waiting at once. Requests from a
//! browser page follow the same `Origin` rule as `/ws`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use peerchat_mailbox::{Mailbox, MailboxConfig, MailboxError, Op, Outcome, Resolution, Ticket};
use tokio::sync::oneshot;

use crate::{AppState, admission};

/// The mailbox and the channels on which waiting requests hear their fate.
#[derive(Debug)]
pub(crate) struct SharedMailbox {
    inner: Mutex<Inner>,
    /// Places for requests whose body is being read, so that the bodies
    /// held at once are bounded.
    readers: tokio::sync::Semaphore,
}

#[derive(Debug)]
struct Inner {
    mailbox: Mailbox,
    waiters: HashMap<Ticket, oneshot::Sender<Resolution>>,
}

impl Inner {
    fn resolve(&mut self, resolved: Vec<(Ticket, Resolution)>) {
        for (ticket, resolution) in resolved {
            if let Some(waiter) = self.waiters.remove(&ticket) {
                let _ = waiter.send(resolution);
            }
        }
    }
}

impl SharedMailbox {
    pub(crate) fn new(config: MailboxConfig) -> Self {
        Self {
            readers: tokio::sync::Semaphore::new(config.max_in_flight),
            inner: Mutex::new(Inner {
                mailbox: Mailbox::new(config),
                waiters: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests waiting and texts queued.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.mailbox.in_flight(), inner.mailbox.queued())
    }

    pub(crate) fn config(&self) -> MailboxConfig {
        self.lock().mailbox.config().clone()
    }

    /// Runs a mailbox call; if it must wait, waits until it is resolved,
    /// its deadline passes, or this future is dropped (the client hung up).
    async fn run(
        self: &Arc<Self>,
        call: impl FnOnce(&mut Mailbox, &mut Vec<(Ticket, Resolution)>) -> Result<Outcome, MailboxError>,
        wait: std::time::Duration,
    ) -> Result<Resolution, MailboxError> {
        let start = tokio::time::Instant::now();
        let (ticket, mut rx) = {
            let mut inner = self.lock();
            let mut resolved = Vec::new();
            let outcome = call(&mut inner.mailbox, &mut resolved);
            inner.resolve(resolved);
            match outcome? {
                Outcome::Done(resolution) => return Ok(resolution),
                Outcome::Pending(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    inner.waiters.insert(ticket, tx);
                    (ticket, rx)
                }
            }
        };
        let mut guard = CancelOnDrop {
            mailbox: self.clone(),
            ticket: Some(ticket),
        };
        let resolution = match tokio::time::timeout_at(start + wait, &mut rx).await {
            Ok(resolution) => resolution.unwrap_or(Resolution::TimedOut),
            Err(_) => {
                // Our deadline passed: let the mailbox time out everything
                // due, which resolves this request too (unless a text won
                // the race, which then counts).
                let mut inner = self.lock();
                let mut resolved = Vec::new();
                inner.mailbox.expire(Instant::now(), &mut resolved);
                inner.resolve(resolved);
                drop(inner);
                match rx.try_recv() {
                    Ok(resolution) => resolution,
                    // Our timer ran a little ahead of the mailbox's deadline:
                    // withdraw the request ourselves (the guard does).
                    Err(_) => return Ok(Resolution::TimedOut),
                }
            }
        };
        guard.ticket = None;
        Ok(resolution)
    }
}

/// Withdraws a waiting request whose client went away.
struct CancelOnDrop {
    mailbox: Arc<SharedMailbox>,
    ticket: Option<Ticket>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let mut inner = self.mailbox.lock();
            inner.mailbox.cancel(ticket);
            inner.waiters.remove(&ticket);
        }
    }
}

pub(crate) async fn handle(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A page from another site can post here with `mode: "no-cors"`: it
    // must not take or leave texts in its visitor's name.
    if let Err(refusal) = admission::check_request(state.config(), &headers) {
        return refusal.into_response();
    }
    let Some(mailbox) = state.mailbox() else {
        return (
            StatusCode::NOT_FOUND,
            "the mailbox is turned off on this server\n",
        )
            .into_response();
    };
    let config = mailbox.config();
    let op = {
        let inner = mailbox.lock();
        inner.mailbox.parse_query(query.as_deref().unwrap_or(""))
    };
    let clustered = state.cluster().is_some();
    let result = match op {
        Err(err) => Err(err),
        Ok(Op::Get { id, wait }) if clustered => run_clustered(&state, &id, None, wait).await,
        Ok(Op::Get { id, wait }) => {
            mailbox
                .run(|mb, out| mb.get(&id, wait, Instant::now(), out), wait)
                .await
        }
        Ok(Op::Set { id, wait }) => {
            let limit = config.max_body;
            // A body announced over the limit is refused before it is read;
            // one that is not announced is read only up to the limit.
            let announced = headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if announced.is_some_and(|n| n > limit as u64) {
                return error_response(&MailboxError::TooLarge { max: limit });
            }
            // At most --mailbox-max-in-flight bodies are read at once.
            let Ok(_reading) = mailbox.readers.try_acquire() else {
                return error_response(&MailboxError::Busy);
            };
            let read = tokio::time::timeout(
                state.config().handshake_timeout,
                axum::body::to_bytes(body, limit),
            )
            .await;
            let text = match read {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => return error_response(&MailboxError::TooLarge { max: limit }),
                Err(_) => {
                    return (
                        StatusCode::REQUEST_TIMEOUT,
                        "the request body did not arrive in time\n",
                    )
                        .into_response();
                }
            };
            if clustered {
                run_clustered(&state, &id, Some(text), wait).await
            } else {
                mailbox
                    .run(|mb, out| mb.set(&id, text, wait, Instant::now(), out), wait)
                    .await
            }
        }
    };
    match result {
        Ok(Resolution::Text(text)) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            text,
        )
            .into_response(),
        Ok(Resolution::Taken) => StatusCode::OK.into_response(),
        Ok(Resolution::TimedOut) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => error_response(&err),
    }
}

/// A mailbox request on a server of a cluster: it runs where its id lives
/// (perhaps another server), and its outcome comes back here.
async fn run_clustered(
    state: &AppState,
    id: &str,
    text: Option<bytes::Bytes>,
    wait: std::time::Duration,
) -> Result<Resolution, MailboxError> {
    let Some(io) = state.cluster() else {
        return Err(MailboxError::Busy);
    };
    let (req, rx) = io.mailbox_waiter();
    state.with_node(|node, _| node.mailbox_request(req, id, text, wait, Instant::now()));
    let mut guard = WithdrawOnDrop {
        state: state.clone(),
        req: Some(req),
    };
    // The id's owner times the request out; the margin covers the trip
    // back (and an owner that went away meanwhile).
    let margin = std::time::Duration::from_secs(2);
    let result = match tokio::time::timeout(wait + margin, rx).await {
        Ok(Ok(result)) => result,
        _ => Ok(Resolution::TimedOut),
    };
    if let Some(req) = guard.req.take() {
        if !matches!(result, Ok(Resolution::TimedOut)) {
            return result;
        }
        // Not resolved in time: withdraw it.
        withdraw(state, req);
    }
    result
}

/// Withdraws a clustered request whose client went away.
struct WithdrawOnDrop {
    state: AppState,
    req: Option<u64>,
}

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        if let Some(req) = self.req.take() {
            withdraw(&self.state, req);
        }
    }
}

fn withdraw(state: &AppState, req: u64) {
    state.with_node(|node, _| node.mailbox_cancel(req));
    if let Some(io) = state.cluster() {
        io.mailbox_done(req, None);
    }
}

fn error_response(err: &MailboxError) -> Response {
    let status = match err {
        MailboxError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        MailboxError::QueueFull => StatusCode::TOO_MANY_REQUESTS,
        MailboxError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, format!("{err}\n")).into_response()
}
