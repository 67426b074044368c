//! What the scenario runners share: effects and errors as the vectors
//! write them, and reading a step's fields.

use std::collections::HashMap;

use peerchat_e2e::IdentityKey;
use peerchat_history::{Effect, SendError};
use serde_json::{Value, json};

/// An effect as the vectors write it.
pub fn effect(e: &Effect) -> Value {
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

/// The effects, with every check asked for done at once (answered by
/// `verified`, the log's) and its answer in place of the request (as the
/// native engine does).
pub fn checked(
    effects: Vec<Effect>,
    verified: &mut dyn FnMut(u64, &[bool]) -> Vec<Effect>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Verify(check) => {
                let results: Vec<bool> = check.items.iter().map(|i| i.verify()).collect();
                let answer = verified(check.id, &results);
                out.extend(checked(answer, verified));
            }
            other => out.push(effect(&other)),
        }
    }
    out
}

/// A scenario's identity keys, by peer id, from their seeds (hex).
pub fn keys(scenario: &Value) -> HashMap<String, IdentityKey> {
    scenario["keys"]
        .as_object()
        .unwrap_or_else(|| panic!("keys in {scenario}"))
        .iter()
        .map(|(id, seed)| {
            let seed = seed.as_str().expect("a seed");
            let bytes: Vec<u8> = (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&seed[i..i + 2], 16).expect("hex"))
                .collect();
            let seed: [u8; 32] = bytes.try_into().expect("32 bytes");
            (id.clone(), IdentityKey::from_seed(seed))
        })
        .collect()
}

/// Why a message could not be sent, as the vectors write it.
pub fn send_error(e: &SendError) -> &'static str {
    match e {
        SendError::Empty => "empty",
        SendError::TooLarge { .. } => "too_large",
        SendError::Invalid(_) => "invalid",
        SendError::NotYours => "not_yours",
        SendError::Stopped | SendError::Unsigned | SendError::Stale => {
            unreachable!("not in the scenarios: {e}")
        }
    }
}

/// The string field `name` of `v`.
pub fn s(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

/// The number field `name` of `v`.
pub fn n(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or_else(|| panic!("{name} in {v}"))
}

/// The list of strings `name` of `v`.
pub fn strings(v: &Value, name: &str) -> Vec<String> {
    v[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .iter()
        .map(|r| r.as_str().expect("a string").to_owned())
        .collect()
}
