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

from entries import CONTEXT, A, B, C, CAT, D, ChatEnv, ack, added, env, keys_hex, send, sync, wire
from entries import rec as signed_rec


def chat(author, nick, id, seq, clock, ts, text, to=None):
    """A `chat` envelope by `author`, signed; `to`: the recipient, in a private conversation."""
    return ChatEnv(id, seq, clock, ts, text).text(author, nick, to)


def file_entry(author, nick, id, seq, clock, ts, file, to=None):
    """A `file` envelope by `author`, signed as `chat` is."""
    return ChatEnv(id, seq, clock, ts, "", file=file).text(author, nick, to)


def rec(author, nick, id, seq, clock, ts, text, to=None, file=None):
    """An entry as kept and in a `history`, signed by its author."""
    return signed_rec(author, nick, id, seq, clock, ts, text, file=file, to=to)


def history(*records):
    return env("history", messages=[wire(r) for r in records])


def private(inner):
    """A `private` envelope as peerchat writes it: the inner envelope's text as it is."""
    return '{"v":2,"type":"private","body":' + inner + "}"


scenarios = [
    {
        "name": "a private message goes only to its recipient, in a log of its own",
        "me": A,
        "steps": [
            {"do": "send", "peer": B, "id": "p1", "nick": "alice", "text": "psst", "ts": 10,
             "want": {"message": rec(A, "alice", "p1", 1, 1, 10, "psst", to=B),
                      "envelope": private(chat(A, "alice", "p1", 1, 1, 10, "psst", to=B))}},
            {"do": "order", "peer": None, "want": []},
            {"do": "order", "peer": B, "want": [[A, 1]]},
            {"do": "delivery", "peer": B, "seq": 1, "want": {"acked": [], "waiting": [B]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 11, "text": private(ack(1)),
             "want": {"private": [{"acked": {"by": B, "upto": 1}}]}},
            {"do": "delivery", "peer": B, "seq": 1, "want": {"acked": [B], "waiting": []}},
            {"do": "receive", "from": B, "nick": "bob", "now": 12, "text": private(chat(B, "bob", "q1", 1, 2, 12, "what?", to=A)),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "unread", "peer": B, "want": 1},
            {"do": "mark_read", "peer": B},
            {"do": "unread", "peer": B, "want": 0},
            {"do": "room_send", "id": "r1", "nick": "alice", "text": "hello all", "ts": 13, "recipients": [B, C],
             "want": chat(A, "alice", "r1", 1, 1, 13, "hello all")},
            {"do": "receive", "from": C, "nick": "carol", "now": 14, "text": sync({}),
             "want": {"room": [send(C, history(rec(A, "alice", "r1", 1, 1, 13, "hello all")))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 15, "text": chat(B, "bob", "b1", 1, 1, 15, "in the room"),
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
             "text": private(history(rec(C, "carol", "c1", 1, 1, 1, "not yours", to=B),
                                     rec(B, "bob", "b1", 1, 2, 1, "mine", to=A))),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": private(sync({A: 0, C: 1})),
             "want": {"private": [send(B, private(history(rec(B, "bob", "b1", 1, 2, 1, "mine", to=A))))]}},
            {"do": "order", "peer": B, "want": [[B, 1]]},
            {"do": "order", "peer": None, "want": []},
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": private(private(chat(B, "bob", "x", 2, 3, 3, "nested", to=A))), "want": {"error": "bad_message"}},
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
             "want": {"message": rec(A, "alice", "p1", 1, 1, 5, "while you were away", to=C),
                      "envelope": private(chat(A, "alice", "p1", 1, 1, 5, "while you were away", to=C))}},
            {"do": "link_opened", "peer": C, "want": {
                "room": [send(C, sync({}))],
                "private": [send(C, private(sync({A: 1}))),
                            send(C, private(history(rec(A, "alice", "p1", 1, 1, 5, "while you were away", to=C))))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 6, "text": private(sync({A: 1})),
             "want": {"private": [{"acked": {"by": C, "upto": 1}}]}},
            {"do": "typed", "peer": C, "now": 7, "want": private(env("typing"))},
            {"do": "typed", "peer": D, "now": 7, "want": None},
            {"do": "receive", "from": D, "nick": "dave", "now": 8, "text": private(sync({A: 4})),
             "want": {"private": [{"acked": {"by": D, "upto": 4}}]}},
            {"do": "send", "peer": D, "id": "p5", "nick": "alice", "text": "numbering goes on", "ts": 9,
             "want": {"message": rec(A, "alice", "p5", 5, 5, 9, "numbering goes on", to=D),
                      "envelope": private(chat(A, "alice", "p5", 5, 5, 9, "numbering goes on", to=D))}},
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
             "want": {"message": rec(A, "alice", "o1", 1, 1, 3, "", to=B, file=CAT),
                      "envelope": private(file_entry(A, "alice", "o1", 1, 1, 3, CAT, to=B))}},
            {"do": "receive", "from": B, "nick": "bob", "now": 4,
             "text": private(file_entry(B, "bob", "o2", 1, 2, 4, {**CAT, "fid": "f2"}, to=A)),
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
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": private(chat(B, "bob", "b1", 1, 1, 1, "one", to=A)),
             "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
            {"do": "save", "peer": B, "want": {"messages": [rec(B, "bob", "b1", 1, 1, 1, "one", to=A)],
                                               "recipients": [], "acks": [], "cleared": 0}},
            {"do": "save", "peer": C, "want": None},
            {"do": "restore", "peer": D, "now": 2, "saved": {
                "messages": [rec(D, "dave", "d1", 1, 1, 1, "kept", to=A), rec(C, "carol", "c1", 1, 2, 1, "not here", to=D),
                             rec(A, "alice", "a1", 1, 3, 2, "mine", to=D)],
                "recipients": [[1, [D]]], "acks": [[D, 1]], "cleared": 0},
             "want": [[D, 1], [A, 1]]},
            {"do": "delivery", "peer": D, "seq": 1, "want": {"acked": [D], "waiting": []}},
            {"do": "peers", "want": [B, D]},
            {"do": "receive", "from": C, "nick": "carol", "now": 3, "text": private(chat(C, "carol", "c1", 1, 1, 3, "hi", to=A)),
             "want": {"private": [added(C, 1), send(C, private(ack(1)))]}},
            {"do": "peers", "want": [C, D]},
        ],
    },
]

scenarios.append({
    "name": "a private entry is signed for its recipient: it cannot be shown in the room or to someone else",
    "me": A,
    "steps": [
        # Carol relays, in the room, what bob told her privately.
        {"do": "receive", "from": C, "nick": "carol", "now": 1,
         "text": history(rec(B, "bob", "b1", 1, 1, 1, "between us", to=C)),
         "want": {"room": [{"forged": {"author": B, "seq": 1, "by": C}}]}},
        # Bob's room message, sent as a private one.
        {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": private(chat(B, "bob", "b1", 1, 1, 1, "all")),
         "want": {"private": [{"forged": {"author": B, "seq": 1, "by": B}}]}},
        # Our private message to bob, handed back to us by carol as ours to her.
        {"do": "receive", "from": C, "nick": "carol", "now": 3,
         "text": private(history(rec(A, "alice", "a1", 1, 2, 2, "for bob only", to=B))),
         "want": {"private": [{"forged": {"author": A, "seq": 1, "by": C}}]}},
        {"do": "receive", "from": B, "nick": "bob", "now": 4, "text": private(chat(B, "bob", "b1", 1, 3, 4, "psst", to=A)),
         "want": {"private": [added(B, 1), send(B, private(ack(1)))]}},
        {"do": "order", "peer": None, "want": []},
        {"do": "order", "peer": C, "want": []},
        {"do": "order", "peer": B, "want": [[B, 1]]},
    ],
})

for scenario in scenarios:
    scenario["context"] = CONTEXT
    scenario["keys"] = keys_hex()
    scenario["confirmed"] = [m for m in (A, B, C, D) if m != scenario["me"]]

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
               "(peer): the saved conversation or null; restore (peer, saved, now): [author, seq] added. "
               "Entries are signed as in history.json (`context`, `keys`, `confirmed` likewise), a private "
               "conversation's bound to its recipient (kind `private`); checks are done at once, as there.",
    "scenarios": scenarios,
}
out = pathlib.Path(__file__).with_name("private.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
