"""Writes history.json, the shared scenarios for the message log.

Run `python3 tests/vectors/history.py` after editing; both the Rust crate
(crates/history/tests/vectors.rs) and the web client (tests/e2e/history.test.mjs)
replay every scenario and must produce exactly the effects written here.

Every entry is signed (protocol version 2) by its author's Ed25519 key
(entries.py).
"""
import json
import pathlib

from entries import (A, B, C, CAT, CONTEXT, D, SEEDS, ChatEnv, about, ack, added, arec, chat, env, file_entry, forged,
                     frec, history, keys_hex, public, rec, send, sig, sync)

# A saved log (History::save, history.js `save()`): messages in order, the
# recipients of each of our messages by number (sorted, once each, without
# us), each member's acknowledgement by id, the clear mark.
SAVED = {
    "messages": [rec(A, "alice", "a1", 1, 1, 1, "one"), rec(B, "bob", "b1", 1, 5, 3, "two"),
                 rec(A, "alice", "a2", 2, 6, 4, "three")],
    "recipients": [[1, [B, C]], [2, [B]]],
    "acks": [[C, 1]],
    "cleared": 0,
}

scenarios = [
    {
        "name": "sending numbers messages and moves the clock",
        "me": A,
        "steps": [
            {"do": "send", "id": "m1", "nick": "alice", "text": "hi", "ts": 10, "recipients": [C, B, A, B],
             "want": {"message": rec(A, "alice", "m1", 1, 1, 10, "hi"), "envelope": chat("m1", 1, 1, 10, "hi")}},
            {"do": "send", "id": "m2", "nick": "alice", "text": "again", "ts": 11, "recipients": [B],
             "want": {"message": rec(A, "alice", "m2", 2, 2, 11, "again"), "envelope": chat("m2", 2, 2, 11, "again")}},
            {"do": "send", "id": "m3", "nick": "alice", "text": " \n ", "ts": 12, "recipients": [],
             "want": {"error": "empty"}},
            {"do": "send", "id": "m3", "nick": "alice", "text": "x" * 16385, "ts": 12, "recipients": [],
             "want": {"error": "too_large"}},
            {"do": "delivery", "seq": 1, "want": {"acked": [], "waiting": [B, C]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 20, "text": ack(1),
             "want": {"effects": [{"acked": {"by": B, "upto": 1}}]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 20, "text": ack(1), "want": {"effects": []}},
            {"do": "receive", "from": C, "nick": "carol", "now": 20, "text": ack(9),
             "want": {"effects": [{"acked": {"by": C, "upto": 2}}]}},
            {"do": "delivery", "seq": 1, "want": {"acked": [B, C], "waiting": []}},
            {"do": "delivery", "seq": 2, "want": {"acked": [], "waiting": [B]}},
            {"do": "state", "want": {"clock": 2, "last_seq": 2}},
        ],
    },
    {
        "name": "a chat is shown once, acknowledged, and pushes the clock",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 5, "text": chat("x", 1, 7, 100, "hello"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 6, "text": chat("x", 1, 7, 100, "hello"),
             "want": {"effects": []}},
            {"do": "send", "id": "r", "nick": "alice", "text": "reply", "ts": 101, "recipients": [B],
             "want": {"message": rec(A, "alice", "r", 1, 8, 101, "reply"), "envelope": chat("r", 1, 8, 101, "reply")}},
            {"do": "order", "want": [[B, 1], [A, 1]]},
            {"do": "receive", "from": B, "nick": "bob", "now": 7, "text": "{\"v\":1,\"type\":\"chat\"}",
             "want": {"error": "bad_message"}},
            {"do": "receive", "from": B, "nick": "bob", "now": 7, "text": "nope", "want": {"error": "bad_json"}},
            {"do": "receive", "from": B, "nick": "bob", "now": 7, "text": env("reaction", to="x"),
             "want": {"effects": []}},
        ],
    },
    {
        "name": "a gap holds the acknowledgement back until it is filled",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b2", 2, 2, 2, "two"),
             "want": {"effects": [added(B, 2)]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 1, 1, "one")),
             "want": {"effects": [added(B, 1), send(B, ack(2))]}},
            {"do": "order", "want": [[B, 1], [B, 2]]},
        ],
    },
    {
        "name": "equal clocks sort by author, then number",
        "me": A,
        "steps": [
            {"do": "receive", "from": C, "nick": "carol", "now": 1, "text": chat("c", 1, 3, 1, "c"),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b", 1, 3, 1, "b"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b0", 2, 2, 1, "earlier clock"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "order", "want": [[B, 2], [B, 1], [C, 1]]},
            {"do": "position", "author": C, "seq": 1, "want": 2},
            {"do": "state", "want": {"clock": 3, "last_seq": 0}},
        ],
    },
    {
        "name": "a sync is answered with what the peer lacks, once per channel",
        "me": A,
        "steps": [
            {"do": "send", "id": "a1", "nick": "alice", "text": "first", "ts": 1, "recipients": [B],
             "want": {"message": rec(A, "alice", "a1", 1, 1, 1, "first"), "envelope": chat("a1", 1, 1, 1, "first")}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2, "text": chat("c1", 1, 2, 2, "from carol"),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "send", "id": "a2", "nick": "alice", "text": "second", "ts": 3, "recipients": [B, C],
             "want": {"message": rec(A, "alice", "a2", 2, 3, 3, "second"), "envelope": chat("a2", 2, 3, 3, "second")}},
            # Our messages for B it has not acknowledged go along at once.
            {"do": "link_opened", "peer": B, "want": {"effects": [
                send(B, sync({A: 2, C: 1})),
                send(B, history(rec(A, "alice", "a1", 1, 1, 1, "first"), rec(A, "alice", "a2", 2, 3, 3, "second")))]}},
            {"do": "link_opened", "peer": C, "want": {"effects": [
                send(C, sync({A: 2, C: 1})),
                send(C, history(rec(A, "alice", "a2", 2, 3, 3, "second")))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1000, "text": sync({A: 1}),
             "want": {"effects": [{"acked": {"by": B, "upto": 1}},
                                  send(B, history(rec(C, "carol", "c1", 1, 2, 2, "from carol"),
                                                  rec(A, "alice", "a2", 2, 3, 3, "second")))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1500, "text": sync({}), "want": {"effects": []}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3000, "text": sync({A: 2, C: 1}),
             "want": {"effects": [{"acked": {"by": B, "upto": 2}}]}},
            {"do": "link_opened", "peer": B, "want": {"effects": [send(B, sync({A: 2, C: 1}))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3001, "text": sync({C: 1}),
             "want": {"effects": [send(B, history(rec(A, "alice", "a1", 1, 1, 1, "first"),
                                                   rec(A, "alice", "a2", 2, 3, 3, "second")))]}},
        ],
    },
    {
        "name": "history answers are split to stay small",
        "me": A,
        "config": {"batch_bytes": 700},
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 1, 1, "y" * 100),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b2", 2, 2, 1, "z" * 100),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b3", 3, 3, 1, "w"),
             "want": {"effects": [added(B, 3), send(B, ack(3))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2, "text": sync({}),
             "want": {"effects": [send(C, history(rec(B, "bob", "b1", 1, 1, 1, "y" * 100))),
                                  send(C, history(rec(B, "bob", "b2", 2, 2, 1, "z" * 100),
                                                  rec(B, "bob", "b3", 3, 3, 1, "w")))]}},
        ],
    },
    {
        "name": "a full log drops the oldest and refuses older ones",
        "me": A,
        "config": {"capacity": 2},
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 5, 1, "one"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b2", 2, 6, 1, "two"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 1, "text": chat("c1", 1, 7, 1, "three"),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "order", "want": [[B, 2], [C, 1]]},
            {"do": "receive", "from": C, "nick": "carol", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 5, 1, "one"), rec(C, "carol", "c0", 2, 1, 1, "too old")),
             "want": {"effects": []}},
            {"do": "order", "want": [[B, 2], [C, 1]]},
        ],
    },
    {
        "name": "a peer holding more of ours than we remember keeps our numbers unique",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": sync({A: 4}),
             "want": {"effects": [{"acked": {"by": B, "upto": 4}}]}},
            {"do": "send", "id": "n", "nick": "alice", "text": "new", "ts": 5, "recipients": [B],
             "want": {"message": rec(A, "alice", "n", 5, 5, 5, "new"), "envelope": chat("n", 5, 5, 5, "new")}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": history(rec(A, "alice", "o", 1, 1, 1, "old one of mine")),
             "want": {"effects": [added(A, 1)]}},
            {"do": "order", "want": [[A, 1], [A, 5]]},
        ],
    },
    {
        "name": "no one can push our numbering or the clock further than a plausible jump",
        "me": A,
        "steps": [
            # A claim on our numbering beyond 2^30 past what we used: not believed.
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": sync({A: 2**30 + 1}),
             "want": {"effects": []}},
            {"do": "send", "id": "n1", "nick": "alice", "text": "one", "ts": 5, "recipients": [B],
             "want": {"message": rec(A, "alice", "n1", 1, 1, 5, "one"), "envelope": chat("n1", 1, 1, 5, "one")}},
            # A message far ahead is kept (it may be honest), but moves our
            # clock only 2^30 past our own newest message.
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": chat("b1", 1, 2**30 + 6, 6, "far ahead"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            # A message claiming to be ours, numbered too far past ours: dropped.
            {"do": "receive", "from": C, "nick": "carol", "now": 4,
             "text": history(rec(A, "alice", "x", 2**30 + 2, 3, 7, "not mine")),
             "want": {"effects": []}},
            # At the bound exactly: believed (we may have lost our storage).
            {"do": "receive", "from": C, "nick": "carol", "now": 5, "text": sync({A: 1 + 2**30}),
             "want": {"effects": [{"acked": {"by": C, "upto": 1 + 2**30}},
                                  send(C, history(rec(B, "bob", "b1", 1, 2**30 + 6, 6, "far ahead")))]}},
            {"do": "send", "id": "n2", "nick": "alice", "text": "two", "ts": 8, "recipients": [B],
             "want": {"message": rec(A, "alice", "n2", 2 + 2**30, 2 + 2**30, 8, "two"),
                      "envelope": chat("n2", 2 + 2**30, 2 + 2**30, 8, "two")}},
            # Pushing again moves the clock only 2^30 past our newest again.
            {"do": "receive", "from": B, "nick": "bob", "now": 9, "text": chat("b2", 2, 2**40, 9, "further"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "send", "id": "n3", "nick": "alice", "text": "three", "ts": 10, "recipients": [B],
             "want": {"message": rec(A, "alice", "n3", 3 + 2**30, 3 + 2**31, 10, "three"),
                      "envelope": chat("n3", 3 + 2**30, 3 + 2**31, 10, "three")}},
            {"do": "order", "want": [[A, 1], [A, 2 + 2**30], [B, 1], [A, 3 + 2**30], [B, 2]]},
        ],
    },
    {
        "name": "cleared messages do not come back from others",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 4, 1, "old"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "clear"},
            {"do": "order", "want": []},
            {"do": "link_opened", "peer": C, "want": {"effects": [send(C, sync({B: 1}))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2,
             "text": history(rec(B, "bob", "b1", 1, 4, 1, "old"), rec(C, "carol", "c1", 1, 3, 1, "older")),
             # Refused, but seen: carol's older one is acknowledged.
             "want": {"effects": [send(C, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3, "text": chat("b2", 2, 5, 2, "new"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "order", "want": [[B, 2]]},
        ],
    },
    {
        # Terminal clients sharing a history file once shared a room's clear
        # mark too: a late joiner restored another member's and refused the
        # conversation. Each member restores only its own saved state; a
        # fresh member's is empty, and another member's clear changes
        # nothing for it.
        "name": "a late joiner gets what another member cleared",
        "me": C,
        "steps": [
            {"do": "restore", "saved": {"messages": [], "recipients": [], "acks": [], "cleared": 0}, "want": []},
            {"do": "link_opened", "peer": B, "want": {"effects": [send(B, sync({}))]}},
            # B cleared: it holds nothing, yet its sync still names what it saw.
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": sync({A: 3, B: 1}),
             "want": {"effects": []}},
            {"do": "link_opened", "peer": A, "want": {"effects": [send(A, sync({}))]}},
            {"do": "receive", "from": A, "nick": "alice", "now": 2,
             "text": history(rec(A, "alice", "a1", 1, 1, 1, "one"), rec(A, "alice", "a2", 2, 2, 2, "two"),
                             rec(B, "bob", "b1", 1, 3, 3, "three"), rec(A, "alice", "a3", 3, 4, 4, "four")),
             "want": {"effects": [added(A, 1), added(A, 2), added(B, 1), added(A, 3),
                                  send(A, ack(3)), send(B, ack(1))]}},
            {"do": "order", "want": [[A, 1], [A, 2], [B, 1], [A, 3]]},
        ],
    },
    {
        # A member's own clear mark, restored, keeps what it cleared away; the
        # cleared messages still count as seen, so what their authors send
        # next is acknowledged (it would wait for this member for ever).
        "name": "a restored clear mark keeps cleared messages away and acknowledges what follows",
        "me": C,
        "steps": [
            {"do": "restore", "saved": {"messages": [rec(A, "alice", "a3", 3, 6, 6, "after")], "recipients": [],
                                        "acks": [], "cleared": 4}, "want": [[A, 3]]},
            {"do": "link_opened", "peer": A, "want": {"effects": [send(A, sync({}))]}},
            {"do": "receive", "from": A, "nick": "alice", "now": 1,
             "text": history(rec(A, "alice", "a1", 1, 1, 1, "one"), rec(A, "alice", "a2", 2, 4, 2, "two"),
                             rec(A, "alice", "a3", 3, 6, 6, "after")),
             "want": {"effects": [send(A, ack(3))]}},
            {"do": "receive", "from": A, "nick": "alice", "now": 2, "text": chat("a4", 4, 7, 7, "next"),
             "want": {"effects": [added(A, 4), send(A, ack(4))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3, "text": chat("b1", 1, 3, 3, "cleared"),
             "want": {"effects": [send(B, ack(1))]}},
            {"do": "order", "want": [[A, 3], [A, 4]]},
        ],
    },
    {
        # JSON as peerchat reads it: a number is worth its value as JavaScript
        # reads it (an IEEE 754 double), so 1.0 and 1e0 are the integer 1; a
        # member name given twice counts with its last value.
        "name": "integers are read by their value, and a repeated name by its last value",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": '{"v":1,"type":"chat","id":"b1","seq":1.0,"clock":1e0,"ts":1.0e3,"text":"one","sig":"%s"}'
                     % sig(B, "bob", "b1", 1, 1, 1000, "one"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "get", "author": B, "seq": 1, "want": rec(B, "bob", "b1", 1, 1, 1000, "one")},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": '{"v":1.0,"type":"chat","id":"b2","seq":2,"clock":2,"ts":2,"text":"first","text":"second",'
                     '"sig":"%s"}' % sig(B, "bob", "b2", 2, 2, 2, "second"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "get", "author": B, "seq": 2, "want": rec(B, "bob", "b2", 2, 2, 2, "second")},
            {"do": "receive", "from": C, "nick": "carol", "now": 3,
             "text": '{"v":1,"type":"chat","id":"c1","seq":1,"clock":1,"ts":1,"text":"   ","sig":"%s"}'
                     % sig(C, "carol", "c1", 1, 1, 1, "   "),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "send", "id": "a1", "nick": "alice", "text": " \u0085\u3000\n ", "ts": 4, "recipients": [B],
             "want": {"error": "empty"}},
            {"do": "send", "id": "a1", "nick": "alice", "text": "\ufeff", "ts": 4, "recipients": [B],
             "want": {"message": rec(A, "alice", "a1", 1, 3, 4, "\ufeff"),
                      "envelope": chat("a1", 1, 3, 4, "\ufeff")}},
        ],
    },
    {
        # JSON allows escaped surrogates that are not half of a pair; Unicode
        # text cannot hold them. Each reads as U+FFFD, as JavaScript writes
        # it when it encodes a string.
        "name": "a lone surrogate in a string reads as U+FFFD",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": '{"v":1,"type":"chat","id":"b1","seq":1,"clock":1,"ts":1,"text":"a\\ud800b","sig":"%s"}'
                     % sig(B, "bob", "b1", 1, 1, 1, "a\ufffdb"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "get", "author": B, "seq": 1, "want": rec(B, "bob", "b1", 1, 1, 1, "a\ufffdb")},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": '{"v":1,"type":"chat","id":"b2","seq":2,"clock":2,"ts":2,'
                     '"text":"\\ud83d\\ude00 \\udc00 \\ud800\\u0041 \\\\ud800 \\ud800","sig":"%s"}'
                     % sig(B, "bob", "b2", 2, 2, 2, "\U0001F600 \ufffd \ufffdA \\ud800 \ufffd"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "get", "author": B, "seq": 2,
             "want": rec(B, "bob", "b2", 2, 2, 2, "\U0001F600 \ufffd \ufffdA \\ud800 \ufffd")},
            {"do": "receive", "from": C, "nick": "carol", "now": 3,
             "text": '{"v":1,"type":"history","messages":[{"author":"bbbbbbbbbbbbbbbb","nick":"b\\udc00b",'
                     '"id":"b3","seq":3,"clock":3,"ts":3,"text":"\\ud83d","alg":"ed25519","key":"%s","sig":"%s"}]}'
                     % (public(B), sig(B, "b\ufffdb", "b3", 3, 3, 3, "\ufffd")),
             "want": {"effects": [added(B, 3), send(B, ack(3))]}},
            {"do": "get", "author": B, "seq": 3, "want": rec(B, "b\ufffdb", "b3", 3, 3, 3, "\ufffd")},
        ],
    },
    {
        # A message that breaks a rule but names its author and number is not
        # shown, yet counts as received: acknowledged, never asked for again,
        # so that it cannot hold its author's later messages back.
        "name": "a message that breaks a rule never holds its author's later ones back",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": '{"v":1,"type":"chat","id":"b1","seq":1,"clock":1,"ts":1,"text":""}',
             "want": {"effects": [{"refused": [B, 1]}, send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": chat("b2", 2, 2, 2, "x" * 16385),
             "want": {"effects": [{"refused": [B, 2]}, send(B, ack(2))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": '{"v":1,"type":"chat","id":"b3","seq":3,"clock":1.5,"ts":3,"text":"half a clock"}',
             "want": {"effects": [{"refused": [B, 3]}, send(B, ack(3))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 4, "text": chat("b4", 4, 4, 4, "x" * 16384),
             "want": {"effects": [added(B, 4), send(B, ack(4))]}},
            # Without a number it names nothing: dropped, with an error.
            {"do": "receive", "from": B, "nick": "bob", "now": 5,
             "text": '{"v":1,"type":"chat","id":"b5","seq":"5","clock":5,"ts":5,"text":"five"}',
             "want": {"error": "bad_message"}},
            # In a history, each message stands alone (here one its author
            # relays: a flawed message counts as received only from its
            # author, who alone can be held to it).
            {"do": "receive", "from": B, "nick": "bob", "now": 6,
             "text": history(rec(B, "bob", "b5", 5, 5, 5, "five"), rec(B, "", "b6", 6, 6, 6, "no nick"),
                             {"author": B, "nick": "bob", "id": "b0", "clock": 6, "ts": 6, "text": "no number"},
                             rec(B, "bob", "b7", 7, 7, 7, "seven")),
             "want": {"effects": [added(B, 5), {"refused": [B, 6]}, added(B, 7), send(B, ack(7))]}},
            # Out of order: counted when the ones before it are in.
            {"do": "receive", "from": B, "nick": "bob", "now": 7,
             "text": '{"v":1,"type":"chat","id":"b9","seq":9,"clock":9,"ts":9,"text":""}',
             "want": {"effects": [{"refused": [B, 9]}]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 8, "text": chat("b8", 8, 8, 8, "eight"),
             "want": {"effects": [added(B, 8), send(B, ack(8))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 9,
             "text": history(rec(B, "bob", "b9", 9, 9, 9, "")),
             "want": {"effects": [{"refused": [B, 9]}, send(B, ack(9))]}},
            # Ours are never taken from others, well formed or not.
            {"do": "receive", "from": B, "nick": "bob", "now": 10, "text": history(rec(A, "alice", "a1", 1, 1, 1, "")),
             "want": {"effects": []}},
            {"do": "order", "want": [[B, 4], [B, 5], [B, 7], [B, 8]]},
        ],
    },
    {
        # What a member keeps on its device between runs: its messages, whom
        # each of its own was for, each member's acknowledgement, the clear
        # mark. Restored into a fresh log, it is the same log.
        "name": "save and restore: a restored log is the log that was saved",
        "me": A,
        "steps": [
            {"do": "send", "id": "a1", "nick": "alice", "text": "one", "ts": 1, "recipients": [C, B],
             "want": {"message": rec(A, "alice", "a1", 1, 1, 1, "one"), "envelope": chat("a1", 1, 1, 1, "one")}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2, "text": ack(1),
             "want": {"effects": [{"acked": {"by": C, "upto": 1}}]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3, "text": chat("b1", 1, 5, 3, "two"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "send", "id": "a2", "nick": "alice", "text": "three", "ts": 4, "recipients": [B],
             "want": {"message": rec(A, "alice", "a2", 2, 6, 4, "three"), "envelope": chat("a2", 2, 6, 4, "three")}},
            {"do": "save", "want": SAVED},
            {"do": "clear"},
            {"do": "save", "want": {"messages": [], "recipients": [], "acks": [], "cleared": 6}},
        ],
    },
    {
        "name": "save and restore: the saved log comes back whole, once",
        "me": A,
        "steps": [
            {"do": "restore", "saved": SAVED, "want": [[A, 1], [B, 1], [A, 2]]},
            {"do": "restore", "saved": SAVED, "want": []},
            {"do": "save", "want": SAVED},
            {"do": "delivery", "seq": 1, "want": {"acked": [C], "waiting": [B]}},
            {"do": "delivery", "seq": 2, "want": {"acked": [], "waiting": [B]}},
            {"do": "state", "want": {"clock": 6, "last_seq": 2}},
            {"do": "send", "id": "a3", "nick": "alice", "text": "four", "ts": 5, "recipients": [B, C],
             "want": {"message": rec(A, "alice", "a3", 3, 7, 5, "four"), "envelope": chat("a3", 3, 7, 5, "four")}},
        ],
    },
    {
        "name": "typing notices are throttled and expire",
        "me": A,
        "steps": [
            {"do": "typed", "now": 1000, "want": env("typing")},
            {"do": "typed", "now": 2000, "want": None},
            {"do": "typed", "now": 4000, "want": env("typing")},
            {"do": "receive", "from": B, "nick": "bob", "now": 1000, "text": env("typing"),
             "want": {"effects": [{"typing": B}]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2000, "text": env("typing"),
             "want": {"effects": [{"typing": C}]}},
            {"do": "typing", "now": 6999, "want": [B, C]},
            {"do": "typing", "now": 7000, "want": [C]},
            {"do": "receive", "from": C, "nick": "carol", "now": 7001, "text": chat("c", 1, 1, 1, "done"),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "typing", "now": 7002, "want": []},
            {"do": "send", "id": "s", "nick": "alice", "text": "sent", "ts": 1, "recipients": [],
             "want": {"message": rec(A, "alice", "s", 1, 2, 1, "sent"), "envelope": chat("s", 1, 2, 1, "sent")}},
            {"do": "typed", "now": 4001, "want": env("typing")},
        ],
    },
]

scenarios += [
    {
        "name": "a chat whose signature does not verify is refused: not shown, not counted, not acknowledged",
        "me": A,
        "steps": [
            # Signed by someone else, or altered after signing.
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 1, 1, "hi", signer=C),
             "want": {"effects": [forged(B, 1, B)]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": chat("b1", 1, 1, 1, "hi!", sig=sig(B, "bob", "b1", 1, 1, 1, "hi")),
             "want": {"effects": [forged(B, 1, B)]}},
            # Signed for another nickname (the server announced it as bob).
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": chat("b1", 1, 1, 1, "hi", sig=sig(B, "mallory", "b1", 1, 1, 1, "hi")),
             "want": {"effects": [forged(B, 1, B)]}},
            {"do": "get", "author": B, "seq": 1, "want": None},
            # The real one is still taken: the forgeries counted for nothing.
            {"do": "receive", "from": B, "nick": "bob", "now": 4, "text": chat("b1", 1, 1, 1, "hi"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "get", "author": B, "seq": 1, "want": rec(B, "bob", "b1", 1, 1, 1, "hi")},
        ],
    },
    {
        "name": "a relayed history cannot put words in anyone's mouth, ours included",
        "me": A,
        "steps": [
            # Carol relays a message she signed as bob's, and one she signed as ours.
            {"do": "receive", "from": C, "nick": "carol", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 1, 1, "I owe carol money", signer=C),
                             rec(A, "alice", "a1", 1, 2, 1, "carol is right", signer=C),
                             rec(C, "carol", "c1", 1, 3, 1, "see?")),
             "want": {"effects": [forged(B, 1, C), forged(A, 1, C), added(C, 1), send(C, ack(1))]}},
            {"do": "order", "want": [[C, 1]]},
            # Bob's real first message still comes in, and ours are still ours to number.
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": chat("b1", 1, 4, 2, "hello"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "state", "want": {"clock": 4, "last_seq": 0}},
            # Nothing forged is passed on.
            {"do": "link_opened", "peer": D, "want": {"effects": [send(D, sync({B: 1, C: 1}))]}},
            {"do": "receive", "from": D, "nick": "dave", "now": 3, "text": sync({}),
             "want": {"effects": [send(D, history(rec(C, "carol", "c1", 1, 3, 1, "see?"),
                                                  rec(B, "bob", "b1", 1, 4, 2, "hello")))]}},
        ],
    },
    {
        "name": "a relayed message whose author's key is not known yet is kept as not yet verified, "
                "until the author's hello confirms its key or shows it forged",
        "me": A,
        "confirmed": [B],
        "steps": [
            # Bob relays carol's real message, and one he signed as dave's
            # (with his own key, which he says is dave's).
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": history(rec(C, "carol", "c1", 1, 1, 1, "from carol"),
                             rec(D, "dave", "d1", 1, 2, 1, "from 'dave'", signer=B)),
             "want": {"effects": [added(C, 1), added(D, 1), send(C, ack(1)), send(D, ack(1))]}},
            {"do": "get", "author": C, "seq": 1, "want": rec(C, "carol", "c1", 1, 1, 1, "from carol", relayed_by=B)},
            {"do": "get", "author": D, "seq": 1,
             "want": rec(D, "dave", "d1", 1, 2, 1, "from 'dave'", signer=B, relayed_by=B)},
            # Relayed on as they came, keys and all.
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": sync({}),
             "want": {"effects": [send(B, history(rec(C, "carol", "c1", 1, 1, 1, "from carol"),
                                                  rec(D, "dave", "d1", 1, 2, 1, "from 'dave'", signer=B)))]}},
            # Carol's hello confirms her key; dave's shows his message was forged.
            {"do": "key_confirmed", "author": C, "want": {"effects": [{"confirmed": [C, 1]}]}},
            {"do": "get", "author": C, "seq": 1, "want": rec(C, "carol", "c1", 1, 1, 1, "from carol")},
            {"do": "key_confirmed", "author": D,
             "want": {"effects": [{"removed": {"author": D, "seq": 1, "by": B}}]}},
            {"do": "order", "want": [[C, 1]]},
            # Dave's real first message is not shut out by the forgery.
            {"do": "receive", "from": D, "nick": "dave", "now": 3, "text": chat("d1", 1, 3, 3, "really me"),
             "want": {"effects": [added(D, 1), send(D, ack(1))]}},
            # Once a key is confirmed, a relayed message signed with another is refused.
            {"do": "receive", "from": B, "nick": "bob", "now": 4,
             "text": history(rec(C, "carol", "c2", 2, 4, 4, "me again?", signer=B)),
             "want": {"effects": [forged(C, 2, B)]}},
            {"do": "order", "want": [[C, 1], [D, 1]]},
        ],
    },
    {
        "name": "a flawed message relayed by someone other than its author names nothing: not counted",
        "me": A,
        "steps": [
            {"do": "receive", "from": C, "nick": "carol", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 1, 1, "")),
             "want": {"effects": []}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": chat("b1", 1, 1, 1, "the real one"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
        ],
    },
]

DOG = {**CAT, "fid": "f2", "name": "dog.gif", "type": "image/gif", "size": 1}

scenarios += [
    {
        "name": "a file offer is an entry of the log, numbered, acknowledged and synced like a message",
        "me": A,
        "steps": [
            {"do": "send_file", "id": "o1", "nick": "alice", "file": CAT, "ts": 10, "recipients": [B],
             "want": {"message": frec(A, "alice", "o1", 1, 1, 10, CAT), "envelope": file_entry("o1", 1, 1, 10, CAT)}},
            {"do": "send", "id": "m2", "nick": "alice", "text": "a cat", "ts": 11, "recipients": [B],
             "want": {"message": rec(A, "alice", "m2", 2, 2, 11, "a cat"), "envelope": chat("m2", 2, 2, 11, "a cat")}},
            {"do": "send_file", "id": "o3", "nick": "alice", "file": {**CAT, "piece": 1000}, "ts": 12,
             "recipients": [B], "want": {"error": "invalid"}},
            {"do": "receive", "from": B, "nick": "bob", "now": 20, "text": file_entry("b1", 1, 5, 20, DOG),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "get", "author": B, "seq": 1, "want": frec(B, "bob", "b1", 1, 5, 20, DOG)},
            {"do": "receive", "from": C, "nick": "carol", "now": 30, "text": sync({}),
             "want": {"effects": [send(C, history(frec(A, "alice", "o1", 1, 1, 10, CAT),
                                                  rec(A, "alice", "m2", 2, 2, 11, "a cat"),
                                                  frec(B, "bob", "b1", 1, 5, 20, DOG)))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 40,
             "text": history(frec(C, "carol", "c1", 1, 6, 40, {**DOG, "fid": "f3"})),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "order", "want": [[A, 1], [A, 2], [B, 1], [C, 1]]},
        ],
    },
    {
        "name": "an entry of a kind this client does not know counts as received",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": env("poll", id="p", seq=1, clock=1, ts=1, question="lunch?"),
             "want": {"effects": [{"refused": [B, 1]}, send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2, "text": chat("b2", 2, 2, 2, "so?"),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3, "text": env("reaction", to="b2", seq=3),
             "want": {"effects": []}},
            {"do": "receive", "from": C, "nick": "carol", "now": 4,
             "text": env("history", messages=[{**rec(C, "carol", "c1", 1, 1, 1, "x"), "kind": "poll"},
                                              {**rec(C, "carol", "c2", 2, 2, 2, "y"), "kind": "chat"}]),
             "want": {"effects": [{"refused": [C, 1]}, added(C, 2), send(C, ack(2))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 5,
             "text": file_entry("b3", 3, 3, 3, {**CAT, "sha256": "AB" * 32}),
             "want": {"effects": [{"refused": [B, 3]}, send(B, ack(3))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 6,
             "text": env("private", body=json.loads(chat("p1", 1, 1, 1, "psst").text(B, "bob", A))),
             "want": {"effects": []}},
            {"do": "order", "want": [[B, 2], [C, 2]]},
        ],
    },
]


def state(text=None, edited=False, deleted=False, reactions=()):
    """What `entry_state` answers: `text` only when edited."""
    out = {"edited": edited, "deleted": deleted,
           "reactions": [{"emoji": e, "by": [list(b) for b in by]} for e, by in reactions]}
    if text is not None:
        out = {"text": text, **out}
    return out


def say(kind, id, nick, text, ts, re=None, recipients=(), **want):
    """A `send_about` step: this member adds an entry of `kind`."""
    step = {"do": "send_about", "id": id, "nick": nick, "kind": kind, "text": text, "ts": ts,
            "recipients": list(recipients), "want": want}
    if re:
        step["re"] = {"author": re[0], "seq": re[1]}
    return step


PLAIN = state()
BOB, CAROL = [B, "bob"], [C, "carol"]
REACTED = [("👍", [BOB]), ("🎉", [CAROL])]

scenarios += [
    {
        "name": "replies, reactions, edits and deletions change what an entry shows",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 1, 10, "lunch?"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            say("reply", "a1", "alice", "yes!", 11, re=(B, 1), recipients=[B, C],
                message=arec("reply", A, "alice", "a1", 1, 2, 11, "yes!", re=(B, 1)),
                envelope=about("reply", "a1", 1, 2, 11, "yes!", re=(B, 1))),
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": about("react", "b2", 2, 3, 12, "👍", re=(A, 1)),
             "want": {"effects": [added(B, 2), send(B, ack(2))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 3,
             "text": about("react", "c1", 1, 4, 13, "👍", re=(A, 1)),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 4,
             "text": about("react", "c2", 2, 5, 14, "🎉", re=(A, 1)),
             "want": {"effects": [added(C, 2), send(C, ack(2))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 5,
             "text": about("unreact", "c3", 3, 6, 15, "👍", re=(A, 1)),
             "want": {"effects": [added(C, 3), send(C, ack(3))]}},
            {"do": "entry_state", "author": A, "seq": 1, "want": state(reactions=REACTED)},
            {"do": "receive", "from": B, "nick": "bob", "now": 6,
             "text": about("edit", "b3", 3, 7, 16, "lunch at noon?", re=(B, 1)),
             "want": {"effects": [added(B, 3), send(B, ack(3))]}},
            # Carol's own entries about Bob's message, signed by her: kept
            # (they are hers), but only an author edits or deletes.
            {"do": "receive", "from": C, "nick": "carol", "now": 7,
             "text": about("edit", "c4", 4, 8, 17, "no lunch", re=(B, 1)),
             "want": {"effects": [added(C, 4), send(C, ack(4))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 8,
             "text": about("delete", "c5", 5, 9, 18, re=(B, 1)),
             "want": {"effects": [added(C, 5), send(C, ack(5))]}},
            {"do": "entry_state", "author": B, "seq": 1, "want": state(text="lunch at noon?", edited=True)},
            say("edit", "x", "alice", "mine now", 19, re=(B, 1), error="not_yours"),
            say("delete", "x", "alice", "", 19, re=(B, 1), error="not_yours"),
            say("edit", "x", "alice", "  ", 19, re=(A, 1), error="empty"),
            say("react", "x", "alice", "", 19, re=(B, 1), error="invalid"),
            say("react", "x", "alice", "👍", 19, error="invalid"),
            say("edit", "a2", "alice", "yes, at noon", 19, re=(A, 1), recipients=[B, C],
                message=arec("edit", A, "alice", "a2", 2, 10, 19, "yes, at noon", re=(A, 1)),
                envelope=about("edit", "a2", 2, 10, 19, "yes, at noon", re=(A, 1))),
            {"do": "entry_state", "author": A, "seq": 1,
             "want": state(text="yes, at noon", edited=True, reactions=REACTED)},
            # A deletion is for good: reactions go, later edits change nothing.
            {"do": "receive", "from": B, "nick": "bob", "now": 9,
             "text": about("react", "b4", 4, 11, 20, "😂", re=(B, 1)),
             "want": {"effects": [added(B, 4), send(B, ack(4))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 10, "text": about("delete", "b5", 5, 12, 21, re=(B, 1)),
             "want": {"effects": [added(B, 5), send(B, ack(5))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 11,
             "text": about("edit", "b6", 6, 13, 22, "too late", re=(B, 1)),
             "want": {"effects": [added(B, 6), send(B, ack(6))]}},
            {"do": "entry_state", "author": B, "seq": 1, "want": state(deleted=True)},
            {"do": "entry_state", "author": C, "seq": 9, "want": PLAIN},
            say("delete", "a3", "alice", "", 23, re=(A, 1), recipients=[B],
                message=arec("delete", A, "alice", "a3", 3, 14, 23, "", re=(A, 1)),
                envelope=about("delete", "a3", 3, 14, 23, "", re=(A, 1))),
            {"do": "entry_state", "author": A, "seq": 1, "want": state(deleted=True)},
            {"do": "order", "want": [[B, 1], [A, 1], [B, 2], [C, 1], [C, 2], [C, 3], [B, 3], [C, 4], [C, 5], [A, 2],
                                     [B, 4], [B, 5], [B, 6], [A, 3]]},
        ],
    },
    {
        "name": "an edit, deletion or reaction in someone else's name is refused",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": chat("b1", 1, 1, 10, "hi"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "receive", "from": C, "nick": "carol", "now": 2,
             "text": history(arec("edit", B, "bob", "b2", 2, 2, 11, "I owe carol 100", re=(B, 1), signer=C),
                             arec("delete", B, "bob", "b3", 3, 3, 12, re=(B, 1), signer=C),
                             arec("react", A, "alice", "a1", 1, 4, 13, "👎", re=(B, 1), signer=C),
                             arec("room_name", B, "bob", "b2", 2, 2, 11, "Carol rules", signer=C)),
             "want": {"effects": [forged(B, 2, C), forged(B, 3, C), forged(A, 1, C), forged(B, 2, C)]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": about("edit", "b2", 2, 2, 11, "not mine", re=(B, 1), signer=C),
             "want": {"effects": [forged(B, 2, B)]}},
            {"do": "entry_state", "author": B, "seq": 1, "want": PLAIN},
            {"do": "room_name", "want": None},
            {"do": "order", "want": [[B, 1]]},
        ],
    },
    {
        "name": "the room name is the last one in the log's order",
        "me": A,
        "steps": [
            {"do": "room_name", "want": None},
            {"do": "receive", "from": B, "nick": "bob", "now": 1, "text": about("room_name", "b1", 1, 5, 10, "Lunch crew"),
             "want": {"effects": [added(B, 1), send(B, ack(1))]}},
            {"do": "room_name", "want": {"text": "Lunch crew", "author": B, "nick": "bob"}},
            # Set earlier by the log's order, though it arrives later.
            {"do": "receive", "from": C, "nick": "carol", "now": 2,
             "text": about("room_name", "c1", 1, 3, 11, "Earlier name"),
             "want": {"effects": [added(C, 1), send(C, ack(1))]}},
            {"do": "room_name", "want": {"text": "Lunch crew", "author": B, "nick": "bob"}},
            say("room_name", "a1", "alice", "  Team  ", 12, recipients=[B, C],
                message=arec("room_name", A, "alice", "a1", 1, 6, 12, "Team"),
                envelope=about("room_name", "a1", 1, 6, 12, "Team")),
            {"do": "room_name", "want": {"text": "Team", "author": A, "nick": "alice"}},
            say("room_name", "a2", "alice", "", 13, recipients=[B, C],
                message=arec("room_name", A, "alice", "a2", 2, 7, 13, ""),
                envelope=about("room_name", "a2", 2, 7, 13, "")),
            {"do": "room_name", "want": {"text": "", "author": A, "nick": "alice"}},
            say("room_name", "x", "alice", "x" * 257, 14, error="invalid"),
            say("room_name", "x", "alice", "two\nlines", 14, error="invalid"),
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": about("room_name", "b2", 2, 8, 14, "a\u0007bell"),
             "want": {"effects": [{"refused": [B, 2]}, send(B, ack(2))]}},
            {"do": "receive", "from": D, "nick": "dave", "now": 4, "text": sync({}),
             "want": {"effects": [send(D, history(arec("room_name", C, "carol", "c1", 1, 3, 11, "Earlier name"),
                                                  arec("room_name", B, "bob", "b1", 1, 5, 10, "Lunch crew"),
                                                  arec("room_name", A, "alice", "a1", 1, 6, 12, "Team"),
                                                  arec("room_name", A, "alice", "a2", 2, 7, 13, "")))]}},
        ],
    },
    {
        "name": "a late joiner gets replies, reactions, edits, deletions and the room name from history",
        "me": D,
        "steps": [
            {"do": "receive", "from": A, "nick": "alice", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 1, 1, "lunch?"),
                             arec("reply", A, "alice", "a1", 1, 2, 2, "yes!", re=(B, 1)),
                             arec("react", B, "bob", "b2", 2, 3, 3, "👍", re=(A, 1)),
                             arec("edit", A, "alice", "a2", 2, 4, 4, "yes, at noon", re=(A, 1)),
                             arec("delete", B, "bob", "b3", 3, 5, 5, re=(B, 1)),
                             arec("room_name", C, "carol", "c1", 1, 6, 6, "Lunch crew")),
             "want": {"effects": [added(B, 1), added(A, 1), added(B, 2), added(A, 2), added(B, 3), added(C, 1),
                                  send(B, ack(3)), send(A, ack(2)), send(C, ack(1))]}},
            {"do": "entry_state", "author": A, "seq": 1,
             "want": state(text="yes, at noon", edited=True, reactions=[("👍", [BOB])])},
            {"do": "entry_state", "author": B, "seq": 1, "want": state(deleted=True)},
            {"do": "room_name", "want": {"text": "Lunch crew", "author": C, "nick": "carol"}},
            {"do": "get", "author": A, "seq": 1, "want": arec("reply", A, "alice", "a1", 1, 2, 2, "yes!", re=(B, 1))},
        ],
    },
    {
        "name": "entries about another one relayed before their author's key is known wait for it",
        "me": A,
        "confirmed": [C],
        "steps": [
            {"do": "receive", "from": C, "nick": "carol", "now": 1,
             "text": history(rec(B, "bob", "b1", 1, 1, 1, "hi"),
                             arec("edit", B, "bob", "b2", 2, 2, 2, "hello", re=(B, 1)),
                             arec("room_name", B, "bob", "b3", 3, 3, 3, "Bob's room"),
                             arec("react", B, "bob", "b4", 4, 4, 4, "👎", re=(B, 1), signer=C)),
             "want": {"effects": [added(B, 1), added(B, 2), added(B, 3), added(B, 4), send(B, ack(4))]}},
            {"do": "entry_state", "author": B, "seq": 1, "want": PLAIN},
            {"do": "room_name", "want": None},
            {"do": "key_confirmed", "author": B,
             "want": {"effects": [{"confirmed": [B, 1]}, {"confirmed": [B, 2]}, {"confirmed": [B, 3]},
                                  {"removed": {"author": B, "seq": 4, "by": C}}]}},
            {"do": "entry_state", "author": B, "seq": 1, "want": state(text="hello", edited=True)},
            {"do": "room_name", "want": {"text": "Bob's room", "author": B, "nick": "bob"}},
        ],
    },
    {
        "name": "an entry about another one that breaks a rule counts as received from its author",
        "me": A,
        "steps": [
            {"do": "receive", "from": B, "nick": "bob", "now": 1,
             "text": env("edit", id="b1", seq=1, clock=1, ts=1, text="no target", sig="AA"),
             "want": {"effects": [{"refused": [B, 1]}, send(B, ack(1))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 2,
             "text": env("react", id="b2", seq=2, clock=2, ts=2, text="  ", re={"author": B, "seq": 1}, sig="AA"),
             "want": {"effects": [{"refused": [B, 2]}, send(B, ack(2))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 3,
             "text": env("delete", id="b3", seq=3, clock=3, ts=3, text="x", re={"author": B, "seq": 1}, sig="AA"),
             "want": {"effects": [{"refused": [B, 3]}, send(B, ack(3))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 4,
             "text": env("reply", id="b4", seq=4, clock=4, ts=4, text="hi", re={"author": B, "seq": 0}, sig="AA"),
             "want": {"effects": [{"refused": [B, 4]}, send(B, ack(4))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 5,
             "text": env("react", id="b5", seq=5, clock=5, ts=5, text="👍👍👍👍👍👍👍👍👍", re={"author": B, "seq": 1},
                         sig="AA"),
             "want": {"effects": [{"refused": [B, 5]}, send(B, ack(5))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 6,
             "text": env("room_name", id="b6", seq=6, clock=6, ts=6, text="x", re={"author": B, "seq": 1}, sig="AA"),
             "want": {"effects": [{"refused": [B, 6]}, send(B, ack(6))]}},
            {"do": "receive", "from": B, "nick": "bob", "now": 7, "text": about("reply", "b7", 7, 7, 7, "fine", re=(B, 1)),
             "want": {"effects": [added(B, 7), send(B, ack(7))]}},
            {"do": "order", "want": [[B, 7]]},
        ],
    },
]


def resolve(scenario):
    """Signs the `chat` envelopes by the member each step names."""
    for step in scenario["steps"]:
        if isinstance(step.get("text"), ChatEnv):
            step["text"] = step["text"].text(step["from"], step["nick"])
        envelope = step.get("want", {}).get("envelope") if isinstance(step.get("want"), dict) else None
        if isinstance(envelope, ChatEnv):
            step["want"]["envelope"] = envelope.text(scenario["me"], step["nick"])
    scenario.setdefault("confirmed", [m for m in SEEDS if m != scenario["me"]])
    scenario["context"] = CONTEXT
    scenario["keys"] = keys_hex()
    return scenario


scenarios = [resolve(s) for s in scenarios]

doc = {
    "comment": "Shared scenarios for the message log (docs/protocol.md, section 3, and Signed messages). "
               "Generated by history.py. Each scenario starts from an empty log for member `me` with the default "
               "limits (capacity 1000, batch_bytes 61440, sync_interval_ms 2000, typing_ttl_ms 6000, "
               "typing_interval_ms 3000) overridden by `config`, signing in `context` with the Ed25519 key whose "
               "32-byte seed `keys[me]` gives (hex); the authors in `confirmed` have had their keys (from `keys`) "
               "confirmed by their hellos first. It replays `steps` in order. Whenever the log asks for signatures "
               "to be checked, the runner checks them at once and hands the results back: the `effects` listed "
               "are what the log answers then, in order, without the request itself.",
    "scenarios": scenarios,
}
out = pathlib.Path(__file__).with_name("history.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
