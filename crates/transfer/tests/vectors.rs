//! Checks `tests/vectors/transfer.json`, which the web client's
//! `transfer.js` checks too: hashes, piece sizes, plain names, media types,
//! offers, transfer-channel messages, and the two machines step by step.

use std::sync::Arc;

use peerchat_protocol::ProtocolError;
use peerchat_transfer::hash::{FileHasher, Hash, piece_size_for};
use peerchat_transfer::name::{numbered, sanitize};
use peerchat_transfer::sniff::sniff;
use peerchat_transfer::wire::{Control, Data};
use peerchat_transfer::{
    FileMeta, Receiver, ReceiverAction, ReceiverConfig, ReceiverState, Saved, Sender, SenderAction,
    SenderConfig, SourceError,
};
use serde_json::{Value, json};

const VECTORS: &str = include_str!("../../../tests/vectors/transfer.json");

fn doc() -> Value {
    serde_json::from_str(VECTORS).expect("transfer.json is JSON")
}

fn content(size: u64, salt: u64) -> Vec<u8> {
    (0..size)
        .map(|k| ((k + salt) as u32).wrapping_mul(0x9E37_79B1).to_be_bytes()[0])
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    peerchat_protocol::file::hex(bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a number: {v}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}"))
}

struct File {
    data: Vec<u8>,
    meta: FileMeta,
    list: Arc<[Hash]>,
}

fn file(spec: &Value) -> File {
    let data = content(n(&spec["size"]), n(&spec["salt"]));
    let mut hasher = FileHasher::new(n(&spec["piece"]));
    hasher.update(&data);
    let d = hasher.finish();
    File {
        meta: d.offer("f1", "data.bin", "application/octet-stream"),
        list: d.pieces.into(),
        data,
    }
}

fn merged<T: serde::de::DeserializeOwned>(defaults: &Value, overrides: &Value) -> T {
    let mut merged = defaults.as_object().cloned().unwrap_or_default();
    for (k, v) in overrides.as_object().into_iter().flatten() {
        merged.insert(k.clone(), v.clone());
    }
    serde_json::from_value(Value::Object(merged)).expect("a config")
}

#[test]
fn hashes() {
    for case in doc()["hashes"].as_array().unwrap() {
        let data = content(n(&case["size"]), n(&case["salt"]));
        let mut hasher = FileHasher::new(n(&case["piece"]));
        for part in data.chunks(1000) {
            hasher.update(part);
        }
        let d = hasher.finish();
        assert_eq!(hex(&d.sha256), s(&case["sha256"]), "{case}");
        assert_eq!(hex(&d.root), s(&case["root"]), "{case}");
        let pieces: Vec<String> = d.pieces.iter().map(|p| hex(p)).collect();
        assert_eq!(json!(pieces), case["pieces"], "{case}");
    }
}

#[test]
fn piece_sizes() {
    for case in doc()["piece_sizes"].as_array().unwrap() {
        assert_eq!(
            json!(piece_size_for(n(&case["size"]))),
            case["piece"],
            "{case}"
        );
    }
}

#[test]
fn names() {
    let doc = doc();
    for case in doc["names"].as_array().unwrap() {
        assert_eq!(sanitize(s(&case["in"])), s(&case["out"]), "{case}");
    }
    for case in doc["numbered"].as_array().unwrap() {
        assert_eq!(
            numbered(s(&case["name"]), n(&case["n"])),
            s(&case["out"]),
            "{case}"
        );
    }
}

#[test]
fn media_types() {
    for case in doc()["sniff"].as_array().unwrap() {
        assert_eq!(
            json!(sniff(&unhex(s(&case["hex"])))),
            case["type"],
            "{case}"
        );
    }
}

#[test]
fn offers() {
    for case in doc()["offers"].as_array().unwrap() {
        match FileMeta::from_value(&case["file"]) {
            Ok(meta) => assert_eq!(meta.body(), s(&case["body"]), "{case}"),
            Err(
                ProtocolError::BadField { field, .. }
                | ProtocolError::MissingField(field)
                | ProtocolError::TooLong { field, .. },
            ) => assert_eq!(field, s(&case["error"]), "{case}"),
            Err(other) => panic!("{case}: {other}"),
        }
    }
}

#[test]
fn wire() {
    let doc = doc();
    for case in doc["control"].as_array().unwrap() {
        let got = Control::parse(s(&case["text"]));
        match got {
            Ok(control) => {
                let got = match &control {
                    Control::Get {
                        fid,
                        sha256,
                        list,
                        chunk: None,
                    } => json!({"get": {"fid": fid, "sha256": hex(sha256), "list": list}}),
                    Control::Get {
                        fid,
                        sha256,
                        list,
                        chunk: Some(chunk),
                    } => {
                        json!({"get": {"fid": fid, "sha256": hex(sha256), "list": list, "chunk": chunk}})
                    }
                    Control::Have {
                        pieces,
                        chunk: None,
                    } => json!({"have": pieces}),
                    Control::Have {
                        pieces,
                        chunk: Some(chunk),
                    } => json!({"have": pieces, "chunk": chunk}),
                    Control::Want { pieces } => json!({"want": pieces}),
                    Control::Cancel { reason } => json!({"cancel": reason.as_str()}),
                    Control::Unknown => json!({"unknown": null}),
                };
                assert_eq!(got, case["ok"], "{case}");
                if control != Control::Unknown
                    && case["text"].as_str().unwrap().contains("\"v\":2,")
                {
                    let again = Control::parse(&control.to_json()).unwrap();
                    assert_eq!(again, control, "{case}");
                }
            }
            Err(_) => assert_eq!(case["error"], json!(true), "{case}"),
        }
    }
    for case in doc["data"].as_array().unwrap() {
        let bytes = unhex(s(&case["hex"]));
        match Data::parse(&bytes) {
            Ok(data) => {
                let got = match data {
                    Data::Piece {
                        index,
                        offset,
                        bytes,
                    } => json!({"piece": {"index": index, "offset": offset, "hex": hex(bytes)}}),
                    Data::List { first, hashes } => {
                        json!({"list": {"first": first, "hex": hex(hashes)}})
                    }
                };
                assert_eq!(got, case["ok"], "{case}");
                assert_eq!(data.encode(), bytes, "{case}");
            }
            Err(_) => assert_eq!(case["error"], json!(true), "{case}"),
        }
    }
}

/// A step's input: its one key and value, or a timeout (`null`).
fn input(step: &Value) -> (&str, &Value) {
    step["in"]
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.as_str(), v))
        .unwrap_or(("timeout", &Value::Null))
}

fn receiver_action(a: &ReceiverAction, disk: &mut [u8]) -> Value {
    match a {
        ReceiverAction::Open { peer } => json!({"open": peer}),
        ReceiverAction::Send { peer, text } => json!({"send": {"to": peer, "text": text}}),
        ReceiverAction::Close { peer } => json!({"close": peer}),
        ReceiverAction::Write { offset, data } => {
            let at = *offset as usize;
            disk[at..at + data.len()].copy_from_slice(data);
            json!({"write": {"offset": offset, "len": data.len()}})
        }
        ReceiverAction::Read { offset, len } => json!({"read": {"offset": offset, "len": len}}),
        ReceiverAction::Verified { piece } => json!({"verified": piece}),
        ReceiverAction::Corrupt { piece, peer } => {
            json!({"corrupt": {"piece": piece, "from": peer}})
        }
        ReceiverAction::SourceFailed { peer, error } => {
            let error = match error {
                SourceError::Refused(reason) => format!("refused:{reason}"),
                other => json!(other).as_str().unwrap().to_owned(),
            };
            json!({"source_failed": {"peer": peer, "error": error}})
        }
        ReceiverAction::State(state) => json!({"state": state_json(*state)}),
    }
}

fn state_json(state: ReceiverState) -> Value {
    json!(state)
}

#[test]
fn receiver_scenarios() {
    let doc = doc();
    let scenarios = doc["receiver_scenarios"].as_array().unwrap();
    assert!(!scenarios.is_empty());
    for scenario in scenarios {
        let name = s(&scenario["name"]);
        let f = file(&scenario["file"]);
        let config: ReceiverConfig = merged(&doc["receiver_defaults"], &scenario["config"]);
        let author = s(&scenario["author"]);
        let saved: Saved = serde_json::from_value(scenario["saved"].clone()).unwrap_or_default();
        let mut disk = match scenario.get("disk") {
            Some(Value::Array(ranges)) => {
                // Pieces kept from before a reload.
                let mut disk = vec![0; f.data.len()];
                for r in ranges {
                    let (a, b) = (n(&r[0]) as usize, n(&r[1]) as usize);
                    disk[a..b].copy_from_slice(&f.data[a..b]);
                }
                disk
            }
            _ => vec![0; f.data.len()],
        };
        let mut r = Receiver::restore(f.meta.clone(), author, saved, config);
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let now = n(&step["at"]);
            let (kind, arg) = input(step);
            let actions = match kind {
                "start" => r.start(now),
                "accept" => r.accept(now),
                "cancel" => r.cancel(now),
                "peer_up" => r.peer_up(s(arg), now),
                "peer_down" => r.peer_down(s(arg), now),
                "opened" => r.opened(s(arg), now),
                "closed" => r.closed(s(arg), now),
                "text" => r.text(s(&arg["from"]), s(&arg["text"]), now),
                "list" => {
                    let (first, count) = (n(&arg["first"]) as usize, n(&arg["count"]) as usize);
                    let mut hashes: Vec<u8> = f.list[first..first + count].concat();
                    if arg["corrupt"] == json!(true) {
                        hashes[0] ^= 1;
                    }
                    let message = Data::List {
                        first: first as u32,
                        hashes: &hashes,
                    }
                    .encode();
                    r.binary(s(&arg["from"]), &message.into(), now)
                }
                "piece" => {
                    let (index, offset, len) =
                        (n(&arg["index"]), n(&arg["offset"]), n(&arg["len"]));
                    let start = (index * f.meta.piece + offset) as usize;
                    let mut bytes = f.data[start..start + len as usize].to_vec();
                    if arg["corrupt"] == json!(true) {
                        bytes[0] ^= 1;
                    }
                    let message = Data::Piece {
                        index: index as u32,
                        offset: offset as u32,
                        bytes: &bytes,
                    }
                    .encode();
                    r.binary(s(&arg["from"]), &message.into(), now)
                }
                "raw" => r.binary(s(&arg["from"]), &unhex(s(&arg["hex"])).into(), now),
                "written" => r.written(n(arg), now),
                "read" => {
                    let (offset, len) = (n(&arg["offset"]) as usize, n(&arg["len"]) as usize);
                    let end = (offset + len).min(disk.len());
                    let bytes = disk[offset..end].to_vec();
                    r.read(offset as u64, &bytes, now)
                }
                "corrupt_disk" => {
                    disk[n(arg) as usize] ^= 1;
                    Vec::new()
                }
                "timeout" => r.handle_timeout(now),
                other => panic!("{at}: unknown input {other}"),
            };
            let got: Vec<Value> = actions
                .iter()
                .map(|a| receiver_action(a, &mut disk))
                .collect();
            assert_eq!(json!(got), step["want"], "{at}");
            if let Some(deadline) = step.get("deadline") {
                assert_eq!(json!(r.next_deadline()), *deadline, "{at}: deadline");
            }
            if let Some(progress) = step.get("progress") {
                assert_eq!(json!(r.progress().bytes), *progress, "{at}: progress");
            }
            if let Some(saved) = step.get("saved") {
                assert_eq!(json!(r.saved()), *saved, "{at}: saved");
            }
            if step.get("disk") == Some(&json!(true)) {
                assert!(disk == f.data, "{at}: the file on disk");
            }
        }
    }
}

fn sender_action(a: &SenderAction, f: &File) -> Value {
    match a {
        SenderAction::SendText(text) => json!({"send_text": text}),
        SenderAction::SendBinary(bytes) => match Data::parse(bytes).expect("a data message") {
            Data::Piece {
                index,
                offset,
                bytes,
            } => {
                let start = (u64::from(index) * f.meta.piece + u64::from(offset)) as usize;
                assert_eq!(
                    bytes,
                    &f.data[start..start + bytes.len()],
                    "the file's bytes"
                );
                json!({"send_piece": {"index": index, "offset": offset, "len": bytes.len()}})
            }
            Data::List { first, hashes } => {
                let count = hashes.len() / 32;
                let want: Vec<u8> = f.list[first as usize..first as usize + count].concat();
                assert_eq!(hashes, &want[..], "the list's hashes");
                json!({"send_list": {"first": first, "count": count}})
            }
        },
        SenderAction::Read { offset, len } => json!({"read": {"offset": offset, "len": len}}),
        SenderAction::Close => json!({"close": {}}),
        SenderAction::State(state) => json!({"state": sender_state(*state)}),
    }
}

fn sender_state(state: peerchat_transfer::SenderState) -> Value {
    use peerchat_transfer::{By, SenderError, SenderState};
    let by = |b: By| if b == By::Us { "us" } else { "peer" };
    match state {
        SenderState::Serving => json!("serving"),
        SenderState::Done => json!("done"),
        SenderState::Interrupted => json!("interrupted"),
        SenderState::Cancelled(b) => json!({"cancelled": by(b)}),
        SenderState::Failed(e) => json!({"failed": match e {
            SenderError::Changed => "changed",
            SenderError::Protocol => "protocol",
            SenderError::Idle => "idle",
        }}),
    }
}

#[test]
fn sender_scenarios() {
    let doc = doc();
    // Each scenario twice: the machine hashing what it reads, and its caller
    // passing each read's SHA-256 (as the engine does, off the sending task).
    for (scenario, caller_hashes) in doc["sender_scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| [(s, false), (s, true)])
    {
        let name = format!(
            "{}{}",
            s(&scenario["name"]),
            if caller_hashes {
                " (caller hashes reads)"
            } else {
                ""
            }
        );
        let f = file(&scenario["file"]);
        let config: SenderConfig = merged(&doc["sender_defaults"], &scenario["config"]);
        let mut sender: Option<Sender> = None;
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let now = n(&step["at"]);
            let (kind, arg) = input(step);
            let actions = if kind == "create" {
                let (created, actions) = Sender::new(
                    f.meta.clone(),
                    f.list.clone(),
                    arg["list"] == json!(true),
                    arg.get("chunk").map(n),
                    config,
                    now,
                );
                sender = Some(created);
                actions
            } else {
                let sender = sender.as_mut().expect("created first");
                match kind {
                    "text" => sender.text(s(arg), now),
                    "read" => {
                        let (offset, len) = (n(&arg["offset"]) as usize, n(&arg["len"]) as usize);
                        let mut bytes = f.data[offset..offset + len].to_vec();
                        if arg["corrupt"] == json!(true) {
                            bytes[0] ^= 1;
                        }
                        if let Some(short) = arg.get("short") {
                            bytes.truncate(n(short) as usize);
                        }
                        let digest = caller_hashes.then(|| peerchat_transfer::hash::sha256(&bytes));
                        sender.read(offset as u64, bytes, digest, now)
                    }
                    "buffered" => sender.buffered(n(arg), now),
                    "cancel" => sender.cancel(now),
                    "closed" => sender.closed(now),
                    "timeout" => sender.handle_timeout(now),
                    other => panic!("{at}: unknown input {other}"),
                }
            };
            let got: Vec<Value> = actions.iter().map(|a| sender_action(a, &f)).collect();
            assert_eq!(json!(got), step["want"], "{at}");
            let sender = sender.as_ref().expect("created");
            if let Some(deadline) = step.get("deadline") {
                assert_eq!(json!(sender.next_deadline()), *deadline, "{at}: deadline");
            }
            if let Some(sent) = step.get("delivered") {
                assert_eq!(json!(sender.delivered()), *sent, "{at}: delivered");
            }
        }
    }
}
