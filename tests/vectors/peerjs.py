"""Writes tests/vectors/peerjs.json: scripted sequences of PeerJS server
protocol messages, replayed by crates/peerjs (simulated time) and by
tests/e2e/peerjs.test.mjs against peer 1.0.2 and peerchat.

Run `python3 tests/vectors/peerjs.py` after editing.
"""
import json
from pathlib import Path
Q = lambda id, token="t1", key="peerjs": f"key={key}&id={id}&token={token}&version=1.5.5"
OPEN = {"type": "OPEN"}
def err(msg): return {"type": "ERROR", "payload": {"msg": msg}}
def c(name, query, server=None):
    s = {"connect": name, "query": query}
    if server: s["server"] = server
    return s
def send(name, message=None, text=None, server=None):
    s = {"send": name}
    if text is not None: s["text"] = text
    else: s["message"] = message
    if server: s["server"] = server
    return s
def exp(name, message, server=None):
    s = {"expect": name, "message": message}
    if server: s["server"] = server
    return s
def closed(name, server=None):
    s = {"expect_closed": name}
    if server: s["server"] = server
    return s

sdp = {"sdp": "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\n", "type": "offer"}
scenarios = [
 {"name": "register two ids and relay every kind of message: the server sets src",
  "steps": [
   c("a", Q("relay-a")), exp("a", OPEN),
   c("b", Q("relay-b")), exp("b", OPEN),
   send("a", {"type": "OFFER", "dst": "relay-b", "payload": {"sdp": sdp, "type": "data", "connectionId": "dc_1", "label": "dc_1", "reliable": True, "serialization": "binary", "metadata": {"name": "Zoë ✓"}}}),
   exp("b", {"type": "OFFER", "src": "relay-a", "dst": "relay-b", "payload": {"sdp": sdp, "type": "data", "connectionId": "dc_1", "label": "dc_1", "reliable": True, "serialization": "binary", "metadata": {"name": "Zoë ✓"}}}),
   send("b", {"type": "ANSWER", "dst": "relay-a", "payload": {"sdp": {"type": "answer", "sdp": "v=0\r\n"}, "type": "data", "connectionId": "dc_1"}}),
   exp("a", {"type": "ANSWER", "src": "relay-b", "dst": "relay-a", "payload": {"sdp": {"type": "answer", "sdp": "v=0\r\n"}, "type": "data", "connectionId": "dc_1"}}),
   send("a", {"type": "CANDIDATE", "dst": "relay-b", "payload": {"candidate": {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 40000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}, "type": "data", "connectionId": "dc_1"}}),
   exp("b", {"type": "CANDIDATE", "src": "relay-a", "dst": "relay-b", "payload": {"candidate": {"candidate": "candidate:1 1 udp 2113937151 127.0.0.1 40000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}, "type": "data", "connectionId": "dc_1"}}),
   send("b", {"type": "LEAVE", "dst": "relay-a"}),
   exp("a", {"type": "LEAVE", "src": "relay-b", "dst": "relay-a"}),
   send("a", {"type": "EXPIRE", "dst": "relay-b", "payload": None}),
   exp("b", {"type": "EXPIRE", "src": "relay-a", "dst": "relay-b", "payload": None}),
   send("a", {"type": "OFFER", "dst": "relay-a", "payload": {"to": "myself"}}),
   exp("a", {"type": "OFFER", "src": "relay-a", "dst": "relay-a", "payload": {"to": "myself"}}),
   send("a", {"type": "OFFER", "src": "relay-a", "dst": "relay-b", "payload": 1}),
   exp("b", {"type": "OFFER", "src": "relay-a", "dst": "relay-b", "payload": 1}),
  ]},
 {"name": "a missing parameter or a wrong key is answered ERROR and the connection closed",
  "steps": [
   c("a", "key=peerjs&id=missing-a"), exp("a", err("No id, token, or key supplied to websocket server")), closed("a"),
   c("b", "id=missing-b&token=t1"), exp("b", err("No id, token, or key supplied to websocket server")), closed("b"),
   c("c", "key=peerjs&id=&token=t1"), exp("c", err("No id, token, or key supplied to websocket server")), closed("c"),
   c("d", Q("missing-d", key="another")), exp("d", err("Invalid key provided")), closed("d"),
  ]},
 {"name": "an id in use under another token is answered ID-TAKEN; its holder is unaffected",
  "steps": [
   c("a", Q("taken-a", token="first")), exp("a", OPEN),
   c("b", Q("taken-a", token="second")), exp("b", {"type": "ID-TAKEN", "payload": {"msg": "ID is taken"}}), closed("b"),
   c("c", Q("taken-c")), exp("c", OPEN),
   send("c", {"type": "OFFER", "dst": "taken-a", "payload": {"n": 1}}),
   exp("a", {"type": "OFFER", "src": "taken-c", "dst": "taken-a", "payload": {"n": 1}}),
  ]},
 {"name": "messages for an id nobody holds wait for it, and arrive in order right after its OPEN",
  "steps": [
   c("a", Q("queue-a")), exp("a", OPEN),
   send("a", {"type": "OFFER", "dst": "queue-b", "payload": {"n": 1}}),
   send("a", {"type": "CANDIDATE", "dst": "queue-b", "payload": {"n": 2}}),
   send("a", {"type": "CANDIDATE", "dst": "queue-b", "payload": {"n": 3}}),
   send("a", {"type": "OFFER", "dst": "queue-a", "payload": "sync"}),
   exp("a", {"type": "OFFER", "src": "queue-a", "dst": "queue-a", "payload": "sync"}),
   c("b", Q("queue-b")), exp("b", OPEN),
   exp("b", {"type": "OFFER", "src": "queue-a", "dst": "queue-b", "payload": {"n": 1}}),
   exp("b", {"type": "CANDIDATE", "src": "queue-a", "dst": "queue-b", "payload": {"n": 2}}),
   exp("b", {"type": "CANDIDATE", "src": "queue-a", "dst": "queue-b", "payload": {"n": 3}}),
   send("a", {"type": "OFFER", "dst": "queue-b", "payload": {"n": 4}}),
   exp("b", {"type": "OFFER", "src": "queue-a", "dst": "queue-b", "payload": {"n": 4}}),
  ]},
 {"name": "when the id does not come in time, each sender is told EXPIRE once and the messages are dropped",
  "config": {"expire_timeout_ms": 1000},
  "steps": [
   c("a", Q("expire-a")), exp("a", OPEN),
   c("c", Q("expire-c")), exp("c", OPEN),
   send("a", {"type": "OFFER", "dst": "expire-zed", "payload": {"n": 1}}),
   send("a", {"type": "CANDIDATE", "dst": "expire-zed", "payload": {"n": 2}}),
   send("c", {"type": "OFFER", "dst": "expire-zed", "payload": {"n": 3}}),
   exp("a", {"type": "EXPIRE", "src": "expire-zed", "dst": "expire-a"}),
   exp("c", {"type": "EXPIRE", "src": "expire-zed", "dst": "expire-c"}),
   send("c", {"type": "OFFER", "dst": "expire-a", "payload": "after"}),
   exp("a", {"type": "OFFER", "src": "expire-c", "dst": "expire-a", "payload": "after"}),
   c("z", Q("expire-zed")), exp("z", OPEN),
   send("a", {"type": "OFFER", "dst": "expire-zed", "payload": "fresh"}),
   exp("z", {"type": "OFFER", "src": "expire-a", "dst": "expire-zed", "payload": "fresh"}),
  ]},
 {"name": "LEAVE and EXPIRE for an id nobody holds are dropped, not queued",
  "steps": [
   c("a", Q("drop-a")), exp("a", OPEN),
   send("a", {"type": "LEAVE", "dst": "drop-b"}),
   send("a", {"type": "EXPIRE", "dst": "drop-b"}),
   send("a", {"type": "OFFER", "dst": "drop-b", "payload": "kept"}),
   send("a", {"type": "OFFER", "dst": "drop-a", "payload": "sync"}),
   exp("a", {"type": "OFFER", "src": "drop-a", "dst": "drop-a", "payload": "sync"}),
   c("b", Q("drop-b")), exp("b", OPEN),
   exp("b", {"type": "OFFER", "src": "drop-a", "dst": "drop-b", "payload": "kept"}),
   send("a", {"type": "OFFER", "dst": "drop-b", "payload": "next"}),
   exp("b", {"type": "OFFER", "src": "drop-a", "dst": "drop-b", "payload": "next"}),
  ]},
 {"name": "HEARTBEAT is not answered, and unknown types are ignored",
  "steps": [
   c("a", Q("quiet-a")), exp("a", OPEN),
   c("b", Q("quiet-b")), exp("b", OPEN),
   send("a", {"type": "HEARTBEAT"}),
   send("a", {"type": "PING", "dst": "quiet-b", "payload": 1}),
   send("a", {"type": "offer", "dst": "quiet-b", "payload": 2}),
   send("a", {"type": "OFFER", "dst": "quiet-b", "payload": 3}),
   exp("b", {"type": "OFFER", "src": "quiet-a", "dst": "quiet-b", "payload": 3}),
   send("b", {"type": "OFFER", "dst": "quiet-a", "payload": 4}),
   exp("a", {"type": "OFFER", "src": "quiet-b", "dst": "quiet-a", "payload": 4}),
  ]},
 {"name": "a client that sends no HEARTBEAT within the alive timeout is disconnected; other messages do not count",
  "config": {"alive_timeout_ms": 2000},
  "steps": [
   c("a", Q("alive-a")), exp("a", OPEN),
   c("b", Q("alive-b")), exp("b", OPEN),
   send("b", {"type": "OFFER", "dst": "alive-a", "payload": 1}),
   exp("a", {"type": "OFFER", "src": "alive-b", "dst": "alive-a", "payload": 1}),
   closed("a"), closed("b"),
  ]},
 {"name": "past the concurrent limit, a new id is answered ERROR",
  "steps": [
   *[s for i in range(1, 6) for s in (c(f"c{i}", Q(f"limit-{i}")), exp(f"c{i}", OPEN))],
   c("c6", Q("limit-6")), exp("c6", err("Server has reached its concurrent user limit")), closed("c6"),
   send("c1", {"type": "OFFER", "dst": "limit-5", "payload": "still here"}),
   exp("c5", {"type": "OFFER", "src": "limit-1", "dst": "limit-5", "payload": "still here"}),
  ]},
 {"name": "a client reconnecting with its id and token while its old connection is open",
  "differs": "peerchat answers OPEN and closes the old connection; peer 1.0.2 sends nothing, so the client's reconnect() never sees OPEN (the old connection stays open, unused)",
  "steps": [
   c("a", Q("again-a", token="mine")), exp("a", OPEN),
   c("b", Q("again-b")), exp("b", OPEN),
   c("a2", Q("again-a", token="mine")),
   exp("a2", OPEN, server="peerchat"),
   closed("a", server="peerchat"),
   send("b", {"type": "OFFER", "dst": "again-a", "payload": "to the new connection"}),
   exp("a2", {"type": "OFFER", "src": "again-b", "dst": "again-a", "payload": "to the new connection"}),
  ]},
 {"name": "a message that is not a JSON object with a type",
  "differs": "peerchat answers ERROR and closes the connection; peer 1.0.2 ignores it",
  "steps": [
   c("a", Q("junk-a")), exp("a", OPEN),
   c("b", Q("junk-b")), exp("b", OPEN),
   send("a", text="this is not JSON"),
   exp("a", err('Invalid message: expected a JSON object with a string "type"'), server="peerchat"),
   closed("a", server="peerchat"),
   send("a", {"type": "OFFER", "dst": "junk-b", "payload": "after junk"}, server="peer"),
   exp("b", {"type": "OFFER", "src": "junk-a", "dst": "junk-b", "payload": "after junk"}, server="peer"),
  ]},
 {"name": "OFFER, ANSWER or CANDIDATE without dst",
  "differs": "peerchat answers ERROR and closes the connection; peer 1.0.2 ignores it",
  "steps": [
   c("a", Q("nodst-a")), exp("a", OPEN),
   c("b", Q("nodst-b")), exp("b", OPEN),
   send("a", {"type": "CANDIDATE", "payload": {"candidate": "x"}}),
   exp("a", err('Invalid message: CANDIDATE needs a "dst": the id to send it to'), server="peerchat"),
   closed("a", server="peerchat"),
   send("a", {"type": "OFFER", "dst": "nodst-b", "payload": "after"}, server="peer"),
   exp("b", {"type": "OFFER", "src": "nodst-a", "dst": "nodst-b", "payload": "after"}, server="peer"),
  ]},
 {"name": "a src that names another client",
  "differs": "peerchat answers ERROR and closes the connection (a client that names another as the sender is forging); peer 1.0.2 replaces src with the sender's id",
  "steps": [
   c("a", Q("forge-a")), exp("a", OPEN),
   c("b", Q("forge-b")), exp("b", OPEN),
   send("a", {"type": "OFFER", "src": "forge-b", "dst": "forge-b", "payload": "forged"}),
   exp("a", err("Invalid message: src must be your own id or left out (the server sets it)"), server="peerchat"),
   closed("a", server="peerchat"),
   exp("b", {"type": "OFFER", "src": "forge-a", "dst": "forge-b", "payload": "forged"}, server="peer"),
  ]},
 {"name": "LEAVE without dst gives up the id",
  "differs": "peerchat also closes the connection; peer 1.0.2 forgets the id but leaves the connection open, relaying what it sends under an id it no longer holds",
  "steps": [
   c("a", Q("bye-a", token="first")), exp("a", OPEN),
   send("a", {"type": "LEAVE"}),
   closed("a", server="peerchat"),
   c("b", Q("bye-a", token="second")), exp("b", OPEN),
  ]},
 {"name": "an id longer than 128 bytes",
  "differs": "peerchat answers ERROR (every id is kept in memory, so its size is bounded); peer 1.0.2 accepts any length",
  "steps": [
   c("a", Q("x" * 129)),
   exp("a", err("Invalid id provided: an id is 1 to 128 bytes, without control characters"), server="peerchat"),
   closed("a", server="peerchat"),
   exp("a", OPEN, server="peer"),
  ]},
]
doc = {
 "comment": "Shared scenarios for the PeerJS server protocol (docs/peerjs.md). Generated by peerjs.py. Each scenario starts from a fresh server with `config`, changed by the scenario's own `config` if it has one; `connect` opens a WebSocket to {path}peerjs?QUERY, `send` sends `message` as JSON (or `text` as it is), `expect` takes the next message the connection received and compares it as JSON, `expect_closed` says the server closed the connection next. A step with `server` applies to that server only (`peer`: peer 1.0.2 from npm, `peerchat`); `differs` says why. crates/peerjs replays them with simulated time (peerchat's steps); tests/e2e/peerjs.test.mjs runs them against both real servers.",
 "config": {"key": "peerjs", "expire_timeout_ms": 5000, "alive_timeout_ms": 60000, "concurrent_limit": 5},
 "scenarios": scenarios,
}
Path(__file__).with_name("peerjs.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
