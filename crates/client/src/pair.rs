//! Signaling for two peers without rooms: by copy and paste (no server at
//! all), or through a server's long-poll mailbox (`POST /sig`).
//!
//! Each side's offer or answer travels once, complete with its ICE
//! candidates, as a *blob*: `peerchat1.` followed by the base64url (no
//! padding) of the raw-DEFLATE-compressed JSON
//! `{"v":1,"type":"offer"|"answer","sdp":…,"sid":…,"nick":…}`. The web
//! client's "Connect without a server" page reads and writes the same blobs.
//!
//! To the engine this looks like a tiny room: the offering side joins a room
//! where the other already is (so it starts the connection), the answering
//! side sees the other join and receive its offer. The engine does the
//! rest exactly as with a server.
//!
//! Nothing here reads or writes the terminal: codes to show and codes
//! wanted go to the engine as [`Pairing`] events, and the engine's front
//! end shows them and hands back what the user pastes.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use peerchat_protocol::signaling::{ClientMessage, Member, RawValue};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::signaling::{ServerEvent, Signaling, SignalingEvent};

/// The prefix of every blob, naming its format version.
pub const BLOB_PREFIX: &str = "peerchat1.";

/// Largest blob accepted, in characters.
pub const MAX_BLOB: usize = 64 * 1024;

/// The peer ids the two sides take.
const OFFERER: &str = "offerer";
const ANSWERER: &str = "answerer";

/// Which side of a manual exchange this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Show an offer, take the answer.
    Offer,
    /// Take an offer, show the answer.
    Answer,
}

/// Which of the two codes a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// The offering side's code.
    Offer,
    /// The answering side's code.
    Answer,
}

impl CodeKind {
    /// The kind as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Offer => "offer",
            CodeKind::Answer => "answer",
        }
    }
}

impl std::fmt::Display for CodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What pairing asks of the front end (through the engine).
#[derive(Debug)]
pub enum Pairing {
    /// Give this code to the other side.
    Show {
        /// Which code it is.
        kind: CodeKind,
        /// The code, one line.
        code: String,
    },
    /// The other side's code is needed: the engine takes it with
    /// [`crate::engine::Engine::paste_code`].
    Wanted(CodeKind),
    /// Pairing failed; nothing more will happen.
    Failed(PairError),
}

/// Why pairing failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The engine stopped before pairing was done.
    #[error("stopped")]
    Stopped,
    /// The mailbox is reached with plain HTTP only.
    #[error("the mailbox needs an http:// server")]
    NotHttp,
    /// The mailbox could not be reached.
    #[error("mailbox: {0}")]
    Io(#[from] std::io::Error),
    /// The mailbox answered something that is not HTTP.
    #[error("mailbox: malformed response")]
    Malformed,
    /// The mailbox refused a request.
    #[error("mailbox: {status} {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The mailbox's one-line reason.
        reason: String,
    },
    /// Our offer waited in the mailbox until it timed out.
    #[error("mailbox: nobody took the offer in time")]
    NotTaken,
    /// No answer came back for our offer.
    #[error("mailbox: no answer arrived ({0})")]
    NoAnswer(u16),
    /// Our answer was not taken.
    #[error("mailbox: the answer was not taken ({0})")]
    AnswerNotTaken(u16),
    /// A code in the mailbox cannot be read.
    #[error("mailbox: {0}")]
    Code(#[from] BlobError),
}

/// Where blobs go.
#[derive(Debug, Clone)]
pub enum Channel {
    /// The front end, by hand.
    Manual(Role),
    /// The mailbox of the server whose WebSocket URL is `server`, under
    /// `id`: the first side to arrive offers, the second answers.
    Mailbox {
        /// The server (`ws://host:port/ws`).
        server: String,
        /// The mailbox id both sides agreed on.
        id: String,
    },
}

/// An offer or answer with everything the other side needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Format version, 1.
    pub v: u32,
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: CodeKind,
    /// The session description, candidates included.
    pub sdp: String,
    /// The connection id.
    pub sid: String,
    /// The sender's nickname.
    pub nick: String,
}

/// Why a blob cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Not a peerchat blob at all.
    #[error("not a peerchat connection code (it should start with {BLOB_PREFIX})")]
    Prefix,
    /// Damaged in copying.
    #[error("the connection code is damaged (was all of it copied?)")]
    Damaged,
    /// The nickname inside breaks the rules.
    #[error("the connection code carries a nickname that is not allowed")]
    BadNick,
    /// Well-formed but not what was expected.
    #[error("this is an {got}, but an {want} was expected")]
    WrongKind {
        /// What the code is.
        got: CodeKind,
        /// What was expected.
        want: CodeKind,
    },
}

impl Blob {
    /// The blob as one line of text.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let _ = deflate.write_all(&json);
        let packed = deflate.finish().unwrap_or_default();
        format!("{BLOB_PREFIX}{}", BASE64_URL_SAFE_NO_PAD.encode(packed))
    }

    /// Reads a blob, ignoring surrounding white space.
    pub fn decode(text: &str) -> Result<Blob, BlobError> {
        let text: String = text.split_whitespace().collect();
        let body = text.strip_prefix(BLOB_PREFIX).ok_or(BlobError::Prefix)?;
        if body.len() > MAX_BLOB {
            return Err(BlobError::Damaged);
        }
        let packed = BASE64_URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| BlobError::Damaged)?;
        let mut json = Vec::new();
        DeflateDecoder::new(&packed[..])
            .take(4 * MAX_BLOB as u64)
            .read_to_end(&mut json)
            .map_err(|_| BlobError::Damaged)?;
        let blob: Blob = serde_json::from_slice(&json).map_err(|_| BlobError::Damaged)?;
        peerchat_protocol::validate_nick(&blob.nick).map_err(|_| BlobError::BadNick)?;
        Ok(blob)
    }

    /// The blob, if it is of the `want`ed kind.
    pub fn expect(self, want: CodeKind) -> Result<Blob, BlobError> {
        if self.kind == want {
            Ok(self)
        } else {
            Err(BlobError::WrongKind {
                got: self.kind,
                want,
            })
        }
    }
}

/// Starts the pair transport; the engine talks to it as to a server, and
/// hands it the codes pasted by hand on `pasted`.
pub(crate) fn spawn(
    channel: Channel,
    nick: String,
    events: mpsc::UnboundedSender<SignalingEvent>,
    pasted: mpsc::UnboundedReceiver<Blob>,
) -> Signaling {
    let (out, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Err(err) = run(channel, nick, out_rx, pasted, &events).await {
            let _ = events.send(SignalingEvent::Pairing(Pairing::Failed(err)));
        }
    });
    Signaling { out }
}

/// Asks the front end for the other side's code and waits for it.
async fn wanted(
    kind: CodeKind,
    pasted: &mut mpsc::UnboundedReceiver<Blob>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
) -> Result<Blob, PairError> {
    let _ = events.send(SignalingEvent::Pairing(Pairing::Wanted(kind)));
    loop {
        let blob = pasted.recv().await.ok_or(PairError::Stopped)?;
        // The front end checks the kind; a code of the other kind is
        // not ours to use.
        if blob.kind == kind {
            return Ok(blob);
        }
    }
}

fn show(events: &mpsc::UnboundedSender<SignalingEvent>, blob: &Blob) {
    let _ = events.send(SignalingEvent::Pairing(Pairing::Show {
        kind: blob.kind,
        code: blob.encode(),
    }));
}

fn emit(events: &mpsc::UnboundedSender<SignalingEvent>, event: ServerEvent) {
    let _ = events.send(SignalingEvent::Message(event));
}

fn member(id: &str, nick: &str) -> Member {
    Member {
        id: id.to_owned(),
        nick: nick.to_owned(),
    }
}

/// The next offer or answer the engine wants to send (complete, since
/// pairs do not trickle).
async fn next_description(
    out: &mut mpsc::UnboundedReceiver<String>,
) -> Option<(String, CodeKind, String)> {
    while let Some(text) = out.recv().await {
        let Ok(ClientMessage::Signal { payload, .. }) = ClientMessage::parse(&text) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(payload.get()).ok()?;
        let kind = match value["description"]["type"].as_str() {
            Some("offer") => CodeKind::Offer,
            Some("answer") => CodeKind::Answer,
            _ => continue,
        };
        let (Some(sid), Some(sdp)) = (value["sid"].as_str(), value["description"]["sdp"].as_str())
        else {
            continue;
        };
        return Some((sid.to_owned(), kind, sdp.to_owned()));
    }
    None
}

fn signal(from: &str, blob: &Blob) -> ServerEvent {
    let payload = serde_json::json!({
        "sid": blob.sid,
        "description": {"type": blob.kind, "sdp": blob.sdp},
    });
    ServerEvent::Signal {
        from: from.to_owned(),
        payload: RawValue::from_string(payload.to_string()).unwrap_or_else(|_| empty_object()),
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
}

async fn run(
    channel: Channel,
    nick: String,
    mut out: mpsc::UnboundedReceiver<String>,
    mut pasted: mpsc::UnboundedReceiver<Blob>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
) -> Result<(), PairError> {
    let _ = events.send(SignalingEvent::Open);
    let mut mailbox = match &channel {
        Channel::Mailbox { server, id } => Some(Mailbox::new(server, id)?),
        Channel::Manual(_) => None,
    };
    // In the mailbox, whoever finds an offer waiting answers it.
    let (role, waiting_offer) = match (&channel, &mut mailbox) {
        (Channel::Manual(role), _) => (*role, None),
        (_, Some(mb)) => match mb.take_offer(Duration::ZERO).await? {
            Some(offer) => (Role::Answer, Some(offer)),
            None => (Role::Offer, None),
        },
        (_, None) => unreachable!("a mailbox channel has a mailbox"),
    };

    match role {
        Role::Offer => {
            emit(
                events,
                ServerEvent::Joined {
                    you: member(OFFERER, &nick),
                    members: vec![member(ANSWERER, "peer")],
                    ice_servers: Vec::new(),
                },
            );
            let (sid, kind, sdp) = next_description(&mut out).await.ok_or(PairError::Stopped)?;
            let offer = Blob {
                v: 1,
                kind,
                sdp,
                sid,
                nick,
            };
            let answer = match &mut mailbox {
                None => {
                    show(events, &offer);
                    wanted(CodeKind::Answer, &mut pasted, events).await?
                }
                Some(mb) => mb.offer_and_wait(&offer).await?,
            };
            emit(
                events,
                ServerEvent::PeerJoined(member(ANSWERER, &answer.nick)),
            );
            emit(events, signal(ANSWERER, &answer));
        }
        Role::Answer => {
            let offer = match waiting_offer {
                Some(offer) => offer,
                None => wanted(CodeKind::Offer, &mut pasted, events).await?,
            };
            emit(
                events,
                ServerEvent::Joined {
                    you: member(ANSWERER, &nick),
                    members: Vec::new(),
                    ice_servers: Vec::new(),
                },
            );
            emit(
                events,
                ServerEvent::PeerJoined(member(OFFERER, &offer.nick)),
            );
            emit(events, signal(OFFERER, &offer));
            let (sid, kind, sdp) = next_description(&mut out).await.ok_or(PairError::Stopped)?;
            let answer = Blob {
                v: 1,
                kind,
                sdp,
                sid,
                nick,
            };
            match &mut mailbox {
                None => show(events, &answer),
                Some(mb) => mb.send_answer(&answer).await?,
            }
        }
    }
    // Nothing more travels this way; keep the engine's side open.
    while out.recv().await.is_some() {}
    Ok(())
}

/// The server's mailbox, spoken with minimal HTTP/1.1 (`http://` only).
struct Mailbox {
    host: String,
    id: String,
}

impl Mailbox {
    fn new(ws_url: &str, id: &str) -> Result<Mailbox, PairError> {
        let host = ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or(PairError::NotHttp)?;
        Ok(Mailbox {
            host: host.to_owned(),
            id: id.to_owned(),
        })
    }

    async fn post(&self, query: &str, body: &[u8]) -> Result<(u16, Vec<u8>), PairError> {
        let mut stream = tokio::net::TcpStream::connect(&self.host).await?;
        let head = format!(
            "POST /sig?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut response = Vec::new();
        stream
            .take(4 * MAX_BLOB as u64)
            .read_to_end(&mut response)
            .await?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(PairError::Malformed)?;
        let status = std::str::from_utf8(response.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(PairError::Malformed)?;
        Ok((status, response[split + 4..].to_vec()))
    }

    /// An offer waiting in the mailbox, if one arrives within `wait`.
    async fn take_offer(&self, wait: Duration) -> Result<Option<Blob>, PairError> {
        let query = format!("get={}&timeoutms={}", self.id, wait.as_millis());
        match self.post(&query, b"").await? {
            (200, body) => {
                let text = String::from_utf8_lossy(&body);
                Ok(Some(
                    Blob::decode(&text).and_then(|b| b.expect(CodeKind::Offer))?,
                ))
            }
            (204, _) => Ok(None),
            (status, body) => Err(PairError::Refused {
                status,
                reason: String::from_utf8_lossy(&body).trim().to_owned(),
            }),
        }
    }

    /// Posts our offer and waits for the answer to it.
    async fn offer_and_wait(&self, offer: &Blob) -> Result<Blob, PairError> {
        let encoded = offer.encode();
        let (set, get) = (
            format!("set={}", self.id),
            format!("get={}.answer", self.id),
        );
        let (posted, got) = tokio::join!(self.post(&set, encoded.as_bytes()), self.post(&get, b""));
        if posted?.0 != 200 {
            return Err(PairError::NotTaken);
        }
        let (status, body) = got?;
        if status != 200 {
            return Err(PairError::NoAnswer(status));
        }
        let text = String::from_utf8_lossy(&body);
        Ok(Blob::decode(&text).and_then(|b| b.expect(CodeKind::Answer))?)
    }

    async fn send_answer(&self, answer: &Blob) -> Result<(), PairError> {
        match self
            .post(
                &format!("set={}.answer", self.id),
                answer.encode().as_bytes(),
            )
            .await?
        {
            (200, _) => Ok(()),
            (status, _) => Err(PairError::AnswerNotTaken(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob() -> Blob {
        Blob {
            v: 1,
            kind: CodeKind::Offer,
            sdp:
                "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"
                    .repeat(8),
            sid: "abc".into(),
            nick: "dora".into(),
        }
    }

    #[test]
    fn blobs_round_trip_on_one_compact_line() {
        let b = blob();
        let text = b.encode();
        assert!(text.starts_with(BLOB_PREFIX));
        assert!(!text.contains(char::is_whitespace));
        assert!(text.len() < b.sdp.len(), "compressed");
        assert_eq!(Blob::decode(&text), Ok(b.clone()));
        // Line breaks from a chat program or terminal are ignored.
        let wrapped = format!("  {}\n{}  ", &text[..30], &text[30..]);
        assert_eq!(Blob::decode(&wrapped), Ok(b));
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let text = blob().encode();
        assert_eq!(Blob::decode("hello"), Err(BlobError::Prefix));
        assert_eq!(
            Blob::decode(&text[..text.len() - 5]),
            Err(BlobError::Damaged)
        );
        assert_eq!(Blob::decode("peerchat1.!!!"), Err(BlobError::Damaged));
        assert_eq!(
            Blob::decode(&text).unwrap().expect(CodeKind::Answer),
            Err(BlobError::WrongKind {
                got: CodeKind::Offer,
                want: CodeKind::Answer
            })
        );
    }
}
