//! Replays the shared scenarios in `tests/vectors/mesh.json`, which the web
//! client's `mesh.js` replays too.

use peerchat_mesh::{Config, Input, Mesh, ServerState};
use rand::{RngCore, SeedableRng};
use rand_xorshift::XorShiftRng;
use serde_json::{Value, json};

const VECTORS: &str = include_str!("../../../tests/vectors/mesh.json");

fn seed(v: &Value) -> [u32; 4] {
    let words: Vec<u32> = v
        .as_array()
        .expect("a seed of four words")
        .iter()
        .map(|w| u32::try_from(w.as_u64().expect("a word")).expect("32 bits"))
        .collect();
    words.try_into().expect("four words")
}

fn config(defaults: &Value, overrides: &Value) -> Config {
    let mut merged = defaults.as_object().cloned().unwrap_or_default();
    for (name, value) in overrides.as_object().into_iter().flatten() {
        merged.insert(name.clone(), value.clone());
    }
    serde_json::from_value(Value::Object(merged)).expect("a config")
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(config(&doc["defaults"], &Value::Null), Config::default());
}

#[test]
fn scenarios() {
    let doc: Value = serde_json::from_str(VECTORS).expect("mesh.json is JSON");
    let scenarios = doc["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() > 10, "the scenarios are there");
    for scenario in scenarios {
        let name = scenario["name"].as_str().expect("a name");
        let mut mesh = Mesh::new(
            config(&doc["defaults"], &scenario["config"]),
            seed(&scenario["seed"]),
        );
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let now = step["at"].as_u64().expect(&at);
            let outputs = if step["timeout"] == json!(true) {
                mesh.handle_timeout(now)
            } else {
                let input: Input = serde_json::from_value(step["in"].clone()).expect(&at);
                mesh.handle(now, input)
            };
            assert_eq!(json!(outputs), step["want"], "{at}");
            if let Some(deadline) = step.get("deadline") {
                assert_eq!(json!(mesh.next_deadline()), *deadline, "{at}: deadline");
            }
            if let Some(members) = step.get("members") {
                let got: Vec<Value> = mesh
                    .members()
                    .map(|m| {
                        json!({"id": m.id(), "nick": m.nick(), "state": m.state(),
                               "listed": m.listed(), "sid": m.sid(), "open": m.is_open(),
                               "verified": m.is_verified()})
                    })
                    .collect();
                assert_eq!(json!(got), *members, "{at}: members");
            }
        }
    }
}

#[test]
fn the_generator_draws_the_documented_numbers() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let random = &doc["random"];
    let seed = seed(&random["seed"]);
    let mut bytes = [0u8; 16];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(seed) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let mut rng = XorShiftRng::from_seed(bytes);
    let words: Vec<u32> = (0..8).map(|_| rng.next_u32()).collect();
    assert_eq!(json!(words), random["u32"]);
    // A mesh draws its connection ids from the same sequence: four words
    // each, so its third and fourth ids follow the eight words above.
    let mut mesh = Mesh::new(Config::default(), seed);
    mesh.handle(0, Input::Server(ServerState::Open));
    mesh.handle(0, Input::Join {});
    let members: Vec<Value> = ["b", "c", "d", "e"]
        .iter()
        .map(|c| json!({"id": c.repeat(16), "nick": c}))
        .collect();
    let joined = json!({"joined": {"you": "a".repeat(16), "members": members}});
    let sids: Vec<Value> = mesh
        .handle(0, serde_json::from_value(joined).unwrap())
        .into_iter()
        .filter_map(|o| json!(o)["start"].get("sid").cloned())
        .collect();
    assert_eq!(sids.len(), 4);
    assert_eq!(json!(sids[2..]), random["sids"]);
}
