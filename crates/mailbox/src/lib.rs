//! A long-poll mailbox for signaling without WebSockets, as a sans-IO state
//! machine.
//!
//! Texts are posted to an id (`set`) and read from it (`get`). A reader
//! waits until a text arrives or its time runs out; a writer waits until a
//! reader took its text or its time runs out. Each text is read exactly
//! once, and texts posted to one id are read in the order they were posted.
//! A text lives only as long as the request that posted it: when that
//! request times out or hangs up, the text is withdrawn. So memory is bounded
//! by the limits on requests in flight and texts queued, whatever clients do.
//!
//! The transport calls [`Mailbox::get`], [`Mailbox::set`], [`Mailbox::cancel`]
//! (a client hung up) and [`Mailbox::expire`] (time passed), passing the
//! current time in. Requests that cannot finish at once get a [`Ticket`];
//! their [`Resolution`] arrives later in an output list.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Identifies a request that is waiting.
pub type Ticket = u64;

/// The characters ids may use by default: URL-safe, so ids need no escaping
/// in a query string.
pub const DEFAULT_ID_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

/// The limits of a [`Mailbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Longest id, in bytes.
    pub max_id_len: usize,
    /// The characters ids may use (ASCII; others are never allowed).
    pub id_alphabet: String,
    /// Largest text, in bytes.
    pub max_body: usize,
    /// Longest wait a request may ask for.
    pub max_wait: Duration,
    /// Most texts waiting to be read on one id.
    pub max_queued_per_id: usize,
    /// Most texts waiting to be read on all ids together.
    pub max_queued_total: usize,
    /// Most requests waiting at once, readers and writers together.
    pub max_in_flight: usize,
}

impl MailboxConfig {
    /// The default [`MailboxConfig::max_id_len`] (and
    /// `--mailbox-max-id-len`).
    pub const DEFAULT_MAX_ID_LEN: u32 = 64;
    /// The default [`MailboxConfig::max_body`] (and `--mailbox-max-body`).
    pub const DEFAULT_MAX_BODY: u32 = 100_000;
    /// The default [`MailboxConfig::max_wait`] (and `--mailbox-max-wait`).
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(20 * 60);
    /// The default [`MailboxConfig::max_queued_per_id`] (and
    /// `--mailbox-queue-per-id`).
    pub const DEFAULT_MAX_QUEUED_PER_ID: u32 = 16;
    /// The default [`MailboxConfig::max_queued_total`] (and
    /// `--mailbox-queue-total`).
    pub const DEFAULT_MAX_QUEUED_TOTAL: u32 = 1000;
    /// The default [`MailboxConfig::max_in_flight`] (and
    /// `--mailbox-max-in-flight`).
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            max_id_len: Self::DEFAULT_MAX_ID_LEN as usize,
            id_alphabet: DEFAULT_ID_ALPHABET.to_owned(),
            max_body: Self::DEFAULT_MAX_BODY as usize,
            max_wait: Self::DEFAULT_MAX_WAIT,
            max_queued_per_id: Self::DEFAULT_MAX_QUEUED_PER_ID as usize,
            max_queued_total: Self::DEFAULT_MAX_QUEUED_TOTAL as usize,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT as usize,
        }
    }
}

/// What a request asks for, parsed from its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read the next text posted to `id`, waiting up to `wait`.
    Get {
        /// The id.
        id: String,
        /// How long to wait.
        wait: Duration,
    },
    /// Post a text to `id`, waiting up to `wait` for a reader to take it.
    Set {
        /// The id.
        id: String,
        /// How long to wait.
        wait: Duration,
    },
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A reader got this text.
    Text(Bytes),
    /// A writer's text was taken by a reader.
    Taken,
    /// The wait ran out (a writer's text is withdrawn).
    TimedOut,
}

/// How a call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request is finished.
    Done(Resolution),
    /// The request waits; its resolution will come out of a later call.
    Pending(Ticket),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// Neither `get` nor `set` was given.
    #[error("say get=ID to read or set=ID to post")]
    NoOp,
    /// Both `get` and `set` were given.
    #[error("give either get=ID or set=ID, not both")]
    BothOps,
    /// A query parameter appears twice.
    #[error("the query parameter {0} is given more than once")]
    Repeated(&'static str),
    /// The id breaks the rules.
    #[error("the id must be 1 to {max} characters of {alphabet}")]
    BadId {
        /// The longest id allowed.
        max: usize,
        /// The characters allowed.
        alphabet: String,
    },
    /// `timeoutms` is not a whole number of milliseconds.
    #[error("timeoutms must be a whole number of milliseconds")]
    BadTimeout,
    /// `timeoutms` asks for a longer wait than allowed.
    #[error("timeoutms may be at most {max_ms}")]
    TimeoutTooLong {
        /// The longest wait, in milliseconds.
        max_ms: u128,
    },
    /// The text is larger than allowed.
    #[error("the text may be at most {max} bytes")]
    TooLarge {
        /// The largest text allowed.
        max: usize,
    },
    /// The id already has as many texts waiting as allowed.
    #[error("too many texts are already waiting on this id")]
    QueueFull,
    /// The mailbox holds as many texts or waiting requests as allowed.
    #[error("the mailbox is busy; try again later")]
    Busy,
}

#[derive(Debug, Default)]
struct Slot {
    /// Posted texts not yet read, oldest first, each with its writer.
    texts: VecDeque<(Ticket, Bytes)>,
    /// Readers waiting, oldest first. Never non-empty together with `texts`.
    readers: VecDeque<Ticket>,
}

#[derive(Debug)]
struct Waiting {
    id: String,
    deadline: Instant,
}

/// All ids and their waiting requests.
#[derive(Debug)]
pub struct Mailbox {
    config: MailboxConfig,
    slots: HashMap<String, Slot>,
    waiting: HashMap<Ticket, Waiting>,
    deadlines: BTreeSet<(Instant, Ticket)>,
    queued_total: usize,
    next_ticket: Ticket,
}

impl Mailbox {
    /// An empty mailbox.
    pub fn new(config: MailboxConfig) -> Self {
        Self {
            config,
            slots: HashMap::new(),
            waiting: HashMap::new(),
            deadlines: BTreeSet::new(),
            queued_total: 0,
            next_ticket: 1,
        }
    }

    /// The limits.
    pub fn config(&self) -> &MailboxConfig {
        &self.config
    }

    /// Requests waiting now.
    pub fn in_flight(&self) -> usize {
        self.waiting.len()
    }

    /// Whether any request waits, or any text is queued, on `id`.
    pub fn has_id(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// Texts waiting to be read now.
    pub fn queued(&self) -> usize {
        self.queued_total
    }

    /// Parses a query string such as `get=abc&timeoutms=5000`. Without
    /// `timeoutms`, a request may wait as long as the mailbox allows.
    pub fn parse_query(&self, query: &str) -> Result<Op, MailboxError> {
        let mut get = None;
        let mut set = None;
        let mut timeout = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match key {
                "get" => (&mut get, "get"),
                "set" => (&mut set, "set"),
                "timeoutms" => (&mut timeout, "timeoutms"),
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(MailboxError::Repeated(name));
            }
        }
        let wait = match timeout {
            None => self.config.max_wait,
            Some(ms) => {
                let ms: u64 = ms.parse().map_err(|_| MailboxError::BadTimeout)?;
                let wait = Duration::from_millis(ms);
                if wait > self.config.max_wait {
                    return Err(MailboxError::TimeoutTooLong {
                        max_ms: self.config.max_wait.as_millis(),
                    });
                }
                wait
            }
        };
        let op = match (get, set) {
            (None, None) => return Err(MailboxError::NoOp),
            (Some(_), Some(_)) => return Err(MailboxError::BothOps),
            (Some(id), None) => Op::Get {
                id: id.to_owned(),
                wait,
            },
            (None, Some(id)) => Op::Set {
                id: id.to_owned(),
                wait,
            },
        };
        let (Op::Get { id, .. } | Op::Set { id, .. }) = &op;
        self.check_id(id)?;
        Ok(op)
    }

    fn check_id(&self, id: &str) -> Result<(), MailboxError> {
        let alphabet = self.config.id_alphabet.as_bytes();
        let ok = !id.is_empty()
            && id.len() <= self.config.max_id_len
            && id.bytes().all(|b| b.is_ascii() && alphabet.contains(&b));
        if ok {
            Ok(())
        } else {
            Err(MailboxError::BadId {
                max: self.config.max_id_len,
                alphabet: self.config.id_alphabet.clone(),
            })
        }
    }

    /// Reads the next text posted to `id`, or waits up to `wait` for one.
    /// A writer whose text is read now is resolved in `out`.
    pub fn get(
        &mut self,
        id: &str,
        wait: Duration,
        now: Instant,
        out: &mut Vec<(Ticket, Resolution)>,
    ) -> Result<Outcome, MailboxError> {
        self.check_id(id)?;
        if let Some(slot) = self.slots.get_mut(id) {
            if let Some((writer, text)) = slot.texts.pop_front() {
                self.queued_total -= 1;
                self.forget(writer);
                self.drop_slot_if_empty(id);
                out.push((writer, Resolution::Taken));
                return Ok(Outcome::Done(Resolution::Text(text)));
            }
        }
        if wait.is_zero() {
            return Ok(Outcome::Done(Resolution::TimedOut));
        }
        let ticket = self.wait(id, now + wait)?;
        self.slots
            .entry(id.to_owned())
            .or_default()
            .readers
            .push_back(ticket);
        Ok(Outcome::Pending(ticket))
    }

    /// Posts `text` to `id`: hands it to a waiting reader at once, or queues
    /// it for up to `wait`. A reader that gets it now is resolved in `out`.
    pub fn set(
        &mut self,
        id: &str,
        text: Bytes,
        wait: Duration,
        now: Instant,
        out: &mut Vec<(Ticket, Resolution)>,
    ) -> Result<Outcome, MailboxError> {
        self.check_id(id)?;
        if text.len() > self.config.max_body {
            return Err(MailboxError::TooLarge {
                max: self.config.max_body,
            });
        }
        if let Some(slot) = self.slots.get_mut(id) {
            if let Some(reader) = slot.readers.pop_front() {
                self.forget(reader);
                self.drop_slot_if_empty(id);
                out.push((reader, Resolution::Text(text)));
                return Ok(Outcome::Done(Resolution::Taken));
            }
        }
        if wait.is_zero() {
            return Ok(Outcome::Done(Resolution::TimedOut));
        }
        let queued_here = self.slots.get(id).map_or(0, |s| s.texts.len());
        if queued_here >= self.config.max_queued_per_id {
            return Err(MailboxError::QueueFull);
        }
        if self.queued_total >= self.config.max_queued_total {
            return Err(MailboxError::Busy);
        }
        let ticket = self.wait(id, now + wait)?;
        self.slots
            .entry(id.to_owned())
            .or_default()
            .texts
            .push_back((ticket, text));
        self.queued_total += 1;
        Ok(Outcome::Pending(ticket))
    }

    /// A waiting request went away (its client hung up): forget it, and
    /// withdraw its text if it posted one. Returns whether it was waiting;
    /// `false` means it was resolved already.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        let Some(waiting) = self.forget(ticket) else {
            return false;
        };
        if let Some(slot) = self.slots.get_mut(&waiting.id) {
            slot.readers.retain(|t| *t != ticket);
            let before = slot.texts.len();
            slot.texts.retain(|(t, _)| *t != ticket);
            self.queued_total -= before - slot.texts.len();
        }
        self.drop_slot_if_empty(&waiting.id);
        true
    }

    /// Times out every request whose deadline is not after `now`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<(Ticket, Resolution)>) {
        while let Some(&(deadline, ticket)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.cancel(ticket);
            out.push((ticket, Resolution::TimedOut));
        }
    }

    /// When the next request times out, if any is waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    fn wait(&mut self, id: &str, deadline: Instant) -> Result<Ticket, MailboxError> {
        if self.waiting.len() >= self.config.max_in_flight {
            return Err(MailboxError::Busy);
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiting.insert(
            ticket,
            Waiting {
                id: id.to_owned(),
                deadline,
            },
        );
        self.deadlines.insert((deadline, ticket));
        Ok(ticket)
    }

    fn forget(&mut self, ticket: Ticket) -> Option<Waiting> {
        let waiting = self.waiting.remove(&ticket)?;
        self.deadlines.remove(&(waiting.deadline, ticket));
        Some(waiting)
    }

    fn drop_slot_if_empty(&mut self, id: &str) {
        if self
            .slots
            .get(id)
            .is_some_and(|s| s.texts.is_empty() && s.readers.is_empty())
        {
            self.slots.remove(id);
        }
    }
}

#[cfg(test)]
mod tests;
