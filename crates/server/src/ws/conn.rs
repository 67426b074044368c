//! The connection loop: one WebSocket served as one future that reads
//! frames into the hub, writes what the hub queued for it in batches, and
//! keeps one timer for pings, the join deadline and the idle timeout.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Sink, Stream};
use peerchat_peerjs::PeerjsError;
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::ClientMessage;
use peerchat_rooms::Departure;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::Endpoint;
use super::socket::Socket;
use crate::AppState;
use crate::peerjs::Peerjs;
use crate::state::{Next, Outbound, Outbox};

/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long the client has to answer our close frame with its own: a
/// browser does so at once; one that does not is not waited for longer.
const CLOSE_REPLY_GRACE: Duration = Duration::from_secs(1);

/// Most queued frames written to the socket before one flush.
const WRITE_BATCH: usize = 64;

/// How reading a frame went.
enum Read {
    /// Go on.
    More,
    /// The client is gone (it left, or the connection was lost): stop at
    /// once.
    Gone(Departure),
    /// The hub is closing the connection: stop reading, and let what is
    /// queued (the reason, then a close frame) go out.
    Closing,
}

/// How writing went, in [`Conn::poll_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Something was written or flushed: poll again.
    Some,
    /// Nothing could be written now; the task is woken when it can.
    Nothing,
    /// The connection is over: the hub's close frame is out, or the
    /// socket failed.
    Over,
}

impl Written {
    fn from_busy(busy: bool) -> Self {
        if busy { Self::Some } else { Self::Nothing }
    }
}

/// One WebSocket and its place in the hub.
pub(super) struct Conn<'a, S> {
    /// The WebSocket; `None` only if renewing its parser failed.
    ws: Option<WebSocketStream<Socket<S>>>,
    /// The last message grew the parser's buffer: renew the parser once it
    /// holds nothing, to give that memory back.
    renew_parser: bool,
    state: &'a AppState,
    id: peerchat_rooms::ConnId,
    /// The PeerJS endpoint, for its connections; `None` for the hub's.
    peerjs: Option<&'a Peerjs>,
    outbox: Arc<Outbox>,
    /// Still reading: false once the hub is closing the connection.
    reading: bool,
    /// When anything was last heard from the client.
    last_seen: Instant,
    /// The join deadline, until it has passed.
    join_by: Option<Instant>,
    next_ping: Instant,
    ping_due: bool,
    /// How long the last frames may take to go out, once closing.
    close_by: Option<Instant>,
    /// Frames written since the last flush.
    batch: usize,
    unflushed: bool,
    /// A close frame is on its way.
    close_sent: bool,
    /// Our close frame is out: the connection ends when the client's
    /// arrives, or at `close_by`.
    awaiting_close: bool,
    /// A close frame to send at once, for a protocol violation.
    violation: Option<CloseFrame>,
}

impl<'a, S> Conn<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    /// Registers a new WebSocket with the hub, or with the PeerJS endpoint.
    pub(super) fn open(socket: Socket<S>, state: &'a AppState, endpoint: Endpoint) -> Option<Self> {
        // Made at once (there is no handshake left to do), outside the
        // connection's future, so that the future holds it only once.
        let ws = Some(websocket(socket, state)?);
        let now = Instant::now();
        let (id, outbox, peerjs, join_by) = match endpoint {
            Endpoint::Rooms => {
                let (id, outbox) = state.connect();
                (id, outbox, None, Some(now + state.config().join_timeout))
            }
            Endpoint::Peerjs(params) => {
                // A PeerJS client registers with the URL's parameters: it is
                // answered at once, and has nothing to join.
                let peerjs = state.peerjs()?;
                state.enter();
                let (id, outbox) = peerjs.connect(&params);
                (id, outbox, Some(&**peerjs), None)
            }
        };
        Some(Conn {
            ws,
            renew_parser: false,
            state,
            id,
            peerjs,
            outbox,
            reading: true,
            last_seen: now,
            join_by,
            next_ping: now + state.config().ping_interval,
            ping_due: false,
            close_by: None,
            batch: 0,
            unflushed: false,
            close_sent: false,
            awaiting_close: false,
            violation: None,
        })
    }
}

/// A WebSocket parser over `socket`, made at once (there is no handshake
/// left to do).
fn websocket<S>(socket: Socket<S>, state: &AppState) -> Option<WebSocketStream<Socket<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let size = state.config().ws_buffer_size;
    let max = state.config().max_message_size;
    // Frames go straight to the `Socket`, which gathers them.
    let config = WebSocketConfig::default()
        .read_buffer_size(size)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).now_or_never()
}

/// Serves a WebSocket until it ends, then tells the hub how.
pub(super) fn serve<'a, S>(conn: Option<Conn<'a, S>>) -> impl Future<Output = ()> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    let mut conn = conn;
    // The future owns the connection once, and uses it in place.
    async move {
        let Some(conn) = conn.as_mut() else {
            return;
        };
        let mut timer = pin!(tokio::time::sleep_until(conn.next_deadline()));
        let how = poll_fn(|cx| conn.poll(cx, timer.as_mut())).await;
        match conn.peerjs {
            Some(peerjs) => {
                peerjs.disconnect(conn.id);
                conn.state.leave();
            }
            None => conn.state.disconnect(conn.id, how),
        }
    }
}

impl<'a, S> Conn<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    fn poll(&mut self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>) -> Poll<Departure> {
        loop {
            if self.outbox.poll_killed(cx).is_ready() {
                return Poll::Ready(Departure::Lost);
            }
            let mut busy = match self.poll_write(cx) {
                Written::Some => true,
                Written::Nothing => false,
                // The hub's close frame is out, or the socket failed.
                Written::Over => return Poll::Ready(Departure::Lost),
            };
            if self.awaiting_close && timer.deadline() != self.next_deadline() {
                // Our close frame just went out: wake at `close_by`.
                timer.as_mut().reset(self.next_deadline());
            }
            if self.renew_parser {
                self.renew_parser();
            }
            let Some(ws) = self.ws.as_mut() else {
                return Poll::Ready(Departure::Lost);
            };
            if self.reading {
                if let Poll::Ready(next) = Pin::new(ws).poll_next(cx) {
                    busy = true;
                    match self.on_read(next) {
                        Read::More => {}
                        Read::Gone(how) => return Poll::Ready(how),
                        Read::Closing => {
                            self.closing();
                            timer.as_mut().reset(self.next_deadline());
                        }
                    }
                }
            }
            if timer.as_mut().poll(cx).is_ready() {
                busy = true;
                if let Some(how) = self.on_timer() {
                    return Poll::Ready(how);
                }
                timer.as_mut().reset(self.next_deadline());
            }
            if !busy {
                return Poll::Pending;
            }
        }
    }

    /// Replaces the parser by a new one, giving back the buffer a large
    /// message grew, once it holds no part of a frame and nothing waits to
    /// be written through it.
    fn renew_parser(&mut self) {
        let ready = self
            .ws
            .as_ref()
            .is_some_and(|ws| ws.get_ref().at_frame_boundary());
        if !ready || self.unflushed || self.close_sent {
            return;
        }
        self.renew_parser = false;
        if let Some(ws) = self.ws.take() {
            self.ws = websocket(ws.into_inner(), self.state);
        }
    }

    /// The earliest instant the timer must wake the connection at.
    fn next_deadline(&self) -> Instant {
        let idle = self.state.config().idle_timeout;
        [
            Some(self.next_ping),
            self.join_by,
            self.close_by,
            self.reading.then(|| self.last_seen + idle),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_ping)
    }

    fn closing(&mut self) {
        self.reading = false;
        self.close_by = Some(Instant::now() + CLOSE_GRACE);
    }

    /// Time passed: returns how the connection ends, if it does.
    fn on_timer(&mut self) -> Option<Departure> {
        let now = Instant::now();
        let config = self.state.config();
        if self.close_by.is_some_and(|t| now >= t) {
            return Some(Departure::Lost);
        }
        if self.reading && now >= self.last_seen + config.idle_timeout {
            tracing::debug!(conn = self.id, "no sign of life within --idle-timeout");
            return Some(Departure::Lost);
        }
        if self.join_by.is_some_and(|t| now >= t) {
            self.join_by = None;
            let conn = self.id;
            let mut closing = false;
            self.state.with_hub(|hub, out| {
                closing = !hub.is_joined(conn);
                hub.join_deadline(conn, out);
            });
            if closing && self.reading {
                self.closing();
            }
        }
        if now >= self.next_ping {
            self.ping_due = true;
            self.next_ping = now + config.ping_interval;
        }
        None
    }

    /// The client broke the WebSocket protocol: the connection is lost to
    /// the hub at once, and the client is sent a close frame with `code`
    /// before it ends.
    fn violation(&mut self, code: CloseCode, reason: &'static str) -> Read {
        self.violation = Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        });
        Read::Closing
    }

    /// Handles what the socket read.
    fn on_read(&mut self, next: Option<Result<Message, tungstenite::Error>>) -> Read {
        let conn = self.id;
        let state = self.state;
        if self.awaiting_close {
            // The hub is done with this connection: only the client's close
            // frame (or the end of the stream) is awaited.
            return match next {
                Some(Ok(Message::Close(_)) | Err(_)) | None => Read::Gone(Departure::Lost),
                Some(Ok(_)) => Read::More,
            };
        }
        let message = match next {
            None => return Read::Gone(Departure::Lost),
            Some(Err(tungstenite::Error::Capacity(_))) => {
                let limit = state.config().max_message_size;
                if let Some(peerjs) = self.peerjs {
                    peerjs.reject(conn, PeerjsError::TooLarge { max: limit });
                    return Read::Closing;
                }
                let now = std::time::Instant::now();
                state.with_hub(|hub, out| {
                    hub.close(
                        conn,
                        ErrorCode::TooLarge,
                        &format!("messages may be at most {limit} bytes"),
                        now,
                        out,
                    );
                });
                return Read::Closing;
            }
            // Frames the protocol forbids, or text that is not UTF-8: say
            // so with the close code for it (RFC 6455, 7.4.1), then end.
            Some(Err(tungstenite::Error::Protocol(err))) => {
                tracing::debug!(conn, %err, "WebSocket protocol violation");
                return self.violation(CloseCode::Protocol, "protocol violation");
            }
            Some(Err(tungstenite::Error::Utf8(_))) => {
                return self.violation(CloseCode::Invalid, "text is not UTF-8");
            }
            Some(Err(_)) => return Read::Gone(Departure::Lost),
            Some(Ok(message)) => message,
        };
        let now = Instant::now();
        self.last_seen = now;
        if let Some(peerjs) = self.peerjs {
            return on_peerjs_read(peerjs, conn, message);
        }
        match message {
            Message::Text(text) => {
                self.renew_parser |= text.len() > state.config().ws_buffer_size;
                let now = now.into_std();
                // Parsed before the hub's lock is taken: up to
                // --max-message-size of JSON would hold up every other
                // connection.
                let message = ClientMessage::parse(text.as_str());
                state.with_hub_and_queues(|hub, queues, out| {
                    hub.handle_message(conn, text.as_str(), message, now, queues, out);
                });
            }
            Message::Binary(bytes) => state.with_hub(|hub, out| {
                self.renew_parser |= bytes.len() > state.config().ws_buffer_size;
                hub.reject(
                    conn,
                    ErrorCode::BinaryFrame,
                    "the peerchat protocol uses text frames only",
                    out,
                );
            }),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            // Only a normal close is a deliberate leave; any other code
            // (1001 when a page is closed or reloaded, say), or none, may
            // be followed by a resume.
            Message::Close(Some(frame)) if frame.code == CloseCode::Normal => {
                return Read::Gone(Departure::Left);
            }
            Message::Close(_) => return Read::Gone(Departure::Lost),
        }
        Read::More
    }

    /// Writes what is queued (and a due ping), flushing once per batch.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Written {
        let mut busy = false;
        if self.awaiting_close {
            return Written::Nothing;
        }
        loop {
            if !self.close_sent && self.batch < WRITE_BATCH {
                let Some(ws) = self.ws.as_mut() else {
                    return Written::Over;
                };
                match Pin::new(ws).poll_ready(cx) {
                    Poll::Pending => return Written::from_busy(busy),
                    Poll::Ready(Err(_)) => return Written::Over,
                    Poll::Ready(Ok(())) => {}
                }
                let message = if let Some(frame) = self.violation.take() {
                    self.close_sent = true;
                    Some(Message::Close(Some(frame)))
                } else if self.ping_due {
                    self.ping_due = false;
                    Some(Message::Ping(Bytes::new()))
                } else {
                    match self.outbox.poll_next(cx) {
                        Next::Item(Outbound::Frame(frame)) => {
                            let Ok(text) = Utf8Bytes::try_from(frame.into_bytes()) else {
                                tracing::error!("a frame that is not UTF-8 was queued");
                                return Written::Over;
                            };
                            Some(Message::Text(text))
                        }
                        Next::Item(Outbound::Close(reason)) => {
                            self.close_sent = true;
                            Some(Message::Close(Some(close_frame(reason))))
                        }
                        Next::Item(Outbound::Shut { code, reason }) => {
                            self.close_sent = true;
                            Some(Message::Close(Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: Utf8Bytes::from_static(reason),
                            })))
                        }
                        Next::Empty => None,
                        Next::Closed | Next::Killed => {
                            if self.unflushed {
                                None
                            } else {
                                return Written::Over;
                            }
                        }
                    }
                };
                if let Some(message) = message {
                    let Some(ws) = self.ws.as_mut() else {
                        return Written::Over;
                    };
                    if Pin::new(ws).start_send(message).is_err() {
                        return Written::Over;
                    }
                    busy = true;
                    self.batch += 1;
                    self.unflushed = true;
                    continue;
                }
            }
            if !self.unflushed {
                return Written::from_busy(busy);
            }
            let Some(ws) = self.ws.as_mut() else {
                return Written::Over;
            };
            match Pin::new(ws).poll_flush(cx) {
                Poll::Pending => return Written::from_busy(busy),
                Poll::Ready(Err(_)) => return Written::Over,
                Poll::Ready(Ok(())) => {
                    if self.close_sent {
                        // Our close frame is out: wait for the client's
                        // (RFC 6455, 7.1.1) rather than drop the socket,
                        // which would reset a connection the client still
                        // writes to and lose it our last frames.
                        self.unflushed = false;
                        self.awaiting_close = true;
                        self.reading = true;
                        let reply_by = Instant::now() + CLOSE_REPLY_GRACE;
                        self.close_by = Some(self.close_by.map_or(reply_by, |t| t.min(reply_by)));
                        return Written::Some;
                    }
                    self.batch = 0;
                    self.unflushed = false;
                    busy = true;
                }
            }
        }
    }
}

/// Handles what a PeerJS connection read. Binary frames holding UTF-8 count
/// as text, as with `peer` 1.0.2.
fn on_peerjs_read(peerjs: &Peerjs, conn: peerchat_peerjs::ConnId, message: Message) -> Read {
    match message {
        Message::Text(text) => peerjs.handle_text(conn, text.as_str()),
        Message::Binary(data) => match std::str::from_utf8(&data) {
            Ok(text) => peerjs.handle_text(conn, text),
            Err(_) => {
                let why = "a binary frame must hold UTF-8 JSON".to_owned();
                peerjs.reject(conn, PeerjsError::BadMessage(why));
            }
        },
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        Message::Close(_) => return Read::Gone(Departure::Left),
    }
    Read::More
}

fn close_frame(reason: Option<ErrorCode>) -> CloseFrame {
    match reason {
        Some(reason) => CloseFrame {
            code: close_code_for(reason),
            reason: Utf8Bytes::from(reason.as_str()),
        },
        None => CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static("left"),
        },
    }
}

/// The WebSocket close code for each reason the hub closes a connection.
fn close_code_for(reason: ErrorCode) -> CloseCode {
    match reason {
        ErrorCode::TooLarge => CloseCode::Size,
        ErrorCode::ShuttingDown => CloseCode::Away,
        _ => CloseCode::Policy,
    }
}
