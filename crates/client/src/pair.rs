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

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use peerchat_protocol::signaling::{ClientMessage, Member, RawValue};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
    /// Print an offer, read the answer.
    Offer,
    /// Read an offer, print the answer.
    Answer,
}

/// Where blobs go.
#[derive(Debug, Clone)]
pub enum Channel {
    /// Standard output and standard input.
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
    pub kind: String,
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
    #[error("this is an {0}, but an {1} was expected")]
    WrongKind(String, &'static str),
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
        if blob.kind != "offer" && blob.kind != "answer" {
            return Err(BlobError::Damaged);
        }
        peerchat_protocol::validate_nick(&blob.nick).map_err(|_| BlobError::BadNick)?;
        Ok(blob)
    }

    fn expect(self, kind: &'static str) -> Result<Blob, BlobError> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(BlobError::WrongKind(self.kind, kind))
        }
    }
}

/// Starts the pair transport; the engine talks to it as to a server.
pub(crate) fn spawn(channel: Channel, events: mpsc::UnboundedSender<SignalingEvent>) -> Signaling {
    let (out, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Err(err) = run(channel, out_rx, &events).await {
            eprintln!("* {err}");
            let _ = events.send(SignalingEvent::Message(ServerEvent::Error {
                code: peerchat_protocol::ErrorCode::Unknown,
                message: err,
                to: None,
            }));
        }
    });
    Signaling { out }
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
) -> Option<(String, String, String)> {
    while let Some(text) = out.recv().await {
        let Ok(ClientMessage::Signal { payload, .. }) = ClientMessage::parse(&text) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(payload.get()).ok()?;
        let (Some(sid), Some(kind), Some(sdp)) = (
            value["sid"].as_str(),
            value["description"]["type"].as_str(),
            value["description"]["sdp"].as_str(),
        ) else {
            continue;
        };
        return Some((sid.to_owned(), kind.to_owned(), sdp.to_owned()));
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
    mut out: mpsc::UnboundedReceiver<String>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
) -> Result<(), String> {
    let _ = events.send(SignalingEvent::Open);
    // The engine joins first thing: that tells us our nickname.
    let nick = loop {
        let text = out.recv().await.ok_or("stopped")?;
        // There is no room here, so read the join without the room rules.
        let join: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let (Some("join"), Some(nick)) = (join["type"].as_str(), join["nick"].as_str()) {
            break nick.to_owned();
        }
    };
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
            let (sid, kind, sdp) = next_description(&mut out).await.ok_or("stopped")?;
            let offer = Blob {
                v: 1,
                kind,
                sdp,
                sid,
                nick,
            };
            let answer = match &mut mailbox {
                None => {
                    println!(
                        "Send this connection code to the other side:\n\n{}\n",
                        offer.encode()
                    );
                    println!("Then paste their answer here and press Enter:");
                    read_blob("answer").await?
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
                None => {
                    println!("Paste the connection code from the other side and press Enter:");
                    read_blob("offer").await?
                }
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
            let (sid, kind, sdp) = next_description(&mut out).await.ok_or("stopped")?;
            let answer = Blob {
                v: 1,
                kind,
                sdp,
                sid,
                nick,
            };
            match &mut mailbox {
                None => println!(
                    "Send this answer back to the other side:\n\n{}\n",
                    answer.encode()
                ),
                Some(mb) => mb.send_answer(&answer).await?,
            }
        }
    }
    // Nothing more travels this way; keep the engine's side open.
    while out.recv().await.is_some() {}
    Ok(())
}

/// Reads one blob from standard input (ignoring blank lines).
async fn read_blob(kind: &'static str) -> Result<Blob, String> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("standard input ended before a connection code arrived")?;
        if line.trim().is_empty() {
            continue;
        }
        match Blob::decode(&line).and_then(|b| b.expect(kind)) {
            Ok(blob) => return Ok(blob),
            Err(err) => eprintln!("* {err}; paste it again"),
        }
    }
}

/// The server's mailbox, spoken with minimal HTTP/1.1 (`http://` only).
struct Mailbox {
    host: String,
    id: String,
}

impl Mailbox {
    fn new(ws_url: &str, id: &str) -> Result<Mailbox, String> {
        let host = ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or("the mailbox needs an http:// server")?;
        Ok(Mailbox {
            host: host.to_owned(),
            id: id.to_owned(),
        })
    }

    async fn post(&self, query: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let mut stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| format!("mailbox: {e}"))?;
        let head = format!(
            "POST /sig?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(body).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .take(4 * MAX_BLOB as u64)
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("mailbox: malformed response")?;
        let status = std::str::from_utf8(response.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("mailbox: malformed response")?;
        Ok((status, response[split + 4..].to_vec()))
    }

    /// An offer waiting in the mailbox, if one arrives within `wait`.
    async fn take_offer(&self, wait: Duration) -> Result<Option<Blob>, String> {
        let query = format!("get={}&timeoutms={}", self.id, wait.as_millis());
        match self.post(&query, b"").await? {
            (200, body) => {
                let text = String::from_utf8_lossy(&body);
                Ok(Some(
                    Blob::decode(&text)
                        .and_then(|b| b.expect("offer"))
                        .map_err(|e| e.to_string())?,
                ))
            }
            (204, _) => Ok(None),
            (status, body) => Err(format!(
                "mailbox: {status} {}",
                String::from_utf8_lossy(&body).trim()
            )),
        }
    }

    /// Posts our offer and waits for the answer to it.
    async fn offer_and_wait(&self, offer: &Blob) -> Result<Blob, String> {
        let encoded = offer.encode();
        let (set, get) = (
            format!("set={}", self.id),
            format!("get={}.answer", self.id),
        );
        let (posted, got) = tokio::join!(self.post(&set, encoded.as_bytes()), self.post(&get, b""));
        if posted?.0 != 200 {
            return Err("mailbox: nobody took the offer in time".to_owned());
        }
        let (status, body) = got?;
        if status != 200 {
            return Err(format!("mailbox: no answer arrived ({status})"));
        }
        let text = String::from_utf8_lossy(&body);
        Blob::decode(&text)
            .and_then(|b| b.expect("answer"))
            .map_err(|e| e.to_string())
    }

    async fn send_answer(&self, answer: &Blob) -> Result<(), String> {
        match self
            .post(
                &format!("set={}.answer", self.id),
                answer.encode().as_bytes(),
            )
            .await?
        {
            (200, _) => Ok(()),
            (status, _) => Err(format!("mailbox: the answer was not taken ({status})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob() -> Blob {
        Blob {
            v: 1,
            kind: "offer".into(),
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
            Blob::decode(&text).unwrap().expect("answer"),
            Err(BlobError::WrongKind("offer".into(), "answer"))
        );
    }
}
