//! peerchat's end-to-end protection (protocol version 2), sans-IO.
//!
//! The signaling server relays offers, answers and candidates between
//! members; this crate makes sure it can neither read them nor alter,
//! redirect, reflect or replay them unnoticed, and that a member who knows
//! the room secret still cannot sit in the middle of a connection unseen:
//!
//! * [`Secret`], [`Context`], [`Pairing`]: the room secret (the link's
//!   fragment, which never reaches the server) and what keys are made for.
//! * [`SignalKey`]: `K = HKDF-SHA256(secret, "peerchat-v2", "signal key\n" + CONTEXT)`,
//!   AES-256-GCM with associated data binding context, sender and recipient.
//! * [`ReplayGuard`]: per sender, epoch and counter and time, with typed
//!   [`Refusal`]s (`tampered`, `malformed`, `replayed`, `stale`,
//!   `clock_skew`).
//! * [`RoomCrypto`]: the two together, for one client in one context:
//!   `seal(to, payload, now)` and `open(from, payload, now)`.
//! * [`Fingerprint`]: DTLS fingerprints from SDP, normalised.
//! * [`IdentityKey`], [`PublicKey`]: long-term identity keys (Ed25519;
//!   ECDSA P-256 from browsers without Ed25519 verifies too).
//! * [`Hello`] over a [`Link`]: each side signs both DTLS fingerprints as it
//!   sees them; the other verifies against its own view.
//! * [`SignedMessage`]: authors sign their messages, so relayed history
//!   cannot be forged.
//! * [`SafetyNumber`]: Signal's numeric fingerprint of a pair of keys.
//!
//! Nothing here touches a socket, a clock or the operating system's random
//! generator: randomness is passed in (seeds, random bytes), and the time is
//! an argument. The web client's `web/js/e2e.js` implements the same rules,
//! and both reproduce the known-answer vectors in `tests/vectors/e2e.json`
//! byte for byte. `docs/protocol.md` is the normative description.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod b64;
mod fingerprint;
mod guard;
mod hello;
mod identity;
mod message;
mod refusal;
mod safety;
mod seal;
mod secret;
mod session;

pub use fingerprint::{FINGERPRINT_HASH, Fingerprint, FingerprintError};
pub use guard::{GuardConfig, ReplayGuard};
pub use hello::{ENVELOPE_VERSION, Hello, HelloError, Link, hello_signed_bytes};
pub use identity::{Alg, BadSignature, IdentityKey, KeyError, PublicKey, pin_name};
pub use message::{KIND_CHAT, MessageError, SignedMessage, sign_message, verify_message};
pub use refusal::Refusal;
pub use safety::{SAFETY_ITERATIONS, SafetyNumber, combine_digits, safety_digits, safety_number};
pub use seal::{
    IV_BYTES, KEY_BYTES, KEY_SALT, Plain, RESERVED_FIELDS, SealError, Sealed, SignalKey, Stamp,
    TAG_BYTES, parse_plaintext, plaintext, signal_ad, signal_key_bytes,
};
pub use secret::{
    Context, ContextError, MAX_SECRET_CHARS, MIN_SECRET_BYTES, MIN_SECRET_CHARS, Pairing,
    PairingError, SECRET_BYTES, Secret, SecretError,
};
pub use session::RoomCrypto;

/// The largest integer the protocol's numbers may hold (2^53 − 1), so that
/// JavaScript holds them exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Base64url without padding, as every byte string on the wire is written.
pub mod base64url {
    pub use crate::b64::{decode, encode};
}
