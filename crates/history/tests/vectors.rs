//! Replays the shared scenarios in `tests/vectors/history.json`, which the
//! web client's `history.js` replays too.

use peerchat_history::{Config, History, Key, Message, SendError};
use serde_json::{Value, json};

mod common;
use common::{effect, n, s, send_error, strings};

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
        let mut h = History::new(s(scenario, "me"), config(&scenario["config"]));
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let want = &step["want"];
            match step["do"].as_str().unwrap() {
                kind @ ("send" | "send_file") => {
                    let recipients = strings(step, "recipients");
                    let got = if kind == "send" {
                        h.send(
                            &s(step, "id"),
                            &s(step, "nick"),
                            &s(step, "text"),
                            n(step, "ts"),
                            recipients,
                        )
                    } else {
                        // An offer that breaks a rule cannot be read, so
                        // cannot be sent.
                        match serde_json::from_value(step["file"].clone()) {
                            Ok(file) => h.send_file(
                                &s(step, "id"),
                                &s(step, "nick"),
                                file,
                                n(step, "ts"),
                                recipients,
                            ),
                            Err(_) => Err(SendError::Invalid(
                                peerchat_protocol::ProtocolError::MissingField("file"),
                            )),
                        }
                    };
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
                "receive" => {
                    let got = h.handle(
                        &s(step, "from"),
                        &s(step, "nick"),
                        &s(step, "text"),
                        n(step, "now"),
                    );
                    match got {
                        Ok(effects) => {
                            let got: Vec<Value> = effects.iter().map(effect).collect();
                            assert_eq!(json!(got), want["effects"], "{at}");
                        }
                        Err(e) => assert_eq!(e.code().as_str(), s(want, "error"), "{at}"),
                    }
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
