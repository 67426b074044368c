//! DTLS certificate fingerprints (RFC 8122), read from SDP and normalised,
//! so that both ends of a connection write the same bytes in their hellos.
//!
//! The normal form is `sha-256 ` followed by the 32 bytes of the SHA-256
//! fingerprint as upper-case hex pairs joined by `:`. webrtc-rs writes lower
//! case, browsers upper case (and Chromium's `getFingerprints()` lower
//! case): all read the same here.
//!
//! In a session description, every `a=fingerprint` line (session level and
//! in every media section) must name SHA-256 and the same fingerprint. A
//! description with none, with another hash function, or with two different
//! ones is refused: a DTLS stack could check the peer's certificate against
//! a line the hello did not bind.

use ring::digest::{SHA256, digest};

/// The one hash function a fingerprint may use.
pub const FINGERPRINT_HASH: &str = "sha-256";
const FINGERPRINT_BYTES: usize = 32;
const ATTRIBUTE: &str = "a=fingerprint:";

/// Why a fingerprint, or a description's fingerprint, was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// The description has no `a=fingerprint` line.
    #[error("the session description has no DTLS fingerprint")]
    Missing,
    /// A fingerprint is not `HASH HEX:HEX:…` with 32 hex pairs.
    #[error("a DTLS fingerprint is malformed")]
    Malformed,
    /// A fingerprint names a hash function other than SHA-256.
    #[error("a DTLS fingerprint uses {0:?}, not sha-256")]
    UnsupportedHash(String),
    /// The description names two different fingerprints.
    #[error("the session description names two different DTLS fingerprints")]
    Conflicting,
}

impl FingerprintError {
    /// The stable code of the error, as in the shared vectors.
    pub fn code(&self) -> &'static str {
        match self {
            FingerprintError::Missing => "no_fingerprint",
            FingerprintError::Malformed => "bad_fingerprint",
            FingerprintError::UnsupportedHash(_) => "unsupported_hash",
            FingerprintError::Conflicting => "conflicting_fingerprints",
        }
    }
}

/// A normalised SHA-256 DTLS fingerprint, `sha-256 AB:CD:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// A fingerprint from its hash function name and value, in any case
    /// (as `RTCCertificate.getFingerprints()` or webrtc-rs give them).
    pub fn new(hash: &str, value: &str) -> Result<Self, FingerprintError> {
        if !hash.eq_ignore_ascii_case(FINGERPRINT_HASH) {
            return Err(FingerprintError::UnsupportedHash(hash.to_owned()));
        }
        let pairs: Vec<&str> = value.split(':').collect();
        let hex = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit());
        if pairs.len() != FINGERPRINT_BYTES || !pairs.iter().all(hex) {
            return Err(FingerprintError::Malformed);
        }
        Ok(Fingerprint(format!(
            "{FINGERPRINT_HASH} {}",
            value.to_ascii_uppercase()
        )))
    }

    /// A fingerprint from the value of an `a=fingerprint` attribute: the
    /// hash function and the value, separated by spaces or tabs (more are
    /// ignored around them).
    pub fn parse(attribute: &str) -> Result<Self, FingerprintError> {
        let mut parts = attribute.split([' ', '\t']).filter(|p| !p.is_empty());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(hash), Some(value), None) => Fingerprint::new(hash, value),
            _ => Err(FingerprintError::Malformed),
        }
    }

    /// The fingerprint of a session description: every `a=fingerprint`
    /// line in it must name the same SHA-256 fingerprint.
    pub fn from_sdp(sdp: &str) -> Result<Self, FingerprintError> {
        let mut found: Option<Fingerprint> = None;
        for line in sdp.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some(value) = line.strip_prefix(ATTRIBUTE) else {
                continue;
            };
            let fp = Fingerprint::parse(value)?;
            match &found {
                Some(f) if *f != fp => return Err(FingerprintError::Conflicting),
                Some(_) => {}
                None => found = Some(fp),
            }
        }
        found.ok_or(FingerprintError::Missing)
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        let hex: Vec<String> = digest(&SHA256, der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Fingerprint(format!("{FINGERPRINT_HASH} {}", hex.join(":")))
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER: &str = "d7:68:4a:03:88:c7:aa:1b:ef:80:83:7f:6c:1e:fc:ca:a7:62:53:1e:24:93:f8:13:dd:9d:f6:0a:36:81:a8:2a";

    #[test]
    fn normalised() {
        let fp = Fingerprint::new("SHA-256", LOWER).unwrap();
        assert_eq!(fp.as_str(), format!("sha-256 {}", LOWER.to_uppercase()));
        assert_eq!(
            Fingerprint::parse(&format!("sha-256  {LOWER} ")),
            Ok(fp.clone())
        );
        assert_eq!(
            Fingerprint::new("sha-1", LOWER).unwrap_err().code(),
            "unsupported_hash"
        );
        assert_eq!(
            Fingerprint::new("sha-256", &LOWER[3..]),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-256"),
            Err(FingerprintError::Malformed)
        );
    }

    #[test]
    fn from_sdp() {
        let upper = LOWER.to_uppercase();
        let sdp = format!(
            "v=0\r\na=fingerprint:sha-256 {upper}\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 {LOWER}\r\n"
        );
        assert_eq!(
            Fingerprint::from_sdp(&sdp).unwrap().as_str(),
            format!("sha-256 {upper}")
        );
        let other = sdp.replace("a=fingerprint:sha-256 d7", "a=fingerprint:sha-256 d8");
        assert_eq!(
            Fingerprint::from_sdp(&other),
            Err(FingerprintError::Conflicting)
        );
        assert_eq!(
            Fingerprint::from_sdp("v=0\r\n"),
            Err(FingerprintError::Missing)
        );
        let sha1 = format!("{sdp}a=fingerprint:sha-1 AB:CD\r\n");
        assert_eq!(
            Fingerprint::from_sdp(&sha1).unwrap_err().code(),
            "unsupported_hash"
        );
    }

    #[test]
    fn of_certificate() {
        let fp = Fingerprint::of_certificate(b"not really a certificate");
        assert_eq!(Fingerprint::parse(fp.as_str()), Ok(fp));
    }
}
