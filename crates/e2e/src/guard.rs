//! The replay guard: a sans-IO state per receiver that decides, for each
//! authenticated signal, whether it is new.
//!
//! Per sender peer id it keeps the sender's current epoch, the last counter
//! accepted in it, the time of the first signal accepted in it, and a
//! bounded list of retired epochs. A signal is accepted iff
//!
//! * its epoch is the current one and its counter is above the last one; or
//! * its epoch is unknown (neither current nor retired), its time is later
//!   than the current epoch's first time (if there is a current epoch), and
//!   it is within the window (10 minutes) of the receiver's clock; it then
//!   becomes the current epoch and the old one is retired.
//!
//! The checks are made in that order, and the first that fails names the
//! refusal: a counter not above the last one is [`Refusal::Replayed`]; a
//! retired epoch, or a new one that claims to start no later than the
//! current one, is [`Refusal::Stale`]; a new epoch outside the window is
//! [`Refusal::ClockSkew`]. A refused signal changes nothing.

use std::collections::{HashMap, VecDeque};

use crate::refusal::Refusal;
use crate::seal::Stamp;

/// The replay guard's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// How far (ms) a new epoch's time may be from the receiver's clock.
    pub window_ms: u64,
    /// Retired epochs remembered per sender.
    pub retired: usize,
    /// Senders remembered; past this, the one whose last accepted signal is
    /// the oldest is forgotten.
    pub max_senders: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            window_ms: 10 * 60 * 1000,
            retired: 16,
            max_senders: 4096,
        }
    }
}

#[derive(Debug)]
struct Sender {
    epoch: String,
    last_n: u64,
    first_ts: u64,
    retired: VecDeque<String>,
    /// When (in acceptances) this sender last had a signal accepted.
    touched: u64,
}

/// The replay guard of one receiver, over all its senders.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    config: GuardConfig,
    senders: HashMap<String, Sender>,
    accepted: u64,
}

impl ReplayGuard {
    /// An empty guard.
    pub fn new(config: GuardConfig) -> Self {
        ReplayGuard {
            config,
            senders: HashMap::new(),
            accepted: 0,
        }
    }

    fn skew(&self, ts: u64, now: u64) -> Result<(), Refusal> {
        let offset = i128::from(ts) - i128::from(now);
        if offset.unsigned_abs() > u128::from(self.config.window_ms) {
            let offset_ms = offset.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
            Err(Refusal::ClockSkew { offset_ms })
        } else {
            Ok(())
        }
    }

    /// Whether a signal from `from` with this stamp would be accepted at
    /// `now` (ms since the Unix epoch), without changing anything.
    pub fn check(&self, from: &str, stamp: &Stamp, now: u64) -> Result<(), Refusal> {
        match self.senders.get(from) {
            Some(s) if s.epoch == stamp.epoch => {
                if stamp.n > s.last_n {
                    Ok(())
                } else {
                    Err(Refusal::Replayed)
                }
            }
            Some(s) => {
                if s.retired.contains(&stamp.epoch) || stamp.ts <= s.first_ts {
                    Err(Refusal::Stale)
                } else {
                    self.skew(stamp.ts, now)
                }
            }
            None => self.skew(stamp.ts, now),
        }
    }

    /// Accepts a signal (and remembers it) or refuses it (and changes
    /// nothing).
    pub fn accept(&mut self, from: &str, stamp: &Stamp, now: u64) -> Result<(), Refusal> {
        self.check(from, stamp, now)?;
        self.accepted += 1;
        let touched = self.accepted;
        let retired_max = self.config.retired;
        if let Some(s) = self.senders.get_mut(from) {
            if s.epoch != stamp.epoch {
                let old = std::mem::replace(&mut s.epoch, stamp.epoch.clone());
                s.retired.push_back(old);
                while s.retired.len() > retired_max {
                    s.retired.pop_front();
                }
                s.first_ts = stamp.ts;
            }
            s.last_n = stamp.n;
            s.touched = touched;
            return Ok(());
        }
        if self.senders.len() >= self.config.max_senders {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.senders.remove(&id);
            }
        }
        self.senders.insert(
            from.to_owned(),
            Sender {
                epoch: stamp.epoch.clone(),
                last_n: stamp.n,
                first_ts: stamp.ts,
                retired: VecDeque::new(),
                touched,
            },
        );
        Ok(())
    }

    /// How many senders the guard remembers.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// The retired epochs it remembers for a sender (for tests and
    /// diagnostics).
    pub fn retired(&self, from: &str) -> usize {
        self.senders.get(from).map_or(0, |s| s.retired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp(e: &str, n: u64, ts: u64) -> Stamp {
        Stamp {
            epoch: e.to_owned(),
            n,
            ts,
        }
    }

    const MIN: u64 = 60_000;

    #[test]
    fn the_rules() {
        let mut g = ReplayGuard::default();
        let now = 1_000 * MIN;
        assert_eq!(g.accept("a", &stamp("e1", 3, now), now), Ok(()));
        assert_eq!(
            g.accept("a", &stamp("e1", 3, now), now),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            g.accept("a", &stamp("e1", 2, now), now),
            Err(Refusal::Replayed)
        );
        // Within an epoch the time is not checked.
        assert_eq!(g.accept("a", &stamp("e1", 4, 0), now + 60 * MIN), Ok(()));
        // A new epoch must start later than the current one, within the window.
        assert_eq!(
            g.accept("a", &stamp("e2", 1, now), now),
            Err(Refusal::Stale)
        );
        assert_eq!(
            g.accept("a", &stamp("e2", 1, now + 11 * MIN), now),
            Err(Refusal::ClockSkew {
                offset_ms: 11 * MIN as i64
            })
        );
        assert_eq!(g.accept("a", &stamp("e2", 1, now + 1), now), Ok(()));
        assert_eq!(
            g.accept("a", &stamp("e1", 9, now + 2), now),
            Err(Refusal::Stale)
        );
        // Other senders are separate.
        assert_eq!(g.accept("b", &stamp("e1", 1, now), now), Ok(()));
        assert_eq!(
            g.accept("c", &stamp("e1", 1, now - 10 * MIN - 1), now)
                .unwrap_err()
                .code(),
            "clock_skew"
        );
        assert_eq!(g.senders(), 2);
        // An absurd clock on either side is a refusal, not an overflow.
        assert_eq!(
            g.accept("d", &stamp("e1", 1, u64::MAX), 0),
            Err(Refusal::ClockSkew {
                offset_ms: i64::MAX
            })
        );
        assert_eq!(
            g.accept("d", &stamp("e1", 1, 0), u64::MAX)
                .unwrap_err()
                .code(),
            "clock_skew"
        );
    }

    #[test]
    fn bounded() {
        let config = GuardConfig {
            window_ms: 10,
            retired: 2,
            max_senders: 2,
        };
        let mut g = ReplayGuard::new(config);
        for (i, e) in ["e1", "e2", "e3", "e4"].iter().enumerate() {
            g.accept("a", &stamp(e, 1, i as u64 + 1), 1).unwrap();
        }
        assert_eq!(g.retired("a"), 2);
        g.accept("b", &stamp("x", 1, 1), 1).unwrap();
        g.accept("a", &stamp("e4", 2, 1), 1).unwrap();
        // "b" was touched least recently: it goes when "c" comes.
        g.accept("c", &stamp("x", 1, 1), 1).unwrap();
        assert_eq!(g.senders(), 2);
        assert_eq!(g.accept("a", &stamp("e4", 2, 1), 1), Err(Refusal::Replayed));
        assert_eq!(g.accept("b", &stamp("x", 1, 1), 1), Ok(()));
    }

    proptest! {
        /// Whatever arrives, in whatever order: no signal (same sender and
        /// stamp) is accepted twice, counters accepted within the current
        /// epoch strictly increase, a new epoch is accepted only within the
        /// window, and a refusal changes nothing.
        #[test]
        fn invariants(steps in proptest::collection::vec((0u8..3, 0u8..4, 1u64..6, 0u64..40, 0u64..40), 1..80)) {
            let config = GuardConfig { window_ms: 10, retired: 2, max_senders: 8 };
            let mut g = ReplayGuard::new(config);
            let mut seen = std::collections::HashSet::new();
            let mut current: HashMap<u8, (u8, u64)> = HashMap::new();
            for (from, e, n, ts, now) in steps {
                let s = stamp(&format!("e{e}"), n, ts);
                let id = format!("p{from}");
                let before = g.check(&id, &s, now);
                let got = g.accept(&id, &s, now);
                prop_assert_eq!(&before, &got);
                match got {
                    Ok(()) => {
                        prop_assert!(seen.insert((from, e, n, ts)), "accepted twice");
                        match current.insert(from, (e, n)) {
                            Some((ce, cn)) if ce == e => prop_assert!(n > cn),
                            _ => prop_assert!(ts.abs_diff(now) <= 10),
                        }
                    }
                    Err(_) => prop_assert_eq!(g.check(&id, &s, now), got),
                }
            }
        }
    }
}
