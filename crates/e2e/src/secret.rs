//! Room secrets, the contexts keys are made for, and mailbox pairing strings.

use std::fmt;

use crate::b64;

/// Bytes in a secret peerchat makes (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Fewest bytes a secret may have (128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;
/// Fewest characters of a secret's text form.
pub const MIN_SECRET_CHARS: usize = 22;
/// Most characters of a secret's text form.
pub const MAX_SECRET_CHARS: usize = 86;
/// Fewest characters of a room or mailbox id in a context.
pub const MIN_ID_CHARS: usize = 22;
/// Most characters of a room or mailbox id in a context.
pub const MAX_ID_CHARS: usize = 64;

/// Why a secret was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// There is no secret at all (a link without its `#` part).
    #[error("the link has no secret: ask for the full link, including the part after #")]
    Missing,
    /// There is one, but it is not a valid secret (cut short, mistyped).
    #[error(
        "the link's secret is damaged ({0}): ask for the full link, including the part after #"
    )]
    Malformed(&'static str),
}

impl SecretError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Missing => "missing_secret",
            SecretError::Malformed(_) => "bad_secret",
        }
    }
}

/// A room's (or a pairing's) shared secret: 16 to 64 bytes, 32 when
/// peerchat makes it. Its `Debug` form never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret made from fresh random bytes (the caller draws them from
    /// the operating system's generator).
    pub fn from_random(bytes: [u8; SECRET_BYTES]) -> Self {
        Secret(bytes.to_vec())
    }

    /// A secret of the given bytes (16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::Malformed("shorter than 128 bits"));
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::Malformed("longer than 512 bits"));
        }
        Ok(Secret(bytes.to_vec()))
    }

    /// Reads the secret from a link's fragment (the part after `#`, with or
    /// without the `#`): 22 to 86 base64url characters, no padding, decoding
    /// to at least 16 bytes.
    pub fn from_fragment(fragment: &str) -> Result<Self, SecretError> {
        let text = fragment.strip_prefix('#').unwrap_or(fragment);
        if text.is_empty() {
            return Err(SecretError::Missing);
        }
        if !b64::is_alphabet(text) {
            return Err(SecretError::Malformed(
                "only A-Z, a-z, 0-9, '-' and '_' may appear",
            ));
        }
        if text.len() < MIN_SECRET_CHARS {
            return Err(SecretError::Malformed("too short"));
        }
        if text.len() > MAX_SECRET_CHARS {
            return Err(SecretError::Malformed("too long"));
        }
        let bytes = b64::decode(text).ok_or(SecretError::Malformed("not valid base64url"))?;
        Secret::from_bytes(&bytes)
    }

    /// The fragment form (base64url, no padding, no `#`).
    pub fn to_fragment(&self) -> String {
        b64::encode(&self.0)
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A room or mailbox id that is not fit for a context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id in a key context must be 22 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct ContextError;

impl ContextError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        "bad_context"
    }
}

/// What a key is for. Its text form (`room:ID`, `mailbox:ID`, `code`) goes
/// into the key derivation and into every associated data and signature, so
/// nothing made for one context is accepted in another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Context {
    /// A room, by its id.
    Room(String),
    /// A mailbox pairing, by its id.
    Mailbox(String),
    /// A pair of connection codes.
    Code,
}

fn check_id(id: &str) -> Result<(), ContextError> {
    if (MIN_ID_CHARS..=MAX_ID_CHARS).contains(&id.len()) && b64::is_alphabet(id) {
        Ok(())
    } else {
        Err(ContextError)
    }
}

impl Context {
    /// The context of a room (its id follows the room id rules).
    pub fn room(id: &str) -> Result<Self, ContextError> {
        check_id(id)?;
        Ok(Context::Room(id.to_owned()))
    }

    /// The context of a mailbox pairing.
    pub fn mailbox(id: &str) -> Result<Self, ContextError> {
        check_id(id)?;
        Ok(Context::Mailbox(id.to_owned()))
    }

    /// Reads a context from its text: `room:ID`, `mailbox:ID` or `code`.
    pub fn parse(text: &str) -> Result<Self, ContextError> {
        if text == "code" {
            return Ok(Context::Code);
        }
        match text.split_once(':') {
            Some(("room", id)) => Context::room(id),
            Some(("mailbox", id)) => Context::mailbox(id),
            _ => Err(ContextError),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Context::Room(id) => write!(f, "room:{id}"),
            Context::Mailbox(id) => write!(f, "mailbox:{id}"),
            Context::Code => f.write_str("code"),
        }
    }
}

/// Why a pairing string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// Not of the form `ID.SECRET`, or the id is not valid.
    #[error("a pairing is ID.SECRET, as the first side printed it")]
    Malformed,
    /// The secret part is not valid.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A mailbox pairing: `ID.SECRET`, made by the first side and given to
/// the second. The id goes to the server; the secret never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    id: String,
    secret: Secret,
}

impl PairingError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            PairingError::Malformed => "bad_pairing",
            PairingError::Secret(e) => e.code(),
        }
    }
}

impl Pairing {
    /// A new pairing from fresh random bytes (16 for the id, 32 for the
    /// secret). Its id never starts with `-`, which a command line would
    /// read as an option (`--mailbox -x…`): where the first character would
    /// be `-`, the first byte's top bit is flipped.
    pub fn from_random(mut id: [u8; 16], secret: [u8; SECRET_BYTES]) -> Self {
        // The first base64url character is the first byte's top six bits;
        // `-` is 62.
        if id[0] >> 2 == 62 {
            id[0] ^= 0x80;
        }
        Pairing {
            id: b64::encode(&id),
            secret: Secret::from_random(secret),
        }
    }

    /// Reads `ID.SECRET` (white space around it is ignored).
    pub fn parse(text: &str) -> Result<Self, PairingError> {
        let (id, secret) = text.trim().split_once('.').ok_or(PairingError::Malformed)?;
        check_id(id).map_err(|_| PairingError::Malformed)?;
        if secret.is_empty() {
            return Err(SecretError::Missing.into());
        }
        Ok(Pairing {
            id: id.to_owned(),
            secret: Secret::from_fragment(secret)?,
        })
    }

    /// The mailbox id (what the server sees).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The shared secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The key context, `mailbox:ID`.
    pub fn context(&self) -> Context {
        Context::Mailbox(self.id.clone())
    }
}

impl fmt::Display for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret.to_fragment())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments() {
        let s = Secret::from_random([7; 32]);
        assert_eq!(s.to_fragment().len(), 43);
        assert_eq!(
            Secret::from_fragment(&format!("#{}", s.to_fragment())),
            Ok(s.clone())
        );
        assert_eq!(Secret::from_fragment(""), Err(SecretError::Missing));
        assert_eq!(Secret::from_fragment("#"), Err(SecretError::Missing));
        assert_eq!(
            Secret::from_fragment("abc").unwrap_err().code(),
            "bad_secret"
        );
        assert!(!format!("{s:?}").contains(&s.to_fragment()));
    }

    #[test]
    fn pairings() {
        let p = Pairing::from_random([1; 16], [2; 32]);
        let text = p.to_string();
        assert_eq!(Pairing::parse(&format!(" {text}\n")), Ok(p.clone()));
        assert_eq!(p.context().to_string(), format!("mailbox:{}", p.id()));
        assert_eq!(Pairing::parse("nodot"), Err(PairingError::Malformed));
        // Never an id a command line takes for an option (`--mailbox -x…`
        // was refused as an unknown argument).
        for first in 0..=255u8 {
            let mut id = [1; 16];
            id[0] = first;
            let p = Pairing::from_random(id, [2; 32]);
            assert!(!p.to_string().starts_with('-'), "{p}");
            assert_eq!(Pairing::parse(&p.to_string()), Ok(p));
        }
        assert_eq!(
            Pairing::parse(&format!("{}.", p.id())),
            Err(PairingError::Secret(SecretError::Missing))
        );
    }
}
