//! The hello: the first envelope on every chat channel, binding the
//! signer's identity key to this connection as the signer sees it.
//!
//! Signed bytes (UTF-8, lines joined by `\n`):
//!
//! ```text
//! peerchat-v2 hello
//! CONTEXT
//! SID
//! SIGNER_ID
//! SIGNER_NICK
//! RECEIVER_ID
//! SIGNER_FP
//! RECEIVER_FP
//! ```
//!
//! The signer writes its own certificate's fingerprint and the remote one
//! from the description it applied; the receiver rebuilds the bytes from its
//! own view (the remote fingerprint it applied as the signer's, its own as
//! the receiver's, the nickname the server announced for the signer) and
//! verifies over those. A man in the middle with DTLS sessions of its own
//! cannot make both views agree.

use serde_json::Value;

use crate::b64;
use crate::fingerprint::Fingerprint;
use crate::identity::{IdentityKey, KeyError, PublicKey};
use crate::seal::json_integer;
use crate::secret::Context;

/// The envelope version that carries hellos and signed messages.
pub const ENVELOPE_VERSION: u64 = 2;

/// Why a hello could not be built, read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// A field of the connection is empty or holds a line feed.
    #[error("the connection's {0} is empty or holds a line break")]
    BadField(&'static str),
    /// The envelope is not a hello of version 2 or later with a signature.
    #[error("the hello is malformed")]
    Malformed,
    /// The key in it is not a valid identity key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature does not verify over this side's view of the
    /// connection: a man in the middle, or a broken peer.
    #[error("the hello's signature does not match this connection")]
    BadSignature,
}

impl HelloError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            HelloError::BadField(_) => "bad_field",
            HelloError::Malformed => "bad_hello",
            HelloError::Key(e) => e.code(),
            HelloError::BadSignature => "bad_signature",
        }
    }
}

/// One connection as this side sees it: what both hellos on it bind.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// The context (`room:ID`, …).
    pub context: &'a Context,
    /// The connection's `sid`.
    pub sid: &'a str,
    /// This side's peer id.
    pub me: &'a str,
    /// This side's nickname.
    pub my_nick: &'a str,
    /// The other side's peer id.
    pub peer: &'a str,
    /// The other side's nickname, as the server (or the code) announced it.
    pub peer_nick: &'a str,
    /// This side's certificate's fingerprint.
    pub my_fingerprint: &'a Fingerprint,
    /// The other side's fingerprint, from the description this side applied.
    pub peer_fingerprint: &'a Fingerprint,
}

fn field<'a>(name: &'static str, value: &'a str) -> Result<&'a str, HelloError> {
    if value.is_empty() || value.contains('\n') {
        Err(HelloError::BadField(name))
    } else {
        Ok(value)
    }
}

/// The signed bytes of a hello, from its fields.
#[allow(clippy::too_many_arguments)]
pub fn hello_signed_bytes(
    context: &Context,
    sid: &str,
    signer: &str,
    signer_nick: &str,
    receiver: &str,
    signer_fingerprint: &Fingerprint,
    receiver_fingerprint: &Fingerprint,
) -> Result<Vec<u8>, HelloError> {
    Ok([
        "peerchat-v2 hello",
        field("context", &context.to_string())?,
        field("sid", sid)?,
        field("signer id", signer)?,
        field("signer nickname", signer_nick)?,
        field("receiver id", receiver)?,
        signer_fingerprint.as_str(),
        receiver_fingerprint.as_str(),
    ]
    .join("\n")
    .into_bytes())
}

impl Link<'_> {
    /// The bytes this side signs in its own hello.
    pub fn my_hello_bytes(&self) -> Result<Vec<u8>, HelloError> {
        hello_signed_bytes(
            self.context,
            self.sid,
            self.me,
            self.my_nick,
            self.peer,
            self.my_fingerprint,
            self.peer_fingerprint,
        )
    }

    /// The bytes the other side's hello must be a signature over.
    pub fn peer_hello_bytes(&self) -> Result<Vec<u8>, HelloError> {
        hello_signed_bytes(
            self.context,
            self.sid,
            self.peer,
            self.peer_nick,
            self.me,
            self.peer_fingerprint,
            self.my_fingerprint,
        )
    }
}

/// A hello: the signer's public key and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The signer's identity key.
    pub key: PublicKey,
    /// The signature over the hello's signed bytes.
    pub sig: Vec<u8>,
}

impl Hello {
    /// This side's hello on a connection.
    pub fn build(identity: &IdentityKey, link: &Link<'_>) -> Result<Self, HelloError> {
        Ok(Hello {
            key: identity.public_key(),
            sig: identity.sign(&link.my_hello_bytes()?),
        })
    }

    /// Verifies the other side's hello against this side's view of the
    /// connection.
    pub fn verify(&self, link: &Link<'_>) -> Result<(), HelloError> {
        self.key
            .verify(&link.peer_hello_bytes()?, &self.sig)
            .map_err(|_| HelloError::BadSignature)
    }

    /// The envelope text,
    /// `{"v":2,"type":"hello","alg":…,"key":…,"sig":…}`.
    pub fn to_envelope(&self) -> String {
        format!(
            r#"{{"v":{ENVELOPE_VERSION},"type":"hello","alg":"{}","key":"{}","sig":"{}"}}"#,
            self.key.alg().name(),
            self.key.key_b64(),
            b64::encode(&self.sig)
        )
    }

    /// Reads a hello envelope (already parsed as JSON): `v` an integer (by
    /// value) of at least 2, `type` `hello`, a valid key and a base64url signature.
    /// Unknown fields are ignored.
    pub fn from_envelope(envelope: &Value) -> Result<Self, HelloError> {
        let v = envelope.get("v").and_then(json_integer);
        if v.is_none_or(|v| v < ENVELOPE_VERSION)
            || envelope.get("type").and_then(Value::as_str) != Some("hello")
        {
            return Err(HelloError::Malformed);
        }
        let key = PublicKey::from_json(envelope)?;
        let sig = envelope
            .get("sig")
            .and_then(Value::as_str)
            .and_then(b64::decode)
            .ok_or(HelloError::Malformed)?;
        Ok(Hello { key, sig })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint::new("sha-256", &vec![format!("{byte:02x}"); 32].join(":")).unwrap()
    }

    #[test]
    fn both_views_agree_and_a_middle_does_not() {
        let ctx = Context::room("abcdefghijklmnopqrstuv").unwrap();
        let (fa, fb, fm) = (fp(0xaa), fp(0xbb), fp(0xcc));
        let alice = IdentityKey::from_seed([1; 32]);
        let a = Link {
            context: &ctx,
            sid: "s1",
            me: "aaaa",
            my_nick: "alice",
            peer: "bbbb",
            peer_nick: "bob",
            my_fingerprint: &fa,
            peer_fingerprint: &fb,
        };
        let b = Link {
            context: &ctx,
            sid: "s1",
            me: "bbbb",
            my_nick: "bob",
            peer: "aaaa",
            peer_nick: "alice",
            my_fingerprint: &fb,
            peer_fingerprint: &fa,
        };
        let hello = Hello::build(&alice, &a).unwrap();
        assert_eq!(hello.verify(&b), Ok(()));
        let parsed =
            Hello::from_envelope(&serde_json::from_str(&hello.to_envelope()).unwrap()).unwrap();
        assert_eq!(parsed, hello);
        // Bob's connection is really with a middle (fingerprint fm): refused.
        let b_mitm = Link {
            peer_fingerprint: &fm,
            ..b
        };
        assert_eq!(hello.verify(&b_mitm), Err(HelloError::BadSignature));
        // The server announced Alice under another name: refused.
        let b_renamed = Link {
            peer_nick: "mallory",
            ..b
        };
        assert_eq!(hello.verify(&b_renamed), Err(HelloError::BadSignature));
        let bad = Link { sid: "s\n1", ..a };
        assert_eq!(Hello::build(&alice, &bad).unwrap_err().code(), "bad_field");
    }

    #[test]
    fn envelopes() {
        let v: Value =
            serde_json::from_str(r#"{"v":1,"type":"hello","alg":"ed25519","key":"AA","sig":"AA"}"#)
                .unwrap();
        assert_eq!(Hello::from_envelope(&v), Err(HelloError::Malformed));
        let v: Value =
            serde_json::from_str(r#"{"v":3,"type":"hello","alg":"rsa","key":"AA","sig":"AA"}"#)
                .unwrap();
        assert_eq!(Hello::from_envelope(&v).unwrap_err().code(), "unknown_alg");
    }
}
