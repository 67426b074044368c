//! The connection to the signaling server: a WebSocket, reopened with
//! jittered exponential backoff when it drops, or the same protocol over
//! plain HTTP requests (long polling, [`crate::poll`]) where WebSockets do
//! not get through.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::{IceServer, Member, RawValue, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two tries: a restarted server is found within
/// about this long.
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// A WebSocket closed this soon after opening, before any message, was cut
/// by something in between.
const CUT: Duration = Duration::from_secs(3);
/// The first try to move from long polling back to a WebSocket, then
/// doubling up to the most.
const UPGRADE_FIRST: Duration = Duration::from_secs(5);
const UPGRADE_MAX: Duration = Duration::from_secs(300);

/// How the client speaks to the signaling server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// A WebSocket; long polling when a WebSocket does not get through, and
    /// back to a WebSocket when one does.
    #[default]
    Auto,
    /// A WebSocket only.
    WebSocket,
    /// Long polling only.
    Poll,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server message, owned.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// We are in the room.
    Joined {
        /// Ourselves.
        you: Member,
        /// Everyone else, in join order.
        members: Vec<Member>,
        /// ICE servers for our peer connections.
        ice_servers: Vec<IceServer>,
    },
    /// Fresh ICE servers for our next peer connections.
    IceServers(Vec<IceServer>),
    /// Someone joined.
    PeerJoined(Member),
    /// Our `rename` went through: we are known by the new nickname.
    Renamed(Member),
    /// Another member took a new nickname.
    PeerRenamed(Member),
    /// Someone left.
    PeerLeft(String),
    /// A signal from another member.
    Signal {
        /// The sender's peer id.
        from: String,
        /// The payload.
        payload: Box<RawValue>,
    },
    /// A request failed.
    Error {
        /// The stable code.
        code: ErrorCode,
        /// The explanation.
        message: String,
        /// The recipient of a refused signal (`peer_busy`).
        to: Option<String>,
    },
}

impl ServerEvent {
    pub(crate) fn parse(text: &str) -> Option<ServerEvent> {
        let msg = match ServerMessage::parse(text) {
            Ok(msg) => msg,
            Err(err) => {
                if err.code() != ErrorCode::UnknownType {
                    tracing::warn!(%err, "ignoring a malformed server message");
                }
                return None;
            }
        };
        Some(match msg {
            ServerMessage::Joined {
                you,
                members,
                ice_servers,
                ..
            } => ServerEvent::Joined {
                you,
                members,
                ice_servers,
            },
            ServerMessage::IceServers { ice_servers } => ServerEvent::IceServers(ice_servers),
            ServerMessage::PeerJoined { peer } => ServerEvent::PeerJoined(peer),
            ServerMessage::Renamed { you } => ServerEvent::Renamed(you),
            ServerMessage::PeerRenamed { peer } => ServerEvent::PeerRenamed(peer),
            ServerMessage::PeerLeft { id } => ServerEvent::PeerLeft(id.into_owned()),
            ServerMessage::Signal { from, payload } => ServerEvent::Signal {
                from: from.into_owned(),
                payload: payload.to_owned(),
            },
            ServerMessage::Error { code, message, to } => ServerEvent::Error {
                code,
                message: message.into_owned(),
                to: to.map(|to| to.into_owned()),
            },
        })
    }
}

/// What happens on the signaling connection.
#[derive(Debug)]
pub enum SignalingEvent {
    /// Opening the connection.
    Connecting,
    /// The connection is open.
    Open,
    /// The connection failed or dropped; the next try is in `retry_in`.
    Offline {
        /// Time until the next attempt.
        retry_in: Duration,
    },
    /// A message from the server.
    Message(ServerEvent),
    /// Pairing without a room needs the front end (see [`crate::pair`]).
    Pairing(crate::pair::Pairing),
}

/// Sends on the signaling connection; dropping it closes the connection.
#[derive(Debug, Clone)]
pub struct Signaling {
    pub(crate) out: mpsc::UnboundedSender<String>,
}

impl Signaling {
    /// Connects to `url` (a `ws://` or `wss://` URL of `/ws`; `tls` says
    /// whom to trust) through `transport`, keeps reconnecting, and reports
    /// on `events`.
    pub fn spawn(
        url: String,
        tls: Arc<rustls::ClientConfig>,
        transport: Transport,
        events: mpsc::UnboundedSender<SignalingEvent>,
    ) -> Signaling {
        let (out, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(
            Connection {
                url,
                tls,
                transport,
                out: out_rx,
                events,
                prefer_poll: transport == Transport::Poll,
                upgrade_in: UPGRADE_FIRST,
                failing: None,
            }
            .run(),
        );
        Signaling { out }
    }

    /// A handle to no connection: what is sent is dropped. Putting it in
    /// place of a live handle closes that connection for good.
    pub(crate) fn stopped() -> Signaling {
        let (out, _) = mpsc::unbounded_channel();
        Signaling { out }
    }

    /// Sends a message if the connection is open (messages sent while it is
    /// down are dropped: the engine re-joins when it comes back).
    pub fn send(&self, json: String) {
        let _ = self.out.send(json);
    }
}

/// How a WebSocket session ended.
enum WsEnd {
    /// The engine stopped.
    Stopped,
    /// The connection dropped, after this long, having heard from the
    /// server or not.
    Dropped { lasted: Duration, heard: bool },
}

/// How a long-poll session ended.
enum PollEnd {
    /// The engine stopped.
    Stopped,
    /// It could not be opened, or it broke.
    Failed(crate::poll::PollError),
    /// The server ended it.
    Closed,
    /// A WebSocket got through: go on with it.
    Moved(Box<Ws>),
}

/// The signaling connection's task.
struct Connection {
    url: String,
    tls: Arc<rustls::ClientConfig>,
    transport: Transport,
    out: mpsc::UnboundedReceiver<String>,
    events: mpsc::UnboundedSender<SignalingEvent>,
    /// WebSockets were cut right after opening: start with long polling.
    prefer_poll: bool,
    /// When to try a WebSocket again while on long polling.
    upgrade_in: Duration,
    /// Why the last attempt failed, if it did.
    failing: Option<String>,
}

impl Connection {
    fn emit(&self, event: SignalingEvent) -> bool {
        self.events.send(event).is_ok()
    }

    /// Logs why an attempt failed: once, not at every retry, and again
    /// only when the reason changes.
    fn failed(&mut self, reason: &str, what: &str) {
        if self.failing.as_deref() == Some(reason) {
            tracing::debug!(err = %reason, url = %self.url, "{what}");
        } else {
            tracing::warn!(err = %reason, url = %self.url, "{what}");
        }
        self.failing = Some(reason.to_owned());
    }

    async fn connect_ws(&self) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.url.as_str(),
            None,
            false,
            Some(connector),
        )
        .await?;
        Ok(ws)
    }

    async fn run(mut self) {
        let mut attempt: u32 = 0;
        loop {
            if !self.emit(SignalingEvent::Connecting) {
                return;
            }
            let mut poll = self.prefer_poll;
            let mut ws = None;
            if !poll {
                match self.connect_ws().await {
                    Ok(opened) => ws = Some(opened),
                    Err(err) => {
                        self.failed(&err.to_string(), "cannot reach the server");
                        // Perhaps only WebSockets cannot: try plain requests.
                        poll = self.transport == Transport::Auto;
                    }
                }
            }
            loop {
                if let Some(opened) = ws.take() {
                    attempt = 0;
                    match self.serve_ws(opened).await {
                        WsEnd::Stopped => return,
                        WsEnd::Dropped { lasted, heard } => {
                            if self.transport == Transport::Auto && !heard && lasted < CUT {
                                // Cut by something in between.
                                self.prefer_poll = true;
                                poll = true;
                            }
                        }
                    }
                }
                if !poll {
                    break;
                }
                poll = false;
                match self.serve_poll().await {
                    PollEnd::Stopped => return,
                    PollEnd::Failed(err) => {
                        self.failed(&err.to_string(), "long polling failed");
                    }
                    PollEnd::Closed => attempt = 0,
                    PollEnd::Moved(opened) => {
                        self.prefer_poll = false;
                        ws = Some(*opened);
                        continue;
                    }
                }
                break;
            }
            let base = BACKOFF_MIN
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(BACKOFF_MAX);
            let retry_in = base / 2 + base.mul_f64(rand::random::<f64>() / 2.0);
            attempt = attempt.saturating_add(1);
            if !self.emit(SignalingEvent::Offline { retry_in }) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(retry_in) => {}
                closed = wait_closed(&mut self.out) => if closed { return },
            }
        }
    }

    /// Serves an open WebSocket until it drops or the engine stops.
    async fn serve_ws(&mut self, mut ws: Ws) -> WsEnd {
        // Drop what was queued while offline.
        while self.out.try_recv().is_ok() {}
        self.failing = None;
        if !self.emit(SignalingEvent::Open) {
            return WsEnd::Stopped;
        }
        let opened = tokio::time::Instant::now();
        let mut heard = false;
        loop {
            tokio::select! {
                outgoing = self.out.recv() => match outgoing {
                    Some(text) => {
                        if ws.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = ws.close(None).await;
                        return WsEnd::Stopped;
                    }
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        heard = true;
                        if let Some(event) = ServerEvent::parse(&text) {
                            if !self.emit(SignalingEvent::Message(event)) {
                                return WsEnd::Stopped;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        WsEnd::Dropped {
            lasted: opened.elapsed(),
            heard,
        }
    }

    /// Serves a long-poll session until it ends, the engine stops, or (in
    /// auto mode) a WebSocket gets through.
    async fn serve_poll(&mut self) -> PollEnd {
        let endpoint = match crate::poll::Endpoint::from_ws_url(&self.url, self.tls.clone()) {
            Ok(endpoint) => endpoint,
            Err(err) => return PollEnd::Failed(err),
        };
        let mut session = match crate::poll::Session::open(endpoint).await {
            Ok(session) => session,
            Err(err) => return PollEnd::Failed(err),
        };
        while self.out.try_recv().is_ok() {}
        self.failing = None;
        if !self.emit(SignalingEvent::Open) {
            return PollEnd::Stopped;
        }
        let mut sender = session.sender();
        let receive = |mut session: crate::poll::Session| async move {
            let received = session.receive().await;
            (session, received)
        };
        let mut receiving = Box::pin(receive(session));
        let upgrades = self.transport == Transport::Auto;
        let upgrade = tokio::time::sleep(self.upgrade_in);
        tokio::pin!(upgrade);
        loop {
            tokio::select! {
                outgoing = self.out.recv() => match outgoing {
                    Some(text) => {
                        let mut batch = vec![text];
                        while let Ok(more) = self.out.try_recv() {
                            batch.push(more);
                        }
                        if let Err(err) = sender.send(&batch).await {
                            return PollEnd::Failed(err);
                        }
                    }
                    None => {
                        sender.close().await;
                        return PollEnd::Stopped;
                    }
                },
                (session, received) = &mut receiving => {
                    let received = match received {
                        Ok(received) => received,
                        Err(err) => return PollEnd::Failed(err),
                    };
                    for text in received.messages {
                        if let Some(event) = ServerEvent::parse(&text) {
                            if !self.emit(SignalingEvent::Message(event)) {
                                return PollEnd::Stopped;
                            }
                        }
                    }
                    if received.closed {
                        return PollEnd::Closed;
                    }
                    receiving.set(receive(session));
                },
                () = &mut upgrade, if upgrades => {
                    match self.connect_ws().await {
                        Ok(ws) => {
                            // The engine joins again on the WebSocket, which
                            // takes the member's place back there.
                            sender.close().await;
                            self.upgrade_in = UPGRADE_FIRST;
                            return PollEnd::Moved(Box::new(ws));
                        }
                        Err(_) => {
                            self.upgrade_in = (self.upgrade_in * 2).min(UPGRADE_MAX);
                            upgrade.as_mut().reset(tokio::time::Instant::now() + self.upgrade_in);
                        }
                    }
                },
            }
        }
    }
}

/// Resolves `true` when the sender side is gone (the engine stopped);
/// messages arriving meanwhile are dropped.
async fn wait_closed(out: &mut mpsc::UnboundedReceiver<String>) -> bool {
    while out.recv().await.is_some() {}
    true
}
