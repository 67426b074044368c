//! What one call of a [`crate::Node`] outputs, and the queues of the
//! transport as they will stand once that is delivered.
//!
//! The hub decides whether a signal may be queued from what waits for its
//! recipient ([`Backlog`]). On a server alone each frame from a client is
//! its own call, delivered before the next, so the transport's queues are
//! always up to date. A node handles many frames in one call (an inbox
//! entry holds many, a lease regained releases those held), and what it
//! output for the first is not queued yet when it decides about the next:
//! [`Out`] adds what this call has output so far to what the transport
//! says is queued, so that a batch of signals is bounded exactly as the
//! same signals one by one would be.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use peerchat_rooms::{Backlog, ConnId, Output, Queued, frame_cost};

/// The output list of one call, with the view of the queues it implies.
pub(crate) struct Out<'a> {
    list: &'a mut Vec<Output>,
    queues: &'a dyn Backlog,
    /// Outputs before this index are counted in `added`.
    counted: usize,
    /// What this call queued so far, per connection.
    added: HashMap<ConnId, Added>,
}

#[derive(Debug, Default)]
struct Added {
    total: usize,
    /// Per sender of relayed signals; a few at most.
    senders: Vec<(ConnId, usize)>,
}

impl<'a> Out<'a> {
    /// Outputs go to `list`, which holds only what is not delivered yet
    /// (earlier calls' output, when the transport delivers after several);
    /// `queues` is what the transport holds.
    pub(crate) fn new(queues: &'a dyn Backlog, list: &'a mut Vec<Output>) -> Self {
        Self {
            list,
            queues,
            counted: 0,
            added: HashMap::new(),
        }
    }

    /// The queues as they will be once this call's output so far is
    /// delivered.
    pub(crate) fn backlog(&mut self) -> &dyn Backlog {
        for output in &self.list[self.counted..] {
            if let Output::Send { to, frame, from } = output {
                let cost = frame_cost(frame.len());
                let added = self.added.entry(*to).or_default();
                added.total += cost;
                if let Some(from) = from {
                    match added.senders.iter_mut().find(|(s, _)| s == from) {
                        Some((_, n)) => *n += cost,
                        None => added.senders.push((*from, cost)),
                    }
                }
            }
        }
        self.counted = self.list.len();
        self
    }
}

impl Backlog for Out<'_> {
    fn queued(&self, to: ConnId, from: ConnId) -> Queued {
        let mut queued = self.queues.queued(to, from);
        if let Some(added) = self.added.get(&to) {
            queued.total += added.total;
            queued.from_sender += added
                .senders
                .iter()
                .find(|(s, _)| *s == from)
                .map_or(0, |(_, n)| *n);
        }
        queued
    }
}

impl Deref for Out<'_> {
    type Target = Vec<Output>;

    fn deref(&self) -> &Vec<Output> {
        self.list
    }
}

impl DerefMut for Out<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Output> {
        self.list
    }
}
