//! Safety numbers: Signal's numeric fingerprint (libsignal's
//! `NumericFingerprintGenerator`, version 0).
//!
//! For each party, `H = 0x00 0x00 || KEY || ID` (not hashed), then
//! `iterations` times `H = SHA-512(H || KEY)`. The first 30 bytes of `H`,
//! as six 5-byte big-endian numbers, each modulo 100,000 in 5 digits, are
//! the party's 30 digits; the pair's number is the two 30-digit strings in
//! ascending order, concatenated (60 digits). peerchat uses KEY = the
//! tagged public key ([`PublicKey::tagged`]) and an empty ID, with 5,200
//! iterations.

use ring::digest::{Context as Digest, SHA512};

use crate::identity::PublicKey;

/// SHA-512 iterations, as in Signal.
pub const SAFETY_ITERATIONS: u32 = 5200;

/// One party's 30 digits for `key` and `id` (libsignal's displayable
/// fingerprint of one side).
pub fn safety_digits(key: &[u8], id: &[u8], iterations: u32) -> String {
    let mut hash = [&[0u8, 0][..], key, id].concat();
    for _ in 0..iterations {
        let mut d = Digest::new(&SHA512);
        d.update(&hash);
        d.update(key);
        hash = d.finish().as_ref().to_vec();
    }
    hash[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

/// The two parties' digits in ascending order, concatenated.
pub fn combine_digits(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}{b}")
    } else {
        format!("{b}{a}")
    }
}

/// The safety number of a pair of identity keys: the same 60 digits on both
/// sides, whichever is first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    /// The safety number of two keys.
    pub fn new(a: &PublicKey, b: &PublicKey) -> Self {
        let digits = |k: &PublicKey| safety_digits(&k.tagged(), b"", SAFETY_ITERATIONS);
        SafetyNumber(combine_digits(&digits(a), &digits(b)))
    }

    /// The 60 digits.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The digits as people read them: 12 groups of 5, separated by spaces.
    pub fn grouped(&self) -> String {
        let groups: Vec<&str> = (0..self.0.len())
            .step_by(5)
            .map(|i| &self.0[i..(i + 5).min(self.0.len())])
            .collect();
        groups.join(" ")
    }
}

/// The safety number of two identity keys.
pub fn safety_number(a: &PublicKey, b: &PublicKey) -> SafetyNumber {
    SafetyNumber::new(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKey;

    #[test]
    fn symmetric_and_grouped() {
        let a = IdentityKey::from_seed([1; 32]).public_key();
        let b = IdentityKey::from_seed([2; 32]).public_key();
        let n = safety_number(&a, &b);
        assert_eq!(n, safety_number(&b, &a));
        assert_eq!(n.digits().len(), 60);
        assert!(n.digits().bytes().all(|c| c.is_ascii_digit()));
        let g = n.grouped();
        assert_eq!(g.split(' ').count(), 12);
        assert_eq!(g.replace(' ', ""), n.digits());
    }
}
