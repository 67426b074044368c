//! The `/ws` endpoint: a thin adapter between a WebSocket and the hub.
//!
//! A WebSocket costs as little as it can while it is idle, since a server
//! holds many of them: it is driven by the task that served its HTTP
//! upgrade (no second task), by one future that reads frames into the hub,
//! writes what the hub queued for it in batches, and keeps one timer for
//! pings, the join deadline and the idle timeout; the socket's reads go
//! through a buffer shared by all connections on a thread ([`Socket`]), so
//! a connection keeps no read buffer of its own beyond a small one for the
//! message being parsed.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::{FutureExt, Sink, Stream};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use peerchat_peerjs::PeerjsError;
use peerchat_protocol::ErrorCode;
use peerchat_rooms::Departure;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::peerjs::Peerjs;
use crate::state::{Next, Outbound, Outbox};
use crate::{AppState, ConnectionInfo, origin};

/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Most queued frames written to the socket before one flush.
const WRITE_BATCH: usize = 64;

/// Most bytes taken from a socket in one read, into the buffer that all
/// connections on a thread share.
const READ_CHUNK: usize = 16 * 1024;

/// Most bytes of frames gathered for one write to a socket.
const WRITE_CHUNK: usize = 16 * 1024;

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
    let config = state.config();
    if !origin::allowed(headers, &config.allowed_origins) {
        tracing::info!(origin = ?headers.get("origin"), "WebSocket refused: origin not allowed");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not use this peerchat server (see --allowed-origin)\n",
        )
            .into_response();
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

/// One WebSocket and its place in the hub.
struct Conn<'a, S> {
    ws: WebSocketStream<Socket<S>>,
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
    /// A close frame is on its way: the connection ends once it is out.
    close_sent: bool,
}

impl<'a, S> Conn<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    /// Registers a new WebSocket with the hub, or with the PeerJS endpoint.
    fn open(socket: Socket<S>, state: &'a AppState, endpoint: Endpoint) -> Option<Self> {
        let size = state.config().ws_buffer_size;
        let max = state.config().max_message_size;
        // Frames go straight to the `Socket`, which gathers them.
        let config = WebSocketConfig::default()
            .read_buffer_size(size)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        // Made at once (there is no handshake left to do), outside the
        // connection's future, so that the future holds it only once.
        let ws =
            WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).now_or_never()?;
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
        })
    }
}

/// Serves a WebSocket until it ends, then tells the hub how.
fn serve<'a, S>(conn: Option<Conn<'a, S>>) -> impl Future<Output = ()> + 'a
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
            let Ok(mut busy) = self.poll_write(cx) else {
                // The hub's close frame is out, or the socket failed.
                return Poll::Ready(Departure::Lost);
            };
            if self.reading {
                if let Poll::Ready(next) = Pin::new(&mut self.ws).poll_next(cx) {
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

    /// Handles what the socket read.
    fn on_read(&mut self, next: Option<Result<Message, tungstenite::Error>>) -> Read {
        let conn = self.id;
        let state = self.state;
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
                let now = now.into_std();
                state.with_hub(|hub, out| hub.handle_text(conn, text.as_str(), now, out));
            }
            Message::Binary(_) => state.with_hub(|hub, out| {
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
    /// `Ok(true)` when it got anywhere; `Err` when the connection is over:
    /// the hub's close frame is out, or the socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut busy = false;
        loop {
            if !self.close_sent && self.batch < WRITE_BATCH {
                match Pin::new(&mut self.ws).poll_ready(cx) {
                    Poll::Pending => return Ok(busy),
                    Poll::Ready(Err(_)) => return Err(()),
                    Poll::Ready(Ok(())) => {}
                }
                let message = if self.ping_due {
                    self.ping_due = false;
                    Some(Message::Ping(Bytes::new()))
                } else {
                    match self.outbox.poll_next(cx) {
                        Next::Item(Outbound::Frame(frame)) => {
                            let Ok(text) = Utf8Bytes::try_from(frame.into_bytes()) else {
                                tracing::error!("the hub produced a frame that is not UTF-8");
                                return Err(());
                            };
                            Some(Message::Text(text))
                        }
                        Next::Item(Outbound::Close(reason)) => {
                            self.close_sent = true;
                            Some(Message::Close(Some(close_frame(reason))))
                        }
                        Next::Item(Outbound::Text(bytes)) => {
                            let Ok(text) = Utf8Bytes::try_from(bytes) else {
                                tracing::error!(
                                    "the PeerJS endpoint produced a frame that is not UTF-8"
                                );
                                return Err(());
                            };
                            Some(Message::Text(text))
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
                                return Err(());
                            }
                        }
                    }
                };
                if let Some(message) = message {
                    if Pin::new(&mut self.ws).start_send(message).is_err() {
                        return Err(());
                    }
                    busy = true;
                    self.batch += 1;
                    self.unflushed = true;
                    continue;
                }
            }
            if !self.unflushed {
                return Ok(busy);
            }
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Pending => return Ok(busy),
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(())) => {
                    if self.close_sent {
                        return Err(());
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

thread_local! {
    /// The buffer each socket read lands in first, shared by all the
    /// connections a thread serves.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A WebSocket's socket, buffered so that a connection holds no buffer
/// while it is idle.
///
/// Reading: the WebSocket parser asks for a few hundred bytes at a time
/// (its buffer is kept small, since every connection has one); reading the
/// socket that way would take a system call for each. Instead each read
/// takes up to [`READ_CHUNK`] bytes into a buffer shared by the thread's
/// connections, hands the parser what it asked for, and keeps the rest here
/// until the parser takes it.
///
/// Writing: frames are gathered here, up to [`WRITE_CHUNK`] bytes, and
/// written together when the batch is flushed; the buffer is given back
/// once it is written.
#[derive(Debug)]
pub(crate) struct Socket<S> {
    io: S,
    /// Bytes read from `io` that the parser has not taken yet.
    pending: Vec<u8>,
    /// How many of `pending` it has taken.
    taken: usize,
    /// Bytes to write to `io`.
    out: Vec<u8>,
    /// How many of `out` are written.
    written: usize,
}

impl<S> Socket<S> {
    /// `read` is what was read from `io` already (past the HTTP request).
    fn new(io: S, read: &[u8]) -> Self {
        Self {
            io,
            pending: read.to_vec(),
            taken: 0,
            out: Vec::new(),
            written: 0,
        }
    }

    /// Hands over pending bytes; false when there are none.
    fn take_pending(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let rest = &self.pending[self.taken..];
        if rest.is_empty() {
            return false;
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.taken += n;
        if self.taken == self.pending.len() {
            self.pending = Vec::new();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Socket<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.take_pending(buf) {
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_CHUNK {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        READ_BUFFER.with_borrow_mut(|chunk| {
            let mut read = ReadBuf::new(chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let read = read.filled();
            let n = read.len().min(buf.remaining());
            buf.put_slice(&read[..n]);
            if n < read.len() {
                this.pending = read[n..].to_vec();
                this.taken = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> Socket<S> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Socket<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() + buf.len() > WRITE_CHUNK {
            ready!(this.poll_drain(cx))?;
            if buf.len() >= WRITE_CHUNK {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            }
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Reads everything through a `Socket`, `ask` bytes at a time, as the
    /// WebSocket parser does.
    async fn read_all<S: AsyncRead + Unpin>(socket: &mut Socket<S>, ask: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; ask];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn a_socket_hands_over_every_byte_in_order_and_then_holds_none() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for ask in [1, 14, 512, READ_CHUNK, 3 * READ_CHUNK] {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let mut socket = Socket::new(server, &data[..10]);
            let rest = data[10..].to_vec();
            let writer = tokio::spawn(async move {
                client.write_all(&rest).await.unwrap();
            });
            let got = read_all(&mut socket, ask).await;
            writer.await.unwrap();
            assert!(got == data, "asking for {ask} bytes at a time");
            assert_eq!(socket.pending.capacity(), 0);
        }
    }

    #[tokio::test]
    async fn a_socket_writes_every_byte_in_order_when_flushed_and_then_holds_none() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for size in [1, 300, WRITE_CHUNK - 1, WRITE_CHUNK, 3 * WRITE_CHUNK] {
            // A pipe smaller than what is written, so that writes block.
            let (client, mut server) = tokio::io::duplex(4096);
            let mut socket = Socket::new(client, &[]);
            let expected = data.clone();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                server.read_to_end(&mut got).await.unwrap();
                got
            });
            for chunk in data.chunks(size) {
                socket.write_all(chunk).await.unwrap();
                assert!(socket.out.len() <= WRITE_CHUNK);
            }
            socket.flush().await.unwrap();
            assert_eq!(socket.out.capacity(), 0);
            socket.shutdown().await.unwrap();
            drop(socket);
            assert!(
                reader.await.unwrap() == expected,
                "writing {size} bytes at a time"
            );
        }
    }
}
