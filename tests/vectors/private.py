"""Writes private.json, the shared scenarios for private conversations.

Run `python3 tests/vectors/private.py` after editing; both the Rust crate
(crates/history/tests/private.rs) and the web client
(tests/e2e/private.test.mjs) replay every scenario and must produce exactly
the effects written here (by hand).

Each scenario drives one member `me` with a room log (History) and its
private conversations (Conversations) side by side, as a client does: an
envelope that arrives is unwrapped if it is `private` and handed to the
conversation with its sender, else to the room's log.
"""
import json
import pathlib


def env(kind, **body):
    return json.dumps({"v": 1, "type": kind, **body}, separators=(",", ":"), ensure_ascii=False)


def chat(id, seq, clock, ts, text):
    return env("chat", id=id, seq=seq, clock=clock, ts=ts, text=text)


def file_entry(id, seq, clock, ts, file):
    return env("file", id=id, seq=seq, clock=clock, ts=ts, file=file)


def rec(author, nick, id, seq, clock, ts, text):
    return {"author": author, "nick": nick, "id": id, "seq": seq, "clock": clock, "ts": ts, "text": text}


def history(*records):
    return env("history", messages=list(records))


def sync(have):
    return env("sync", have=dict(sorted(have.items())))


def ack(upto):
    return env("ack", upto=upto)


def private(inner):
    """A `private` envelope as peerchat writes it: the inner envelope's text as it is."""
    return '{"v":1,"type":"private","body":' + inner + "}"


def send(to, text):
    return {"send": {"to": to, "text": text}}


def added(author, seq):
    return {"added": [author, seq]}


A, B, C, D = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc", "dddddddddddddddd"
CAT = {"fid": "f1", "name": "cat.png", "size": 40000, "type": "image/png", "piece": 16384,
       "sha256": "ab" * 32, "root": "cd" * 32}

scenarios = [
    {
        "name": "a private message goes only to its recipient, in a log of its own",
        "me": A,
        "steps": [
            {"do": "send", "peer": B, "id": "p1", "nick": "alice", "text": "psst", "ts": 10,
             "want": {"message": rec(A, "alice", "p1", 1, 1, 10, "psst"),
                      "envelope": private(chat("p1", 1, 1, 10, "psst"))}},
            {"do": "order", "peer": None, "want": []},
            {"do": "order", "peer": B, "want": [[A, 1]]},
            {"do": "delivery", "peer": B, "seq": 1, "want": {"acked": [], "waiting": [B]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 11, "text": private(ack(1)),
             "want": {"private": [{"acked": {"by": B, "upto": 1}}]}},
            {"do": "delivery", "peer": B, "seq": 1, "want": {"acked": [B], "waiting": []}},
            {"do": "receive", "from": B, "nick": "bob", "now": 12, "text": private(chat("q1", 1, 2, 12, "what?")),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "unread", "peer": B, "want": 1},
            {"do": "mark_read", "peer": B},
            {"do": "unread", "peer": B, "want": 0},
            {"do": "room_send", "id": "r1", "nick": "alice", "text": "hello all", "ts": 13, "recipients": [B, C],
             "want": chat("r1", 1, 1, 13, "hello all")},
            {"do": "receive", "from": C, "nick": "carol", "now": 14, "text": sync({}),
             "want": {"room": [send(C, history(rec(A, "alice", "r1", 1, 1, 13, "hello all")))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 15, "text": chat("b1", 1, 1, 15, "in the room"),
             "want": {"room": [added(B, 1), send(B, ack(1))]}},
            {"do": "order", "peer": None, "want": [[A, 1], [B, 1]]},
            {"do": "order", "peer": B, "want": [[A, 1], [B, 1]]},
            {"do": "peers", "want": [B]},
        ],
    },
    {
        "name": "a private log takes only the two parties' entries, whoever relays them",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": private(history(rec(C, "carol", "c1", 1, 1, 1, "not yours"),
                                     rec(B, "bob", "b1", 1, 2, 1, "mine"))),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": private(sync({A: 0, C: 1})),
             "want": {"private": [send(B, private(history(rec(B, "bob", "b1", 1, 2, 1, "mine"))))]}},
            {"do": "order", "peer": B, "want": [[B, 1]]},
            {"do": "order", "peer": None, "want": []},
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": private(private(chat("x", 2, 3, 3, "nested"))), "want": {"error": "bad_message"}},
            {"do": "receive", "from": B, "nick": "bob", "now": 4, "text": env("private", body=[1]),
             "want": {"room": {"error": "bad_message"}}},
            {"do": "receive", "from": B, "nick": "bob", "now": 5, "text": env("private"),
             "want": {"room": {"error": "bad_message"}}},
        ],
    },
    {
        "name": "an open channel brings a conversation's sync and what its party lacks, only if there is one",
        "me": A,
        "steps": [
            {"do": "link_opened", "peer": B, "want": {"room": [send(B, sync({}))], "private": []}},
            {"do": "send", "peer": C, "id": "p1", "nick": "alice", "text": "while you were away", "ts": 5,
             "want": {"message": rec(A, "alice", "p1", 1, 1, 5, "while you were away"),
                      "envelope": private(chat("p1", 1, 1, 5, "while you were away"))}},
            {"do": "link_opened", "peer": C, "want": {
                "room": [send(C, sync({}))],
                "private": [send(C, private(sync({A: 1}))),
                            send(C, private(history(rec(A, "alice", "p1", 1, 1, 5, "while you were away"))))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 6, "text": private(sync({A: 1})),
             "want": {"private": [{"acked": {"by": C, "upto": 1}}]}},
            {"do": "typed", "peer": C, "now": 7, "want": private(env("typing"))},
            {"do": "typed", "peer": D, "now": 7, "want": None},
            {"do": "receive", "from": D, "nick": "dave", "now": 8, "text": private(sync({A: 4})),
             "want": {"private": [{"acked": {"by": D, "upto": 4}}]}},
            {"do": "send", "peer": D, "id": "p5", "nick": "alice", "text": "numbering goes on", "ts": 9,
             "want": {"message": rec(A, "alice", "p5", 5, 5, 9, "numbering goes on"),
                      "envelope": private(chat("p5", 5, 5, 9, "numbering goes on"))}},
            {"do": "send", "peer": A, "id": "p6", "nick": "alice", "text": "to myself", "ts": 9,
             "want": {"error": "invalid"}},
            {"do": "send", "peer": B, "id": "p7", "nick": "alice", "text": "   ", "ts": 9,
             "want": {"error": "empty"}},
        ],
    },
    {
        "name": "a file offered privately is an entry of the conversation",
        "me": A,
        "steps": [
            {"do": "send_file", "peer": B, "id": "o1", "nick": "alice", "file": CAT, "ts": 3,
             "want": {"message": {**rec(A, "alice", "o1", 1, 1, 3, ""), "file": CAT},
                      "envelope": private(file_entry("o1", 1, 1, 3, CAT))}},
            {"do": "receive", "from": B, "nick": "bob", "now": 4,
             "text": private(file_entry("o2", 1, 2, 4, {**CAT, "fid": "f2"})),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "order", "peer": B, "want": [[A, 1], [B, 1]]},
            {"do": "order", "peer": None, "want": []},
        ],
    },
    {
        "name": "a conversation is saved and restored on its own; the quietest goes past the limit",
        "me": A,
        "config": {"limit": 2},
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": private(chat("b1", 1, 1, 1, "one")),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "save", "peer": B, "want": {"messages": [rec(B, "bob", "b1", 1, 1, 1, "one")],
                                               "recipients": [], "acks": [], "cleared": 0}},
            {"do": "save", "peer": C, "want": None},
            {"do": "restore", "peer": D, "now": 2, "saved": {
                "messages": [rec(D, "dave", "d1", 1, 1, 1, "kept"), rec(C, "carol", "c1", 1, 2, 1, "not here"),
                             rec(A, "alice", "a1", 1, 3, 2, "mine")],
                "recipients": [[1, [D]]], "acks": [[D, 1]], "cleared": 0},
             "want": [[D, 1], [A, 1]]},
            {"do": "delivery", "peer": D, "seq": 1, "want": {"acked": [D], "waiting": []}},
            {"do": "peers", "want": [B, D]},
            {"do": "receive", "from": C, "nick": "carol", "now": 3, "text": private(chat("c1", 1, 1, 3, "hi")),
             "want": {"private": [added(C, 1), send(C, private(ack(1)))]}},
            {"do": "peers", "want": [C, D]},
        ],
    },
]

doc = {
    "comment": "Shared scenarios for private conversations (docs/protocol.md, \"Private messages\"). "
               "Generated by private.py. Each scenario drives member `me`: a room log and its private "
               "conversations (at most `config.limit`, default 64), both with the default limits of "
               "history.json. Steps: send / send_file (peer, …): a private message or offer, want "
               "{message, envelope} or {error}; room_send: a room message, want its envelope; receive "
               "(from, nick, text, now): a `private` envelope goes to the conversation with `from` "
               "(want {private: effects} or {error}), any other to the room's log (want {room: effects}, "
               "or {room: {error}}); link_opened (peer): want {room, private} effects; order (peer, null "
               "for the room): [author, seq] in order; delivery (peer, seq); unread / mark_read (peer); "
               "peers: the conversations kept, sorted; typed (peer, now): the envelope or null; save "
               "(peer): the saved conversation or null; restore (peer, saved, now): [author, seq] added.",
    "scenarios": scenarios,
}
out = pathlib.Path(__file__).with_name("private.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
