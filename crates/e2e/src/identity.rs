//! Identity keys: the long-term key pair of a client, its public key on the
//! wire and in safety numbers, and the names pins are kept under.
//!
//! A terminal client holds an Ed25519 key ([`IdentityKey`], PKCS#8 in its
//! key file); browsers hold Ed25519 or, where WebCrypto has no Ed25519,
//! ECDSA P-256 (signatures in the fixed `r || s` form). Both kinds verify
//! here.

use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey,
};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization as _;

use crate::b64;

/// The PKCS#8 (RFC 5208, version 1) prefix of an Ed25519 private key
/// (RFC 8410): the 32-byte seed follows it.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A signature algorithm of identity keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Ed25519: 32-byte public keys, 64-byte signatures.
    Ed25519,
    /// ECDSA over P-256 with SHA-256: 65-byte uncompressed public keys,
    /// 64-byte `r || s` signatures.
    P256,
}

impl Alg {
    /// The name on the wire, `ed25519` or `p256`.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Ed25519 => "ed25519",
            Alg::P256 => "p256",
        }
    }

    /// The algorithm of a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(Alg::Ed25519),
            "p256" => Some(Alg::P256),
            _ => None,
        }
    }

    /// The tag byte that precedes the raw key in safety numbers and pins.
    pub fn tag(self) -> u8 {
        match self {
            Alg::Ed25519 => 0x01,
            Alg::P256 => 0x02,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Alg::Ed25519 => 32,
            Alg::P256 => 65,
        }
    }
}

/// Why a public or private key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The algorithm is not one peerchat knows.
    #[error("unknown identity key algorithm {0:?}")]
    UnknownAlg(String),
    /// The key's bytes do not fit its algorithm.
    #[error("the identity key is malformed")]
    BadKey,
    /// A private key file is not a PKCS#8 Ed25519 key.
    #[error("not a PKCS#8 Ed25519 private key")]
    BadPkcs8,
}

impl KeyError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::UnknownAlg(_) => "unknown_alg",
            KeyError::BadKey => "bad_key",
            KeyError::BadPkcs8 => "bad_pkcs8",
        }
    }
}

/// A signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signature does not verify")]
pub struct BadSignature;

/// A public identity key. On the wire `{"alg":"ed25519","key":B64URL}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    alg: Alg,
    key: Vec<u8>,
}

impl PublicKey {
    /// A public key from its algorithm and raw bytes (32 for Ed25519, 65 for
    /// P-256 starting with 0x04).
    pub fn new(alg: Alg, key: &[u8]) -> Result<Self, KeyError> {
        if key.len() != alg.key_len() || (alg == Alg::P256 && key[0] != 0x04) {
            return Err(KeyError::BadKey);
        }
        Ok(PublicKey {
            alg,
            key: key.to_vec(),
        })
    }

    /// A public key from its wire fields.
    pub fn from_wire(alg: &str, key: &str) -> Result<Self, KeyError> {
        let alg = Alg::from_name(alg).ok_or_else(|| KeyError::UnknownAlg(alg.to_owned()))?;
        PublicKey::new(alg, &b64::decode(key).ok_or(KeyError::BadKey)?)
    }

    /// A public key from a JSON object's `alg` and `key` fields.
    pub fn from_json(value: &Value) -> Result<Self, KeyError> {
        let field = |name| value.get(name).and_then(Value::as_str);
        match (field("alg"), field("key")) {
            (Some(alg), Some(key)) => PublicKey::from_wire(alg, key),
            (None, _) => Err(KeyError::UnknownAlg(String::new())),
            _ => Err(KeyError::BadKey),
        }
    }

    /// Adds `alg` and `key` to a JSON object.
    pub fn write_json(&self, object: &mut Map<String, Value>) {
        object.insert("alg".into(), Value::String(self.alg.name().into()));
        object.insert("key".into(), Value::String(self.key_b64()));
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The raw key bytes.
    pub fn raw(&self) -> &[u8] {
        &self.key
    }

    /// The key in base64url, as on the wire.
    pub fn key_b64(&self) -> String {
        b64::encode(&self.key)
    }

    /// The tag byte and the raw key: the key's bytes in safety numbers and
    /// pins.
    pub fn tagged(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.key.len());
        out.push(self.alg.tag());
        out.extend_from_slice(&self.key);
        out
    }

    /// Verifies a signature by this key over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        let alg: &dyn ring::signature::VerificationAlgorithm = match self.alg {
            Alg::Ed25519 => &ED25519,
            Alg::P256 => &ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.key)
            .verify(message, signature)
            .map_err(|_| BadSignature)
    }
}

/// A client's own Ed25519 identity key pair. Its `Debug` form shows the
/// public key only.
pub struct IdentityKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey")
            .field("public", &b64::encode(self.pair.public_key().as_ref()))
            .finish_non_exhaustive()
    }
}

impl IdentityKey {
    /// A key pair from a 32-byte seed (fresh random bytes for a new
    /// identity).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut pkcs8 = ED25519_PKCS8_V1_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are a seed");
        IdentityKey { pair, pkcs8 }
    }

    /// A key pair from a PKCS#8 document (version 1, as OpenSSL and
    /// [`pkcs8`](Self::pkcs8) write it, or version 2 with the public key).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| KeyError::BadPkcs8)?;
        Ok(IdentityKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The PKCS#8 document to keep in the key file.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(Alg::Ed25519, self.pair.public_key().as_ref())
            .expect("an Ed25519 public key is 32 bytes")
    }

    /// Signs `message` (Ed25519 is deterministic: the same message gives
    /// the same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The name a pin is kept under: the nickname in Unicode NFKC, then lower
/// case, so that `Alice`, `ALICE` and `Ａｌｉｃｅ` share one pin (and a
/// look-alike presenting another key shows as a changed safety number).
pub fn pin_name(nick: &str) -> String {
    nick.nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_pkcs8() {
        let id = IdentityKey::from_seed([3; 32]);
        let again = IdentityKey::from_pkcs8(id.pkcs8()).unwrap();
        assert_eq!(again.public_key(), id.public_key());
        let sig = id.sign(b"hello");
        assert_eq!(sig, again.sign(b"hello"));
        let pk = id.public_key();
        assert_eq!(pk.verify(b"hello", &sig), Ok(()));
        assert_eq!(pk.verify(b"hellO", &sig), Err(BadSignature));
        assert_eq!(pk.tagged()[0], 1);
        assert_eq!(PublicKey::from_wire("ed25519", &pk.key_b64()), Ok(pk));
        assert_eq!(
            IdentityKey::from_pkcs8(b"junk").unwrap_err().code(),
            "bad_pkcs8"
        );
        assert!(!format!("{id:?}").contains("3, 3"));
    }

    #[test]
    fn wire_forms() {
        assert_eq!(
            PublicKey::from_wire("rsa", "AAAA").unwrap_err().code(),
            "unknown_alg"
        );
        assert_eq!(
            PublicKey::from_wire("ed25519", "AAAA"),
            Err(KeyError::BadKey)
        );
        assert_eq!(
            PublicKey::new(Alg::P256, &[0x03; 65]),
            Err(KeyError::BadKey)
        );
        assert!(PublicKey::new(Alg::P256, &[0x04; 65]).is_ok());
    }

    #[test]
    fn pin_names() {
        assert_eq!(pin_name("Alice"), "alice");
        assert_eq!(pin_name("Ａｌｉｃｅ"), "alice");
        assert_eq!(pin_name("ﬁona"), "fiona");
    }
}
