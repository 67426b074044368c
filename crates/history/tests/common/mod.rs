//! What the scenario runners share: effects and errors as the vectors
//! write them, and reading a step's fields.

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
    }
}

/// Why a message could not be sent, as the vectors write it.
pub fn send_error(e: &SendError) -> &'static str {
    match e {
        SendError::Empty => "empty",
        SendError::TooLarge { .. } => "too_large",
        SendError::Invalid(_) => "invalid",
        SendError::Stopped => unreachable!("a log never stops"),
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
