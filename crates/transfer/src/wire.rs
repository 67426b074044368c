//! What travels on a transfer channel (label `file`): JSON control messages
//! and binary data messages (`docs/protocol.md`, "Transfer channels").

use peerchat_protocol::file::{hash_from_hex, hex};
use peerchat_protocol::peer::{integer, validate_id};
use serde_json::{Value, json};

use crate::hash::Hash;

/// The label of a transfer channel.
pub const LABEL: &str = "file";

/// The version written in control messages.
pub const VERSION: u64 = 2;

/// Bytes of a piece in one data message, unless both sides agreed on
/// more (`get` and `have` with `chunk`); also the most bytes of a hash-list
/// message's payload.
pub const CHUNK: usize = 16 * 1024;

/// Most bytes of a piece in one data message that peerchat asks for and
/// sends (with its header, a message stays within the 65,536 bytes every
/// WebRTC stack here takes).
pub const MAX_CHUNK: usize = 32 * 1024;

/// Bytes of a data message's header.
pub const HEADER: usize = 9;

/// Most hashes in one hash-list message.
pub const HASHES_PER_MESSAGE: usize = CHUNK / 32;

/// Most pieces one `want` may name.
pub const MAX_WANT: usize = 256;

const PIECE: u8 = 1;
const LIST: u8 = 2;

/// Why a side ends a transfer (`cancel`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The holder does not hold the whole file (or not for the asker).
    Unavailable,
    /// The holder serves as many transfers as it will.
    Busy,
    /// A user stopped it (or withdrew the offer).
    Cancelled,
    /// The holder's file no longer matches the offer.
    Changed,
    /// Nothing was asked for too long.
    Idle,
    /// The other side broke a rule.
    Protocol,
}

impl Reason {
    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unavailable => "unavailable",
            Reason::Busy => "busy",
            Reason::Cancelled => "cancelled",
            Reason::Changed => "changed",
            Reason::Idle => "idle",
            Reason::Protocol => "protocol",
        }
    }

    /// From the wire; a reason this implementation does not know reads as
    /// [`Reason::Unavailable`].
    pub fn parse(text: &str) -> Self {
        match text {
            "busy" => Reason::Busy,
            "cancelled" => Reason::Cancelled,
            "changed" => Reason::Changed,
            "idle" => Reason::Idle,
            "protocol" => Reason::Protocol,
            _ => Reason::Unavailable,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message on a transfer channel cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A control message that is not a JSON object with `v` (1 or more)
    /// and a string `type`.
    #[error("not a control message: {0}")]
    NotControl(&'static str),
    /// A field of a control message breaks its rule.
    #[error("field `{0}` of a control message breaks its rule")]
    BadField(&'static str),
    /// A data message shorter than its header, or with nothing after it.
    #[error("a data message must hold a 9-byte header and 1 to 32768 bytes")]
    BadLength,
    /// A data message of a kind that is neither piece data nor hash list.
    #[error("unknown data message kind {0}")]
    BadKind(u8),
    /// A hash-list message whose payload is not whole hashes (at most
    /// 512), or whose offset is not 0.
    #[error("a hash-list message must hold 1 to 512 whole 32-byte hashes and offset 0")]
    BadList,
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Which file the fetching side wants, and whether it needs the hash
    /// list.
    Get {
        /// The offer's `fid`.
        fid: String,
        /// The offer's `sha256`.
        sha256: Hash,
        /// Whether to send the hash list.
        list: bool,
        /// The most bytes of a piece it takes in one data message (at
        /// least [`CHUNK`]); without, [`CHUNK`].
        chunk: Option<u64>,
    },
    /// The holder has the file, of this many pieces.
    Have {
        /// The file's piece count.
        pieces: u64,
        /// The bytes of a piece in each data message it sends ([`CHUNK`]
        /// or [`MAX_CHUNK`], at most what `get` asked for); without,
        /// [`CHUNK`].
        chunk: Option<u64>,
    },
    /// Pieces to send, in order, after those asked for before.
    Want {
        /// Piece indices (1 to [`MAX_WANT`]).
        pieces: Vec<u64>,
    },
    /// The sender stops.
    Cancel {
        /// Why.
        reason: Reason,
    },
    /// A control message of a type this implementation does not know:
    /// ignored.
    Unknown,
}

/// A control message's fields in the order the protocol writes them.
#[derive(serde::Serialize)]
struct Out<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pieces: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> Out<'a> {
    fn new(kind: &'a str) -> Self {
        Self {
            v: VERSION,
            kind,
            fid: None,
            sha256: None,
            list: None,
            pieces: None,
            chunk: None,
            reason: None,
        }
    }
}

impl Control {
    /// Reads a control message.
    pub fn parse(text: &str) -> Result<Control, WireError> {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
            return Err(WireError::NotControl("not a JSON object"));
        };
        if obj.get("v").and_then(integer).is_none_or(|v| v < 1) {
            return Err(WireError::NotControl("`v` must be 1 or more"));
        }
        let Some(Value::String(kind)) = obj.get("type") else {
            return Err(WireError::NotControl("`type` must be a string"));
        };
        let string = |field: &'static str| match obj.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(WireError::BadField(field)),
        };
        let count = |field: &'static str| {
            obj.get(field)
                .and_then(integer)
                .ok_or(WireError::BadField(field))
        };
        let chunk = |allowed: fn(u64) -> bool| match obj.get("chunk") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match integer(v) {
                Some(c) if allowed(c) => Ok(Some(c)),
                _ => Err(WireError::BadField("chunk")),
            },
        };
        Ok(match kind.as_str() {
            "get" => {
                let fid = string("fid")?;
                validate_id(fid).map_err(|_| WireError::BadField("fid"))?;
                let sha256 =
                    hash_from_hex(string("sha256")?).ok_or(WireError::BadField("sha256"))?;
                let list = match obj.get("list") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(WireError::BadField("list")),
                };
                let chunk = chunk(|c| c >= CHUNK as u64)?;
                Control::Get {
                    fid: fid.to_owned(),
                    sha256,
                    list,
                    chunk,
                }
            }
            "have" => Control::Have {
                pieces: count("pieces")?,
                chunk: chunk(|c| c == CHUNK as u64 || c == MAX_CHUNK as u64)?,
            },
            "want" => {
                let Some(Value::Array(items)) = obj.get("pieces") else {
                    return Err(WireError::BadField("pieces"));
                };
                if items.is_empty() || items.len() > MAX_WANT {
                    return Err(WireError::BadField("pieces"));
                }
                let pieces = items
                    .iter()
                    .map(|v| integer(v).ok_or(WireError::BadField("pieces")))
                    .collect::<Result<_, _>>()?;
                Control::Want { pieces }
            }
            "cancel" => Control::Cancel {
                reason: Reason::parse(string("reason").unwrap_or_default()),
            },
            _ => Control::Unknown,
        })
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        let out = match self {
            Control::Get {
                fid,
                sha256,
                list,
                chunk,
            } => Out {
                fid: Some(fid),
                sha256: Some(hex(sha256)),
                list: Some(*list),
                chunk: *chunk,
                ..Out::new("get")
            },
            Control::Have { pieces, chunk } => Out {
                pieces: Some(json!(pieces)),
                chunk: *chunk,
                ..Out::new("have")
            },
            Control::Want { pieces } => Out {
                pieces: Some(json!(pieces)),
                ..Out::new("want")
            },
            Control::Cancel { reason } => Out {
                reason: Some(reason.as_str()),
                ..Out::new("cancel")
            },
            Control::Unknown => Out::new("unknown"),
        };
        serde_json::to_string(&out).unwrap_or_default()
    }
}

/// A data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// Bytes of piece `index` from `offset` within it.
    Piece {
        /// The piece.
        index: u32,
        /// Where in the piece the bytes start.
        offset: u32,
        /// The bytes (1 to [`MAX_CHUNK`]; the receiver holds the sender to
        /// the `chunk` of its `have`).
        bytes: &'a [u8],
    },
    /// Hashes of the list from index `first` on.
    List {
        /// The index of the first hash.
        first: u32,
        /// The hashes, 32 bytes each.
        hashes: &'a [u8],
    },
}

impl<'a> Data<'a> {
    /// Reads a data message.
    pub fn parse(message: &'a [u8]) -> Result<Self, WireError> {
        if message.len() <= HEADER || message.len() > HEADER + MAX_CHUNK {
            return Err(WireError::BadLength);
        }
        let word = |at: usize| {
            u32::from_be_bytes([
                message[at],
                message[at + 1],
                message[at + 2],
                message[at + 3],
            ])
        };
        let (a, b, payload) = (word(1), word(5), &message[HEADER..]);
        match message[0] {
            PIECE => Ok(Data::Piece {
                index: a,
                offset: b,
                bytes: payload,
            }),
            LIST if b == 0 && payload.len() % 32 == 0 && payload.len() <= CHUNK => Ok(Data::List {
                first: a,
                hashes: payload,
            }),
            LIST => Err(WireError::BadList),
            kind => Err(WireError::BadKind(kind)),
        }
    }

    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, a, b, payload) = match *self {
            Data::Piece {
                index,
                offset,
                bytes,
            } => (PIECE, index, offset, bytes),
            Data::List { first, hashes } => (LIST, first, 0, hashes),
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(kind);
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
}
