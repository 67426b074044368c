//! Signed messages: every message in the log carries its author's
//! signature, so history relayed by another member cannot be forged.
//!
//! Signed bytes (UTF-8, lines joined by `\n`, numbers in decimal without
//! leading zeros, the body last so that line breaks in it are unambiguous):
//!
//! ```text
//! peerchat-v2 msg
//! CONTEXT
//! AUTHOR
//! NICK
//! SEQ
//! CLOCK
//! TS
//! ID
//! KIND
//! BODY
//! ```

use crate::MAX_SAFE_INTEGER;
use crate::identity::{IdentityKey, PublicKey};
use crate::secret::Context;

/// The kind of a chat message; its body is the text.
pub const KIND_CHAT: &str = "chat";

/// Why a message could not be signed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A field is empty, holds a line break, or a number is out of range.
    #[error("the message's {0} is not fit for signing")]
    BadField(&'static str),
    /// The signature does not verify against the author's key.
    #[error("the message's signature does not verify against its author's key")]
    BadSignature,
}

impl MessageError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::BadField(_) => "bad_field",
            MessageError::BadSignature => "bad_signature",
        }
    }
}

/// The fields of a message that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The context (`room:ID`, …).
    pub context: &'a Context,
    /// The author's peer id.
    pub author: &'a str,
    /// The author's nickname when they sent it.
    pub nick: &'a str,
    /// The author's sequence number for it.
    pub seq: u64,
    /// The author's Lamport clock for it.
    pub clock: u64,
    /// When the author sent it, ms since the Unix epoch.
    pub ts: u64,
    /// The author's id for it.
    pub id: &'a str,
    /// The kind of envelope (`chat`, …).
    pub kind: &'a str,
    /// The body (a chat's text).
    pub body: &'a str,
}

impl SignedMessage<'_> {
    /// The signed bytes.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        let line = |name, value: &str| {
            if value.is_empty() || value.contains('\n') {
                Err(MessageError::BadField(name))
            } else {
                Ok(())
            }
        };
        let number = |name, n: u64| {
            if n > MAX_SAFE_INTEGER {
                Err(MessageError::BadField(name))
            } else {
                Ok(n.to_string())
            }
        };
        let context = self.context.to_string();
        line("context", &context)?;
        line("author", self.author)?;
        line("nickname", self.nick)?;
        line("id", self.id)?;
        line("kind", self.kind)?;
        Ok([
            "peerchat-v2 msg",
            &context,
            self.author,
            self.nick,
            &number("seq", self.seq)?,
            &number("clock", self.clock)?,
            &number("ts", self.ts)?,
            self.id,
            self.kind,
            self.body,
        ]
        .join("\n")
        .into_bytes())
    }

    /// The author's signature over it.
    pub fn sign(&self, identity: &IdentityKey) -> Result<Vec<u8>, MessageError> {
        Ok(identity.sign(&self.signed_bytes()?))
    }

    /// Verifies `sig` against the author's key.
    pub fn verify(&self, key: &PublicKey, sig: &[u8]) -> Result<(), MessageError> {
        key.verify(&self.signed_bytes()?, sig)
            .map_err(|_| MessageError::BadSignature)
    }
}

/// The author's signature over a message (as [`SignedMessage::sign`]).
pub fn sign_message(
    identity: &IdentityKey,
    message: &SignedMessage<'_>,
) -> Result<Vec<u8>, MessageError> {
    message.sign(identity)
}

/// Verifies a message's signature against its author's key (as
/// [`SignedMessage::verify`]).
pub fn verify_message(
    key: &PublicKey,
    message: &SignedMessage<'_>,
    sig: &[u8],
) -> Result<(), MessageError> {
    message.verify(key, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let ctx = Context::room("abcdefghijklmnopqrstuv").unwrap();
        let id = IdentityKey::from_seed([4; 32]);
        let m = SignedMessage {
            context: &ctx,
            author: "aaaa",
            nick: "alice",
            seq: 1,
            clock: 2,
            ts: 3,
            id: "m1",
            kind: KIND_CHAT,
            body: "two\nlines",
        };
        let sig = sign_message(&id, &m).unwrap();
        assert_eq!(verify_message(&id.public_key(), &m, &sig), Ok(()));
        let forged = SignedMessage {
            body: "two\nlines!",
            ..m
        };
        assert_eq!(
            forged.verify(&id.public_key(), &sig),
            Err(MessageError::BadSignature)
        );
        let renamed = SignedMessage { nick: "bob", ..m };
        assert_eq!(
            renamed.verify(&id.public_key(), &sig),
            Err(MessageError::BadSignature)
        );
        let bad = SignedMessage { id: "a\nb", ..m };
        assert_eq!(bad.sign(&id).unwrap_err().code(), "bad_field");
        let big = SignedMessage {
            seq: MAX_SAFE_INTEGER + 1,
            ..m
        };
        assert_eq!(big.sign(&id), Err(MessageError::BadField("seq")));
    }
}
