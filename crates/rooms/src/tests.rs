use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

const ROOM: &str = "room-aaaaaaaaaaaaaaaaaaaa";
const OTHER_ROOM: &str = "room-bbbbbbbbbbbbbbbbbbbb";

/// A hub with simulated time and helpers that decode what it sends.
struct Harness {
    hub: Hub,
    now: Instant,
}

impl Harness {
    fn new(config: HubConfig) -> Self {
        Self {
            hub: Hub::new(config, 7),
            now: Instant::now(),
        }
    }

    fn connect(&mut self, conn: ConnId) {
        self.hub.connect(conn, self.now);
    }

    fn send(&mut self, conn: ConnId, msg: Value) -> Vec<Output> {
        self.send_text(conn, &msg.to_string())
    }

    fn send_text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        let mut out = Vec::new();
        self.hub
            .handle_text(conn, text, self.now, &NoBacklog, &mut out);
        out
    }

    /// Sends a keyed `join` on `conn`, which must be connected already, and
    /// returns the outputs.
    fn send_join(&mut self, conn: ConnId, room: &str, nick: &str, key: &str) -> Vec<Output> {
        self.send(
            conn,
            json!({"type":"join","v":2,"room":room,"nick":nick,"key":key}),
        )
    }

    /// Connects `conn` and joins it as `nick` with `key`; returns its
    /// `joined` and everything else the hub output.
    fn join_keyed(
        &mut self,
        conn: ConnId,
        room: &str,
        nick: &str,
        key: &str,
    ) -> (Value, Vec<Output>) {
        self.connect(conn);
        let out = self.send_join(conn, room, nick, key);
        let joined = frames_to(&out, conn).remove(0);
        assert_eq!(joined["type"], "joined", "{joined}");
        (joined, out)
    }

    /// Everything the hub does when time has passed by `by`.
    fn advance(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        let mut out = Vec::new();
        self.hub.handle_timeout(self.now, &mut out);
        out
    }

    fn lose(&mut self, conn: ConnId) -> Vec<Output> {
        let mut out = Vec::new();
        self.hub
            .disconnect(conn, Departure::Lost, self.now, &mut out);
        out
    }

    /// Sends a `join` without a key on `conn`, which must be connected
    /// already, and returns the outputs.
    fn send_join_unkeyed(&mut self, conn: ConnId, room: &str, nick: &str) -> Vec<Output> {
        self.send(conn, json!({"type":"join","v":2,"room":room,"nick":nick}))
    }

    /// Connects `conn` and asks to join as `nick` (without a key); returns
    /// the outputs, whatever the answer.
    fn try_join(&mut self, conn: ConnId, room: &str, nick: &str) -> Vec<Output> {
        self.connect(conn);
        self.send_join_unkeyed(conn, room, nick)
    }

    /// Connects `conn` and joins it as `nick`; returns its peer id.
    fn join(&mut self, conn: ConnId, room: &str, nick: &str) -> String {
        let out = self.try_join(conn, room, nick);
        let joined = frames_to(&out, conn);
        assert_eq!(joined[0]["type"], "joined", "{joined:?}");
        joined[0]["you"]["id"].as_str().unwrap().to_owned()
    }
}

fn frames_to(out: &[Output], conn: ConnId) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, frame, .. } if *to == conn => {
                Some(serde_json::from_str(frame.as_str()).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn error_code(out: &[Output], conn: ConnId) -> String {
    let frames = frames_to(out, conn);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "error");
    frames[0]["code"].as_str().unwrap().to_owned()
}

#[test]
fn join_announces_members_both_ways() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    let out = h.try_join(2, ROOM, "bob");

    let to_bob = frames_to(&out, 2);
    assert_eq!(to_bob.len(), 1);
    assert_eq!(to_bob[0]["members"], json!([{"id": a, "nick": "alice"}]));
    assert_eq!(to_bob[0]["you"]["nick"], "bob");
    assert_eq!(to_bob[0]["v"], 2);
    let b = to_bob[0]["you"]["id"].as_str().unwrap();
    assert_ne!(a, b);

    let to_alice = frames_to(&out, 1);
    assert_eq!(
        to_alice,
        vec![json!({"type":"peer_joined","peer":{"id": b, "nick":"bob"}})]
    );
    assert_eq!(
        h.hub.stats(),
        Stats {
            connections: 2,
            rooms: 1,
            members: 2,
            away: 0,
        }
    );
}

#[test]
fn members_are_listed_in_join_order() {
    let mut h = Harness::new(HubConfig::default());
    let ids: Vec<String> = (1..=5).map(|i| h.join(i, ROOM, &format!("n{i}"))).collect();
    let out = h.try_join(9, ROOM, "last");
    let listed: Vec<String> = frames_to(&out, 9)[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
}

#[test]
fn leaving_tells_the_others_and_empty_rooms_vanish() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    h.join(2, ROOM, "bob");
    let mut out = Vec::new();
    h.hub.disconnect(1, Departure::Lost, h.now, &mut out);
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"peer_left","id": a})]
    );
    let mut out = Vec::new();
    h.hub.disconnect(2, Departure::Lost, h.now, &mut out);
    assert!(out.is_empty());
    assert_eq!(h.hub.stats(), Stats::default());
}

#[test]
fn nicknames_are_unique_per_room_ignoring_case() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "Alice");
    let out = h.try_join(2, ROOM, "aLICE");
    assert_eq!(error_code(&out, 2), "nick_taken");
    assert!(!h.hub.is_joined(2));
    // The same nickname in another room is fine, and so is another one here.
    h.join(3, OTHER_ROOM, "alice");
    let out = h.send_join_unkeyed(2, ROOM, "alice2");
    assert_eq!(frames_to(&out, 2)[0]["type"], "joined");
}

#[test]
fn a_full_room_refuses_and_frees_a_place_on_leave() {
    let mut h = Harness::new(HubConfig {
        room_capacity: 2,
        ..HubConfig::default()
    });
    h.join(1, ROOM, "a");
    h.join(2, ROOM, "b");
    let out = h.try_join(3, ROOM, "c");
    assert_eq!(error_code(&out, 3), "room_full");
    h.hub.disconnect(1, Departure::Lost, h.now, &mut Vec::new());
    let out = h.send_join_unkeyed(3, ROOM, "c");
    assert_eq!(frames_to(&out, 3)[0]["type"], "joined");
}

#[test]
fn signals_are_relayed_with_the_sender_stamped() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    let b = h.join(2, ROOM, "bob");
    let out = h.send_text(
        1,
        &format!(r#"{{"type":"signal","to":"{b}","payload":{{"sdp":"v=0\r\n"}}}}"#),
    );
    assert!(frames_to(&out, 1).is_empty());
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"signal","from": a, "payload":{"sdp":"v=0\r\n"}})]
    );
}

#[test]
fn signals_do_not_cross_rooms() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    let stranger = h.join(2, OTHER_ROOM, "mallory");
    let out = h.send(1, json!({"type":"signal","to":stranger,"payload":{}}));
    assert_eq!(error_code(&out, 1), "unknown_peer");
    assert!(frames_to(&out, 2).is_empty());
}

#[test]
fn a_signal_reaches_only_the_exact_peer_id() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    let b = h.join(2, ROOM, "bob");
    for to in [
        b.to_uppercase(),
        format!("0{b}"),
        b[1..].to_owned(),
        format!("+{}", &b[1..]),
    ] {
        let out = h.send(1, json!({"type":"signal","to":to,"payload":{}}));
        assert_eq!(error_code(&out, 1), "unknown_peer", "{to}");
        assert!(frames_to(&out, 2).is_empty());
    }
}

#[test]
fn fresh_peer_ids_are_unique_across_rooms() {
    let mut h = Harness::new(HubConfig::default());
    let mut ids = std::collections::HashSet::new();
    for conn in 0..200 {
        let room = format!("room-{:0>20}", conn / 2);
        let id = h.join(conn, &room, &format!("n{conn}"));
        assert_eq!(id.len(), 16);
        assert!(ids.insert(id));
    }
}

#[test]
fn forged_sender_and_self_signals_are_refused() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    let b = h.join(2, ROOM, "bob");
    let out = h.send(1, json!({"type":"signal","to":b,"from":"x","payload":{}}));
    assert_eq!(error_code(&out, 1), "forged_sender");
    assert!(frames_to(&out, 2).is_empty());
    let out = h.send(1, json!({"type":"signal","to":a,"payload":{}}));
    assert_eq!(error_code(&out, 1), "unknown_peer");
}

#[test]
fn signalling_before_joining_is_refused() {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1);
    let out = h.send(1, json!({"type":"signal","to":"x","payload":{}}));
    assert_eq!(error_code(&out, 1), "not_joined");
}

#[test]
fn joining_twice_is_refused() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    let out = h.send_join_unkeyed(1, OTHER_ROOM, "alice");
    assert_eq!(error_code(&out, 1), "already_joined");
    assert_eq!(h.hub.stats().rooms, 1);
}

#[test]
fn malformed_input_gets_typed_errors_and_changes_nothing() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    h.connect(2);
    let cases = [
        ("{not json", "bad_json"),
        ("[1,2]", "bad_message"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (
            r#"{"type":"join","v":1,"room":"x","nick":"y"}"#,
            "unsupported_version",
        ),
        (
            r#"{"type":"join","v":2,"room":"short","nick":"y"}"#,
            "bad_room",
        ),
        (
            r#"{"type":"join","v":2,"room":"room-aaaaaaaaaaaaaaaaaaaa","nick":" y"}"#,
            "bad_nick",
        ),
        (r#"{"type":"join","v":2,"nick":"y"}"#, "bad_message"),
        (r#"{"type":"signal","to":"x","payload":[1]}"#, "bad_message"),
    ];
    for (text, code) in cases {
        let out = h.send_text(2, text);
        assert_eq!(error_code(&out, 2), code, "{text}");
        assert!(frames_to(&out, 1).is_empty());
    }
    assert!(!h.hub.is_joined(2));
    assert_eq!(h.hub.stats().members, 1);
}

#[test]
fn rate_limit_drops_excess_and_recovers() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 10,
        rate_burst: 3,
        ..HubConfig::default()
    });
    let a = h.join(1, ROOM, "alice");
    let b = h.join(2, ROOM, "bob");
    let signal = json!({"type":"signal","to":b,"payload":{}});
    // The join used one token; two more signals pass.
    for _ in 0..2 {
        assert_eq!(frames_to(&h.send(1, signal.clone()), 2).len(), 1);
    }
    let out = h.send(1, signal.clone());
    assert_eq!(error_code(&out, 1), "rate_limited");
    assert!(frames_to(&out, 2).is_empty());
    // Further drops in the same run are silent.
    assert!(h.send(1, signal.clone()).is_empty());
    h.now += refill_interval(10);
    let out = h.send(1, signal);
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"signal","from":a,"payload":{}})]
    );
}

#[test]
fn join_deadline_closes_only_unjoined_connections() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    h.connect(2);
    let mut out = Vec::new();
    h.hub.join_deadline(1, &mut out);
    assert!(out.is_empty());
    h.hub.join_deadline(2, &mut out);
    assert_eq!(error_code(&out, 2), "join_timeout");
    assert!(out.contains(&Output::Close {
        conn: 2,
        reason: ErrorCode::JoinTimeout
    }));
    assert_eq!(h.hub.stats().connections, 1);
}

#[test]
fn closing_a_member_tells_it_why_and_tells_the_room() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    h.join(2, ROOM, "bob");
    let mut out = Vec::new();
    h.hub
        .close(1, ErrorCode::SlowConsumer, "too slow", h.now, &mut out);
    assert_eq!(error_code(&out, 1), "slow_consumer");
    assert_eq!(frames_to(&out, 2), vec![json!({"type":"peer_left","id":a})]);
    assert_eq!(
        out.last(),
        Some(&Output::Close {
            conn: 1,
            reason: ErrorCode::SlowConsumer
        })
    );
    // Closing again, or events for a forgotten connection, do nothing.
    let mut out = Vec::new();
    h.hub
        .close(1, ErrorCode::SlowConsumer, "again", h.now, &mut out);
    h.hub.disconnect(1, Departure::Lost, h.now, &mut out);
    out.extend(h.send_text(1, "{}"));
    assert!(out.is_empty());
}

#[test]
fn shutdown_closes_everyone_and_tells_no_one_that_anyone_left() {
    let mut h = Harness::new(keyed_config());
    h.join_keyed(1, ROOM, "alice", KEY_A);
    h.join(2, ROOM, "bob");
    h.join_keyed(3, ROOM, "carol", KEY_B);
    h.connect(4);
    let mut out = Vec::new();
    h.hub.shutdown(&mut out);
    // Each connection gets `shutting_down` and is closed with it; nothing
    // else, so no member is told that another left (a stopping server is
    // an outage, as if it had crashed: the members keep their peer
    // connections and resume with the next server).
    for conn in 1..=4 {
        let frames = frames_to(&out, conn);
        assert_eq!(frames.len(), 1, "conn {conn}: {frames:?}");
        assert_eq!(frames[0]["code"], "shutting_down");
    }
    let closed: Vec<(ConnId, ErrorCode)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 4);
    assert!(closed.iter().all(|(_, r)| *r == ErrorCode::ShuttingDown));
    assert_eq!(out.len(), 8, "{out:?}");
    assert_eq!(h.hub.stats(), Stats::default());
    // Nothing is left to happen later either, and the transports' reports
    // of the closed connections change nothing.
    assert_eq!(h.hub.next_deadline(), None);
    assert!(h.advance(Duration::from_secs(3600)).is_empty());
    for conn in 1..=4 {
        assert!(h.lose(conn).is_empty());
    }
}

#[test]
fn ice_servers_are_handed_out_on_join() {
    let ice = IceServer {
        urls: vec!["stun:stun.example.org:3478".into()],
        username: None,
        credential: None,
    };
    let mut h = Harness::new(HubConfig {
        ice: Arc::new(vec![ice]),
        ..HubConfig::default()
    });
    let out = h.try_join(1, ROOM, "alice");
    assert_eq!(
        frames_to(&out, 1)[0]["ice_servers"],
        json!([{"urls":["stun:stun.example.org:3478"]}])
    );
}

/// Hands each member a TURN username naming it.
#[derive(Debug)]
struct PerPeer;

impl IceProvider for PerPeer {
    fn ice_servers(&self, peer_id: &str) -> Vec<IceServer> {
        vec![IceServer {
            urls: vec!["turn:relay.example.org".into()],
            username: Some(format!("9999999999:{peer_id}")),
            credential: Some("pw".into()),
        }]
    }
}

#[test]
fn each_member_gets_its_own_turn_credentials() {
    let mut h = Harness::new(HubConfig {
        ice: Arc::new(PerPeer),
        ..HubConfig::default()
    });
    for (conn, nick) in [(1, "alice"), (2, "bob")] {
        let out = h.try_join(conn, ROOM, nick);
        let joined = &frames_to(&out, conn)[0];
        let id = joined["you"]["id"].as_str().unwrap();
        assert_eq!(
            joined["ice_servers"][0]["username"],
            format!("9999999999:{id}")
        );
    }
}

#[test]
fn large_signals_are_limited_by_bytes_too() {
    let mut h = Harness::new(HubConfig {
        byte_rate_per_sec: 1000,
        byte_burst: 10_000,
        ..HubConfig::default()
    });
    h.join(1, ROOM, "alice");
    let b = h.join(2, ROOM, "bob");
    let big = json!({"type":"signal","to":b,"payload":{"x":"y".repeat(4000)}});
    // The join and two 4 KB signals fit in 10 KB; the third does not.
    for _ in 0..2 {
        assert_eq!(frames_to(&h.send(1, big.clone()), 2).len(), 1);
    }
    let out = h.send(1, big.clone());
    assert_eq!(error_code(&out, 1), "rate_limited");
    assert!(frames_to(&out, 2).is_empty());
    // Small messages still pass once enough bytes are back.
    h.now += Duration::from_secs(1);
    let small = json!({"type":"signal","to":b,"payload":{}});
    assert_eq!(frames_to(&h.send(1, small), 2).len(), 1);
}

// ---- Member keys: derived ids, takeover, resume within the grace period ----

const KEY_A: &str = "alice-key-aaaaaaaaaaaaaaaa";
const KEY_B: &str = "bob-key-bbbbbbbbbbbbbbbbbb";
const GRACE: Duration = Duration::from_secs(20);
const MS: Duration = Duration::from_millis(1);

fn keyed_config() -> HubConfig {
    HubConfig {
        resume_grace: GRACE,
        ..HubConfig::default()
    }
}

/// Alice (with KEY_A, conn 1) and bob (without a key, conn 2) in ROOM.
fn alice_and_bob() -> (Harness, String, String) {
    let mut h = Harness::new(keyed_config());
    let (joined, _) = h.join_keyed(1, ROOM, "alice", KEY_A);
    let a = joined["you"]["id"].as_str().unwrap().to_owned();
    let b = h.join(2, ROOM, "bob");
    (h, a, b)
}

#[test]
fn a_key_gives_a_derived_id_and_no_key_a_random_one() {
    let mut h = Harness::new(keyed_config());
    let (joined, _) = h.join_keyed(1, ROOM, "alice", KEY_A);
    assert_eq!(joined["you"]["id"], peer_id_from_key(ROOM, KEY_A));
    assert_eq!(joined["resumed"], false);
    // The same key gives another id in another room.
    let (other, _) = h.join_keyed(2, OTHER_ROOM, "alice", KEY_A);
    assert_eq!(other["you"]["id"], peer_id_from_key(OTHER_ROOM, KEY_A));
    assert_ne!(other["you"]["id"], joined["you"]["id"]);
    let b = h.join(3, ROOM, "bob");
    assert_ne!(b, peer_id_from_key(ROOM, KEY_B));
    assert_eq!(b.len(), 16);
}

#[test]
fn a_bad_key_is_refused_and_the_connection_can_try_again() {
    let mut h = Harness::new(keyed_config());
    h.connect(1);
    let out = h.send_join(1, ROOM, "alice", "too-short");
    assert_eq!(error_code(&out, 1), "bad_key");
    assert!(!h.hub.is_joined(1));
    let out = h.send_join(1, ROOM, "alice", KEY_A);
    assert_eq!(frames_to(&out, 1)[0]["type"], "joined");
}

#[test]
fn a_second_connection_with_the_key_takes_over_silently() {
    let (mut h, a, b) = alice_and_bob();
    h.connect(3);
    let out = h.send_join(3, ROOM, "alice", KEY_A);

    // The old connection is told why and closed.
    assert_eq!(error_code(&out, 1), "replaced");
    assert!(out.contains(&Output::Close {
        conn: 1,
        reason: ErrorCode::Replaced
    }));
    // The room is told nothing.
    assert!(frames_to(&out, 2).is_empty());
    // The new connection is the same member.
    let joined = &frames_to(&out, 3)[0];
    assert_eq!(joined["you"], json!({"id": a, "nick": "alice"}));
    assert_eq!(joined["resumed"], true);
    assert_eq!(joined["members"], json!([{"id": b, "nick": "bob"}]));
    assert_eq!(
        h.hub.stats(),
        Stats {
            connections: 2,
            rooms: 1,
            members: 2,
            away: 0
        }
    );
    // Signals reach the new connection; the old one is forgotten.
    let out = h.send(2, json!({"type":"signal","to":a,"payload":{}}));
    assert_eq!(frames_to(&out, 3).len(), 1);
    assert!(frames_to(&out, 1).is_empty());
    assert!(
        h.send(1, json!({"type":"signal","to":b,"payload":{}}))
            .is_empty()
    );
    // The old connection's transport reports it closed: nothing happens.
    assert!(h.lose(1).is_empty());
    assert_eq!(h.hub.stats().members, 2);
}

#[test]
fn a_lost_keyed_member_resumes_within_the_grace_period_unnoticed() {
    let (mut h, a, b) = alice_and_bob();
    let out = h.lose(1);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.hub.stats().away, 1);
    assert_eq!(h.hub.stats().members, 1);
    assert_eq!(h.hub.next_deadline(), Some(h.now + GRACE));
    assert!(h.advance(GRACE - MS).is_empty());

    h.connect(3);
    let out = h.send_join(3, ROOM, "alice", KEY_A);
    assert!(frames_to(&out, 2).is_empty(), "the room is told nothing");
    let joined = &frames_to(&out, 3)[0];
    assert_eq!(joined["you"]["id"], a.as_str());
    assert_eq!(joined["resumed"], true);
    assert_eq!(joined["members"], json!([{"id": b, "nick": "bob"}]));
    assert_eq!(h.hub.next_deadline(), None);
    assert_eq!(h.hub.stats().away, 0);
    assert_eq!(h.hub.stats().members, 2);
    // The old deadline passing changes nothing.
    assert!(h.advance(GRACE).is_empty());
    let out = h.send(2, json!({"type":"signal","to":a,"payload":{}}));
    assert_eq!(frames_to(&out, 3).len(), 1);
}

#[test]
fn an_away_member_leaves_once_when_the_grace_period_ends() {
    let (mut h, a, _) = alice_and_bob();
    h.lose(1);
    assert!(h.advance(GRACE - MS).is_empty());
    let out = h.advance(MS);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(frames_to(&out, 2), vec![json!({"type":"peer_left","id":a})]);
    assert_eq!(h.hub.next_deadline(), None);
    assert!(h.advance(GRACE).is_empty());
    assert_eq!(
        h.hub.stats(),
        Stats {
            connections: 1,
            rooms: 1,
            members: 1,
            away: 0
        }
    );
    // Coming back later is a fresh join under the same id.
    h.connect(3);
    let out = h.send_join(3, ROOM, "alice", KEY_A);
    assert_eq!(frames_to(&out, 3)[0]["resumed"], false);
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"peer_joined","peer":{"id":a,"nick":"alice"}})]
    );
}

#[test]
fn a_room_whose_members_are_all_away_lasts_until_the_last_expires() {
    let mut h = Harness::new(keyed_config());
    h.join_keyed(1, ROOM, "alice", KEY_A);
    h.lose(1);
    h.now += MS;
    h.join_keyed(2, ROOM, "bob", KEY_B);
    h.lose(2);
    assert_eq!(h.hub.stats().rooms, 1);
    assert_eq!(h.hub.stats().away, 2);
    // Alice's grace ends first; nobody is connected to be told.
    assert!(h.advance(GRACE - MS).is_empty());
    assert_eq!(h.hub.stats().away, 1);
    assert_eq!(h.hub.next_deadline(), Some(h.now + MS));
    assert!(h.advance(MS).is_empty());
    assert_eq!(h.hub.stats(), Stats::default());
}

#[test]
fn leave_ends_the_membership_at_once() {
    let (mut h, a, _) = alice_and_bob();
    let out = h.send(1, json!({"type":"leave"}));
    assert_eq!(frames_to(&out, 2), vec![json!({"type":"peer_left","id":a})]);
    assert_eq!(out.last(), Some(&Output::CloseNormally { conn: 1 }));
    assert_eq!(h.hub.stats().away, 0);
    assert_eq!(h.hub.next_deadline(), None);
    // The transport then reports the close: nothing more happens.
    assert!(h.lose(1).is_empty());
}

#[test]
fn a_normal_close_ends_the_membership_at_once() {
    let (mut h, a, _) = alice_and_bob();
    let mut out = Vec::new();
    h.hub.disconnect(1, Departure::Left, h.now, &mut out);
    assert_eq!(frames_to(&out, 2), vec![json!({"type":"peer_left","id":a})]);
    assert_eq!(h.hub.stats().away, 0);
}

#[test]
fn leave_before_joining_just_closes() {
    let mut h = Harness::new(keyed_config());
    h.connect(1);
    let out = h.send(1, json!({"type":"leave"}));
    assert_eq!(out, vec![Output::CloseNormally { conn: 1 }]);
    assert_eq!(h.hub.stats().connections, 0);
}

#[test]
fn a_member_without_a_key_leaves_as_soon_as_it_is_lost() {
    let (mut h, _, b) = alice_and_bob();
    let out = h.lose(2);
    assert_eq!(frames_to(&out, 1), vec![json!({"type":"peer_left","id":b})]);
    assert_eq!(h.hub.next_deadline(), None);
}

#[test]
fn a_zero_grace_period_turns_resuming_off() {
    let mut h = Harness::new(HubConfig {
        resume_grace: Duration::ZERO,
        ..HubConfig::default()
    });
    let (joined, _) = h.join_keyed(1, ROOM, "alice", KEY_A);
    h.join(2, ROOM, "bob");
    let out = h.lose(1);
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"peer_left","id":joined["you"]["id"]})]
    );
    assert_eq!(h.hub.next_deadline(), None);
}

#[test]
fn cut_off_keyed_members_go_away_too() {
    let (mut h, a, _) = alice_and_bob();
    let mut out = Vec::new();
    h.hub
        .close(1, ErrorCode::SlowConsumer, "too slow", h.now, &mut out);
    assert_eq!(error_code(&out, 1), "slow_consumer");
    assert!(frames_to(&out, 2).is_empty());
    assert_eq!(h.hub.stats().away, 1);
    let out = h.advance(GRACE);
    assert_eq!(frames_to(&out, 2), vec![json!({"type":"peer_left","id":a})]);
}

#[test]
fn signals_to_an_away_member_are_refused() {
    let (mut h, a, _) = alice_and_bob();
    h.lose(1);
    let out = h.send(2, json!({"type":"signal","to":a,"payload":{}}));
    assert_eq!(error_code(&out, 2), "peer_away");
    assert_eq!(frames_to(&out, 2)[0]["to"], json!(a));
    assert_eq!(out.len(), 1);
}

#[test]
fn an_away_member_keeps_its_nickname_and_is_listed() {
    let (mut h, a, b) = alice_and_bob();
    h.lose(1);
    let out = h.try_join(3, ROOM, "ALICE");
    assert_eq!(error_code(&out, 3), "nick_taken");
    // Someone else with a key cannot take it either.
    let out = h.send_join(3, ROOM, "alice", KEY_B);
    assert_eq!(error_code(&out, 3), "nick_taken");
    // A newcomer sees the away member in the list.
    let out = h.send_join_unkeyed(3, ROOM, "carol");
    assert_eq!(
        frames_to(&out, 3)[0]["members"],
        json!([{"id": a, "nick": "alice"}, {"id": b, "nick": "bob"}])
    );
    // Once the grace period is over the nickname is free.
    h.advance(GRACE);
    let out = h.try_join(4, ROOM, "Alice");
    assert_eq!(frames_to(&out, 4)[0]["type"], "joined");
}

#[test]
fn away_members_count_toward_capacity_and_may_always_resume() {
    let mut h = Harness::new(HubConfig {
        room_capacity: 2,
        ..keyed_config()
    });
    h.join_keyed(1, ROOM, "alice", KEY_A);
    h.join(2, ROOM, "bob");
    h.lose(1);
    let out = h.try_join(3, ROOM, "carol");
    assert_eq!(error_code(&out, 3), "room_full");
    // Alice comes back although the room is full: her place was kept.
    h.connect(4);
    let out = h.send_join(4, ROOM, "alice", KEY_A);
    assert_eq!(frames_to(&out, 4)[0]["resumed"], true);
    // A live takeover in a full room works too.
    h.connect(5);
    let out = h.send_join(5, ROOM, "alice", KEY_A);
    assert_eq!(frames_to(&out, 5)[0]["resumed"], true);
    assert_eq!(error_code(&out, 4), "replaced");
}

#[test]
fn a_member_resuming_under_a_new_nickname_is_announced_again() {
    let (mut h, a, b) = alice_and_bob();
    h.lose(1);
    h.connect(3);
    // Taking bob's nickname is refused; the member stays away.
    let out = h.send_join(3, ROOM, "Bob", KEY_A);
    assert_eq!(error_code(&out, 3), "nick_taken");
    assert_eq!(h.hub.stats().away, 1);
    let out = h.send_join(3, ROOM, "alicia", KEY_A);
    let joined = &frames_to(&out, 3)[0];
    assert_eq!(joined["you"], json!({"id": a, "nick": "alicia"}));
    assert_eq!(joined["resumed"], true);
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"peer_joined","peer":{"id":a,"nick":"alicia"}})]
    );
    // The old nickname is free, the new one taken.
    let out = h.try_join(4, ROOM, "ALICIA");
    assert_eq!(error_code(&out, 4), "nick_taken");
    let out = h.send_join_unkeyed(4, ROOM, "alice");
    assert_eq!(
        frames_to(&out, 4)[0]["members"],
        json!([{"id": a, "nick": "alicia"}, {"id": b, "nick": "bob"}])
    );
    // A live takeover with a new nickname is announced the same way.
    h.connect(5);
    let out = h.send_join(5, ROOM, "ally", KEY_A);
    assert_eq!(error_code(&out, 3), "replaced");
    for other in [2, 4] {
        assert_eq!(
            frames_to(&out, other),
            vec![json!({"type":"peer_joined","peer":{"id":a,"nick":"ally"}})]
        );
    }
}

#[test]
fn deadlines_come_soonest_first() {
    let mut h = Harness::new(keyed_config());
    let keys = [
        "k1-aaaaaaaaaaaaaaaaaaaaaa",
        "k2-aaaaaaaaaaaaaaaaaaaaaa",
        "k3-aaaaaaaaaaaaaaaaaaaaaa",
    ];
    let start = h.now;
    for (i, key) in keys.iter().enumerate() {
        let conn = i as ConnId + 1;
        h.join_keyed(conn, ROOM, &format!("n{conn}"), key);
    }
    h.join(9, ROOM, "watcher");
    // Lost in the order 3, 1, 2, a second apart.
    for conn in [3, 1, 2] {
        h.lose(conn);
        assert_eq!(h.hub.next_deadline(), Some(start + GRACE));
        h.now += Duration::from_secs(1);
    }
    let mut left = Vec::new();
    for _ in 0..3 {
        let next = h.hub.next_deadline().unwrap();
        let out = h.advance(next - h.now);
        for frame in frames_to(&out, 9) {
            left.push(frame["id"].as_str().unwrap().to_owned());
        }
    }
    let want: Vec<String> = [2, 0, 1]
        .iter()
        .map(|&i| peer_id_from_key(ROOM, keys[i]))
        .collect();
    assert_eq!(left, want);
    assert_eq!(h.hub.next_deadline(), None);
}

#[test]
fn shutdown_forgets_away_members() {
    let (mut h, _, _) = alice_and_bob();
    h.lose(1);
    let mut out = Vec::new();
    h.hub.shutdown(&mut out);
    assert!(
        frames_to(&out, 2).iter().all(|f| f["type"] != "peer_left"),
        "{out:?}"
    );
    assert_eq!(h.hub.stats(), Stats::default());
    assert_eq!(h.hub.next_deadline(), None);
    assert!(h.advance(Duration::from_secs(3600)).is_empty());
}

#[test]
fn the_tally_counts_joins_resumes_leaves_signals_errors_and_dropped_messages() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 1,
        rate_burst: 4,
        ..HubConfig::default()
    });
    let (_, _) = h.join_keyed(1, ROOM, "alice", "alice-key-0123456789ab");
    let bob = h.join(2, ROOM, "bob");
    assert_eq!((h.hub.tally().joins, h.hub.tally().resumes), (2, 0));

    let out = h.send(1, json!({"type":"signal","to":bob,"payload":{"sdp":"x"}}));
    let relayed = match &out[..] {
        [Output::Send { frame, .. }] => frame.as_str().len() as u64,
        other => panic!("{other:?}"),
    };
    assert_eq!(h.hub.tally().signals, 1);
    assert_eq!(h.hub.tally().signal_bytes, relayed);

    h.send(
        1,
        json!({"type":"signal","to":"0000000000000000","payload":{}}),
    );
    assert_eq!(h.hub.tally().errors.get(&ErrorCode::UnknownPeer), Some(&1));
    // Burst spent (join, two signals, this one): the next two are dropped,
    // only the first answered.
    h.send(1, json!({"type":"signal","to":bob,"payload":{}}));
    h.send(1, json!({"type":"signal","to":bob,"payload":{}}));
    h.send(1, json!({"type":"signal","to":bob,"payload":{}}));
    assert_eq!(h.hub.tally().rate_limited, 2);
    assert_eq!(h.hub.tally().errors.get(&ErrorCode::RateLimited), Some(&1));

    // Alice's connection is lost and she comes back: a resume, no leave.
    h.lose(1);
    h.connect(3);
    h.send_join(3, ROOM, "alice", "alice-key-0123456789ab");
    assert_eq!(h.hub.tally().resumes, 1);
    assert_eq!(h.hub.tally().leaves, 0);
    h.send(2, json!({"type":"leave"}));
    assert_eq!(h.hub.tally().leaves, 1);
    assert_eq!(h.hub.tally().joins, 2);
}

/// Queues that fill with what the hub sends and empty only when told: a
/// recipient that stops reading.
#[derive(Default)]
struct Queues {
    total: HashMap<ConnId, usize>,
    pairs: HashMap<(ConnId, ConnId), usize>,
}

impl Queues {
    fn take(&mut self, out: &[Output]) {
        for o in out {
            if let Output::Send { to, frame, from } = o {
                *self.total.entry(*to).or_default() += frame_cost(frame.len());
                if let Some(from) = from {
                    *self.pairs.entry((*to, *from)).or_default() += frame_cost(frame.len());
                }
            }
        }
    }

    fn drain(&mut self, conn: ConnId) {
        self.total.remove(&conn);
        self.pairs.retain(|(to, _), _| *to != conn);
    }
}

impl Backlog for Queues {
    fn queued(&self, to: ConnId, from: ConnId) -> Queued {
        Queued {
            total: self.total.get(&to).copied().unwrap_or(0),
            from_sender: self.pairs.get(&(to, from)).copied().unwrap_or(0),
        }
    }
}

#[test]
fn a_burst_to_a_backed_up_member_is_refused_to_the_sender_and_the_recipient_stays() {
    let mut h = Harness::new(HubConfig {
        send_queue_bytes: 8 * 1024,
        ..HubConfig::default()
    });
    let _alice = h.join(1, ROOM, "alice");
    let bob = h.join(2, ROOM, "bob");
    let _carol = h.join(3, ROOM, "carol");
    let mut queues = Queues::default();
    let signal =
        json!({"type":"signal","to":bob,"payload":{"candidate":"x".repeat(40)}}).to_string();
    let mut refusals = Vec::new();
    // 900 small signals, within alice's burst: bob does not read.
    for _ in 0..900 {
        let mut out = Vec::new();
        h.hub.handle_text(1, &signal, h.now, &queues, &mut out);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Close { .. })),
            "nobody is closed: {out:?}"
        );
        queues.take(&out);
        refusals.extend(frames_to(&out, 1));
    }
    // Alice hears once that bob is busy, naming him.
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["code"], "peer_busy");
    assert_eq!(refusals[0]["to"], bob);
    // Alice holds no more than her share of bob's queue.
    let share = h.hub.config().pair_share();
    assert!(
        queues.queued(2, 1).from_sender <= share,
        "{:?}",
        queues.queued(2, 1)
    );
    // Carol still reaches bob: the rest of the queue is not alice's.
    let mut out = Vec::new();
    h.hub.handle_text(3, &signal, h.now, &queues, &mut out);
    assert_eq!(frames_to(&out, 2)[0]["type"], "signal");
    assert!(frames_to(&out, 3).is_empty());
    // Bob is still a member, and once he has read, alice reaches him again.
    assert_eq!(h.hub.stats().members, 3);
    queues.drain(2);
    let mut out = Vec::new();
    h.hub.handle_text(1, &signal, h.now, &queues, &mut out);
    assert_eq!(frames_to(&out, 2)[0]["type"], "signal");
}

#[test]
fn a_full_queue_refuses_signals_from_everyone_but_a_large_one_goes_to_an_empty_queue() {
    let mut h = Harness::new(HubConfig {
        send_queue_bytes: 4 * 1024,
        ..HubConfig::default()
    });
    let _alice = h.join(1, ROOM, "alice");
    let bob = h.join(2, ROOM, "bob");
    let mut queues = Queues::default();
    // Bigger than the whole queue: it goes, since nothing waits.
    let big = json!({"type":"signal","to":bob,"payload":{"sdp":"x".repeat(10_000)}}).to_string();
    let mut out = Vec::new();
    h.hub.handle_text(1, &big, h.now, &queues, &mut out);
    assert_eq!(frames_to(&out, 2).len(), 1);
    queues.take(&out);
    // The next one waits for bob to read.
    let mut out = Vec::new();
    h.hub.handle_text(1, &big, h.now, &queues, &mut out);
    assert_eq!(error_code(&out, 1), "peer_busy");
}

#[test]
fn a_refusal_further_along_tells_the_sender_naming_the_recipient() {
    let mut h = Harness::new(HubConfig::default());
    let _alice = h.join(1, ROOM, "alice");
    let bob = h.join(2, ROOM, "bob");
    let _zed = h.join(3, OTHER_ROOM, "zed");
    let mut out = Vec::new();
    h.hub.refused(1, 2, &mut out);
    let told = frames_to(&out, 1);
    assert_eq!(told.len(), 1, "{out:?}");
    assert_eq!(told[0]["code"], "peer_busy");
    assert_eq!(told[0]["to"], bob);
    // Not across rooms, nor for connections that are gone or not members.
    let mut out = Vec::new();
    h.hub.refused(3, 2, &mut out);
    h.hub.refused(1, 9, &mut out);
    h.hub.refused(9, 1, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // The rule it stands for is the hub's own.
    let config = h.hub.config().clone();
    let queued = |total, from_sender| Queued { total, from_sender };
    assert!(config.admits(queued(0, 0), 10 * config.send_queue_bytes));
    assert!(!config.admits(queued(config.send_queue_bytes, 0), 1));
    assert!(!config.admits(queued(1, config.pair_share()), 1));
    assert!(config.admits(queued(1, 1), config.pair_share() - 1));
}

/// Credentials that expire: each issue names the member and a number.
#[derive(Debug, Default)]
struct Expiring(std::sync::atomic::AtomicU32);

impl IceProvider for Expiring {
    fn ice_servers(&self, peer_id: &str) -> Vec<IceServer> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vec![IceServer {
            urls: vec!["turn:relay.example.org".into()],
            username: Some(format!("{n}:{peer_id}")),
            credential: Some("pw".into()),
        }]
    }

    fn refresh_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(300))
    }
}

#[test]
fn members_get_fresh_ice_servers_while_they_are_in_a_room_and_not_after() {
    let mut h = Harness::new(HubConfig {
        ice: Arc::new(Expiring::default()),
        ..HubConfig::default()
    });
    let alice = h.join(1, ROOM, "alice");
    let _bob = h.join(2, ROOM, "bob");
    assert!(h.advance(Duration::from_secs(299)).is_empty());
    let out = h.advance(Duration::from_secs(1));
    let fresh = frames_to(&out, 1);
    assert_eq!(fresh.len(), 1, "{out:?}");
    assert_eq!(fresh[0]["type"], "ice_servers");
    let username = fresh[0]["ice_servers"][0]["username"].as_str().unwrap();
    assert!(username.ends_with(&format!(":{alice}")), "{username}");
    assert_eq!(frames_to(&out, 2).len(), 1);
    // Every five minutes, for as long as it stays.
    let out = h.advance(Duration::from_secs(300));
    assert_eq!(frames_to(&out, 1)[0]["type"], "ice_servers");
    // Once it has left, nothing more.
    h.lose(1);
    let out = h.advance(Duration::from_secs(300));
    assert!(frames_to(&out, 1).is_empty());
    assert_eq!(frames_to(&out, 2).len(), 1);
    // And a connection that never joined gets none.
    h.connect(3);
    let out = h.advance(Duration::from_secs(300));
    assert!(frames_to(&out, 3).is_empty());
}

#[test]
fn closing_a_room_closes_its_members_and_nobody_sees_a_leave() {
    let (mut h, a, _) = alice_and_bob();
    h.join(3, OTHER_ROOM, "carol");
    h.join_keyed(4, ROOM, "dave", KEY_B);
    h.lose(4);
    assert!(h.hub.has_room(ROOM));
    let mut out = Vec::new();
    h.hub
        .close_room(ROOM, ErrorCode::ShuttingDown, "moving", &mut out);
    assert!(!h.hub.has_room(ROOM));
    for conn in [1, 2] {
        assert_eq!(frames_to(&out, conn).len(), 1, "{out:?}");
        assert_eq!(error_code(&out, conn), "shutting_down");
        assert!(out.contains(&Output::Close {
            conn,
            reason: ErrorCode::ShuttingDown
        }));
    }
    assert_eq!(
        out.len(),
        4,
        "only the two live members hear of it: {out:?}"
    );
    // The away member is forgotten with its deadline; the other room stays.
    assert_eq!(h.hub.next_deadline(), None);
    assert_eq!(
        h.hub.stats(),
        Stats {
            connections: 1,
            rooms: 1,
            members: 1,
            away: 0
        }
    );
    // The closed connections are forgotten; the ids are free again.
    assert!(!h.hub.is_joined(1));
    h.connect(5);
    let out = h.send_join(5, ROOM, "alice", KEY_A);
    let joined = frames_to(&out, 5).remove(0);
    assert_eq!(joined["you"]["id"], a.as_str());
    assert_eq!(joined["resumed"], false);
    assert_eq!(joined["members"], json!([]));
}

#[test]
fn an_unmetered_connection_is_not_rate_limited_by_the_hub() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 1,
        rate_burst: 1,
        ..HubConfig::default()
    });
    h.hub.connect_unmetered(1);
    for _ in 0..10 {
        let out = h.send(
            1,
            json!({"type":"signal","to":"0000000000000000","payload":{}}),
        );
        assert_eq!(error_code(&out, 1), "not_joined");
    }
    // A meter of the transport's applies the same limits.
    // A meter of the transport's applies the same limits, and what it
    // drops is counted in the hub's tally.
    let mut meter = Meter::new(h.hub.config(), h.now);
    let mut out = Vec::new();
    let now = h.now;
    assert!(h.hub.admit(&mut meter, 1, 10, now, &mut out));
    assert!(!h.hub.admit(&mut meter, 1, 10, now, &mut out));
    assert!(!h.hub.admit(&mut meter, 1, 10, now, &mut out));
    assert_eq!(error_code(&out, 1), "rate_limited");
    assert_eq!(h.hub.tally().rate_limited, 2);
    assert_eq!(h.hub.tally().errors.get(&ErrorCode::RateLimited), Some(&1));
    assert!(
        h.hub
            .admit(&mut meter, 1, 10, now + Duration::from_secs(1), &mut out)
    );
}

#[test]
fn a_rename_answers_the_member_and_tells_the_others() {
    let mut h = Harness::new(HubConfig::default());
    let a = h.join(1, ROOM, "alice");
    h.join(2, ROOM, "bob");
    h.join(3, OTHER_ROOM, "carol");
    let out = h.send(1, json!({"type":"rename","nick":"ally"}));
    assert_eq!(
        frames_to(&out, 1),
        vec![json!({"type":"renamed","you":{"id":a,"nick":"ally"}})]
    );
    assert_eq!(
        frames_to(&out, 2),
        vec![json!({"type":"peer_renamed","peer":{"id":a,"nick":"ally"}})]
    );
    assert!(frames_to(&out, 3).is_empty(), "another room hears nothing");
    assert_eq!(h.hub.tally().renames, 1);
    // The old nickname is free again, the new one is taken.
    let out = h.try_join(4, ROOM, "ALLY");
    assert_eq!(error_code(&out, 4), "nick_taken");
    let out = h.send_join_unkeyed(4, ROOM, "alice");
    assert_eq!(frames_to(&out, 4)[0]["type"], "joined");
    // A newcomer finds the member under its new nickname.
    let out = h.try_join(5, ROOM, "dan");
    let listed = &frames_to(&out, 5)[0]["members"];
    assert!(
        listed
            .as_array()
            .unwrap()
            .contains(&json!({"id":a,"nick":"ally"})),
        "{listed}"
    );
}

#[test]
fn a_rename_follows_the_rules_of_a_joins_nickname() {
    let mut h = Harness::new(HubConfig::default());
    h.join(1, ROOM, "alice");
    h.join(2, ROOM, "bob");
    // Taken, ignoring case and look-alike letters (a Cyrillic "о").
    for taken in ["Bob", "b\u{43e}b"] {
        let out = h.send(1, json!({"type":"rename","nick":taken}));
        assert_eq!(error_code(&out, 1), "nick_taken", "{taken}");
        assert!(frames_to(&out, 2).is_empty());
    }
    let out = h.send(1, json!({"type":"rename","nick":""}));
    assert_eq!(error_code(&out, 1), "bad_nick");
    let out = h.send(1, json!({"type":"rename"}));
    assert_eq!(error_code(&out, 1), "bad_message");
    // Before joining.
    h.connect(3);
    let out = h.send(3, json!({"type":"rename","nick":"zed"}));
    assert_eq!(error_code(&out, 3), "not_joined");
    // Another case of one's own nickname is a rename; the same one is
    // answered and tells nobody.
    let out = h.send(1, json!({"type":"rename","nick":"Alice"}));
    assert_eq!(frames_to(&out, 2)[0]["type"], "peer_renamed");
    let out = h.send(1, json!({"type":"rename","nick":"Alice"}));
    assert_eq!(frames_to(&out, 1)[0]["type"], "renamed");
    assert!(frames_to(&out, 2).is_empty());
    assert_eq!(h.hub.tally().renames, 1);
}

#[test]
fn an_away_member_keeps_its_nickname_from_a_rename_and_resumes_under_its_new_one() {
    let mut h = Harness::new(HubConfig::default());
    let key_a = "a".repeat(22);
    let (joined, _) = h.join_keyed(1, ROOM, "alice", &key_a);
    let a = joined["you"]["id"].as_str().unwrap().to_owned();
    h.join_keyed(2, ROOM, "bob", &"b".repeat(22));
    h.lose(2);
    let out = h.send(1, json!({"type":"rename","nick":"bob"}));
    assert_eq!(error_code(&out, 1), "nick_taken");
    h.send(1, json!({"type":"rename","nick":"ally"}));
    // Alice's connection is lost; she comes back under the new nickname
    // before her grace period ends, and nobody is told anything.
    h.lose(1);
    h.advance(Duration::from_secs(5));
    h.join_keyed(3, ROOM, "bob2", &"c".repeat(22));
    h.connect(4);
    let out = h.send_join(4, ROOM, "ally", &key_a);
    let joined = &frames_to(&out, 4)[0];
    assert_eq!(joined["resumed"], true);
    assert_eq!(joined["you"], json!({"id":a,"nick":"ally"}));
    assert!(frames_to(&out, 3).is_empty(), "{:?}", frames_to(&out, 3));
}

#[test]
fn renames_are_rate_limited_like_other_frames() {
    let mut h = Harness::new(HubConfig {
        rate_per_sec: 10,
        rate_burst: 3,
        ..HubConfig::default()
    });
    h.join(1, ROOM, "alice");
    h.join(2, ROOM, "bob");
    for nick in ["a1", "a2"] {
        let out = h.send(1, json!({"type":"rename","nick":nick}));
        assert_eq!(frames_to(&out, 2).len(), 1);
    }
    let out = h.send(1, json!({"type":"rename","nick":"a3"}));
    assert_eq!(error_code(&out, 1), "rate_limited");
    assert!(frames_to(&out, 2).is_empty());
    h.now += refill_interval(10);
    let out = h.send(1, json!({"type":"rename","nick":"a3"}));
    assert_eq!(frames_to(&out, 2)[0]["peer"]["nick"], "a3");
}
