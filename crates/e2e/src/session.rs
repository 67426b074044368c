//! [`RoomCrypto`]: the signal key and replay guard of one context, as one
//! client holds them.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::{Map, Value};

use crate::guard::{GuardConfig, ReplayGuard};
use crate::refusal::Refusal;
use crate::seal::{IV_BYTES, Plain, SealError, SignalKey, Stamp};
use crate::secret::{Context, Secret};
use crate::{MAX_SAFE_INTEGER, b64};

/// Everything one client needs to seal and open the signaling payloads of
/// one context (a room, a mailbox pairing): the signal key, its own epoch
/// and counter, and the replay guard over its senders.
///
/// It is sans-IO: randomness comes from a generator seeded at creation
/// (seed it from the operating system's generator) and the time is passed
/// to each call. Make one per join of a room: a new one has a new epoch,
/// which is what tells the others that the earlier session's signals are
/// over.
#[derive(Debug)]
pub struct RoomCrypto {
    key: SignalKey,
    me: String,
    epoch: String,
    counter: u64,
    rng: StdRng,
    guard: ReplayGuard,
}

impl RoomCrypto {
    /// A room crypto for `me` (its peer id) in `context`, with the default
    /// replay guard. `seed` must be fresh random bytes.
    pub fn new(secret: &Secret, context: Context, me: impl Into<String>, seed: [u8; 32]) -> Self {
        Self::with_config(secret, context, me, seed, GuardConfig::default())
    }

    /// As [`new`](Self::new), with the replay guard's bounds given.
    pub fn with_config(
        secret: &Secret,
        context: Context,
        me: impl Into<String>,
        seed: [u8; 32],
        config: GuardConfig,
    ) -> Self {
        let mut rng = StdRng::from_seed(seed);
        let mut epoch = [0u8; 16];
        rng.fill_bytes(&mut epoch);
        RoomCrypto {
            key: SignalKey::derive(secret, context),
            me: me.into(),
            epoch: b64::encode(&epoch),
            counter: 0,
            rng,
            guard: ReplayGuard::new(config),
        }
    }

    /// The context.
    pub fn context(&self) -> &Context {
        self.key.context()
    }

    /// This client's peer id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Changes this client's peer id (a join without a member key that got
    /// a new id). The epoch and counter go on.
    pub fn set_me(&mut self, me: impl Into<String>) {
        self.me = me.into();
    }

    /// This client's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The replay guard.
    pub fn guard(&self) -> &ReplayGuard {
        &self.guard
    }

    /// Seals a payload for `to` at `now` (ms since the Unix epoch): the
    /// `payload` of the `signal` to send, `{"iv":…,"ct":…}`.
    pub fn seal(
        &mut self,
        to: &str,
        payload: &Map<String, Value>,
        now: u64,
    ) -> Result<Value, SealError> {
        if self.counter >= MAX_SAFE_INTEGER {
            return Err(SealError::OutOfRange("n"));
        }
        let stamp = Stamp {
            epoch: self.epoch.clone(),
            n: self.counter + 1,
            ts: now,
        };
        let mut iv = [0u8; IV_BYTES];
        self.rng.fill_bytes(&mut iv);
        let sealed = self.key.seal_payload(iv, &self.me, to, payload, &stamp)?;
        self.counter += 1;
        Ok(sealed.to_json())
    }

    /// Opens the `payload` of a `signal` the server delivered `from` a
    /// peer at `now`: the payload the peer sealed, or why it is refused.
    pub fn open(&mut self, from: &str, payload: &Value, now: u64) -> Result<Plain, Refusal> {
        let plain = self.key.open_payload(from, &self.me, payload)?;
        self.guard.accept(from, &plain.stamp, now)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_763_769_600_000;

    fn pair() -> (RoomCrypto, RoomCrypto) {
        let secret = Secret::from_random([5; 32]);
        let ctx = Context::room("abcdefghijklmnopqrstuv").unwrap();
        (
            RoomCrypto::new(&secret, ctx.clone(), "aaaa", [1; 32]),
            RoomCrypto::new(&secret, ctx, "bbbb", [2; 32]),
        )
    }

    fn payload(sid: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sid".into(), sid.into());
        m.insert(
            "candidate".into(),
            serde_json::json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}),
        );
        m
    }

    #[test]
    fn seal_open_and_refusals() {
        let (mut a, mut b) = pair();
        let s1 = a.seal("bbbb", &payload("x"), NOW).unwrap();
        let s2 = a.seal("bbbb", &payload("y"), NOW).unwrap();
        assert_ne!(s1, s2);
        let text = s1.to_string();
        assert!(!text.contains("candidate") && !text.contains("sid"));
        let p1 = b.open("aaaa", &s1, NOW).unwrap();
        assert_eq!(p1.payload, payload("x"));
        assert_eq!(
            (p1.stamp.n, p1.stamp.ts, p1.stamp.epoch.as_str()),
            (1, NOW, a.epoch())
        );
        assert_eq!(b.open("aaaa", &s1, NOW), Err(Refusal::Replayed));
        assert_eq!(b.open("aaaa", &s2, NOW).unwrap().stamp.n, 2);
        // Reflected back to its sender, or claimed by another sender.
        assert_eq!(a.open("bbbb", &s1, NOW), Err(Refusal::Tampered));
        assert_eq!(b.open("cccc", &s1, NOW), Err(Refusal::Tampered));
        // A version-1 payload.
        assert_eq!(
            b.open("aaaa", &Value::Object(payload("z")), NOW),
            Err(Refusal::Tampered)
        );
        // A rejoined sender (new epoch) is accepted; its old session is not.
        let secret = Secret::from_random([5; 32]);
        let mut a2 = RoomCrypto::new(&secret, a.context().clone(), "aaaa", [3; 32]);
        let s3 = a2.seal("bbbb", &payload("w"), NOW + 1).unwrap();
        assert_eq!(b.open("aaaa", &s3, NOW + 1).unwrap().stamp.n, 1);
        let s4 = a.seal("bbbb", &payload("v"), NOW + 2).unwrap();
        assert_eq!(b.open("aaaa", &s4, NOW + 2), Err(Refusal::Stale));
    }

    #[test]
    fn another_room_or_secret_cannot_open() {
        let (mut a, _) = pair();
        let sealed = a.seal("bbbb", &payload("x"), NOW).unwrap();
        let other_room = Context::room("zbcdefghijklmnopqrstuv").unwrap();
        let mut b = RoomCrypto::new(&Secret::from_random([5; 32]), other_room, "bbbb", [2; 32]);
        assert_eq!(b.open("aaaa", &sealed, NOW), Err(Refusal::Tampered));
        let room = Context::room("abcdefghijklmnopqrstuv").unwrap();
        let mut b = RoomCrypto::new(&Secret::from_random([6; 32]), room, "bbbb", [2; 32]);
        assert_eq!(b.open("aaaa", &sealed, NOW), Err(Refusal::Tampered));
    }

    fn flip(payload: &Value, field: &str, bit: usize) -> Value {
        let mut bytes = b64::decode(payload[field].as_str().unwrap()).unwrap();
        let i = bit % (bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        let mut out = payload.clone();
        out[field] = Value::String(b64::encode(&bytes));
        out
    }

    proptest! {
        /// Any payload survives the round trip; any single bit flipped in
        /// the IV or the ciphertext, and any change of sender or recipient,
        /// is refused as tampered.
        #[test]
        fn round_trip_and_any_change_refused(sid in "\\PC{0,40}", bit in 0usize..4096, iv in any::<bool>(), who in "[a-z]{4}") {
            let (mut a, mut b) = pair();
            let sealed = a.seal("bbbb", &payload(&sid), NOW).unwrap();
            let field = if iv { "iv" } else { "ct" };
            prop_assert_eq!(b.open("aaaa", &flip(&sealed, field, bit), NOW), Err(Refusal::Tampered));
            if who != "aaaa" {
                prop_assert_eq!(b.open(&who, &sealed, NOW), Err(Refusal::Tampered));
                b.set_me(who.clone());
                prop_assert_eq!(b.open("aaaa", &sealed, NOW), Err(Refusal::Tampered));
                b.set_me("bbbb");
            }
            prop_assert_eq!(b.open("aaaa", &sealed, NOW).unwrap().payload, payload(&sid));
        }
    }
}
