//! The shared JSON test vectors (`tests/vectors/protocol.json`), which the
//! web client's tests read too, so the two implementations cannot drift.

use peerchat_protocol::peer::PeerMessage;
use peerchat_protocol::signaling::{ClientMessage, ServerMessage};
use peerchat_protocol::{peer_id_from_key, validate_key, validate_nick, validate_room_id};
use serde_json::{Value, json};

const VECTORS: &str = include_str!("../../../tests/vectors/protocol.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn cases<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    let list = v[name].as_array().unwrap();
    assert!(!list.is_empty(), "no {name} vectors");
    list
}

/// Runs `parse` on every case of `name`: an `ok` case must parse to that
/// JSON, an `error` case must fail with that code.
fn check(name: &str, parse: impl Fn(&str) -> Result<Value, String>) {
    let v = vectors();
    for case in cases(&v, name) {
        let text = case["text"].as_str().unwrap();
        match (parse(text), case.get("ok"), case.get("error")) {
            (Ok(got), Some(want), None) => assert_eq!(&got, want, "{name}: {text}"),
            (Err(code), None, Some(want)) => assert_eq!(code, *want, "{name}: {text}"),
            (got, _, _) => panic!("{name}: {text}: got {got:?}, want {case}"),
        }
    }
}

#[test]
fn room_ids() {
    let v = vectors();
    for case in cases(&v, "room_ids") {
        let input = case["input"].as_str().unwrap();
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(validate_room_id(input).is_ok(), valid, "{input:?}");
    }
}

#[test]
fn nicks() {
    let v = vectors();
    for case in cases(&v, "nicks") {
        let input = case["input"].as_str().unwrap();
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(validate_nick(input).is_ok(), valid, "{input:?}");
    }
}

#[test]
fn keys() {
    let v = vectors();
    for case in cases(&v, "keys") {
        let input = case["input"].as_str().unwrap();
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(validate_key(input).is_ok(), valid, "{input:?}");
    }
}

#[test]
fn peer_ids_from_keys() {
    let v = vectors();
    for case in cases(&v, "peer_ids") {
        let room = case["room"].as_str().unwrap();
        let key = case["key"].as_str().unwrap();
        validate_room_id(room).unwrap();
        validate_key(key).unwrap();
        assert_eq!(peer_id_from_key(room, key), case["id"], "{case}");
    }
}

#[test]
fn client_messages() {
    check("client_messages", |text| {
        ClientMessage::parse(text)
            .map(|m| serde_json::from_str(&m.to_json()).unwrap())
            .map_err(|e| e.code().to_string())
    });
}

#[test]
fn server_messages() {
    check("server_messages", |text| {
        ServerMessage::parse(text)
            .map(|m| serde_json::from_str(&m.to_json()).unwrap())
            .map_err(|e| e.code().to_string())
    });
}

#[test]
fn peer_messages() {
    check("peer_messages", |text| {
        PeerMessage::parse(text)
            .map(|m| match m {
                PeerMessage::Chat(c) => {
                    let mut out = json!({"kind":"chat","id":c.id,"seq":c.seq,
                        "clock":c.clock,"ts":c.ts,"text":c.text});
                    if let Some(file) = c.file {
                        out["file"] = json!(file);
                    }
                    out
                }
                PeerMessage::Ack { upto } => json!({"kind":"ack","upto":upto}),
                PeerMessage::Sync(s) => json!({"kind":"sync","have":s.have}),
                PeerMessage::History(messages) => json!({"kind":"history","messages":messages}),
                PeerMessage::Typing => json!({"kind":"typing"}),
                PeerMessage::Private(body) => {
                    json!({"kind":"private","body":serde_json::from_str::<Value>(&body).unwrap()})
                }
                PeerMessage::Unknown { kind, seq: None } => json!({"kind":"unknown","type":kind}),
                PeerMessage::Unknown {
                    kind,
                    seq: Some(seq),
                } => json!({"kind":"unknown","type":kind,"seq":seq}),
            })
            .map_err(|e| e.code().to_string())
    });
}

#[test]
fn nick_keys() {
    let v = vectors();
    for case in cases(&v, "nick_keys") {
        let (a, b) = (case["a"].as_str().unwrap(), case["b"].as_str().unwrap());
        assert!(
            validate_nick(a).is_ok() && validate_nick(b).is_ok(),
            "{case}"
        );
        let same = case["same"].as_bool().unwrap();
        assert_eq!(
            peerchat_protocol::validate::nick_key(a) == peerchat_protocol::validate::nick_key(b),
            same,
            "{case}"
        );
    }
}
