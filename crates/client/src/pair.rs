//! Signaling for two peers without rooms: by copy and paste (no server at
//! all), or through a server's long-poll mailbox (`POST /sig`).
//!
//! Each side's offer or answer travels once, complete with its ICE
//! candidates, as a *connection code*: `peerchat2.` followed by the
//! base64url (no padding) of the raw-DEFLATE-compressed JSON
//! `{"v":2,"type":"offer"|"answer","secret"?:…,"iv":…,"ct":…}`: the
//! offer or answer (`{"type","sid","nick","sdp"}`) sealed like a room's
//! signals, in the `code` context (or `mailbox:ID`), from `offerer` to
//! `answerer` or back. The offer code carries a fresh secret in the clear,
//! the answer code is sealed with it, so the answer cannot be made or
//! altered by whoever did not see the offer; with a secret both sides
//! were given (`--secret`, or a mailbox pairing `ID.SECRET`), no code
//! carries one. The web client's "Connect without a server" page reads and
//! writes the same codes (see docs/protocol.md).
//!
//! To the engine this looks like a tiny room: the offering side joins a room
//! where the other already is (so it starts the connection), the answering
//! side sees the other join and receive its offer. The engine does the
//! rest exactly as with a server, the hello included.
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
use peerchat_e2e::{Context, Secret, SignalKey, Stamp};
use peerchat_protocol::signaling::{ClientMessage, Member, RawValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::signaling::{ServerEvent, Signaling, SignalingEvent};

/// The prefix of every code, naming its format version.
pub const BLOB_PREFIX: &str = "peerchat2.";

/// Largest code accepted, in characters.
pub const MAX_BLOB: usize = 64 * 1024;

/// How long the side given a mailbox pairing waits for the other side's
/// offer before it offers itself.
pub const JOIN_WAIT: Duration = Duration::from_secs(30);

/// The peer ids the two sides take (and seal codes from and to).
pub const OFFERER: &str = "offerer";
/// See [`OFFERER`].
pub const ANSWERER: &str = "answerer";

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

    /// Who seals a code of this kind, and for whom.
    fn ends(self) -> (&'static str, &'static str) {
        match self {
            CodeKind::Offer => (OFFERER, ANSWERER),
            CodeKind::Answer => (ANSWERER, OFFERER),
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
    /// A code pasted could not be used (it is asked for again).
    Refused(BlobError),
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

/// Where codes go.
#[derive(Debug, Clone)]
pub enum Channel {
    /// The front end, by hand; with a secret both sides were given, or
    /// none (the offer code then carries a fresh one).
    Manual(Role, Option<Secret>),
    /// The mailbox of the server whose WebSocket URL is `server`, under
    /// `id`: the side that made the pairing offers at once; the other waits
    /// up to [`JOIN_WAIT`] for that offer and answers it (or, finding none,
    /// offers itself). Codes are sealed with the pairing's secret.
    Mailbox {
        /// The server (`ws://host:port/ws`).
        server: String,
        /// The mailbox id both sides agreed on.
        id: String,
        /// The pairing's secret.
        secret: Secret,
        /// This side made the pairing.
        made: bool,
    },
}

/// An offer or answer with everything the other side needs: what a code
/// holds, once opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: CodeKind,
    /// The connection id.
    pub sid: String,
    /// The sender's nickname.
    pub nick: String,
    /// The session description, candidates included.
    pub sdp: String,
}

/// A connection code as read, before it is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// Its kind.
    pub kind: CodeKind,
    /// The secret an offer code carries, if any.
    pub secret: Option<Secret>,
    /// The sealed blob, `{"iv":…,"ct":…}`.
    sealed: Value,
}

/// Why a code cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Not a peerchat code at all.
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
    /// An offer code with no secret, and none given.
    #[error(
        "this offer code carries no secret: the other side made it with a shared secret; give it with --secret"
    )]
    NoSecret,
    /// It does not open with the secret: altered, or made for another
    /// offer (or with another shared secret).
    #[error(
        "this code does not belong to this exchange: it was altered, or made for another offer or with another secret"
    )]
    Foreign,
}

impl Code {
    /// Reads a code, ignoring white space anywhere in it.
    pub fn parse(text: &str) -> Result<Code, BlobError> {
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
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&json) else {
            return Err(BlobError::Damaged);
        };
        let kind = match obj.get("type").and_then(Value::as_str) {
            Some("offer") => CodeKind::Offer,
            Some("answer") => CodeKind::Answer,
            _ => return Err(BlobError::Damaged),
        };
        let secret = match obj.get("secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if kind == CodeKind::Offer => {
                Some(Secret::from_fragment(s).map_err(|_| BlobError::Damaged)?)
            }
            Some(_) => return Err(BlobError::Damaged),
        };
        let mut sealed = Map::new();
        for field in ["iv", "ct"] {
            let value = obj.get(field).ok_or(BlobError::Damaged)?;
            sealed.insert(field.to_owned(), value.clone());
        }
        Ok(Code {
            kind,
            secret,
            sealed: Value::Object(sealed),
        })
    }

    /// The code, if it is of the `want`ed kind.
    pub fn expect(self, want: CodeKind) -> Result<Code, BlobError> {
        if self.kind == want {
            Ok(self)
        } else {
            Err(BlobError::WrongKind {
                got: self.kind,
                want,
            })
        }
    }

    /// Opens it with the key of the exchange.
    pub fn open_with(&self, key: &SignalKey) -> Result<Blob, BlobError> {
        let (from, to) = self.kind.ends();
        let plain = key
            .open_payload(from, to, &self.sealed)
            .map_err(|_| BlobError::Foreign)?;
        let blob: Blob =
            serde_json::from_value(Value::Object(plain.payload)).map_err(|_| BlobError::Damaged)?;
        if blob.kind != self.kind {
            return Err(BlobError::Foreign);
        }
        peerchat_protocol::validate_nick(&blob.nick).map_err(|_| BlobError::BadNick)?;
        Ok(blob)
    }
}

impl Blob {
    /// The blob sealed with `key` as one line of text, carrying `secret`
    /// in the clear if given (an offer whose secret was not shared ahead).
    pub fn seal(&self, key: &SignalKey, secret: Option<&Secret>) -> String {
        let (from, to) = self.kind.ends();
        let Ok(Value::Object(payload)) = serde_json::to_value(self) else {
            return String::new();
        };
        let stamp = Stamp {
            epoch: peerchat_e2e::base64url::encode(&rand::random::<[u8; 16]>()),
            n: 1,
            ts: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let Ok(sealed) = key.seal_payload(rand::random(), from, to, &payload, &stamp) else {
            return String::new();
        };
        let mut code = Map::new();
        code.insert("v".into(), Value::from(2));
        code.insert("type".into(), Value::from(self.kind.as_str()));
        if let Some(secret) = secret {
            code.insert("secret".into(), Value::from(secret.to_fragment()));
        }
        if let Value::Object(sealed) = sealed.to_json() {
            code.extend(sealed);
        }
        let json = serde_json::to_vec(&Value::Object(code)).unwrap_or_default();
        let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let _ = deflate.write_all(&json);
        let packed = deflate.finish().unwrap_or_default();
        format!("{BLOB_PREFIX}{}", BASE64_URL_SAFE_NO_PAD.encode(packed))
    }
}

/// Starts the pair transport; the engine talks to it as to a server, and
/// hands it the codes pasted by hand on `pasted`.
pub(crate) fn spawn(
    channel: Channel,
    nick: String,
    events: mpsc::UnboundedSender<SignalingEvent>,
    pasted: mpsc::UnboundedReceiver<Code>,
) -> Signaling {
    let (out, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Err(err) = run(channel, nick, out_rx, pasted, &events).await {
            let _ = events.send(SignalingEvent::Pairing(Pairing::Failed(err)));
        }
    });
    Signaling { out }
}

/// Asks the front end for the other side's code and waits for one that
/// `open` accepts; each that it refuses is told, and asked for again.
async fn wanted<T>(
    kind: CodeKind,
    pasted: &mut mpsc::UnboundedReceiver<Code>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
    open: impl Fn(Code) -> Result<T, BlobError>,
) -> Result<T, PairError> {
    loop {
        let _ = events.send(SignalingEvent::Pairing(Pairing::Wanted(kind)));
        let code = pasted.recv().await.ok_or(PairError::Stopped)?;
        match code.expect(kind).and_then(&open) {
            Ok(value) => return Ok(value),
            Err(err) => {
                let _ = events.send(SignalingEvent::Pairing(Pairing::Refused(err)));
            }
        }
    }
}

fn show(events: &mpsc::UnboundedSender<SignalingEvent>, kind: CodeKind, code: String) {
    let _ = events.send(SignalingEvent::Pairing(Pairing::Show { kind, code }));
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
        let value: Value = serde_json::from_str(payload.get()).ok()?;
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
    mut pasted: mpsc::UnboundedReceiver<Code>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
) -> Result<(), PairError> {
    let _ = events.send(SignalingEvent::Open);
    let mut mailbox = match &channel {
        Channel::Mailbox {
            server, id, secret, ..
        } => Some((
            Mailbox::new(server, id)?,
            SignalKey::derive(secret, Context::mailbox(id).unwrap_or(Context::Code)),
        )),
        Channel::Manual(..) => None,
    };
    // In the mailbox, the side that made the pairing offers; the other
    // answers the offer it finds, waiting for it a while: the maker posts
    // it only once its candidates are gathered, and a joiner that looked
    // only once could find the mailbox empty meanwhile, offer too, and
    // leave both waiting for an answer.
    let (role, waiting_offer) = match (&channel, &mut mailbox) {
        (Channel::Manual(role, _), _) => (*role, None),
        (Channel::Mailbox { made: true, .. }, _) => (Role::Offer, None),
        (_, Some((mb, key))) => match mb.take_offer(JOIN_WAIT).await? {
            Some(offer) => (Role::Answer, Some(offer.open_with(key)?)),
            None => (Role::Offer, None),
        },
        (_, None) => unreachable!("a mailbox channel has a mailbox"),
    };
    let shared = match &channel {
        Channel::Manual(_, secret) => secret.clone(),
        Channel::Mailbox { .. } => None,
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
                kind,
                sid,
                nick,
                sdp,
            };
            let answer = match &mut mailbox {
                None => {
                    // A fresh secret travels in the offer code, unless both
                    // sides were given one.
                    let secret = shared
                        .clone()
                        .unwrap_or_else(|| Secret::from_random(rand::random()));
                    let key = SignalKey::derive(&secret, Context::Code);
                    let carried = shared.is_none().then_some(&secret);
                    show(events, CodeKind::Offer, offer.seal(&key, carried));
                    wanted(CodeKind::Answer, &mut pasted, events, |code| {
                        code.open_with(&key)
                    })
                    .await?
                }
                Some((mb, key)) => mb.offer_and_wait(&offer, key).await?,
            };
            emit(
                events,
                ServerEvent::PeerJoined(member(ANSWERER, &answer.nick)),
            );
            emit(events, signal(ANSWERER, &answer));
        }
        Role::Answer => {
            let (offer, manual_key) = match waiting_offer {
                Some(offer) => (offer, None),
                None => {
                    let open = |code: Code| {
                        let secret = code
                            .secret
                            .clone()
                            .or_else(|| shared.clone())
                            .ok_or(BlobError::NoSecret)?;
                        let key = SignalKey::derive(&secret, Context::Code);
                        Ok((code.open_with(&key)?, key))
                    };
                    let (offer, key) = wanted(CodeKind::Offer, &mut pasted, events, open).await?;
                    (offer, Some(key))
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
            let (sid, kind, sdp) = next_description(&mut out).await.ok_or(PairError::Stopped)?;
            let answer = Blob {
                kind,
                sid,
                nick,
                sdp,
            };
            match (&mut mailbox, &manual_key) {
                (Some((mb, key)), _) => mb.send_answer(&answer, key).await?,
                (None, Some(key)) => show(events, CodeKind::Answer, answer.seal(key, None)),
                (None, None) => return Err(PairError::Stopped),
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

    /// An offer code waiting in the mailbox, if one arrives within `wait`.
    async fn take_offer(&self, wait: Duration) -> Result<Option<Code>, PairError> {
        let query = format!("get={}&timeoutms={}", self.id, wait.as_millis());
        match self.post(&query, b"").await? {
            (200, body) => {
                let text = String::from_utf8_lossy(&body);
                Ok(Some(
                    Code::parse(&text).and_then(|c| c.expect(CodeKind::Offer))?,
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
    async fn offer_and_wait(&self, offer: &Blob, key: &SignalKey) -> Result<Blob, PairError> {
        let encoded = offer.seal(key, None);
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
        Ok(Code::parse(&text)
            .and_then(|c| c.expect(CodeKind::Answer))
            .and_then(|c| c.open_with(key))?)
    }

    async fn send_answer(&self, answer: &Blob, key: &SignalKey) -> Result<(), PairError> {
        match self
            .post(
                &format!("set={}.answer", self.id),
                answer.seal(key, None).as_bytes(),
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

    fn blob(kind: CodeKind) -> Blob {
        Blob {
            kind,
            sdp:
                "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"
                    .repeat(8),
            sid: "abc".into(),
            nick: "dora".into(),
        }
    }

    #[test]
    fn codes_are_sealed_on_one_compact_line_and_carry_their_secret() {
        let secret = Secret::from_random([3; 32]);
        let key = SignalKey::derive(&secret, Context::Code);
        let b = blob(CodeKind::Offer);
        let text = b.seal(&key, Some(&secret));
        assert!(text.starts_with(BLOB_PREFIX));
        assert!(!text.contains(char::is_whitespace));
        assert!(text.len() < 2 * b.sdp.len(), "about as short as it can be");
        let code = Code::parse(&text).unwrap();
        assert_eq!(code.secret, Some(secret.clone()));
        // Line breaks from a chat program or terminal are ignored.
        let wrapped = format!("  {}\n{}  ", &text[..30], &text[30..]);
        assert_eq!(Code::parse(&wrapped).unwrap().open_with(&key), Ok(b));
        // The answer is sealed with the offer's secret and carries none.
        let answer = blob(CodeKind::Answer).seal(&key, None);
        let code = Code::parse(&answer).unwrap();
        assert_eq!(code.secret, None);
        assert_eq!(code.open_with(&key), Ok(blob(CodeKind::Answer)));
        // Another exchange's secret does not open it.
        let other = SignalKey::derive(&Secret::from_random([4; 32]), Context::Code);
        assert_eq!(code.open_with(&other), Err(BlobError::Foreign));
    }

    #[test]
    fn damaged_codes_are_refused() {
        let key = SignalKey::derive(&Secret::from_random([3; 32]), Context::Code);
        let text = blob(CodeKind::Offer).seal(&key, None);
        assert_eq!(Code::parse("hello"), Err(BlobError::Prefix));
        assert_eq!(
            Code::parse(&text[..text.len() - 5]),
            Err(BlobError::Damaged)
        );
        assert_eq!(Code::parse("peerchat2.!!!"), Err(BlobError::Damaged));
        assert_eq!(Code::parse("peerchat1.abc"), Err(BlobError::Prefix));
        assert_eq!(
            Code::parse(&text).unwrap().expect(CodeKind::Answer),
            Err(BlobError::WrongKind {
                got: CodeKind::Offer,
                want: CodeKind::Answer
            })
        );
    }
}
