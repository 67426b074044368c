use std::collections::HashMap;
use std::time::{Duration, Instant};

use peerchat_rooms::Queued;
use serde_json::{Value, json};

use super::*;

/// A server, a simulated clock, and what the transport's outgoing queues
/// hold (empty unless a test fills them).
struct H {
    s: Server,
    now: Instant,
    next: ConnId,
    queues: Queues,
}

/// Simulated outgoing queues: for each connection, what waits in all and
/// from each sender.
#[derive(Default)]
struct Queues(HashMap<ConnId, (usize, HashMap<ConnId, usize>)>);

impl Backlog for Queues {
    fn queued(&self, to: ConnId, from: ConnId) -> Queued {
        self.0
            .get(&to)
            .map(|(total, senders)| Queued {
                total: *total,
                from_sender: senders.get(&from).copied().unwrap_or(0),
            })
            .unwrap_or_default()
    }
}

impl H {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Self {
            s: Server::new(config, [7; 32]),
            now: Instant::now(),
            next: 1,
            queues: Queues::default(),
        }
    }

    /// Opens a connection with this query string.
    fn connect(&mut self, query: &str) -> (ConnId, Vec<Output>) {
        let conn = self.next;
        self.next += 1;
        let mut out = Vec::new();
        self.s
            .open(conn, &Params::from_query(query), self.now, &mut out);
        (conn, out)
    }

    /// Opens a connection for `id` under `token` and checks it got OPEN.
    fn register(&mut self, id: &str, token: &str) -> ConnId {
        let (conn, out) = self.connect(&format!("key=peerjs&id={id}&token={token}"));
        assert_eq!(frames(&out, conn), [json!({"type": "OPEN"})], "{out:?}");
        conn
    }

    /// Registers `a` and `b` (both under the token `t`).
    fn register_two(&mut self) -> (ConnId, ConnId) {
        (self.register("a", "t"), self.register("b", "t"))
    }

    fn send(&mut self, conn: ConnId, message: Value) -> Vec<Output> {
        self.text(conn, &message.to_string())
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        let mut out = Vec::new();
        self.s
            .handle_text(conn, text, &self.queues, self.now, &mut out);
        out
    }

    /// Moves the clock on by `d`, waking the server at every deadline on
    /// the way, as a transport would.
    fn advance(&mut self, d: Duration) -> Vec<Output> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(at) = self.s.next_deadline().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.s.handle_timeout(self.now, &mut out);
        }
        self.now = until;
        out
    }
}

/// The frames `out` sends to `conn`, parsed.
fn frames(out: &[Output], conn: ConnId) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, frame, .. } if *to == conn => {
                Some(serde_json::from_str(frame.as_str()).expect("frames are JSON"))
            }
            _ => None,
        })
        .collect()
}

/// Why `out` closes `conn`, if it does.
fn closed(out: &[Output], conn: ConnId) -> Option<Close> {
    out.iter().find_map(|o| match o {
        Output::Close { conn: c, reason } if *c == conn => Some(reason.clone()),
        _ => None,
    })
}

/// The error `out` closes `conn` for, if it does.
fn closed_for(out: &[Output], conn: ConnId) -> Option<PeerjsError> {
    match closed(out, conn)? {
        Close::Error(e) => Some(e),
        _ => None,
    }
}

fn error(msg: &str) -> Value {
    json!({"type": "ERROR", "payload": {"msg": msg}})
}

#[test]
fn query_parameters_are_decoded_as_browsers_do_and_the_last_repeat_counts() {
    let p = Params::from_query("key=peer%6As&id=a+b%20c&token=t1&token=t2&version=1.5.5&x=y");
    assert_eq!(p.key.as_deref(), Some("peerjs"));
    assert_eq!(p.id.as_deref(), Some("a b c"));
    assert_eq!(p.token.as_deref(), Some("t2"));
    assert_eq!(p.version.as_deref(), Some("1.5.5"));
    assert_eq!(Params::from_query(""), Params::default());
}

#[test]
fn a_relayed_message_keeps_its_payload_bytes_and_gets_the_senders_id() {
    let mut h = H::new();
    let a = h.register("alice", "ta");
    let b = h.register("bob", "tb");
    let text = r#"{"type":"OFFER","dst":"bob","payload":{"sdp":"v=0\r\n","n":1.50,"u":"\u00e9"},"extra":true}"#;
    let out = h.text(a, text);
    assert_eq!(out.len(), 1);
    let Output::Send { to, frame, from } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*to, b);
    assert_eq!(*from, Some(a), "counted as a's in b's queue");
    assert_eq!(
        frame.as_str(),
        r#"{"type":"OFFER","src":"alice","dst":"bob","payload":{"sdp":"v=0\r\n","n":1.50,"u":"\u00e9"}}"#
    );
}

#[test]
fn an_id_taken_under_another_token_is_refused_and_its_holder_keeps_it() {
    let mut h = H::new();
    let a = h.register("alice", "ta");
    let (b, out) = h.connect("key=peerjs&id=alice&token=other");
    assert_eq!(
        frames(&out, b),
        [json!({"type": "ID-TAKEN", "payload": {"msg": "ID is taken"}})]
    );
    assert_eq!(closed_for(&out, b), Some(PeerjsError::IdTaken));
    // The refused connection going away changes nothing.
    h.s.disconnect(b);
    let c = h.register("carol", "tc");
    let out = h.send(c, json!({"type": "OFFER", "dst": "alice", "payload": 1}));
    assert_eq!(frames(&out, a).len(), 1);
    assert_eq!(h.s.stats().clients, 2);
}

#[test]
fn reconnecting_with_id_and_token_gets_open_again_and_replaces_the_old_connection() {
    let mut h = H::new();
    let old = h.register("alice", "secret");
    let bob = h.register("bob", "tb");
    let (new, out) = h.connect("key=peerjs&id=alice&token=secret");
    assert_eq!(frames(&out, new), [json!({"type": "OPEN"})]);
    assert_eq!(closed(&out, old), Some(Close::Replaced));
    // The old connection's end, noticed later, does not free the id.
    h.s.disconnect(old);
    assert!(h.text(old, r#"{"type":"OFFER","dst":"bob"}"#).is_empty());
    let out = h.send(bob, json!({"type": "OFFER", "dst": "alice", "payload": 2}));
    assert_eq!(frames(&out, new).len(), 1);
    assert_eq!(h.s.stats().clients, 2);
    // Once the new one ends, the id is free for anyone.
    h.s.disconnect(new);
    h.register("alice", "someone else");
}

#[test]
fn reconnecting_resets_the_alive_timer() {
    let mut h = H::new();
    let old = h.register("alice", "secret");
    h.advance(Duration::from_secs(50));
    let (new, _) = h.connect("key=peerjs&id=alice&token=secret");
    let out = h.advance(Duration::from_secs(20));
    assert_eq!(closed(&out, new), None, "{out:?}");
    assert_eq!(closed(&out, old), None);
    let out = h.advance(Duration::from_secs(40));
    assert_eq!(closed(&out, new), Some(Close::AliveTimeout));
}

#[test]
fn bad_ids_and_tokens_are_refused() {
    let mut h = H::new();
    let long = "x".repeat(MAX_ID_LEN + 1);
    for (query, want) in [
        (
            format!("key=peerjs&id={long}&token=t"),
            PeerjsError::InvalidId,
        ),
        (
            "key=peerjs&id=a%0Ab&token=t".to_owned(),
            PeerjsError::InvalidId,
        ),
        (
            format!("key=peerjs&id=a&token={}", "t".repeat(MAX_TOKEN_LEN + 1)),
            PeerjsError::InvalidToken,
        ),
        (
            "key=peerjs&token=t".to_owned(),
            PeerjsError::MissingParameters,
        ),
        ("key=other&id=a&token=t".to_owned(), PeerjsError::InvalidKey),
    ] {
        let (conn, out) = h.connect(&query);
        assert_eq!(frames(&out, conn), [error(&want.to_string())], "{query}");
        assert_eq!(closed(&out, conn), Some(Close::Error(want)));
    }
    h.register(&"x".repeat(MAX_ID_LEN), "t");
    assert_eq!(h.s.stats().clients, 1);
}

#[test]
fn the_concurrent_limit_counts_registered_ids() {
    let mut h = H::with(Config {
        concurrent_limit: 2,
        ..Config::default()
    });
    let (a, _) = h.register_two();
    let (c, out) = h.connect("key=peerjs&id=c&token=t");
    assert_eq!(closed_for(&out, c), Some(PeerjsError::ConcurrentLimit));
    // The holder of an id may still come back on a new connection.
    let (a2, out) = h.connect("key=peerjs&id=a&token=t");
    assert_eq!(frames(&out, a2), [json!({"type": "OPEN"})]);
    assert_eq!(closed(&out, a), Some(Close::Replaced));
    h.s.disconnect(a2);
    h.register("c", "t");
}

#[test]
fn queued_messages_expire_together_and_each_sender_hears_once() {
    let mut h = H::with(Config {
        expire_timeout: Duration::from_secs(5),
        ..Config::default()
    });
    let a = h.register("a", "t");
    let c = h.register("c", "t");
    for (from, n) in [(a, 1), (a, 2), (c, 3)] {
        assert!(
            h.send(from, json!({"type": "OFFER", "dst": "zed", "payload": n}))
                .is_empty()
        );
    }
    assert_eq!(h.s.stats().queued_messages, 3);
    assert_eq!(h.s.next_deadline(), Some(h.now + Duration::from_secs(5)));
    h.advance(Duration::from_secs(2));
    // A later message joins the same queue and expires with it.
    h.send(a, json!({"type": "CANDIDATE", "dst": "zed", "payload": 4}));
    let out = h.advance(Duration::from_millis(2999));
    assert!(out.is_empty(), "{out:?}");
    let out = h.advance(Duration::from_millis(1));
    let expire = |to| json!({"type": "EXPIRE", "src": "zed", "dst": to});
    assert_eq!(frames(&out, a), [expire("a")]);
    assert_eq!(frames(&out, c), [expire("c")]);
    assert_eq!(
        h.s.stats(),
        Stats {
            clients: 2,
            ..Stats::default()
        }
    );
    // Nothing is left for zed.
    let (z, out) = h.connect("key=peerjs&id=zed&token=t");
    assert_eq!(frames(&out, z), [json!({"type": "OPEN"})]);
}

#[test]
fn a_sender_gone_before_the_expiry_is_not_told() {
    let mut h = H::new();
    let a = h.register("a", "t");
    h.send(a, json!({"type": "OFFER", "dst": "zed"}));
    h.s.disconnect(a);
    assert!(h.advance(Duration::from_secs(10)).is_empty());
    assert_eq!(h.s.stats(), Stats::default());
}

#[test]
fn queues_are_bounded_per_id_and_in_all_and_a_full_one_answers_expire_at_once() {
    let mut h = H::with(Config {
        send_queue_bytes: 4096,
        queue_bytes_total: 10_000,
        ..Config::default()
    });
    let a = h.register("a", "t");
    let big = "x".repeat(1000);
    let mut refused = 0;
    for _ in 0..10 {
        let out = h.send(a, json!({"type": "OFFER", "dst": "zed", "payload": big}));
        if !out.is_empty() {
            assert_eq!(
                frames(&out, a),
                [json!({"type": "EXPIRE", "src": "zed", "dst": "a"})]
            );
            refused += 1;
        }
    }
    let stats = h.s.stats();
    assert_eq!(stats.queued_messages, 3, "{stats:?}");
    assert_eq!(refused, 7);
    assert!(stats.queued_bytes <= 4096);
    // Other ids have their own room, until the total is reached.
    for dst in ["y1", "y2", "y3", "y4"] {
        for _ in 0..3 {
            h.send(a, json!({"type": "OFFER", "dst": dst, "payload": big}));
        }
    }
    let stats = h.s.stats();
    assert!(stats.queued_bytes <= 10_000, "{stats:?}");
    assert!(stats.queued_messages < 15, "{stats:?}");
    // Delivering a queue frees its room.
    let (zed, out) = h.connect("key=peerjs&id=zed&token=t");
    assert_eq!(frames(&out, zed).len(), 4);
    assert!(h.s.stats().queued_bytes < stats.queued_bytes);
}

#[test]
fn only_heartbeats_keep_a_client_alive() {
    let mut h = H::with(Config {
        alive_timeout: Duration::from_secs(60),
        ..Config::default()
    });
    let (a, b) = h.register_two();
    for _ in 0..11 {
        h.advance(Duration::from_secs(10));
        h.send(a, json!({"type": "HEARTBEAT"}));
        h.send(b, json!({"type": "OFFER", "dst": "a"}));
        if h.s.stats().clients == 1 {
            break;
        }
    }
    // b was cut off at 60 s; a, which sent heartbeats, is still there.
    assert_eq!(h.s.stats().clients, 1);
    let out = h.send(a, json!({"type": "OFFER", "dst": "b"}));
    assert!(out.is_empty(), "queued for b, which is gone: {out:?}");
    let out = h.advance(Duration::from_secs(60));
    assert_eq!(closed(&out, a), Some(Close::AliveTimeout));
    assert_eq!(h.s.stats().clients, 0);
}

#[test]
fn the_alive_timeout_closes_exactly_on_time() {
    let mut h = H::with(Config {
        alive_timeout: Duration::from_secs(60),
        ..Config::default()
    });
    let a = h.register("a", "t");
    h.advance(Duration::from_secs(30));
    h.send(a, json!({"type": "HEARTBEAT"}));
    // 60 s after the last heartbeat, not after connecting.
    let out = h.advance(Duration::from_millis(59_999));
    assert!(out.is_empty(), "{out:?}");
    let out = h.advance(Duration::from_millis(1));
    assert_eq!(closed(&out, a), Some(Close::AliveTimeout));
    assert_eq!(h.s.next_deadline(), None);
}

#[test]
fn bad_messages_are_answered_error_and_the_connection_closed() {
    let mut h = H::new();
    h.register("victim", "t");
    for (text, want) in [
        ("not json", r#"expected a JSON object with a string "type""#),
        ("[1,2]", r#"expected a JSON object with a string "type""#),
        (
            r#"{"dst":"victim"}"#,
            r#"expected a JSON object with a string "type""#,
        ),
        (
            r#"{"type":7}"#,
            r#"expected a JSON object with a string "type""#,
        ),
        (
            r#"{"type":"OFFER","dst":"victim","dst":"x"}"#,
            r#"expected a JSON object with a string "type""#,
        ),
        (
            r#"{"type":"ANSWER","payload":{}}"#,
            r#"ANSWER needs a "dst": the id to send it to"#,
        ),
        (
            r#"{"type":"OFFER","dst":""}"#,
            r#"OFFER needs a "dst": the id to send it to"#,
        ),
    ] {
        let a = h.register("a", "t");
        let out = h.text(a, text);
        assert_eq!(
            frames(&out, a),
            [error(&format!("Invalid message: {want}"))],
            "{text}"
        );
        assert!(matches!(
            closed(&out, a),
            Some(Close::Error(PeerjsError::BadMessage(_)))
        ));
        assert_eq!(h.s.stats().clients, 1, "the id is free again");
    }
}

#[test]
fn a_forged_source_is_refused_and_the_own_id_accepted() {
    let mut h = H::new();
    let (a, b) = h.register_two();
    let out = h.send(a, json!({"type": "OFFER", "src": "a", "dst": "b"}));
    assert_eq!(
        frames(&out, b),
        [json!({"type": "OFFER", "src": "a", "dst": "b"})]
    );
    let out = h.send(a, json!({"type": "OFFER", "src": "b", "dst": "b"}));
    assert!(frames(&out, b).is_empty());
    assert_eq!(closed_for(&out, a), Some(PeerjsError::ForgedSource));
}

#[test]
fn leave_without_dst_frees_the_id_and_closes() {
    let mut h = H::new();
    let a = h.register("a", "t");
    let out = h.send(a, json!({"type": "LEAVE"}));
    assert_eq!(
        out,
        [Output::Close {
            conn: a,
            reason: Close::Left
        }]
    );
    h.register("a", "another");
}

#[test]
fn the_rate_limit_cuts_off_a_flooding_connection() {
    let mut h = H::with(Config {
        rate_per_sec: 10,
        rate_burst: 20,
        ..Config::default()
    });
    let (a, b) = h.register_two();
    for _ in 0..20 {
        let out = h.send(a, json!({"type": "CANDIDATE", "dst": "b"}));
        assert_eq!(frames(&out, b).len(), 1);
    }
    let out = h.send(a, json!({"type": "CANDIDATE", "dst": "b"}));
    assert_eq!(
        frames(&out, a),
        [error(&PeerjsError::RateLimited.to_string())]
    );
    assert_eq!(closed_for(&out, a), Some(PeerjsError::RateLimited));
    // b, at a normal pace, is unaffected.
    h.advance(Duration::from_millis(100));
    let out = h.send(b, json!({"type": "HEARTBEAT"}));
    assert!(out.is_empty());
}

#[test]
fn the_byte_rate_counts_bytes() {
    let mut h = H::with(Config {
        byte_rate_per_sec: 1024,
        byte_burst: 4096,
        ..Config::default()
    });
    let (a, _) = h.register_two();
    let big = "x".repeat(1500);
    h.send(a, json!({"type": "OFFER", "dst": "b", "payload": big}));
    h.send(a, json!({"type": "OFFER", "dst": "b", "payload": big}));
    let out = h.send(a, json!({"type": "OFFER", "dst": "b", "payload": big}));
    assert_eq!(closed_for(&out, a), Some(PeerjsError::RateLimited));
}

#[test]
fn transport_rejections_close_with_the_reason() {
    let mut h = H::new();
    let a = h.register("a", "t");
    let mut out = Vec::new();
    h.s.reject(a, PeerjsError::TooLarge { max: 65536 }, &mut out);
    assert_eq!(
        frames(&out, a),
        [error("Message too large: at most 65536 bytes")]
    );
    assert_eq!(h.s.stats().clients, 0);
    // A connection the server does not know gets nothing.
    let mut out = Vec::new();
    h.s.reject(a, PeerjsError::TooLarge { max: 1 }, &mut out);
    assert!(out.is_empty());
}

#[test]
fn generated_ids_are_random_uuids_from_the_seed() {
    let mut h = H::new();
    let id = h.s.generate_id();
    assert_eq!(id.len(), 36);
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'), "{id}");
    assert!("89ab".contains(&parts[3][..1]), "{id}");
    assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
    assert_ne!(h.s.generate_id(), id);
    // The same seed gives the same ids.
    assert_eq!(H::new().s.generate_id(), id);
}

#[test]
fn discovery_lists_registered_ids_only_when_on() {
    let mut h = H::new();
    h.register("a", "t");
    assert_eq!(h.s.discover(), None);
    let mut h = H::with(Config {
        discovery: true,
        ..Config::default()
    });
    h.register_two();
    let mut ids = h.s.discover().unwrap_or_default();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn shutdown_closes_everyone_and_forgets_everything() {
    let mut h = H::new();
    let (a, b) = h.register_two();
    h.send(a, json!({"type": "OFFER", "dst": "zed"}));
    let mut out = Vec::new();
    h.s.shutdown(&mut out);
    assert_eq!(closed(&out, a), Some(Close::ShuttingDown));
    assert_eq!(closed(&out, b), Some(Close::ShuttingDown));
    assert_eq!(h.s.stats(), Stats::default());
    assert_eq!(h.s.next_deadline(), None);
}

#[test]
fn a_backed_up_recipient_gets_no_more_signals_and_each_sender_is_told_expire_once() {
    let mut h = H::with(Config {
        send_queue_bytes: 10_000,
        ..Config::default()
    });
    let a = h.register("a", "ta");
    let b = h.register("b", "tb");
    let c = h.register("c", "tc");
    let offer = json!({"type": "OFFER", "dst": "b", "payload": {"sdp": "x"}});
    // b's queue is full: nothing more for it, a is told once.
    h.queues.0.insert(b, (10_000, HashMap::new()));
    let out = h.send(a, offer.clone());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        frames(&out, a),
        [json!({"type": "EXPIRE", "src": "b", "dst": "a"})]
    );
    assert!(h.send(a, offer.clone()).is_empty(), "told once");
    let out = h.send(c, offer.clone());
    assert_eq!(
        frames(&out, c),
        [json!({"type": "EXPIRE", "src": "b", "dst": "c"})]
    );
    assert_eq!(closed(&out, b), None, "b stays");
    // b read: signals reach it again, and the next time it backs up, a is
    // told again.
    h.queues.0.clear();
    let out = h.send(a, offer.clone());
    assert_eq!(frames(&out, b).len(), 1);
    h.queues.0.insert(b, (10_000, HashMap::new()));
    assert_eq!(frames(&h.send(a, offer.clone()), a).len(), 1);
    // A signal to an empty queue goes, whatever its size.
    h.queues.0.clear();
    let big = json!({"type": "OFFER", "dst": "b", "payload": "x".repeat(20_000)});
    assert_eq!(frames(&h.send(c, big), b).len(), 1);
}

#[test]
fn one_sender_may_fill_only_a_quarter_of_a_queue() {
    let mut h = H::with(Config {
        send_queue_bytes: 10_000,
        ..Config::default()
    });
    let a = h.register("a", "ta");
    let b = h.register("b", "tb");
    let c = h.register("c", "tc");
    h.queues.0.insert(b, (2_500, HashMap::from([(a, 2_500)])));
    let offer = json!({"type": "OFFER", "dst": "b", "payload": {"sdp": "x"}});
    let out = h.send(a, offer.clone());
    assert_eq!(frames(&out, b), Vec::<Value>::new(), "a's share is used up");
    assert_eq!(frames(&out, a).len(), 1, "a is told EXPIRE");
    let out = h.send(c, offer);
    assert_eq!(frames(&out, b).len(), 1, "c still reaches b");
}
