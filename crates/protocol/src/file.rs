//! File offers: what a `file` entry of a message log says about a file
//! (protocol version 2, "Files" in `docs/protocol.md`).
//!
//! An offer names the file (`fid`), says what it is (`name`, `size`,
//! `type`), how it is cut (`piece`) and commits to its bytes: `sha256` is the
//! SHA-256 of the whole file, `root` the SHA-256 of the concatenated
//! SHA-256 hashes of its pieces (the list itself travels on the transfer
//! channel and is checked against `root`). The author signs the offer's
//! [`FileMeta::body`] like a chat message's text.

use serde_json::Value;

use crate::ProtocolError;
use crate::peer::{MAX_COUNTER, validate_id};

/// Smallest piece size, in bytes (16 KiB, one chunk).
pub const MIN_PIECE: u64 = 1 << 14;
/// Largest piece size, in bytes (16 MiB).
pub const MAX_PIECE: u64 = 1 << 24;
/// Most pieces a file may have (its hash list is then 2 MiB).
pub const MAX_PIECES: u64 = 1 << 16;
/// Longest file name in an offer, in bytes of UTF-8 (receivers show and
/// save a sanitised name of at most 255 bytes).
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest media type in an offer, in bytes.
pub const MAX_TYPE_BYTES: usize = 127;

/// The SHA-256 of nothing: the `sha256` and `root` of an empty file.
pub const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// What an offer says about a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// The file's id: 1 to 64 characters of `A-Z a-z 0-9 - _` (peerchat
    /// uses 128 random bits in base64url).
    pub fid: String,
    /// The name as the author gave it (1 to [`MAX_NAME_BYTES`] bytes);
    /// receivers show and save only a sanitised form of it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (`type` on the wire), such as `image/png`.
    pub mime: String,
    /// The piece size: a power of two from [`MIN_PIECE`] to [`MAX_PIECE`].
    pub piece: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    /// SHA-256 of the concatenation of the pieces' SHA-256 hashes.
    pub root: [u8; 32],
}

fn bad(field: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::BadField { field, reason }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// 32 bytes from 64 lowercase hex digits.
pub fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(out)
}

fn is_type_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&^_.+-".contains(&b)
}

/// Checks a media type: `TYPE/SUBTYPE`, each 1 or more of `a-z 0-9` and
/// `! # $ & ^ _ . + -` (RFC 6838's characters, lower case), at most
/// [`MAX_TYPE_BYTES`] bytes in all.
pub fn validate_media_type(mime: &str) -> Result<(), ProtocolError> {
    let reason = "must be a media type TYPE/SUBTYPE in lower case, at most 127 bytes";
    let Some((kind, sub)) = mime.split_once('/') else {
        return Err(bad("type", reason));
    };
    let part = |s: &str| !s.is_empty() && s.bytes().all(is_type_char);
    if mime.len() > MAX_TYPE_BYTES || !part(kind) || !part(sub) {
        return Err(bad("type", reason));
    }
    Ok(())
}

impl FileMeta {
    /// How many pieces the file has: `ceil(size / piece)` (0 for an empty
    /// file).
    pub fn pieces(&self) -> u64 {
        self.size.div_ceil(self.piece.max(1))
    }

    /// The length of piece `index` (the last one may be shorter).
    pub fn piece_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(self.piece);
        self.size.saturating_sub(start).min(self.piece)
    }

    /// Checks every rule of an offer.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_id(&self.fid).map_err(|_| {
            bad(
                "fid",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
            )
        })?;
        if self.name.is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if self.name.len() > MAX_NAME_BYTES {
            return Err(ProtocolError::TooLong {
                field: "name",
                max: MAX_NAME_BYTES,
            });
        }
        if self.size > MAX_COUNTER {
            return Err(bad("size", "must be an integer from 0 to 9007199254740991"));
        }
        validate_media_type(&self.mime)?;
        if !self.piece.is_power_of_two() || !(MIN_PIECE..=MAX_PIECE).contains(&self.piece) {
            return Err(bad(
                "piece",
                "must be a power of two from 16384 to 16777216",
            ));
        }
        if self.pieces() > MAX_PIECES {
            return Err(bad("piece", "must cut the file into at most 65536 pieces"));
        }
        if self.size == 0 && (self.sha256 != EMPTY_SHA256 || self.root != EMPTY_SHA256) {
            return Err(bad(
                "sha256",
                "of an empty file must be the SHA-256 of nothing",
            ));
        }
        Ok(())
    }

    /// The offer as a JSON object.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The offer as JSON text, fields in the order the protocol writes
    /// them.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads and checks an offer's JSON object (numbers by their value, as
    /// everywhere in envelopes).
    pub fn from_value(value: &Value) -> Result<Self, ProtocolError> {
        let Value::Object(obj) = value else {
            return Err(bad("file", "must be an object"));
        };
        let string = |field: &'static str| match obj.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(bad(field, "must be a string")),
            None => Err(ProtocolError::MissingField(field)),
        };
        let number = |field: &'static str| {
            let value = obj.get(field).ok_or(ProtocolError::MissingField(field))?;
            crate::peer::integer(value).ok_or(bad(field, "must be an integer"))
        };
        let hash = |field: &'static str| {
            hash_from_hex(string(field)?).ok_or(bad(field, "must be 64 lowercase hex digits"))
        };
        let meta = FileMeta {
            fid: string("fid")?.to_owned(),
            name: string("name")?.to_owned(),
            size: number("size")?,
            mime: string("type")?.to_owned(),
            piece: number("piece")?,
            sha256: hash("sha256")?,
            root: hash("root")?,
        };
        meta.validate()?;
        Ok(meta)
    }

    /// The BODY its author signs (`KIND` `file`): the fields on lines of
    /// their own, the name last (so that whatever it holds, the lines are
    /// unambiguous): `FID`, `SIZE`, `TYPE`, `PIECE`, `SHA256`, `ROOT`,
    /// `NAME`, numbers in decimal and hashes in lowercase hex.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.fid,
            self.size,
            self.mime,
            self.piece,
            hex(&self.sha256),
            hex(&self.root),
            self.name
        )
    }
}

/// An offer as the protocol writes it, fields in order.
#[derive(serde::Serialize)]
struct MetaOut<'a> {
    fid: &'a str,
    name: &'a str,
    size: u64,
    #[serde(rename = "type")]
    mime: &'a str,
    piece: u64,
    sha256: String,
    root: String,
}

impl serde::Serialize for FileMeta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MetaOut {
            fid: &self.fid,
            name: &self.name,
            size: self.size,
            mime: &self.mime,
            piece: self.piece,
            sha256: hex(&self.sha256),
            root: hex(&self.root),
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for FileMeta {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            fid: "f1".into(),
            name: "a.txt".into(),
            size: 40_000,
            mime: "text/plain".into(),
            piece: 16_384,
            sha256: [1; 32],
            root: [2; 32],
        }
    }

    #[test]
    fn round_trip_and_pieces() {
        let m = meta();
        assert_eq!(FileMeta::from_value(&m.to_value()).unwrap(), m);
        assert_eq!(m.pieces(), 3);
        assert_eq!(m.piece_len(2), 40_000 - 32_768);
        assert_eq!(m.piece_len(3), 0);
        assert_eq!(hash_from_hex(&hex(&[0xab; 32])), Some([0xab; 32]));
        assert_eq!(hash_from_hex(&"AB".repeat(32)), None);
    }

    #[test]
    fn rules() {
        let field = |m: FileMeta| match m.validate().unwrap_err() {
            ProtocolError::BadField { field, .. } | ProtocolError::TooLong { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(FileMeta {
                piece: 3 << 14,
                ..meta()
            }),
            "piece"
        );
        assert_eq!(
            field(FileMeta {
                piece: 1 << 13,
                ..meta()
            }),
            "piece"
        );
        assert_eq!(
            field(FileMeta {
                size: (1 << 16) * (1 << 14) + 1,
                ..meta()
            }),
            "piece"
        );
        assert_eq!(
            field(FileMeta {
                mime: "Image/PNG".into(),
                ..meta()
            }),
            "type"
        );
        assert_eq!(
            field(FileMeta {
                name: String::new(),
                ..meta()
            }),
            "name"
        );
        assert_eq!(field(FileMeta { size: 0, ..meta() }), "sha256");
        let empty = FileMeta {
            size: 0,
            sha256: EMPTY_SHA256,
            root: EMPTY_SHA256,
            ..meta()
        };
        assert_eq!(empty.validate(), Ok(()));
        assert_eq!(empty.pieces(), 0);
    }
}
