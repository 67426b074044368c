//! The connection to the signaling server: one WebSocket, reopened with
//! jittered exponential backoff when it drops.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::{IceServer, Member, RawValue, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two tries: a restarted server is found within
/// about this long.
const BACKOFF_MAX: Duration = Duration::from_secs(8);

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
    /// Connects to `url` (a `ws://` or `wss://` URL of `/ws`), keeps
    /// reconnecting, and reports on `events`.
    pub fn spawn(url: String, events: mpsc::UnboundedSender<SignalingEvent>) -> Signaling {
        // wss:// needs a TLS crypto provider; ring is already linked in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (out, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(url, out_rx, events));
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

async fn run(
    url: String,
    mut out: mpsc::UnboundedReceiver<String>,
    events: mpsc::UnboundedSender<SignalingEvent>,
) {
    let mut attempt: u32 = 0;
    // Why the last attempt failed: a failure is logged once, not at every
    // retry, and again only when the reason changes.
    let mut failing: Option<String> = None;
    loop {
        if events.send(SignalingEvent::Connecting).is_err() {
            return;
        }
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut ws, _)) => {
                attempt = 0;
                failing = None;
                // Drop what was queued while offline.
                while out.try_recv().is_ok() {}
                if events.send(SignalingEvent::Open).is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        outgoing = out.recv() => match outgoing {
                            Some(text) => {
                                if ws.send(Message::text(text)).await.is_err() {
                                    break;
                                }
                            }
                            None => {
                                let _ = ws.close(None).await;
                                return;
                            }
                        },
                        incoming = ws.next() => match incoming {
                            Some(Ok(Message::Text(text))) => {
                                if let Some(event) = ServerEvent::parse(&text) {
                                    if events.send(SignalingEvent::Message(event)).is_err() {
                                        return;
                                    }
                                }
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                            Some(Ok(_)) => {}
                        },
                    }
                }
            }
            Err(err) => {
                let reason = err.to_string();
                if failing.as_ref() == Some(&reason) {
                    tracing::debug!(%err, %url, "cannot reach the server");
                } else {
                    tracing::warn!(%err, %url, "cannot reach the server");
                }
                failing = Some(reason);
            }
        }
        let base = BACKOFF_MIN
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(BACKOFF_MAX);
        let retry_in = base / 2 + base.mul_f64(rand::random::<f64>() / 2.0);
        attempt = attempt.saturating_add(1);
        if events.send(SignalingEvent::Offline { retry_in }).is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(retry_in) => {}
            closed = wait_closed(&mut out) => if closed { return },
        }
    }
}

/// Resolves `true` when the sender side is gone (the engine stopped);
/// messages arriving meanwhile are dropped.
async fn wait_closed(out: &mut mpsc::UnboundedReceiver<String>) -> bool {
    while out.recv().await.is_some() {}
    true
}
