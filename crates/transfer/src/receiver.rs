//! The fetching side of a file: which holder to ask, what to ask for, each
//! piece checked against the hash list and the whole file against the
//! offer, stalls, resuming and cancelling (`docs/protocol.md`, "Fetching").

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use peerchat_protocol::file::FileMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::{Hash, root_of};
use crate::wire::{CHUNK, Control, Data, MAX_CHUNK, MAX_WANT, Reason};

/// Limits and timers of a [`Receiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverConfig {
    /// Offers up to this many bytes are fetched without asking; 0: none.
    pub auto_accept: u64,
    /// Most bytes asked for and not yet received (or received and not yet
    /// written) from one holder; at least one piece is always asked for.
    pub window: u64,
    /// Most holders fetched from at once.
    pub max_sources: usize,
    /// A transfer that receives nothing this long is stalled, and the
    /// silent holder has failed (ms).
    pub stall_ms: u64,
    /// A holder that does not answer `get` (with the list, if asked) this
    /// long after its channel was asked for has failed (ms).
    pub open_timeout_ms: u64,
    /// A holder that said `unavailable` is asked again after this long (ms).
    pub unavailable_ms: u64,
    /// The first backoff after a holder failed (ms); it doubles with each
    /// failure in a row.
    pub backoff_min_ms: u64,
    /// The longest backoff (ms).
    pub backoff_max_ms: u64,
    /// A holder that sent this many bad pieces is not asked again.
    pub max_bad_pieces: u32,
    /// Largest read of the partial file asked for at once.
    pub read_bytes: u64,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            auto_accept: 10 << 20,
            window: 4 << 20,
            max_sources: 1,
            stall_ms: 10_000,
            open_timeout_ms: 15_000,
            unavailable_ms: 60_000,
            backoff_min_ms: 1_000,
            backoff_max_ms: 30_000,
            max_bad_pieces: 3,
            read_bytes: 1 << 18,
        }
    }
}

/// Who cancelled a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Canceller {
    /// This side's user.
    Us,
    /// The offer's author.
    Author,
}

/// Why a transfer failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveError {
    /// Every piece matched the list, but the whole file does not match the
    /// offer's `sha256`: the offer is wrong, and the file is never offered
    /// for saving.
    #[error("the file received does not match the SHA-256 in its offer")]
    HashMismatch,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverState {
    /// Waiting for the user to accept it.
    Waiting,
    /// Bytes are coming (or a holder is being asked).
    Fetching,
    /// Nothing arrived since `since` (ms), for longer than the stall time;
    /// it keeps trying.
    Stalled {
        /// The last time anything arrived (or the transfer started).
        since: u64,
    },
    /// Every piece is here; the whole file is being checked.
    Checking,
    /// The file is complete and checked: it may be saved.
    Complete,
    /// It failed for good.
    Failed(ReceiveError),
    /// Someone cancelled it.
    Cancelled(Canceller),
}

impl ReceiverState {
    /// Whether nothing more will happen.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            ReceiverState::Complete | ReceiverState::Failed(_) | ReceiverState::Cancelled(_)
        )
    }
}

/// Why a holder failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceError {
    /// It sent `cancel` with this reason.
    Refused(Reason),
    /// It broke a rule (a bad message, a list that does not match `root`).
    Protocol,
    /// It sent too many bad pieces.
    BadPieces,
    /// It did not answer `get` in time.
    Timeout,
    /// It sent nothing for the stall time.
    Stalled,
    /// Its channel or connection closed.
    Closed,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverAction {
    /// Open a transfer channel (label `file`) to `peer` on its connection,
    /// and report [`Receiver::opened`] (or [`Receiver::closed`]).
    Open {
        /// The holder.
        peer: String,
    },
    /// Send this control message on the channel to `peer`.
    Send {
        /// The holder.
        peer: String,
        /// The message.
        text: String,
    },
    /// Close the channel to `peer`.
    Close {
        /// The holder.
        peer: String,
    },
    /// Write `data` at `offset` of the partial file, then report
    /// [`Receiver::written`]. Writes and reads are carried out in the order
    /// given.
    Write {
        /// Where, from the start of the file.
        offset: u64,
        /// The bytes: a view of the message given to [`Receiver::binary`],
        /// not a copy.
        data: Bytes,
    },
    /// Read `len` bytes of the partial file at `offset` and hand them to
    /// [`Receiver::read`] (after every write asked for before).
    Read {
        /// Where, from the start of the file.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Piece `piece` is complete and checked: remember it (see
    /// [`Receiver::saved`]) once its writes are done.
    Verified {
        /// The piece.
        piece: u64,
    },
    /// Piece `piece` did not match its hash: from holder `peer`, or (`None`)
    /// as read back from storage. It is fetched again.
    Corrupt {
        /// The piece.
        piece: u64,
        /// The holder it came from.
        peer: Option<String>,
    },
    /// Holder `peer` failed; another (or it again, later) is tried.
    SourceFailed {
        /// The holder.
        peer: String,
        /// Why.
        error: SourceError,
    },
    /// The state changed.
    State(ReceiverState),
}

/// What a receiver keeps on the device to resume after a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Whether the user accepted it (or it was accepted by itself).
    pub accepted: bool,
    /// The pieces held and checked, as `[start, end)` ranges.
    pub have: Vec<[u64; 2]>,
}

/// How far a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Bytes held: the checked pieces and what arrived of the others.
    pub bytes: u64,
    /// The file's size.
    pub size: u64,
}

#[derive(Debug)]
enum Phase {
    /// The channel was asked for.
    Opening,
    /// `get` went; waiting for `have`.
    Getting,
    /// `have` came; the list is arriving.
    Listing(Vec<u8>),
    /// Pieces may be asked for.
    Ready,
}

/// What to tell a holder that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tell {
    /// Nothing: its channel is closed already.
    Nothing,
    /// Close its channel.
    Close,
    /// Send `cancel` (`protocol`), then close.
    Cancel,
}

#[derive(Debug)]
struct Source {
    phase: Phase,
    /// Pieces asked for and not finished, in order.
    asked: VecDeque<u64>,
    /// Bytes of the first of them received.
    received: u64,
    hasher: Sha256,
    /// Bytes asked for and not received.
    outstanding: u64,
    /// The most bytes of a piece in one of its data messages (its
    /// `have`'s `chunk`).
    chunk: u64,
    /// When it last did something (opened, answered, sent bytes), or was
    /// first asked for pieces.
    last: u64,
}

#[derive(Debug, Default)]
struct Holder {
    up: bool,
    retry_at: u64,
    failures: u32,
    bad_pieces: u32,
    banned: bool,
}

#[derive(Debug)]
struct ReadBack {
    piece: u64,
    next: u64,
    hasher: Sha256,
    snapshot: Sha256,
}

/// The fetching side of one file, as a sans-IO machine.
#[derive(Debug)]
pub struct Receiver {
    meta: FileMeta,
    author: String,
    config: ReceiverConfig,
    state: ReceiverState,
    accepted: bool,
    list: Option<Vec<Hash>>,
    have: Vec<bool>,
    asked: Vec<bool>,
    holders: BTreeMap<String, Holder>,
    sources: BTreeMap<String, Source>,
    /// The whole file's hash, fed in order up to piece `cursor`.
    whole: Sha256,
    cursor: u64,
    /// The piece being fed to `whole` as it arrives, and `whole` before it.
    speculative: Option<(u64, Sha256)>,
    readback: Option<ReadBack>,
    unwritten: u64,
    progress: u64,
    started: bool,
}

impl Receiver {
    /// A transfer of the file `meta` offered by `author`: fetched at once
    /// if it is small enough ([`ReceiverConfig::auto_accept`]), else waiting
    /// for [`Receiver::accept`]. Nothing happens before [`Receiver::start`].
    pub fn new(meta: FileMeta, author: impl Into<String>, config: ReceiverConfig) -> Self {
        Self::restore(meta, author, Saved::default(), config)
    }

    /// A transfer that resumes from what was saved of it.
    pub fn restore(
        meta: FileMeta,
        author: impl Into<String>,
        saved: Saved,
        config: ReceiverConfig,
    ) -> Self {
        let pieces = usize::try_from(meta.pieces()).unwrap_or(0);
        let mut have = vec![false; pieces];
        for [start, end] in saved.have {
            for i in start..end.min(pieces as u64) {
                have[i as usize] = true;
            }
        }
        let auto = config.auto_accept > 0 && meta.size <= config.auto_accept;
        let accepted = saved.accepted || auto;
        Self {
            author: author.into(),
            config: ReceiverConfig {
                max_sources: config.max_sources.max(1),
                read_bytes: config.read_bytes.max(1),
                ..config
            },
            state: if accepted {
                ReceiverState::Fetching
            } else {
                ReceiverState::Waiting
            },
            accepted,
            list: (pieces == 0).then(Vec::new),
            asked: vec![false; pieces],
            have,
            holders: BTreeMap::new(),
            sources: BTreeMap::new(),
            whole: Sha256::new(),
            cursor: 0,
            speculative: None,
            readback: None,
            unwritten: 0,
            progress: 0,
            started: false,
            meta,
        }
    }

    /// The offer.
    pub fn meta(&self) -> &FileMeta {
        &self.meta
    }

    /// Where it stands.
    pub fn state(&self) -> ReceiverState {
        self.state
    }

    /// What to keep on the device.
    pub fn saved(&self) -> Saved {
        let mut have = Vec::new();
        let mut start = None;
        for (i, &held) in self.have.iter().chain([&false]).enumerate() {
            match (held, start) {
                (true, None) => start = Some(i as u64),
                (false, Some(s)) => {
                    have.push([s, i as u64]);
                    start = None;
                }
                _ => {}
            }
        }
        Saved {
            accepted: self.accepted,
            have,
        }
    }

    /// How far it is.
    pub fn progress(&self) -> Progress {
        let held: u64 = (0..self.meta.pieces())
            .filter(|&i| self.have[i as usize])
            .map(|i| self.meta.piece_len(i))
            .sum();
        let partial: u64 = self.sources.values().map(|s| s.received).sum();
        Progress {
            bytes: held + partial,
            size: self.meta.size,
        }
    }

    /// The pieces' hashes, once the list arrived and checked out against
    /// the offer's `root` (what a holder of the file serves).
    pub fn hash_list(&self) -> Option<&[Hash]> {
        self.list.as_deref()
    }

    /// The members it fetches from now.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Starts: says the state, and fetches if accepted.
    pub fn start(&mut self, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.progress = now;
            out.push(ReceiverAction::State(self.state));
            self.settle(now, &mut out);
        }
        out
    }

    /// The user accepts it.
    pub fn accept(&mut self, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if self.state == ReceiverState::Waiting {
            self.accepted = true;
            self.progress = now;
            self.settle(now, &mut out);
        }
        out
    }

    /// The user cancels it.
    pub fn cancel(&mut self, _now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if !self.state.is_over() {
            let cancel = Control::Cancel {
                reason: Reason::Cancelled,
            }
            .to_json();
            for peer in std::mem::take(&mut self.sources).into_keys() {
                out.push(ReceiverAction::Send {
                    peer: peer.clone(),
                    text: cancel.clone(),
                });
                out.push(ReceiverAction::Close { peer });
            }
            self.set_state(ReceiverState::Cancelled(Canceller::Us), &mut out);
        }
        out
    }

    /// `peer`'s connection is up (its chat channel open and verified): it
    /// may be asked. For a file offered privately, only its author.
    pub fn peer_up(&mut self, peer: &str, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        self.holders.entry(peer.to_owned()).or_default().up = true;
        self.settle(now, &mut out);
        out
    }

    /// `peer`'s connection is down.
    pub fn peer_down(&mut self, peer: &str, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if let Some(holder) = self.holders.get_mut(peer) {
            holder.up = false;
        }
        if self.sources.contains_key(peer) {
            self.fail_source(peer, SourceError::Closed, Tell::Nothing, now, &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    /// The channel to `peer` asked for opened.
    pub fn opened(&mut self, peer: &str, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if let Some(source) = self.sources.get_mut(peer) {
            if matches!(source.phase, Phase::Opening) {
                source.phase = Phase::Getting;
                source.last = now;
                out.push(ReceiverAction::Send {
                    peer: peer.to_owned(),
                    text: Control::Get {
                        fid: self.meta.fid.clone(),
                        sha256: self.meta.sha256,
                        list: self.list.is_none(),
                        chunk: Some(MAX_CHUNK as u64),
                    }
                    .to_json(),
                });
            }
        }
        out
    }

    /// The channel to `peer` closed (or could not open).
    pub fn closed(&mut self, peer: &str, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if self.sources.contains_key(peer) {
            self.fail_source(peer, SourceError::Closed, Tell::Nothing, now, &mut out);
            self.settle(now, &mut out);
        }
        out
    }

    /// A control message from `peer`'s channel.
    pub fn text(&mut self, peer: &str, text: &str, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        let Some(source) = self.sources.get_mut(peer) else {
            return out;
        };
        match Control::parse(text) {
            Ok(Control::Have { pieces, chunk }) if matches!(source.phase, Phase::Getting) => {
                // (The `chunk` it may name is at most the one asked for.)
                source.chunk = chunk.unwrap_or(CHUNK as u64);
                if pieces != self.meta.pieces() {
                    self.fail_source(peer, SourceError::Protocol, Tell::Cancel, now, &mut out);
                } else {
                    source.phase = if self.list.is_some() {
                        Phase::Ready
                    } else {
                        Phase::Listing(Vec::new())
                    };
                    source.last = now;
                    self.progress = now;
                }
            }
            Ok(Control::Cancel { reason }) => {
                if reason == Reason::Cancelled && peer == self.author {
                    for other in std::mem::take(&mut self.sources).into_keys() {
                        out.push(ReceiverAction::Close { peer: other });
                    }
                    self.set_state(ReceiverState::Cancelled(Canceller::Author), &mut out);
                    return out;
                }
                self.fail_source(
                    peer,
                    SourceError::Refused(reason),
                    Tell::Close,
                    now,
                    &mut out,
                );
            }
            Ok(Control::Unknown) => {}
            _ => self.fail_source(peer, SourceError::Protocol, Tell::Cancel, now, &mut out),
        }
        self.settle(now, &mut out);
        out
    }

    /// A data message from `peer`'s channel.
    pub fn binary(&mut self, peer: &str, message: &Bytes, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if !self.sources.contains_key(peer) {
            return out;
        }
        let ok = match Data::parse(message) {
            Ok(Data::List { first, hashes }) => self.list_part(peer, first, hashes, now),
            Ok(Data::Piece {
                index,
                offset,
                bytes,
            }) => {
                let bytes = message.slice_ref(bytes);
                self.piece_part(peer, index.into(), offset.into(), bytes, now, &mut out)
            }
            Err(_) => false,
        };
        if !ok {
            self.fail_source(peer, SourceError::Protocol, Tell::Cancel, now, &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    /// `bytes` of earlier writes are done.
    pub fn written(&mut self, bytes: u64, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        self.unwritten = self.unwritten.saturating_sub(bytes);
        self.settle(now, &mut out);
        out
    }

    /// The read asked for returned `data` (of the partial file at
    /// `offset`); fewer bytes than asked means the piece is not there.
    pub fn read(&mut self, offset: u64, data: &[u8], now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        let piece_size = self.meta.piece;
        let Some(rb) = self.readback.as_mut() else {
            return out;
        };
        let piece_len = self.meta.piece_len(rb.piece);
        let want = self.config.read_bytes.min(piece_len - rb.next);
        if offset != rb.piece * piece_size + rb.next {
            return out;
        }
        let mut good = data.len() as u64 == want;
        if good {
            rb.hasher.update(data);
            self.whole.update(data);
            rb.next += want;
            if rb.next < piece_len {
                out.push(ReceiverAction::Read {
                    offset: offset + want,
                    len: self.config.read_bytes.min(piece_len - rb.next),
                });
                return out;
            }
        }
        let rb = self.readback.take().expect("read back");
        if good {
            let hash: Hash = rb.hasher.finalize().into();
            good = self.list_hash(rb.piece) == Some(hash);
        }
        if good {
            self.cursor += 1;
        } else {
            self.whole = rb.snapshot;
            self.have[rb.piece as usize] = false;
            out.push(ReceiverAction::Corrupt {
                piece: rb.piece,
                peer: None,
            });
        }
        self.settle(now, &mut out);
        out
    }

    /// When [`Receiver::handle_timeout`] is due next.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.state.is_over() || !self.accepted || !self.started {
            return None;
        }
        let mut next: Option<u64> = None;
        let mut at = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        for source in self.sources.values() {
            if let Some(deadline) = self.source_deadline(source) {
                at(deadline);
            }
        }
        if matches!(self.state, ReceiverState::Fetching) && self.needs_bytes() {
            at(self.progress.saturating_add(self.config.stall_ms));
        }
        if self.sources.len() < self.config.max_sources && self.needs_source() {
            // Holders whose backoff is over were opened already.
            for (peer, holder) in &self.holders {
                if holder.up && !holder.banned && !self.sources.contains_key(peer) {
                    at(holder.retry_at);
                }
            }
        }
        next
    }

    /// When a holder has failed if it does nothing more.
    fn source_deadline(&self, source: &Source) -> Option<u64> {
        match source.phase {
            Phase::Ready if source.asked.is_empty() => None,
            Phase::Ready => Some(source.last.saturating_add(self.config.stall_ms)),
            _ => Some(source.last.saturating_add(self.config.open_timeout_ms)),
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        if self.state.is_over() {
            return out;
        }
        let failed: Vec<(String, SourceError)> = self
            .sources
            .iter()
            .filter(|(_, source)| self.source_deadline(source).is_some_and(|d| now >= d))
            .map(|(peer, source)| {
                let error = match source.phase {
                    Phase::Ready => SourceError::Stalled,
                    _ => SourceError::Timeout,
                };
                (peer.clone(), error)
            })
            .collect();
        for (peer, error) in failed {
            self.fail_source(&peer, error, Tell::Close, now, &mut out);
        }
        self.settle(now, &mut out);
        out
    }

    fn list_hash(&self, piece: u64) -> Option<Hash> {
        self.list
            .as_ref()?
            .get(usize::try_from(piece).ok()?)
            .copied()
    }

    fn list_part(&mut self, peer: &str, first: u32, hashes: &[u8], now: u64) -> bool {
        let count = self.meta.pieces() as usize;
        let source = self.sources.get_mut(peer).expect("source");
        let Phase::Listing(list) = &mut source.phase else {
            return false;
        };
        if first as usize * 32 != list.len() || list.len() + hashes.len() > count * 32 {
            return false;
        }
        list.extend_from_slice(hashes);
        source.last = now;
        self.progress = now;
        if list.len() < count * 32 {
            return true;
        }
        let hashes: Vec<Hash> = list
            .chunks_exact(32)
            .map(|h| h.try_into().expect("32 bytes"))
            .collect();
        if root_of(&hashes) != self.meta.root {
            return false;
        }
        source.phase = Phase::Ready;
        self.list = Some(hashes);
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn piece_part(
        &mut self,
        peer: &str,
        index: u64,
        offset: u64,
        bytes: Bytes,
        now: u64,
        out: &mut Vec<ReceiverAction>,
    ) -> bool {
        let piece_len = self.meta.piece_len(index);
        let source = self.sources.get_mut(peer).expect("source");
        if !matches!(source.phase, Phase::Ready)
            || source.asked.front() != Some(&index)
            || offset != source.received
            || offset + bytes.len() as u64 > piece_len
            || bytes.len() as u64 > source.chunk
        {
            return false;
        }
        let len = bytes.len() as u64;
        source.received += len;
        source.outstanding = source.outstanding.saturating_sub(len);
        source.last = now;
        source.hasher.update(&bytes);
        self.progress = now;
        // The piece next in order is fed to the whole file's hash as it
        // arrives, from its first byte (from a copy of the hash before it,
        // in case the piece turns out bad).
        let feeding = self.speculative.as_ref().map(|(piece, _)| *piece);
        if index == self.cursor
            && self.readback.is_none()
            && (feeding == Some(index) || offset == 0)
        {
            if feeding.is_none() {
                self.speculative = Some((index, self.whole.clone()));
            }
            self.whole.update(&bytes);
        }
        self.unwritten += len;
        out.push(ReceiverAction::Write {
            offset: index * self.meta.piece + offset,
            data: bytes,
        });
        if source.received < piece_len {
            return true;
        }
        source.asked.pop_front();
        source.received = 0;
        let hash: Hash = std::mem::take(&mut source.hasher).finalize().into();
        self.asked[index as usize] = false;
        let speculative = self.speculative.take_if(|(piece, _)| *piece == index);
        if self.list_hash(index) == Some(hash) {
            self.have[index as usize] = true;
            if speculative.is_some() {
                self.cursor += 1;
            }
            if let Some(holder) = self.holders.get_mut(peer) {
                holder.failures = 0;
            }
            out.push(ReceiverAction::Verified { piece: index });
            return true;
        }
        if let Some((_, snapshot)) = speculative {
            self.whole = snapshot;
        }
        out.push(ReceiverAction::Corrupt {
            piece: index,
            peer: Some(peer.to_owned()),
        });
        let holder = self.holders.entry(peer.to_owned()).or_default();
        holder.bad_pieces += 1;
        if holder.bad_pieces >= self.config.max_bad_pieces {
            self.fail_source(peer, SourceError::BadPieces, Tell::Cancel, now, out);
        }
        true
    }

    /// Drops a holder: what it had not finished is lacking again.
    fn fail_source(
        &mut self,
        peer: &str,
        error: SourceError,
        tell: Tell,
        now: u64,
        out: &mut Vec<ReceiverAction>,
    ) {
        let Some(source) = self.sources.remove(peer) else {
            return;
        };
        for &piece in &source.asked {
            self.asked[piece as usize] = false;
        }
        if let (Some(&front), Some((piece, _))) = (source.asked.front(), &self.speculative) {
            if *piece == front {
                let (_, snapshot) = self.speculative.take().expect("speculative");
                self.whole = snapshot;
            }
        }
        let holder = self.holders.entry(peer.to_owned()).or_default();
        holder.failures += 1;
        let backoff = self
            .config
            .backoff_min_ms
            .saturating_mul(1 << (holder.failures - 1).min(20))
            .min(self.config.backoff_max_ms);
        holder.retry_at = now.saturating_add(match error {
            SourceError::Refused(Reason::Unavailable) => self.config.unavailable_ms,
            _ => backoff,
        });
        if matches!(
            error,
            SourceError::Protocol
                | SourceError::BadPieces
                | SourceError::Refused(Reason::Changed | Reason::Cancelled | Reason::Protocol)
        ) {
            holder.banned = true;
        }
        if tell == Tell::Cancel {
            out.push(ReceiverAction::Send {
                peer: peer.to_owned(),
                text: Control::Cancel {
                    reason: Reason::Protocol,
                }
                .to_json(),
            });
        }
        if tell != Tell::Nothing {
            out.push(ReceiverAction::Close {
                peer: peer.to_owned(),
            });
        }
        out.push(ReceiverAction::SourceFailed {
            peer: peer.to_owned(),
            error,
        });
    }

    /// Whether pieces are lacking that nobody is asked for, or the list is.
    fn needs_source(&self) -> bool {
        self.list.is_none() || self.have.iter().zip(&self.asked).any(|(&h, &a)| !h && !a)
    }

    /// Whether bytes are still to come from holders.
    fn needs_bytes(&self) -> bool {
        self.list.is_none() || self.have.iter().any(|&h| !h)
    }

    /// Asks for what fits, opens holders, reads back, and says the state.
    fn settle(&mut self, now: u64, out: &mut Vec<ReceiverAction>) {
        if self.state.is_over() || !self.accepted || !self.started {
            return;
        }
        self.ask(now, out);
        self.open_sources(now, out);
        self.read_back(out);
        let count = self.meta.pieces();
        if self.cursor == count && self.unwritten == 0 {
            let whole = std::mem::take(&mut self.whole);
            let digest: Hash = whole.finalize().into();
            let state = if digest == self.meta.sha256 {
                ReceiverState::Complete
            } else {
                ReceiverState::Failed(ReceiveError::HashMismatch)
            };
            for peer in std::mem::take(&mut self.sources).into_keys() {
                out.push(ReceiverAction::Close { peer });
            }
            self.set_state(state, out);
            return;
        }
        let state = if !self.needs_bytes() {
            ReceiverState::Checking
        } else if now >= self.progress.saturating_add(self.config.stall_ms) {
            ReceiverState::Stalled {
                since: self.progress,
            }
        } else {
            ReceiverState::Fetching
        };
        self.set_state(state, out);
    }

    fn set_state(&mut self, state: ReceiverState, out: &mut Vec<ReceiverAction>) {
        if self.state != state {
            self.state = state;
            out.push(ReceiverAction::State(state));
        }
    }

    /// Asks each ready holder for the lowest pieces lacking, within the
    /// window.
    fn ask(&mut self, now: u64, out: &mut Vec<ReceiverAction>) {
        let peers: Vec<String> = self.sources.keys().cloned().collect();
        for peer in peers {
            let mut want = Vec::new();
            let source = self.sources.get_mut(&peer).expect("source");
            if !matches!(source.phase, Phase::Ready) {
                continue;
            }
            let mut next = 0;
            while want.len() < MAX_WANT
                && (source.asked.is_empty()
                    || source.outstanding + self.unwritten < self.config.window)
            {
                let Some(piece) =
                    (next..self.have.len()).find(|&i| !self.have[i] && !self.asked[i])
                else {
                    break;
                };
                next = piece + 1;
                self.asked[piece] = true;
                source.asked.push_back(piece as u64);
                source.outstanding += self.meta.piece_len(piece as u64);
                want.push(piece as u64);
            }
            if !want.is_empty() {
                if source.asked.len() == want.len() {
                    // Nothing was on its way: the silence starts now.
                    source.last = now;
                }
                out.push(ReceiverAction::Send {
                    peer,
                    text: Control::Want { pieces: want }.to_json(),
                });
            }
        }
    }

    /// Opens holders while fewer than allowed are used and something is
    /// lacking: the author first, then the others by peer id.
    fn open_sources(&mut self, now: u64, out: &mut Vec<ReceiverAction>) {
        while self.sources.len() < self.config.max_sources && self.needs_source() {
            let ready = |peer: &str, h: &Holder| {
                h.up && !h.banned && h.retry_at <= now && !self.sources.contains_key(peer)
            };
            let author = self
                .holders
                .get(&self.author)
                .is_some_and(|h| ready(&self.author, h))
                .then(|| self.author.clone());
            let Some(peer) = author.or_else(|| {
                self.holders
                    .iter()
                    .find(|(p, h)| ready(p, h))
                    .map(|(p, _)| p.clone())
            }) else {
                break;
            };
            self.sources.insert(
                peer.clone(),
                Source {
                    phase: Phase::Opening,
                    asked: VecDeque::new(),
                    received: 0,
                    hasher: Sha256::new(),
                    outstanding: 0,
                    chunk: CHUNK as u64,
                    last: now,
                },
            );
            out.push(ReceiverAction::Open { peer });
        }
    }

    /// Reads back the next piece to hash in order when it is held but was
    /// not fed as it arrived.
    fn read_back(&mut self, out: &mut Vec<ReceiverAction>) {
        let cursor = self.cursor;
        if self.readback.is_some()
            || self.speculative.is_some()
            || self.list.is_none()
            || cursor >= self.meta.pieces()
            || !self.have[cursor as usize]
        {
            return;
        }
        let len = self.config.read_bytes.min(self.meta.piece_len(cursor));
        self.readback = Some(ReadBack {
            piece: cursor,
            next: 0,
            hasher: Sha256::new(),
            snapshot: self.whole.clone(),
        });
        out.push(ReceiverAction::Read {
            offset: cursor * self.meta.piece,
            len,
        });
    }
}
