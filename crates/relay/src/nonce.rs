//! Stateless TURN nonces (as pion/turn and coturn's `--stateless-nonce`
//! do): a nonce is the time it was made and an HMAC of that time and the
//! client's address, so the relay can check one without having stored it.
//! The `turn` crate keeps every nonce it hands out until it is presented
//! again, for anyone who sends an unauthenticated request: a spoofable
//! flood grew its table without bound.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

/// How long a nonce is accepted.
pub(crate) const LIFETIME: Duration = Duration::from_secs(3600);

/// Hex digits of the MAC kept in a nonce (96 bits).
const MAC_HEX: usize = 24;

/// Makes and checks nonces with a key of its own.
pub(crate) struct Nonces {
    key: hmac::Key,
}

impl Nonces {
    /// Nonces under a fresh random key: those of an earlier run are stale.
    pub(crate) fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        // The system generator failing means the OS has no randomness;
        // nothing secure can run then.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random number generator works");
        Self { key }
    }

    fn mac(&self, time: u32, client: IpAddr) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&time.to_be_bytes());
        match client {
            IpAddr::V4(ip) => ctx.update(&ip.octets()),
            IpAddr::V6(ip) => ctx.update(&ip.octets()),
        }
        let tag = ctx.sign();
        tag.as_ref()[..MAC_HEX / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A nonce for `client`, made at `now`: 8 hex digits of the time in
    /// seconds, then the MAC.
    pub(crate) fn issue(&self, client: IpAddr, now: SystemTime) -> String {
        let time = seconds(now);
        format!("{time:08x}{}", self.mac(time, client))
    }

    /// Whether `nonce` was made by [`Nonces::issue`] for `client`, less than
    /// [`LIFETIME`] before `now`.
    pub(crate) fn check(&self, nonce: &str, client: IpAddr, now: SystemTime) -> bool {
        if nonce.len() != 8 + MAC_HEX || !nonce.is_ascii() {
            return false;
        }
        let Ok(time) = u32::from_str_radix(&nonce[..8], 16) else {
            return false;
        };
        let age = u64::from(seconds(now)).saturating_sub(u64::from(time));
        if age >= LIFETIME.as_secs() || time > seconds(now).saturating_add(60) {
            return false;
        }
        let want = self.mac(time, client);
        // Compared in time independent of where they differ.
        want.bytes()
            .zip(nonce[8..].bytes())
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
    }
}

fn seconds(t: SystemTime) -> u32 {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_for_its_client_and_its_lifetime_only() {
        let nonces = Nonces::new();
        let now = SystemTime::now();
        let me: IpAddr = "198.51.100.1".parse().unwrap();
        let nonce = nonces.issue(me, now);
        assert!(nonces.check(&nonce, me, now));
        assert!(nonces.check(&nonce, me, now + LIFETIME - Duration::from_secs(1)));
        assert!(!nonces.check(&nonce, me, now + LIFETIME));
        assert!(!nonces.check(&nonce, "198.51.100.2".parse().unwrap(), now));
        assert!(!Nonces::new().check(&nonce, me, now), "another run's key");
        let mut forged = nonce.clone().into_bytes();
        forged[20] = if forged[20] == b'0' { b'1' } else { b'0' };
        assert!(!nonces.check(std::str::from_utf8(&forged).unwrap(), me, now));
        assert!(!nonces.check("", me, now));
        assert!(!nonces.check("zzzzzzzz000000000000000000000000", me, now));
    }
}
