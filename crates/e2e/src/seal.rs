//! The signal key schedule and the sealed form of a signaling payload.
//!
//! `K = HKDF-SHA256(ikm = secret, salt = "peerchat-v2", info = "signal key\n" + CONTEXT)`,
//! 32 bytes, an AES-256-GCM key. A payload is sealed under K with a fresh
//! random 96-bit IV and the associated data
//! `"peerchat-v2 signal\n" + CONTEXT + "\n" + FROM + "\n" + TO`, so a sealed
//! payload opens only in its context, from its sender, to its recipient.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use serde_json::{Map, Value};

use crate::refusal::Refusal;
use crate::secret::{Context, Secret};
use crate::{MAX_SAFE_INTEGER, b64};

/// Bytes of an AES-GCM IV.
pub const IV_BYTES: usize = 12;
/// Bytes of an AES-GCM tag.
pub const TAG_BYTES: usize = 16;
/// Bytes of a signal key.
pub const KEY_BYTES: usize = 32;
/// The HKDF salt.
pub const KEY_SALT: &str = "peerchat-v2";
/// Fewest characters of an epoch (`e`).
pub const MIN_EPOCH_CHARS: usize = 22;
/// Most characters of an epoch (`e`).
pub const MAX_EPOCH_CHARS: usize = 64;
/// The plaintext fields the sealing layer adds to a payload.
pub const RESERVED_FIELDS: [&str; 3] = ["e", "n", "ts"];

/// The bytes of the signal key for a secret in a context (the HKDF
/// output; exposed for the known-answer vectors).
pub fn signal_key_bytes(secret: &Secret, context: &Context) -> [u8; KEY_BYTES] {
    let info = format!("signal key\n{context}");
    let info = [info.as_bytes()];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KEY_SALT.as_bytes()).extract(secret.as_bytes());
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut key = [0; KEY_BYTES];
    okm.fill(&mut key)
        .expect("the output length matches the buffer");
    key
}

/// The associated data of a payload sealed in `context` from `from` to `to`.
pub fn signal_ad(context: &Context, from: &str, to: &str) -> Vec<u8> {
    format!("peerchat-v2 signal\n{context}\n{from}\n{to}").into_bytes()
}

/// A sealed payload: the IV and the ciphertext with its tag. On the wire,
/// `{"iv":B64URL(iv),"ct":B64URL(ct)}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The IV.
    pub iv: [u8; IV_BYTES],
    /// Ciphertext followed by the 16-byte tag.
    pub ct: Vec<u8>,
}

impl Sealed {
    /// The wire form, the `payload` of a `signal`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("iv".into(), Value::String(b64::encode(&self.iv)));
        map.insert("ct".into(), Value::String(b64::encode(&self.ct)));
        Value::Object(map)
    }

    /// Reads the wire form. Anything else (a version-1 payload, a damaged
    /// one) is [`Refusal::Tampered`]: the server relays payloads, so it is
    /// what the server could have done. Fields other than `iv` and `ct` are
    /// ignored.
    pub fn from_json(payload: &Value) -> Result<Self, Refusal> {
        let field = |name| {
            payload
                .get(name)
                .and_then(Value::as_str)
                .and_then(b64::decode)
                .ok_or(Refusal::Tampered)
        };
        let iv = field("iv")?.try_into().map_err(|_| Refusal::Tampered)?;
        let ct = field("ct")?;
        if ct.len() < TAG_BYTES {
            return Err(Refusal::Tampered);
        }
        Ok(Sealed { iv, ct })
    }
}

/// A context's signal key. It remembers its context, which goes into every
/// associated data it seals or opens with.
pub struct SignalKey {
    context: Context,
    key: LessSafeKey,
}

impl std::fmt::Debug for SignalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalKey")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl SignalKey {
    /// Derives the key of `context` from the secret.
    pub fn derive(secret: &Secret, context: Context) -> Self {
        let bytes = signal_key_bytes(secret, &context);
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        SignalKey {
            context,
            key: LessSafeKey::new(key),
        }
    }

    /// The context the key was made for.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Seals plaintext bytes from `from` to `to` with the given IV. The IV
    /// must never repeat under this key: draw it at random for each message.
    pub fn seal(&self, iv: [u8; IV_BYTES], from: &str, to: &str, plaintext: &[u8]) -> Sealed {
        let ad = signal_ad(&self.context, from, to);
        let mut ct = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(&ad), &mut ct)
            .expect("a signaling payload is far below AES-GCM's length limit");
        Sealed { iv, ct }
    }

    /// Opens a sealed payload that `from` sent to `to`, or refuses it as
    /// [`Refusal::Tampered`].
    pub fn open(&self, from: &str, to: &str, sealed: &Sealed) -> Result<Vec<u8>, Refusal> {
        let ad = signal_ad(&self.context, from, to);
        let mut buf = sealed.ct.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.iv),
                Aad::from(&ad),
                &mut buf,
            )
            .map_err(|_| Refusal::Tampered)?;
        let len = plain.len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Seals a payload object with the replay guard's fields added.
    pub fn seal_payload(
        &self,
        iv: [u8; IV_BYTES],
        from: &str,
        to: &str,
        payload: &Map<String, Value>,
        stamp: &Stamp,
    ) -> Result<Sealed, SealError> {
        Ok(self.seal(iv, from, to, &plaintext(payload, stamp)?))
    }

    /// Opens a sealed payload and reads its fields, without any replay
    /// check (that is [`ReplayGuard`](crate::ReplayGuard)'s job).
    pub fn open_payload(&self, from: &str, to: &str, payload: &Value) -> Result<Plain, Refusal> {
        let sealed = Sealed::from_json(payload)?;
        parse_plaintext(&self.open(from, to, &sealed)?)
    }
}

/// What the sealing layer adds to a payload for the receiver's replay guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's epoch: 128 random bits in base64url, new for each fresh
    /// join.
    pub epoch: String,
    /// The sender's counter in this epoch, from 1, across all recipients.
    pub n: u64,
    /// The sender's wall clock, ms since the Unix epoch.
    pub ts: u64,
}

/// Why a payload could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The payload already has a field the sealing layer adds.
    #[error("a signal payload may not carry the field {0:?}: the sealing layer adds it")]
    ReservedField(&'static str),
    /// A number is out of range (the counter ran out, the clock is absurd).
    #[error("{0} is out of range (0 to 2^53 - 1)")]
    OutOfRange(&'static str),
}

/// A payload opened and read: the payload as the sender gave it (without
/// the sealing layer's fields) and the sealing layer's stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// The version-1 payload (`sid`, `description` or `candidate`, …).
    pub payload: Map<String, Value>,
    /// The replay guard's fields.
    pub stamp: Stamp,
}

/// The plaintext bytes of a payload with its stamp: the payload's fields
/// and then `e`, `n`, `ts`, as one JSON object in UTF-8.
pub fn plaintext(payload: &Map<String, Value>, stamp: &Stamp) -> Result<Vec<u8>, SealError> {
    if let Some(name) = RESERVED_FIELDS.iter().find(|f| payload.contains_key(**f)) {
        return Err(SealError::ReservedField(name));
    }
    if stamp.n == 0 || stamp.n > MAX_SAFE_INTEGER {
        return Err(SealError::OutOfRange("n"));
    }
    if stamp.ts > MAX_SAFE_INTEGER {
        return Err(SealError::OutOfRange("ts"));
    }
    let mut map = payload.clone();
    map.insert("e".into(), Value::String(stamp.epoch.clone()));
    map.insert("n".into(), Value::from(stamp.n));
    map.insert("ts".into(), Value::from(stamp.ts));
    Ok(serde_json::to_vec(&map).expect("a JSON map serialises"))
}

/// Whether `e` is a well-formed epoch.
pub fn valid_epoch(e: &str) -> bool {
    (MIN_EPOCH_CHARS..=MAX_EPOCH_CHARS).contains(&e.len()) && b64::is_alphabet(e)
}

/// A JSON number as an integer from 0 to 2^53 − 1, read by value (so `2.0`
/// is 2, as in JavaScript, whose parser cannot tell them apart).
pub(crate) fn json_integer(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return (n <= MAX_SAFE_INTEGER).then_some(n);
    }
    let f = value.as_f64()?;
    (f.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER as f64).contains(&f)).then_some(f as u64)
}

/// Reads authenticated plaintext bytes: UTF-8 JSON (no byte order mark),
/// an object with a string `e` (22 to 64 base64url characters), an integer
/// `n` (1 to 2^53 − 1) and an integer `ts` (0 to 2^53 − 1).
pub fn parse_plaintext(bytes: &[u8]) -> Result<Plain, Refusal> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| Refusal::Malformed("not JSON"))?;
    let Value::Object(mut payload) = value else {
        return Err(Refusal::Malformed("not a JSON object"));
    };
    let epoch = match payload.remove("e") {
        Some(Value::String(e)) if valid_epoch(&e) => e,
        _ => return Err(Refusal::Malformed("no valid epoch (e)")),
    };
    let number = |v: Option<Value>| v.as_ref().and_then(json_integer);
    let n = number(payload.remove("n"))
        .filter(|n| *n >= 1)
        .ok_or(Refusal::Malformed("no valid counter (n)"))?;
    let ts = number(payload.remove("ts")).ok_or(Refusal::Malformed("no valid time (ts)"))?;
    Ok(Plain {
        payload,
        stamp: Stamp { epoch, n, ts },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SignalKey {
        SignalKey::derive(
            &Secret::from_random([9; 32]),
            Context::room("abcdefghijklmnopqrstuv").unwrap(),
        )
    }

    #[test]
    fn round_trip_and_binding() {
        let k = key();
        let sealed = k.seal([1; 12], "a", "b", b"hello");
        assert_eq!(sealed.ct.len(), 5 + TAG_BYTES);
        assert_eq!(k.open("a", "b", &sealed).unwrap(), b"hello");
        assert_eq!(k.open("b", "a", &sealed), Err(Refusal::Tampered));
        assert_eq!(Sealed::from_json(&sealed.to_json()), Ok(sealed));
    }

    #[test]
    fn payload_fields() {
        let k = key();
        let mut payload = Map::new();
        payload.insert("sid".into(), "s".into());
        let stamp = Stamp {
            epoch: "A".repeat(22),
            n: 1,
            ts: 5,
        };
        let sealed = k.seal_payload([0; 12], "a", "b", &payload, &stamp).unwrap();
        let plain = k.open_payload("a", "b", &sealed.to_json()).unwrap();
        assert_eq!(
            plain,
            Plain {
                payload: payload.clone(),
                stamp: stamp.clone()
            }
        );
        payload.insert("n".into(), 3.into());
        assert_eq!(
            k.seal_payload([0; 12], "a", "b", &payload, &stamp),
            Err(SealError::ReservedField("n"))
        );
        assert_eq!(
            parse_plaintext(b"[1]"),
            Err(Refusal::Malformed("not a JSON object"))
        );
        assert_eq!(
            parse_plaintext(br#"{"e":"AAAAAAAAAAAAAAAAAAAAAA","n":0,"ts":1}"#)
                .unwrap_err()
                .code(),
            "malformed"
        );
    }
}
