//! Replays the shared PeerJS scenarios (`tests/vectors/peerjs.json`, also
//! run against peer 1.0.2 and a real peerchat by
//! `tests/e2e/peerjs.test.mjs`) with simulated time: peerchat's steps, each
//! scenario on a fresh server.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use peerchat_peerjs::{Config, ConnId, Output, Params, Server};
use peerchat_rooms::NoBacklog;
use serde_json::Value;

struct Replay {
    server: Server,
    now: Instant,
    conns: HashMap<String, ConnId>,
    inbox: HashMap<ConnId, VecDeque<Value>>,
    closed: HashMap<ConnId, bool>,
}

impl Replay {
    fn take(&mut self, out: Vec<Output>) {
        for output in out {
            match output {
                Output::Send { to, frame, .. } => {
                    assert!(!self.closed[&to], "a frame after the close: {frame:?}");
                    let value = serde_json::from_str(frame.as_str()).expect("frames are JSON");
                    self.inbox.entry(to).or_default().push_back(value);
                }
                Output::Close { conn, .. } => {
                    self.closed.insert(conn, true);
                }
            }
        }
    }

    /// Lets simulated time run to the server's next deadline; false if it
    /// has none.
    fn wait(&mut self) -> bool {
        let Some(at) = self.server.next_deadline() else {
            return false;
        };
        self.now = self.now.max(at);
        let mut out = Vec::new();
        self.server.handle_timeout(self.now, &mut out);
        self.take(out);
        true
    }

    fn conn(&self, name: &Value) -> ConnId {
        self.conns[name.as_str().expect("a connection name")]
    }
}

#[test]
fn shared_scenarios() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/peerjs.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the vectors"))
        .expect("the vectors are JSON");
    let scenarios = doc["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() >= 10);
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap_or_default();
        // The file's settings, with the scenario's own over them.
        let setting = |key: &str| match &scenario["config"][key] {
            Value::Null => doc["config"][key].clone(),
            own => own.clone(),
        };
        let ms = |key| Duration::from_millis(setting(key).as_u64().expect("milliseconds"));
        let config = Config {
            key: setting("key").as_str().expect("key").to_owned(),
            expire_timeout: ms("expire_timeout_ms"),
            alive_timeout: ms("alive_timeout_ms"),
            concurrent_limit: setting("concurrent_limit").as_u64().expect("limit") as usize,
            ..Config::default()
        };
        let mut r = Replay {
            server: Server::new(config, [1; 32]),
            now: Instant::now(),
            conns: HashMap::new(),
            inbox: HashMap::new(),
            closed: HashMap::new(),
        };
        for (i, step) in scenario["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .enumerate()
        {
            if step["server"].as_str().is_some_and(|s| s != "peerchat") {
                continue;
            }
            let at = format!("{name}, step {i}: {step}");
            let mut out = Vec::new();
            if let Some(who) = step["connect"].as_str() {
                let conn = r.conns.len() as ConnId + 1;
                r.conns.insert(who.to_owned(), conn);
                r.closed.insert(conn, false);
                let params = Params::from_query(step["query"].as_str().expect("query"));
                r.server.open(conn, &params, r.now, &mut out);
            } else if step.get("send").is_some() {
                let conn = r.conn(&step["send"]);
                let text = match step["text"].as_str() {
                    Some(text) => text.to_owned(),
                    None => step["message"].to_string(),
                };
                r.server
                    .handle_text(conn, &text, &NoBacklog, r.now, &mut out);
            } else if step.get("close").is_some() {
                let conn = r.conn(&step["close"]);
                r.server.disconnect(conn);
            } else if step.get("expect").is_some() {
                let conn = r.conn(&step["expect"]);
                loop {
                    if let Some(got) = r.inbox.get_mut(&conn).and_then(VecDeque::pop_front) {
                        assert_eq!(got, step["message"], "{at}");
                        break;
                    }
                    assert!(!r.closed[&conn], "{at}: closed instead");
                    assert!(r.wait(), "{at}: nothing came");
                }
            } else if step.get("expect_closed").is_some() {
                let conn = r.conn(&step["expect_closed"]);
                loop {
                    let next = r.inbox.get_mut(&conn).and_then(VecDeque::pop_front);
                    assert_eq!(next, None, "{at}: a message instead of the close");
                    if r.closed[&conn] {
                        break;
                    }
                    assert!(r.wait(), "{at}: never closed");
                }
            } else {
                panic!("{at}: unknown step");
            }
            r.take(out);
        }
    }
}
