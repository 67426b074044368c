//! The receiving end of one (sender → receiver) link: entries arrive with
//! sequence numbers; each is let through exactly once and in order.
//!
//! Duplicates (a sender that retried an append it could not confirm) are
//! dropped. An entry that arrives ahead of a missing one is held until the
//! missing one arrives or [`Inbound::next_deadline`] passes; then the
//! missing ones count as lost (a gap) and the held ones go through. What
//! the receiver does about a gap is up to it: it cannot know what was in
//! the lost entries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// At most this many entries are held waiting for a missing one; one more
/// declares the gap at once.
pub const MAX_HELD: usize = 1024;

/// What the link lets through, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery<T> {
    /// The next entry.
    Entry(T),
    /// Entries `from..to` (sequence numbers) were lost: what follows comes
    /// after a gap.
    Gap {
        /// The first missing sequence number.
        from: u64,
        /// The first sequence number after the gap.
        to: u64,
    },
}

/// The receiving end of one link.
#[derive(Debug)]
pub struct Inbound<T> {
    /// The sequence number expected next.
    expected: u64,
    /// Entries ahead of `expected`, with when each arrived.
    held: BTreeMap<u64, (Instant, T)>,
    /// When the gap before the held entries is declared.
    deadline: Option<Instant>,
    wait: Duration,
}

impl<T> Inbound<T> {
    /// A link whose first entry is number 1; a missing entry is awaited for
    /// `wait`.
    pub fn new(wait: Duration) -> Self {
        Self {
            expected: 1,
            held: BTreeMap::new(),
            deadline: None,
            wait,
        }
    }

    /// The sequence number expected next.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Entries held, waiting for a missing one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When a missing entry stops being awaited, if one is.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Entry `seq` arrived: pushes what can go through now to `out`.
    pub fn receive(&mut self, seq: u64, entry: T, now: Instant, out: &mut Vec<Delivery<T>>) {
        if seq < self.expected || self.held.contains_key(&seq) {
            return;
        }
        if seq > self.expected {
            self.held.insert(seq, (now, entry));
            if self.held.len() > MAX_HELD {
                self.skip_gap(out);
                self.release(now, out);
            } else {
                self.release(now, out);
            }
            return;
        }
        out.push(Delivery::Entry(entry));
        self.expected += 1;
        self.release(now, out);
    }

    /// Time passed: each gap whose wait is over is declared.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Delivery<T>>) {
        while self.deadline.is_some_and(|d| d <= now) {
            self.skip_gap(out);
            self.release(now, out);
        }
    }

    /// Declares the gap before the first held entry and lets it through.
    fn skip_gap(&mut self, out: &mut Vec<Delivery<T>>) {
        if let Some((&first, _)) = self.held.first_key_value() {
            out.push(Delivery::Gap {
                from: self.expected,
                to: first,
            });
            self.expected = first;
        }
        self.deadline = None;
    }

    /// Lets through held entries that are next in order; if some are still
    /// held, the next missing one is awaited for the wait after the entry
    /// right after it arrived.
    fn release(&mut self, _now: Instant, out: &mut Vec<Delivery<T>>) {
        while let Some((_, entry)) = self.held.remove(&self.expected) {
            out.push(Delivery::Entry(entry));
            self.expected += 1;
        }
        self.deadline = self
            .held
            .first_key_value()
            .map(|(_, (arrived, _))| *arrived + self.wait);
    }
}
