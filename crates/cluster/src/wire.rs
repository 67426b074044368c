//! What servers send each other: entries of messages, in a compact binary
//! form.
//!
//! An entry is what one server appends to another's inbox at once: the
//! sender, a sequence number counted per (sender, receiver) pair from 1, and
//! one or more messages. All integers are little-endian.
//!
//! ```text
//! entry   = version:u8 (1) from:u64 seq:u64 count:u32 message*
//! message = 1 conn:u64 len:u32 text      client frame, ingress → owner
//!         | 2 conn:u64 how:u8            client gone (0 lost, 1 left)
//!         | 3 conn:u64 len:u32 frame     frame for a client, owner → ingress
//!         | 4 conn:u64 len:u8 reason     close a client with this error code
//!         | 5 conn:u64                   close a client normally (it left)
//!         | 6 conn:u64                   the client's join was accepted
//!         | 7 conn:u64 owner:u64         the room is not mine: join at owner
//!         | 8 req:u64 set:u8 wait_ms:u64 len:u8 id len:u32 text
//!                                        a mailbox request, to the id's owner
//!         | 9 req:u64 kind:u8 n:u64 len:u32 text
//!                                        how it ended (0 text, 1 taken,
//!                                        2 timed out, 3 too large (n: the
//!                                        limit), 4 queue full, 5 busy)
//!         | 10 req:u64                   the request was withdrawn
//!         | 11 req:u64 owner:u64         the id is not mine: ask owner
//! ```

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use peerchat_mailbox::{MailboxError, Resolution};
use peerchat_protocol::ErrorCode;
use peerchat_rooms::{ConnId, Departure, Frame};

use crate::NodeId;

const VERSION: u8 = 1;

/// One message between two servers. `conn` is always the connection's id
/// at the server the client is connected to (its ingress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text frame from a client, for the room's owner.
    Text {
        /// The client's connection at its ingress.
        conn: ConnId,
        /// The frame, as the client sent it (UTF-8).
        text: Bytes,
    },
    /// A client's connection ended.
    Gone {
        /// The client's connection at its ingress.
        conn: ConnId,
        /// Whether it left or was lost.
        how: Departure,
    },
    /// A frame the owner's hub sends to a client.
    Send {
        /// The client's connection at its ingress.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// The owner's hub closed a client's connection (after the frames sent
    /// before), and forgot it.
    Close {
        /// The client's connection at its ingress.
        conn: ConnId,
        /// Why.
        reason: ErrorCode,
    },
    /// The owner's hub closed a client's connection normally: it left.
    CloseNormally {
        /// The client's connection at its ingress.
        conn: ConnId,
    },
    /// The client is now a member of the room: its frames need no more
    /// looking at by its ingress.
    Joined {
        /// The client's connection at its ingress.
        conn: ConnId,
    },
    /// The receiver of a join does not own its room: `owner` does.
    Redirect {
        /// The client's connection at its ingress.
        conn: ConnId,
        /// The room's owner.
        owner: NodeId,
    },
    /// A mailbox request (`POST /sig`) for the owner of its id.
    MailboxOp {
        /// The request, numbered by its ingress.
        req: u64,
        /// The id.
        id: Bytes,
        /// How long it may wait.
        wait: Duration,
        /// The text of a `set`, or `None` for a `get`.
        text: Option<Bytes>,
    },
    /// How a mailbox request ended.
    MailboxDone {
        /// The request.
        req: u64,
        /// Its outcome.
        result: Result<Resolution, MailboxError>,
    },
    /// A mailbox request was withdrawn (its client hung up).
    MailboxCancel {
        /// The request.
        req: u64,
    },
    /// The receiver of a mailbox request does not own its id: `owner` does.
    MailboxRedirect {
        /// The request.
        req: u64,
        /// The id's owner.
        owner: NodeId,
    },
}

impl Message {
    /// Bytes this message takes in an entry.
    pub fn encoded_len(&self) -> usize {
        9 + match self {
            Self::Text { text, .. } => 4 + text.len(),
            Self::Gone { .. } => 1,
            Self::Send { frame, .. } => 4 + frame.as_str().len(),
            Self::Close { reason, .. } => 1 + reason.as_str().len(),
            Self::CloseNormally { .. } | Self::Joined { .. } => 0,
            Self::Redirect { .. } => 8,
            Self::MailboxOp { id, text, .. } => {
                1 + 8 + 1 + id.len() + 4 + text.as_ref().map_or(0, Bytes::len)
            }
            Self::MailboxDone { result, .. } => {
                1 + 8
                    + 4
                    + match result {
                        Ok(Resolution::Text(text)) => text.len(),
                        _ => 0,
                    }
            }
            Self::MailboxCancel { .. } => 0,
            Self::MailboxRedirect { .. } => 8,
        }
    }

    fn encode(&self, buf: &mut BytesMut) {
        match self {
            Self::Text { conn, text } => {
                buf.put_u8(1);
                buf.put_u64_le(*conn);
                put_bytes(buf, text);
            }
            Self::Gone { conn, how } => {
                buf.put_u8(2);
                buf.put_u64_le(*conn);
                buf.put_u8(u8::from(*how == Departure::Left));
            }
            Self::Send { conn, frame } => {
                buf.put_u8(3);
                buf.put_u64_le(*conn);
                put_bytes(buf, frame.as_str().as_bytes());
            }
            Self::Close { conn, reason } => {
                buf.put_u8(4);
                buf.put_u64_le(*conn);
                let code = reason.as_str().as_bytes();
                buf.put_u8(u8::try_from(code.len()).unwrap_or(0));
                buf.put_slice(&code[..code.len().min(255)]);
            }
            Self::CloseNormally { conn } => {
                buf.put_u8(5);
                buf.put_u64_le(*conn);
            }
            Self::Joined { conn } => {
                buf.put_u8(6);
                buf.put_u64_le(*conn);
            }
            Self::Redirect { conn, owner } => {
                buf.put_u8(7);
                buf.put_u64_le(*conn);
                buf.put_u64_le(owner.0);
            }
            Self::MailboxOp {
                req,
                id,
                wait,
                text,
            } => {
                buf.put_u8(8);
                buf.put_u64_le(*req);
                buf.put_u8(u8::from(text.is_some()));
                buf.put_u64_le(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                let id = &id[..id.len().min(255)];
                buf.put_u8(id.len() as u8);
                buf.put_slice(id);
                put_bytes(buf, text.as_deref().unwrap_or_default());
            }
            Self::MailboxDone { req, result } => {
                buf.put_u8(9);
                buf.put_u64_le(*req);
                let (kind, n, text): (u8, u64, &[u8]) = match result {
                    Ok(Resolution::Text(text)) => (0, 0, text),
                    Ok(Resolution::Taken) => (1, 0, &[]),
                    Ok(Resolution::TimedOut) => (2, 0, &[]),
                    Err(MailboxError::TooLarge { max }) => (3, *max as u64, &[]),
                    Err(MailboxError::QueueFull) => (4, 0, &[]),
                    Err(_) => (5, 0, &[]),
                };
                buf.put_u8(kind);
                buf.put_u64_le(n);
                put_bytes(buf, text);
            }
            Self::MailboxCancel { req } => {
                buf.put_u8(10);
                buf.put_u64_le(*req);
            }
            Self::MailboxRedirect { req, owner } => {
                buf.put_u8(11);
                buf.put_u64_le(*req);
                buf.put_u64_le(owner.0);
            }
        }
    }

    fn decode(buf: &mut Bytes) -> Result<Self, WireError> {
        let tag = take_u8(buf)?;
        let conn = take_u64(buf)?;
        Ok(match tag {
            1 => Self::Text {
                conn,
                text: take_text(buf)?,
            },
            2 => Self::Gone {
                conn,
                how: match take_u8(buf)? {
                    0 => Departure::Lost,
                    1 => Departure::Left,
                    _ => return Err(WireError::Malformed("departure")),
                },
            },
            3 => Self::Send {
                conn,
                frame: Frame::from_utf8(take_raw(buf)?).ok_or(WireError::Malformed("frame"))?,
            },
            4 => {
                let len = usize::from(take_u8(buf)?);
                if buf.remaining() < len {
                    return Err(WireError::Truncated);
                }
                let code = buf.split_to(len);
                let code =
                    std::str::from_utf8(&code).map_err(|_| WireError::Malformed("reason"))?;
                let reason = serde_json::from_value(serde_json::Value::from(code))
                    .map_err(|_| WireError::Malformed("reason"))?;
                Self::Close { conn, reason }
            }
            5 => Self::CloseNormally { conn },
            6 => Self::Joined { conn },
            7 => Self::Redirect {
                conn,
                owner: NodeId(take_u64(buf)?),
            },
            8 => {
                let set = take_u8(buf)? == 1;
                let wait = Duration::from_millis(take_u64(buf)?);
                let len = usize::from(take_u8(buf)?);
                if buf.remaining() < len {
                    return Err(WireError::Truncated);
                }
                let id = buf.split_to(len);
                let text = take_raw(buf)?;
                Self::MailboxOp {
                    req: conn,
                    id,
                    wait,
                    text: set.then_some(text),
                }
            }
            9 => {
                let kind = take_u8(buf)?;
                let n = take_u64(buf)?;
                let text = take_raw(buf)?;
                let result = match kind {
                    0 => Ok(Resolution::Text(text)),
                    1 => Ok(Resolution::Taken),
                    2 => Ok(Resolution::TimedOut),
                    3 => Err(MailboxError::TooLarge {
                        max: usize::try_from(n).unwrap_or(usize::MAX),
                    }),
                    4 => Err(MailboxError::QueueFull),
                    5 => Err(MailboxError::Busy),
                    _ => return Err(WireError::Malformed("mailbox outcome")),
                };
                Self::MailboxDone { req: conn, result }
            }
            10 => Self::MailboxCancel { req: conn },
            11 => Self::MailboxRedirect {
                req: conn,
                owner: NodeId(take_u64(buf)?),
            },
            _ => return Err(WireError::Malformed("message tag")),
        })
    }
}

/// An entry: what one server appends to another's inbox at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The sender.
    pub from: NodeId,
    /// Its number, counted per (sender, receiver) from 1.
    pub seq: u64,
    /// The messages, in the order the sender produced them.
    pub messages: Vec<Message>,
}

/// An entry that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// It ends too soon.
    #[error("the entry ends too soon")]
    Truncated,
    /// It is of a version this server does not read.
    #[error("the entry is of version {0}, not 1")]
    Version(u8),
    /// A field holds something it cannot.
    #[error("the entry's {0} is malformed")]
    Malformed(&'static str),
}

impl Entry {
    /// The entry's bytes.
    pub fn encode(&self) -> Bytes {
        let len = 21
            + self
                .messages
                .iter()
                .map(Message::encoded_len)
                .sum::<usize>();
        encode_parts(self.from, self.seq, &self.messages, len)
    }

    /// Reads an entry.
    pub fn decode(mut bytes: Bytes) -> Result<Self, WireError> {
        let version = take_u8(&mut bytes)?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let from = NodeId(take_u64(&mut bytes)?);
        let seq = take_u64(&mut bytes)?;
        let count = take_u32(&mut bytes)?;
        // Each message takes at least 9 bytes: a count beyond that is a lie.
        if usize::try_from(count).map_or(true, |n| n > bytes.remaining() / 9) {
            return Err(WireError::Truncated);
        }
        let mut messages = Vec::with_capacity(count as usize);
        for _ in 0..count {
            messages.push(Message::decode(&mut bytes)?);
        }
        if bytes.has_remaining() {
            return Err(WireError::Malformed("length"));
        }
        Ok(Self {
            from,
            seq,
            messages,
        })
    }
}

/// Encodes an entry from its parts, `len` bytes in all.
pub(crate) fn encode_parts(from: NodeId, seq: u64, messages: &[Message], len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(len);
    buf.put_u8(VERSION);
    buf.put_u64_le(from.0);
    buf.put_u64_le(seq);
    buf.put_u32_le(u32::try_from(messages.len()).unwrap_or(u32::MAX));
    for message in messages {
        message.encode(&mut buf);
    }
    buf.freeze()
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    buf.put_u32_le(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    buf.put_slice(bytes);
}

fn take_u8(buf: &mut Bytes) -> Result<u8, WireError> {
    buf.try_get_u8().map_err(|_| WireError::Truncated)
}

fn take_u32(buf: &mut Bytes) -> Result<u32, WireError> {
    buf.try_get_u32_le().map_err(|_| WireError::Truncated)
}

fn take_u64(buf: &mut Bytes) -> Result<u64, WireError> {
    buf.try_get_u64_le().map_err(|_| WireError::Truncated)
}

/// Length-prefixed bytes, without copying.
fn take_raw(buf: &mut Bytes) -> Result<Bytes, WireError> {
    let len = take_u32(buf)? as usize;
    if buf.remaining() < len {
        return Err(WireError::Truncated);
    }
    Ok(buf.split_to(len))
}

/// Length-prefixed UTF-8 text, without copying.
fn take_text(buf: &mut Bytes) -> Result<Bytes, WireError> {
    let text = take_raw(buf)?;
    std::str::from_utf8(&text).map_err(|_| WireError::Malformed("text"))?;
    Ok(text)
}
