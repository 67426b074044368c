//! Replays the shared scenarios in `tests/vectors/history.json`, which the
//! web client's `history.js` replays too.

use peerchat_e2e::Context;
use peerchat_history::{Config, EntryKind, EntryRef, History, Key, Message, SendError};
use serde_json::{Value, json};

mod common;
use common::{checked, effect, keys, n, s, send_error, strings};

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

#[test]
fn scenarios() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert!(!scenarios.is_empty());
    for scenario in scenarios {
        let name = s(scenario, "name");
        let keys = keys(scenario);
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
                kind @ ("send" | "send_file" | "send_about") => {
                    let recipients = strings(step, "recipients");
                    // Draft, sign, commit: as the web client does.
                    let draft = if kind == "send_about" {
                        let about: EntryKind =
                            serde_json::from_value(step["kind"].clone()).expect(&at);
                        let re: Option<EntryRef> =
                            serde_json::from_value(step["re"].clone()).expect(&at);
                        let (id, nick) = (s(step, "id"), s(step, "nick"));
                        h.draft_about(&id, &nick, about, &s(step, "text"), re, n(step, "ts"))
                    } else if kind == "send" {
                        h.draft(
                            &s(step, "id"),
                            &s(step, "nick"),
                            &s(step, "text"),
                            n(step, "ts"),
                        )
                    } else {
                        // An offer that breaks a rule cannot be read, so
                        // cannot be sent.
                        match serde_json::from_value(step["file"].clone()) {
                            Ok(file) => {
                                h.draft_file(&s(step, "id"), &s(step, "nick"), file, n(step, "ts"))
                            }
                            Err(_) => Err(SendError::Invalid(
                                peerchat_protocol::ProtocolError::MissingField("file"),
                            )),
                        }
                    };
                    let got = draft.and_then(|draft| {
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
                            assert_eq!(send_error(&e), s(want, "error"), "{at}");
                        }
                    }
                }
                "entry_state" => {
                    let got = h.entry_state(&s(step, "author"), n(step, "seq"));
                    assert_eq!(json!(got), *want, "{at}");
                }
                "room_name" => assert_eq!(json!(h.room_name()), *want, "{at}"),
                "receive" => {
                    let got = h.handle(
                        &s(step, "from"),
                        &s(step, "nick"),
                        &s(step, "text"),
                        n(step, "now"),
                    );
                    match got {
                        Ok(effects) => {
                            let got = checked(effects, &mut |id, r| h.verified(id, r));
                            assert_eq!(json!(got), want["effects"], "{at}");
                        }
                        Err(e) => assert_eq!(e.code().as_str(), s(want, "error"), "{at}"),
                    }
                }
                "key_confirmed" => {
                    let author = s(step, "author");
                    let effects = h.key_confirmed(&author, &keys[&author].public_key());
                    let got = checked(effects, &mut |id, r| h.verified(id, r));
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
