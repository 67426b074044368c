//! Runs every fuzz target on its corpus, then on generated inputs: JSON
//! built from the protocol's own field names and values (which reaches
//! past the parsers' first checks far more often than random bytes), and
//! corpus entries mutated byte by byte. `PEERCHAT_FUZZ_CASES` sets how many
//! of each per target (default 600), to fuzz longer by hand.

use std::path::PathBuf;

use peerchat_fuzz::TARGETS;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn cases() -> u32 {
    std::env::var("PEERCHAT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}

/// Words of the protocol: field names, types, codes and the shapes of ids.
const WORDS: &[&str] = &[
    "type",
    "v",
    "room",
    "nick",
    "key",
    "to",
    "from",
    "payload",
    "join",
    "leave",
    "signal",
    "joined",
    "peer_joined",
    "peer_left",
    "error",
    "ice_servers",
    "code",
    "message",
    "you",
    "members",
    "id",
    "peer",
    "resumed",
    "urls",
    "username",
    "credential",
    "chat",
    "ack",
    "sync",
    "history",
    "typing",
    "seq",
    "clock",
    "ts",
    "text",
    "upto",
    "have",
    "messages",
    "author",
    "sid",
    "description",
    "candidate",
    "sdp",
    "offer",
    "answer",
    "get",
    "set",
    "timeoutms",
    "abcdefghijklmnopqrstuv",
    "0123456789abcdef",
    "fedcba9876543210",
    "00000000000000aa",
    "00000000000000bb",
    "Q2xvdWRzIGFyZSBwcmV0dHk",
    "alice",
    "\u{430}lice",
    "a=candidate:1 1 udp 1 1.2.3.4 5 typ host",
    "a=candidate:2 1 udp 1 5.6.7.8 9 typ relay",
    "a=end-of-candidates",
    "pc1:",
    "file",
    "fid",
    "name",
    "size",
    "piece",
    "sha256",
    "root",
    "kind",
    "private",
    "body",
    "have",
    "want",
    "pieces",
    "list",
    "cancel",
    "reason",
    "f1",
    "16384",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(i64::MAX),
            Just(1 << 53),
            any::<i64>()
        ]
        .prop_map(Value::from),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(1.0)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Lines of JSON (the hub and the history take one frame per line), or a
/// query string, or SDP-like lines.
fn generated() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(json(), 1..6).prop_map(|values| {
            values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        }),
        prop::collection::vec((word(), word()), 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }),
        prop::collection::vec(word(), 0..8).prop_map(|lines| lines.join("\r\n").into_bytes()),
    ]
}

/// An edit to some bytes.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Splice(usize, usize),
}

fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Edit::Remove(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Splice(i, j)),
    ];
    (
        prop::sample::select(corpus.clone()),
        prop::sample::select(corpus),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(mut bytes, other, edits)| {
            for edit in edits {
                let len = bytes.len().max(1);
                match edit {
                    Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
                    Edit::Flip(..) => {}
                    Edit::Insert(i, b) => {
                        let at = i % (bytes.len() + 1);
                        bytes.splice(at..at, b);
                    }
                    Edit::Remove(i, n) if !bytes.is_empty() => {
                        let at = i % len;
                        let end = (at + n).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    Edit::Remove(..) => {}
                    Edit::Splice(i, j) => {
                        // Part of another entry in place of our tail.
                        let at = i % (bytes.len() + 1);
                        let from = j % (other.len() + 1);
                        bytes.truncate(at);
                        bytes.extend_from_slice(&other[from..]);
                    }
                }
            }
            bytes
        })
}

#[test]
fn every_target_holds_on_its_corpus_and_on_generated_and_mutated_inputs() {
    for &(name, target) in TARGETS {
        let corpus = corpus(name);
        assert!(!corpus.is_empty(), "corpus/{name} is empty");
        for entry in &corpus {
            target(entry);
        }
        let config = Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config.clone());
        runner
            .run(&generated(), |input| {
                target(&input);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}, generated input: {e}"));
        let mut runner = TestRunner::new(config);
        runner
            .run(&mutated(corpus), |input| {
                target(&input);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}, mutated corpus entry: {e}"));
    }
}
