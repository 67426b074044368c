//! Replays the known-answer vectors in `tests/vectors/e2e.json` (made by
//! `tests/vectors/e2e.py` with Python's `cryptography`), which the web
//! client's `e2e.js` replays too.

use peerchat_e2e::{
    Context, Fingerprint, GuardConfig, Hello, IdentityKey, Link, Pairing, PublicKey, Refusal,
    ReplayGuard, RoomCrypto, SafetyNumber, Sealed, Secret, SignalKey, SignedMessage, Stamp,
    base64url, combine_digits, hello_signed_bytes, pin_name, safety_digits, signal_ad,
    signal_key_bytes,
};
use serde_json::Value;

const VECTORS: &str = include_str!("../../../tests/vectors/e2e.json");

fn doc() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn cases<'a>(doc: &'a Value, name: &str) -> &'a Vec<Value> {
    let list = doc[name].as_array().unwrap_or_else(|| panic!("no {name}"));
    assert!(!list.is_empty(), "{name} is empty");
    list
}

fn s<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {v}"))
}

fn n(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or_else(|| panic!("{name} in {v}"))
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0);
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A context from its text form.
fn context(text: &str) -> Context {
    if text == "code" {
        Context::Code
    } else if let Some(id) = text.strip_prefix("room:") {
        Context::room(id).unwrap()
    } else if let Some(id) = text.strip_prefix("mailbox:") {
        Context::mailbox(id).unwrap()
    } else {
        panic!("unknown context {text}")
    }
}

fn identity(doc: &Value, name: &str) -> IdentityKey {
    let v = cases(doc, "identities")
        .iter()
        .find(|i| s(i, "name") == name)
        .unwrap();
    IdentityKey::from_pkcs8(&hex(s(v, "pkcs8"))).unwrap()
}

#[test]
fn secrets() {
    for c in cases(&doc(), "secrets") {
        let got = Secret::from_fragment(s(c, "fragment"));
        match c.get("bytes") {
            Some(b) => assert_eq!(to_hex(got.unwrap().as_bytes()), b.as_str().unwrap(), "{c}"),
            None => assert_eq!(got.unwrap_err().code(), s(c, "error"), "{c}"),
        }
    }
    // The fragment form of made secrets reads back.
    let made = Secret::from_random([0xfe; 32]);
    assert_eq!(Secret::from_fragment(&made.to_fragment()), Ok(made));
}

#[test]
fn pairings_and_contexts() {
    let doc = doc();
    for c in cases(&doc, "pairings") {
        match Pairing::parse(s(c, "text")) {
            Ok(p) => {
                assert_eq!(p.id(), s(c, "id"), "{c}");
                assert_eq!(to_hex(p.secret().as_bytes()), s(c, "secret"), "{c}");
                assert_eq!(p.context().to_string(), s(c, "context"), "{c}");
                assert_eq!(Pairing::parse(&p.to_string()), Ok(p));
            }
            Err(e) => assert_eq!(e.code(), s(c, "error"), "{c}"),
        }
    }
    for c in cases(&doc, "contexts") {
        let got = match s(c, "kind") {
            "room" => Context::room(s(c, "id")),
            "mailbox" => Context::mailbox(s(c, "id")),
            "code" => Ok(Context::Code),
            other => panic!("{other}"),
        };
        match c.get("text") {
            Some(t) => assert_eq!(got.unwrap().to_string(), t.as_str().unwrap()),
            None => assert_eq!(got.unwrap_err().code(), s(c, "error"), "{c}"),
        }
    }
}

#[test]
fn signal_keys() {
    for c in cases(&doc(), "signal_keys") {
        let secret = Secret::from_bytes(&hex(s(c, "secret"))).unwrap();
        let key = signal_key_bytes(&secret, &context(s(c, "context")));
        assert_eq!(to_hex(&key), s(c, "key"), "{c}");
    }
}

#[test]
fn seals() {
    for c in cases(&doc(), "seals") {
        let secret = Secret::from_bytes(&hex(s(c, "secret"))).unwrap();
        let ctx = context(s(c, "context"));
        let (from, to) = (s(c, "from"), s(c, "to"));
        assert_eq!(signal_ad(&ctx, from, to), s(c, "ad").as_bytes(), "{c}");
        let key = SignalKey::derive(&secret, ctx);
        let iv: [u8; 12] = hex(s(c, "iv")).try_into().unwrap();
        let sealed = key.seal(iv, from, to, s(c, "plaintext").as_bytes());
        assert_eq!(sealed.to_json(), c["payload"], "{c}");
        let opened = key
            .open(from, to, &Sealed::from_json(&c["payload"]).unwrap())
            .unwrap();
        assert_eq!(opened, s(c, "plaintext").as_bytes());
        assert_eq!(key.open(to, from, &sealed), Err(Refusal::Tampered));
    }
}

fn stamp(step: &Value) -> Stamp {
    Stamp {
        epoch: s(step, "e").to_owned(),
        n: n(step, "n"),
        ts: n(step, "ts"),
    }
}

fn guard_config(v: &Value) -> GuardConfig {
    let mut config = GuardConfig::default();
    if let Some(c) = v.as_object() {
        for (name, value) in c {
            let n = value.as_u64().unwrap();
            match name.as_str() {
                "window_ms" => config.window_ms = n,
                "retired" => config.retired = n as usize,
                "max_senders" => config.max_senders = n as usize,
                other => panic!("unknown config {other}"),
            }
        }
    }
    config
}

#[test]
fn guard_scenarios() {
    for scenario in cases(&doc(), "guard_scenarios") {
        let mut guard = ReplayGuard::new(guard_config(&scenario["config"]));
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{}, step {i}: {step}", s(scenario, "name"));
            let got = guard.accept(s(step, "from"), &stamp(step), n(step, "now"));
            let got = got.map_or_else(|r| r.code(), |()| "ok");
            assert_eq!(got, s(step, "want"), "{at}");
        }
    }
}

#[test]
fn open_scenarios() {
    for scenario in cases(&doc(), "open_scenarios") {
        let secret = Secret::from_bytes(&hex(s(scenario, "secret"))).unwrap();
        let ctx = context(s(scenario, "context"));
        let mut crypto = RoomCrypto::new(&secret, ctx, s(scenario, "me"), [0; 32]);
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{}, step {i}: {step}", s(scenario, "name"));
            let got = crypto.open(s(step, "from"), &step["payload"], n(step, "now"));
            let want = &step["want"];
            match got {
                Ok(plain) => {
                    assert_eq!(Value::Object(plain.payload), want["payload"], "{at}");
                    assert_eq!(plain.stamp.epoch, s(want, "e"), "{at}");
                    assert_eq!(plain.stamp.n, n(want, "n"), "{at}");
                    assert_eq!(plain.stamp.ts, n(want, "ts"), "{at}");
                }
                Err(refusal) => {
                    assert_eq!(refusal.code(), s(want, "refusal"), "{at}");
                    if let Refusal::ClockSkew { offset_ms } = refusal {
                        assert_eq!(Some(offset_ms), want["offset_ms"].as_i64(), "{at}");
                    }
                }
            }
        }
    }
}

#[test]
fn fingerprints() {
    let doc = doc();
    for c in cases(&doc, "fingerprints") {
        let got = Fingerprint::from_sdp(s(c, "sdp"));
        match c.get("fingerprint") {
            Some(f) => assert_eq!(
                got.unwrap().as_str(),
                f.as_str().unwrap(),
                "{}",
                s(c, "name")
            ),
            None => assert_eq!(got.unwrap_err().code(), s(c, "error"), "{}", s(c, "name")),
        }
    }
    for c in cases(&doc, "fingerprint_values") {
        let got = Fingerprint::new(s(c, "hash"), s(c, "value"));
        match c.get("fingerprint") {
            Some(f) => assert_eq!(got.unwrap().as_str(), f.as_str().unwrap(), "{c}"),
            None => assert_eq!(got.unwrap_err().code(), s(c, "error"), "{c}"),
        }
    }
    for c in cases(&doc, "certificates") {
        let fp = Fingerprint::of_certificate(&hex(s(c, "der")));
        assert_eq!(fp.as_str(), s(c, "fingerprint"));
    }
}

#[test]
fn identities_keys_and_signatures() {
    let doc = doc();
    for c in cases(&doc, "identities") {
        let seed: [u8; 32] = hex(s(c, "seed")).try_into().unwrap();
        let made = IdentityKey::from_seed(seed);
        // Our PKCS#8 form is the one OpenSSL (and Python) write.
        assert_eq!(to_hex(made.pkcs8()), s(c, "pkcs8"), "{c}");
        let loaded = IdentityKey::from_pkcs8(&hex(s(c, "pkcs8"))).unwrap();
        assert_eq!(loaded.public_key(), made.public_key());
        assert_eq!(loaded.public_key().alg().name(), s(c, "alg"));
        assert_eq!(loaded.public_key().key_b64(), s(c, "key"));
    }
    for c in cases(&doc, "public_keys") {
        match PublicKey::from_wire(s(c, "alg"), s(c, "key")) {
            Ok(k) => assert_eq!(to_hex(&k.tagged()), s(c, "tagged"), "{c}"),
            Err(e) => assert_eq!(e.code(), s(c, "error"), "{c}"),
        }
    }
    for c in cases(&doc, "signatures") {
        let key = PublicKey::from_wire(s(c, "alg"), s(c, "key")).unwrap();
        let sig = base64url::decode(s(c, "sig")).unwrap();
        let valid = key.verify(&hex(s(c, "message")), &sig).is_ok();
        assert_eq!(valid, c["valid"].as_bool().unwrap(), "{c}");
        if valid && key.alg().name() == "ed25519" {
            let alice = identity(&doc, "alice");
            assert_eq!(
                alice.sign(&hex(s(c, "message"))),
                sig,
                "Ed25519 is deterministic"
            );
        }
    }
}

fn fp(v: &Value, name: &str) -> Fingerprint {
    Fingerprint::parse(s(v, name)).unwrap()
}

/// Calls `f` with the [`Link`] a vector's view (snake case) describes.
fn with_link<T>(view: &Value, f: impl FnOnce(&Link<'_>) -> T) -> T {
    let ctx = context(s(view, "context"));
    let (mine, theirs) = (fp(view, "my_fingerprint"), fp(view, "peer_fingerprint"));
    f(&Link {
        context: &ctx,
        sid: s(view, "sid"),
        me: s(view, "me"),
        my_nick: s(view, "my_nick"),
        peer: s(view, "peer"),
        peer_nick: s(view, "peer_nick"),
        my_fingerprint: &mine,
        peer_fingerprint: &theirs,
    })
}

/// Checks a hello envelope against a view: "ok" or the error's code.
fn check_hello(view: &Value, envelope: &str) -> String {
    let parsed: Value = serde_json::from_str(envelope).unwrap();
    with_link(view, |link| {
        match Hello::from_envelope(&parsed).and_then(|h| h.verify(link)) {
            Ok(()) => "ok".into(),
            Err(e) => e.code().into(),
        }
    })
}

#[test]
fn hellos() {
    let doc = doc();
    for c in cases(&doc, "hellos") {
        with_link(&c["view"], |link| {
            let name = s(c, "name");
            assert_eq!(
                link.my_hello_bytes().unwrap(),
                s(c, "bytes").as_bytes(),
                "{name}"
            );
            let built = Hello::build(&identity(&doc, s(c, "identity")), link).unwrap();
            assert_eq!(built.to_envelope(), s(c, "envelope"), "{name}");
        });
    }
    for c in cases(&doc, "hello_checks") {
        let view = &c["view"];
        if let Some(bytes) = c.get("bytes") {
            let signer_fp = fp(view, "peer_fingerprint");
            let receiver_fp = fp(view, "my_fingerprint");
            let built = hello_signed_bytes(
                &context(s(view, "context")),
                s(view, "sid"),
                s(view, "peer"),
                s(view, "peer_nick"),
                s(view, "me"),
                &signer_fp,
                &receiver_fp,
            )
            .unwrap();
            assert_eq!(built, bytes.as_str().unwrap().as_bytes());
        }
        let got = check_hello(view, s(c, "envelope"));
        assert_eq!(got, s(c, "want"), "{}", s(c, "name"));
    }
}

fn with_message<T>(fields: &Value, f: impl FnOnce(&SignedMessage<'_>) -> T) -> T {
    let ctx = context(s(fields, "context"));
    let m = SignedMessage {
        context: &ctx,
        author: s(fields, "author"),
        nick: s(fields, "nick"),
        seq: n(fields, "seq"),
        clock: n(fields, "clock"),
        ts: n(fields, "ts"),
        id: s(fields, "id"),
        kind: s(fields, "kind"),
        body: s(fields, "body"),
    };
    f(&m)
}

#[test]
fn messages() {
    let doc = doc();
    let alice = identity(&doc, "alice");
    let bob = identity(&doc, "bob");
    for c in cases(&doc, "messages") {
        let fields = &c["fields"];
        let signer = if s(fields, "nick") == "bob" {
            &bob
        } else {
            &alice
        };
        with_message(fields, |m| {
            assert_eq!(m.signed_bytes().unwrap(), s(c, "bytes").as_bytes(), "{c}");
            assert_eq!(
                base64url::encode(&m.sign(signer).unwrap()),
                s(c, "sig"),
                "{c}"
            );
        });
    }
    for c in cases(&doc, "message_checks") {
        let key = PublicKey::from_wire(s(c, "alg"), s(c, "key")).unwrap();
        let sig = base64url::decode(s(c, "sig")).unwrap();
        let got = with_message(&c["fields"], |m| m.verify(&key, &sig));
        let got = got.map_or_else(|e| e.code(), |()| "ok");
        assert_eq!(got, s(c, "want"), "{}", s(c, "name"));
    }
}

#[test]
fn safety_numbers() {
    let doc = doc();
    let ls = &doc["safety"]["libsignal"];
    let iterations = n(ls, "iterations") as u32;
    let side = |v: &Value| safety_digits(&hex(s(v, "key")), s(v, "id").as_bytes(), iterations);
    let (a, b) = (side(&ls["a"]), side(&ls["b"]));
    assert_eq!(a, s(&ls["a"], "digits"));
    assert_eq!(b, s(&ls["b"], "digits"));
    assert_eq!(combine_digits(&a, &b), s(ls, "number"));
    assert_eq!(combine_digits(&b, &a), s(ls, "number"));
    for c in cases(&doc["safety"], "pairs") {
        let key = |v: &Value| PublicKey::from_wire(s(v, "alg"), s(v, "key")).unwrap();
        let number = SafetyNumber::new(&key(&c["a"]), &key(&c["b"]));
        assert_eq!(number.digits(), s(c, "number"));
        assert_eq!(number.grouped(), s(c, "grouped"));
        assert_eq!(SafetyNumber::new(&key(&c["b"]), &key(&c["a"])), number);
    }
}

#[test]
fn pin_names() {
    for c in cases(&doc(), "pin_names") {
        assert_eq!(pin_name(s(c, "nick")), s(c, "pin"), "{c}");
    }
}
