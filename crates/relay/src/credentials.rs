//! Short-lived TURN credentials in the "TURN REST API" form that coturn's
//! `use-auth-secret` also accepts: the username is `EXPIRY:PEER_ID` (EXPIRY
//! in seconds since the Unix epoch) and the password is
//! `base64(HMAC-SHA1(secret, username))`. The signaling server hands them
//! out; the relay recomputes the password from the username, so the two
//! share only the secret.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::hmac;

/// Why a username is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not of the form `EXPIRY:ID`.
    #[error("the username is not of the form EXPIRY:ID")]
    Malformed,
    /// The expiry has passed.
    #[error("the credential expired")]
    Expired,
}

/// The secret shared by the signaling server and the relay.
#[derive(Clone)]
pub struct Secret(hmac::Key);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A secret from its text form (as given with `--turn-secret`).
    pub fn new(secret: &str) -> Self {
        Self(hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            secret.as_bytes(),
        ))
    }

    /// A fresh random secret, 256 bits.
    pub fn random() -> Self {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut bytes = [0u8; 32];
        // The system generator failing means the OS has no randomness;
        // nothing secure can run then.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random number generator works");
        Self::new(&BASE64_STANDARD.encode(bytes))
    }

    /// The password for `username`.
    pub fn password(&self, username: &str) -> String {
        BASE64_STANDARD.encode(hmac::sign(&self.0, username.as_bytes()).as_ref())
    }

    /// A username and password for `peer_id`, valid for `ttl` from `now`.
    pub fn issue(&self, peer_id: &str, ttl: Duration, now: SystemTime) -> (String, String) {
        let expiry = unix_secs(now).saturating_add(ttl.as_secs());
        let username = format!("{expiry}:{peer_id}");
        let password = self.password(&username);
        (username, password)
    }

    /// The password for `username` if it is well-formed and not expired at
    /// `now`.
    pub fn check(&self, username: &str, now: SystemTime) -> Result<String, CredentialError> {
        let (expiry, id) = username.split_once(':').ok_or(CredentialError::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| CredentialError::Malformed)?;
        if id.is_empty() {
            return Err(CredentialError::Malformed);
        }
        if expiry <= unix_secs(now) {
            return Err(CredentialError::Expired);
        }
        Ok(self.password(username))
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credentials_check_until_they_expire() {
        let secret = Secret::new("s3cret");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (user, pass) = secret.issue("0123456789abcdef", Duration::from_secs(3600), now);
        assert_eq!(user, "1700003600:0123456789abcdef");
        assert_eq!(secret.check(&user, now), Ok(pass.clone()));
        assert_eq!(
            secret.check(&user, now + Duration::from_secs(3600)),
            Err(CredentialError::Expired)
        );
        // Another secret gives another password.
        assert_ne!(Secret::new("other").password(&user), pass);
    }

    #[test]
    fn the_password_is_base64_hmac_sha1() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog")
        // = de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (RFC 2104 test value).
        let secret = Secret::new("key");
        assert_eq!(
            secret.password("The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
    }

    #[test]
    fn malformed_usernames_are_refused() {
        let secret = Secret::random();
        let now = SystemTime::now();
        for user in ["", "alice", "soon:alice", "-5:alice", "99999999999:"] {
            assert_eq!(
                secret.check(user, now),
                Err(CredentialError::Malformed),
                "{user}"
            );
        }
    }
}
