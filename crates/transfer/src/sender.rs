//! The holder's side of one transfer channel: answers `get`, sends the hash
//! list and the pieces asked for, reading the file piece by piece and
//! handing the channel no more than it can hold.

use std::collections::VecDeque;
use std::sync::Arc;

use peerchat_protocol::file::FileMeta;
use sha2::{Digest, Sha256};

use crate::hash::Hash;
use crate::wire::{CHUNK, Control, Data, HASHES_PER_MESSAGE, MAX_CHUNK, Reason};

/// A holder serves at most this many transfers to one member at once.
pub const MAX_SERVING_PER_PEER: usize = 4;
/// A holder serves at most this many transfers at once.
pub const MAX_SERVING: usize = 16;

/// Limits of a [`Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SenderConfig {
    /// Data is handed to the channel only while less than this many bytes
    /// are in flight (buffered, not yet sent).
    pub high_water: u64,
    /// The channel's `bufferedAmountLowThreshold`: the driver reports the
    /// amount buffered ([`Sender::buffered`]) when it falls to this.
    pub low_water: u64,
    /// Largest read of the file asked for at once (a multiple of 16 KiB).
    pub read_bytes: u64,
    /// Most pieces asked for and not yet being sent.
    pub max_queue: usize,
    /// A channel on which nothing is asked for this long, with nothing left
    /// to send, is closed (ms).
    pub idle_ms: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            high_water: 1 << 20,
            low_water: 1 << 18,
            read_bytes: 1 << 18,
            max_queue: 256,
            idle_ms: 120_000,
        }
    }
}

/// Who ended a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// This side (its user).
    Us,
    /// The other side.
    Peer,
}

/// Why a [`Sender`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    /// The file read back does not match the offer (it changed, or was cut
    /// short).
    #[error("the file no longer matches what was offered")]
    Changed,
    /// The fetching side broke a rule.
    #[error("the other side broke the transfer protocol")]
    Protocol,
    /// Nothing was asked for too long.
    #[error("nothing was asked for too long")]
    Idle,
}

/// Where a [`Sender`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderState {
    /// Serving what is asked.
    Serving,
    /// The channel closed with everything asked for sent.
    Done,
    /// The channel closed with pieces still to send (the other side may
    /// come back for them on a new channel).
    Interrupted,
    /// Someone cancelled.
    Cancelled(By),
    /// It gave up, and closed the channel.
    Failed(SenderError),
}

impl SenderState {
    fn is_over(self) -> bool {
        self != SenderState::Serving
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderAction {
    /// Send this control message on the channel.
    SendText(String),
    /// Send this data message on the channel.
    SendBinary(Vec<u8>),
    /// Read `len` bytes of the file at `offset`, and hand them to
    /// [`Sender::read`].
    Read {
        /// Where, from the start of the file.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Close the channel.
    Close,
    /// The state changed.
    State(SenderState),
}

#[derive(Debug)]
struct Reading {
    piece: u64,
    /// Bytes of the piece read (or asked for) so far.
    next: u64,
    hasher: Sha256,
}

#[derive(Debug)]
struct Buffer {
    piece: u64,
    /// Where in the piece `bytes` starts.
    offset: u64,
    bytes: Vec<u8>,
    /// How much of it was sent.
    pos: usize,
}

/// The holder's side of one transfer channel, as a sans-IO machine.
#[derive(Debug)]
pub struct Sender {
    meta: FileMeta,
    list: Arc<[Hash]>,
    config: SenderConfig,
    state: SenderState,
    /// The next hash of the list to send, while it is being sent.
    list_next: Option<usize>,
    queue: VecDeque<u64>,
    reading: Option<Reading>,
    /// The read asked for and not answered: (offset, len).
    pending: Option<(u64, u64)>,
    buffers: VecDeque<Buffer>,
    /// Bytes of a piece in each data message.
    chunk: usize,
    in_flight: u64,
    sent: u64,
    active: u64,
}

impl Sender {
    /// Serves `meta`, whose pieces' hashes are `list`, on a channel whose
    /// `get` asked for it (`send_list`: whether it asked for the list;
    /// `asked_chunk`: its `chunk`). The first actions answer the `get`.
    pub fn new(
        meta: FileMeta,
        list: Arc<[Hash]>,
        send_list: bool,
        asked_chunk: Option<u64>,
        config: SenderConfig,
        now: u64,
    ) -> (Self, Vec<SenderAction>) {
        let chunk = match asked_chunk {
            Some(asked) if asked >= MAX_CHUNK as u64 => MAX_CHUNK,
            _ => CHUNK,
        };
        let config = SenderConfig {
            read_bytes: config.read_bytes.div_ceil(chunk as u64).max(1) * chunk as u64,
            ..config
        };
        let mut sender = Self {
            meta,
            list,
            config,
            state: SenderState::Serving,
            list_next: send_list.then_some(0),
            queue: VecDeque::new(),
            reading: None,
            pending: None,
            buffers: VecDeque::new(),
            chunk,
            in_flight: 0,
            sent: 0,
            active: now,
        };
        let mut out = vec![SenderAction::SendText(
            Control::Have {
                pieces: sender.meta.pieces(),
                chunk: asked_chunk.map(|_| chunk as u64),
            }
            .to_json(),
        )];
        sender.pump(&mut out);
        (sender, out)
    }

    /// The offer served.
    pub fn meta(&self) -> &FileMeta {
        &self.meta
    }

    /// Where it stands.
    pub fn state(&self) -> SenderState {
        self.state
    }

    /// Bytes of pieces handed to the channel.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes of pieces that have left the channel's buffer (what the other
    /// side can have received).
    pub fn delivered(&self) -> u64 {
        self.sent.saturating_sub(self.in_flight)
    }

    /// The `bufferedAmountLowThreshold` to set on the channel.
    pub fn low_water(&self) -> u64 {
        self.config.low_water
    }

    /// A control message arrived.
    pub fn text(&mut self, text: &str, now: u64) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if self.state.is_over() {
            return out;
        }
        self.active = now;
        match Control::parse(text) {
            Ok(Control::Want { pieces }) => {
                let count = self.meta.pieces();
                if pieces.iter().any(|&p| p >= count)
                    || self.queue.len() + pieces.len() > self.config.max_queue
                {
                    self.fail(SenderError::Protocol, Reason::Protocol, &mut out);
                    return out;
                }
                self.queue.extend(pieces);
                self.pump(&mut out);
            }
            Ok(Control::Cancel { .. }) => {
                self.stop(SenderState::Cancelled(By::Peer), &mut out);
                out.push(SenderAction::Close);
            }
            Ok(Control::Unknown) => {}
            Ok(Control::Get { .. } | Control::Have { .. }) | Err(_) => {
                self.fail(SenderError::Protocol, Reason::Protocol, &mut out);
            }
        }
        out
    }

    /// The read asked for returned `bytes` (of the file at `offset`). A
    /// caller that hashes what it reads (off the thread that sends, say)
    /// passes `digest`, the SHA-256 of `bytes`: when `bytes` is a whole
    /// piece it is checked against the list with that instead of hashing
    /// here, the same check.
    pub fn read(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        digest: Option<Hash>,
        now: u64,
    ) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if self.state.is_over() || self.pending != Some((offset, bytes.len() as u64)) {
            // A short read is a file that was cut since it was offered.
            if !self.state.is_over() && self.pending.is_some_and(|(at, _)| at == offset) {
                self.fail(SenderError::Changed, Reason::Changed, &mut out);
            }
            return out;
        }
        self.pending = None;
        self.active = now;
        let Some(reading) = self.reading.as_mut() else {
            return out;
        };
        let piece = reading.piece;
        let start = reading.next - bytes.len() as u64;
        let piece_len = self.meta.piece_len(piece);
        let whole = digest.filter(|_| start == 0 && reading.next == piece_len);
        if whole.is_none() {
            reading.hasher.update(&bytes);
        }
        if reading.next == piece_len {
            let reading = self.reading.take().expect("reading");
            let hash: Hash = whole.unwrap_or_else(|| reading.hasher.finalize().into());
            if usize::try_from(piece).ok().and_then(|i| self.list.get(i)) != Some(&hash) {
                self.fail(SenderError::Changed, Reason::Changed, &mut out);
                return out;
            }
        }
        self.buffers.push_back(Buffer {
            piece,
            offset: start,
            bytes,
            pos: 0,
        });
        self.pump(&mut out);
        out
    }

    /// The channel holds `amount` bytes not yet sent (reported when it falls
    /// to [`Sender::low_water`], or at any time).
    pub fn buffered(&mut self, amount: u64, _now: u64) -> Vec<SenderAction> {
        let mut out = Vec::new();
        self.in_flight = amount;
        if !self.state.is_over() {
            self.pump(&mut out);
        }
        out
    }

    /// This side's user cancels.
    pub fn cancel(&mut self, _now: u64) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if !self.state.is_over() {
            out.push(SenderAction::SendText(
                Control::Cancel {
                    reason: Reason::Cancelled,
                }
                .to_json(),
            ));
            out.push(SenderAction::Close);
            self.stop(SenderState::Cancelled(By::Us), &mut out);
        }
        out
    }

    /// The channel closed.
    pub fn closed(&mut self, _now: u64) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if !self.state.is_over() {
            let state = if self.idle() {
                SenderState::Done
            } else {
                SenderState::Interrupted
            };
            self.stop(state, &mut out);
        }
        out
    }

    /// When [`Sender::handle_timeout`] is due next.
    pub fn next_deadline(&self) -> Option<u64> {
        (!self.state.is_over() && self.idle())
            .then(|| self.active.saturating_add(self.config.idle_ms))
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if self.next_deadline().is_some_and(|d| now >= d) {
            self.fail(SenderError::Idle, Reason::Idle, &mut out);
        }
        out
    }

    /// Nothing asked for is left to send.
    fn idle(&self) -> bool {
        self.list_next.is_none()
            && self.queue.is_empty()
            && self.reading.is_none()
            && self.pending.is_none()
            && self.buffers.is_empty()
    }

    fn fail(&mut self, error: SenderError, reason: Reason, out: &mut Vec<SenderAction>) {
        out.push(SenderAction::SendText(Control::Cancel { reason }.to_json()));
        out.push(SenderAction::Close);
        self.stop(SenderState::Failed(error), out);
    }

    fn stop(&mut self, state: SenderState, out: &mut Vec<SenderAction>) {
        self.state = state;
        self.list_next = None;
        self.queue.clear();
        self.reading = None;
        self.pending = None;
        self.buffers.clear();
        out.push(SenderAction::State(state));
    }

    /// Hands the channel what fits, and asks for the next read.
    fn pump(&mut self, out: &mut Vec<SenderAction>) {
        while self.in_flight < self.config.high_water {
            let message = if let Some(next) = self.list_next {
                let end = (next + HASHES_PER_MESSAGE).min(self.list.len());
                let hashes: Vec<u8> = self.list[next..end].concat();
                self.list_next = (end < self.list.len()).then_some(end);
                Data::List {
                    first: u32::try_from(next).unwrap_or(u32::MAX),
                    hashes: &hashes,
                }
                .encode()
            } else if let Some(buffer) = self.buffers.front_mut() {
                let end = (buffer.pos + self.chunk).min(buffer.bytes.len());
                let bytes = &buffer.bytes[buffer.pos..end];
                let message = Data::Piece {
                    index: u32::try_from(buffer.piece).unwrap_or(u32::MAX),
                    offset: u32::try_from(buffer.offset + buffer.pos as u64).unwrap_or(u32::MAX),
                    bytes,
                }
                .encode();
                self.sent += bytes.len() as u64;
                buffer.pos = end;
                if buffer.pos == buffer.bytes.len() {
                    self.buffers.pop_front();
                }
                message
            } else {
                break;
            };
            self.in_flight += message.len() as u64;
            out.push(SenderAction::SendBinary(message));
        }
        // Read ahead by one buffer at most.
        if self.pending.is_none() && self.buffers.len() < 2 {
            if self.reading.is_none() {
                if let Some(piece) = self.queue.pop_front() {
                    self.reading = Some(Reading {
                        piece,
                        next: 0,
                        hasher: Sha256::new(),
                    });
                }
            }
            if let Some(reading) = self.reading.as_mut() {
                let piece_len = self.meta.piece_len(reading.piece);
                let len = self.config.read_bytes.min(piece_len - reading.next);
                let offset = reading.piece * self.meta.piece + reading.next;
                reading.next += len;
                self.pending = Some((offset, len));
                out.push(SenderAction::Read { offset, len });
            }
        }
    }
}
