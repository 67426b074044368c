//! Why a sealed signal was refused.

/// Why [`open`](crate::RoomCrypto::open) refused a signal. Refusals never
/// tear a connection down: the signal is dropped and the user is told
/// (rate-limited) what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It did not authenticate: altered on the way, redirected to the wrong
    /// member, reflected, made for another room, or not sealed with this
    /// room's secret at all (a version-1 client sends plain payloads).
    #[error(
        "a signal did not authenticate: it was altered, misdirected, or not sealed with this room's secret"
    )]
    Tampered,
    /// It authenticated, so a holder of the secret sealed it, but what it
    /// holds breaks the rules (no object, a missing or bad `e`, `n`, `ts`).
    #[error("a signal sealed with this room's secret is malformed: {0}")]
    Malformed(&'static str),
    /// It was accepted before, or is older than one accepted since, in the
    /// sender's current session.
    #[error("a signal was replayed")]
    Replayed,
    /// It belongs to an earlier session of its sender, or to one that claims
    /// to have started before the sender's current one.
    #[error("a signal from an earlier session of its sender was replayed")]
    Stale,
    /// It starts a new session of its sender, with a time more than the
    /// allowed window away from ours: the sender's clock (or ours) is off, or
    /// the signal is an old one replayed.
    #[error(
        "the sender's clock is {} minutes off; its signals are refused",
        .offset_ms.unsigned_abs().div_ceil(60_000)
    )]
    ClockSkew {
        /// The signal's time minus ours, in milliseconds.
        offset_ms: i64,
    },
}

impl Refusal {
    /// The stable code of the refusal, as in the shared vectors and the
    /// web client: `tampered`, `malformed`, `replayed`, `stale`, `clock_skew`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Tampered => "tampered",
            Refusal::Malformed(_) => "malformed",
            Refusal::Replayed => "replayed",
            Refusal::Stale => "stale",
            Refusal::ClockSkew { .. } => "clock_skew",
        }
    }
}
