//! Replays the shared scenarios in `tests/vectors/history.json`, which the
//! web client's `history.js` replays too.

use std::collections::HashMap;

use peerchat_e2e::{Context, IdentityKey};
use peerchat_history::{Config, Effect, History, Key, Message, SendError};
use serde_json::{Value, json};

const VECTORS: &str = include_str!("../../../tests/vectors/history.json");

fn config(v: &Value) -> Config {
    let mut config = Config::default();
    if let Some(c) = v.as_object() {
        for (name, value) in c {
            let n = value.as_u64().unwrap();
            match name.as_str() {
                "capacity" => config.capacity = n as usize,
                "batch_bytes" => config.batch_bytes = n as usize,
                "sync_interval_ms" => config.sync_interval_ms = n,
                "typing_ttl_ms" => config.typing_ttl_ms = n,
                "typing_interval_ms" => config.typing_interval_ms = n,
                other => panic!("unknown config {other}"),
            }
        }
    }
    config
}

fn effect(e: &Effect) -> Value {
    match e {
        Effect::Added(m) => json!({"added": [m.author, m.seq]}),
        Effect::Send { to, text } => json!({"send": {"to": to, "text": text}}),
        Effect::Acked { by, upto } => json!({"acked": {"by": by, "upto": upto}}),
        Effect::Typing { author } => json!({"typing": author}),
        Effect::Refused { author, seq } => json!({"refused": [author, seq]}),
        Effect::Forged { author, seq, by } => {
            json!({"forged": {"author": author, "seq": seq, "by": by}})
        }
        Effect::Confirmed { author, seq } => json!({"confirmed": [author, seq]}),
        Effect::Removed { author, seq, by } => {
            json!({"removed": {"author": author, "seq": seq, "by": by}})
        }
        Effect::Verify(_) => unreachable!("checked by the runner"),
    }
}

/// The log's effects, with every check it asks for done at once and its
/// answer in place of the request (as the native engine does).
fn checked(h: &mut History, effects: Vec<Effect>) -> Vec<Value> {
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Verify(check) => {
                let results: Vec<bool> = check.items.iter().map(|i| i.verify()).collect();
                let answer = h.verified(check.id, &results);
                out.extend(checked(h, answer));
            }
            other => out.push(effect(&other)),
        }
    }
    out
}

fn s(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

fn n(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or_else(|| panic!("{name} in {v}"))
}

#[test]
fn scenarios() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert!(!scenarios.is_empty());
    for scenario in scenarios {
        let name = s(scenario, "name");
        let keys: HashMap<String, IdentityKey> = scenario["keys"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, seed)| {
                let bytes: Vec<u8> = (0..64)
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&seed.as_str().unwrap()[i..i + 2], 16).unwrap())
                    .collect();
                (
                    id.clone(),
                    IdentityKey::from_seed(bytes.try_into().unwrap()),
                )
            })
            .collect();
        let me = s(scenario, "me");
        let context = Context::parse(&s(scenario, "context")).unwrap();
        let identity = &keys[&me];
        let mut h = History::new(me.clone(), config(&scenario["config"]))
            .with_identity(context, &identity.public_key());
        for author in scenario["confirmed"].as_array().unwrap() {
            let author = author.as_str().unwrap();
            assert!(
                h.key_confirmed(author, &keys[author].public_key())
                    .is_empty()
            );
        }
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let want = &step["want"];
            match step["do"].as_str().unwrap() {
                "send" => {
                    let recipients = step["recipients"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect();
                    // Draft, sign, commit: as the web client does.
                    let got = h
                        .draft(
                            &s(step, "id"),
                            &s(step, "nick"),
                            &s(step, "text"),
                            n(step, "ts"),
                        )
                        .and_then(|draft| {
                            let sig = peerchat_e2e::base64url::encode(&identity.sign(&draft.bytes));
                            h.commit(draft, &sig, recipients)
                        });
                    match got {
                        Ok((message, envelope)) => {
                            let want_message: Message =
                                serde_json::from_value(want["message"].clone()).expect(&at);
                            assert_eq!(message, want_message, "{at}");
                            assert_eq!(envelope, s(want, "envelope"), "{at}");
                        }
                        Err(e) => {
                            let code = match e {
                                SendError::Empty => "empty",
                                SendError::TooLarge { .. } => "too_large",
                                SendError::Invalid(_) => "invalid",
                                SendError::Stopped | SendError::Unsigned | SendError::Stale => {
                                    unreachable!("{at}")
                                }
                            };
                            assert_eq!(code, s(want, "error"), "{at}");
                        }
                    }
                }
                "receive" => {
                    let got = h.handle(
                        &s(step, "from"),
                        &s(step, "nick"),
                        &s(step, "text"),
                        n(step, "now"),
                    );
                    match got {
                        Ok(effects) => {
                            let got = checked(&mut h, effects);
                            assert_eq!(json!(got), want["effects"], "{at}");
                        }
                        Err(e) => assert_eq!(e.code().as_str(), s(want, "error"), "{at}"),
                    }
                }
                "key_confirmed" => {
                    let author = s(step, "author");
                    let effects = h.key_confirmed(&author, &keys[&author].public_key());
                    let got = checked(&mut h, effects);
                    assert_eq!(json!(got), want["effects"], "{at}");
                }
                "link_opened" => {
                    let got: Vec<Value> =
                        h.link_opened(&s(step, "peer")).iter().map(effect).collect();
                    assert_eq!(json!(got), want["effects"], "{at}");
                }
                "typed" => assert_eq!(json!(h.typed(n(step, "now"))), *want, "{at}"),
                "typing" => assert_eq!(json!(h.typing(n(step, "now"))), *want, "{at}"),
                "order" => {
                    let got: Vec<Value> = h.messages().map(|m| json!([m.author, m.seq])).collect();
                    assert_eq!(json!(got), *want, "{at}");
                }
                "position" => {
                    let author = s(step, "author");
                    let seq = n(step, "seq");
                    let clock = h.get(&author, seq).expect(&at).clock;
                    let got = h.position(&Key { clock, author, seq });
                    assert_eq!(json!(got), *want, "{at}");
                }
                "get" => {
                    let got = h.get(&s(step, "author"), n(step, "seq"));
                    assert_eq!(json!(got), *want, "{at}");
                }
                "clear" => h.clear(),
                "save" => assert_eq!(json!(h.save()), *want, "{at}"),
                "restore" => {
                    let saved = serde_json::from_value(step["saved"].clone()).expect(&at);
                    let got: Vec<Value> = h
                        .restore(saved)
                        .iter()
                        .map(|m| json!([m.author, m.seq]))
                        .collect();
                    assert_eq!(json!(got), *want, "{at}");
                }
                "delivery" => assert_eq!(json!(h.delivery(n(step, "seq"))), *want, "{at}"),
                "state" => {
                    assert_eq!(
                        json!({"clock": h.clock(), "last_seq": h.last_seq()}),
                        *want,
                        "{at}"
                    );
                }
                other => panic!("unknown step {other}"),
            }
        }
    }
}
