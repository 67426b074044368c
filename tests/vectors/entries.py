"""Signed log entries for the shared scenarios (history.py, private.py).

Every entry is signed (protocol version 2, docs/protocol.md "Signed
messages") by its author's Ed25519 key, made here from a fixed seed per
member, so that the signatures (Ed25519 is deterministic) are the ones both
implementations make and check. Python's `cryptography` package signs; the
two implementations under test do not share its code.
"""
import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

A, B, C, D = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc", "dddddddddddddddd"
CONTEXT = "room:abcdefghijklmnopqrstuv"
# Each member's identity key: Ed25519 from a 32-byte seed of one repeated byte.
SEEDS = {A: 1, B: 2, C: 3, D: 4}
PRIVATE = {m: Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for m, n in SEEDS.items()}
# A file offer (docs/protocol.md, "Files"); the log checks its rules, not its hashes.
CAT = {"fid": "f1", "name": "cat.png", "size": 40000, "type": "image/png", "piece": 16384,
       "sha256": "ab" * 32, "root": "cd" * 32}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public(member):
    return b64u(PRIVATE[member].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def keys_hex():
    """Every member's seed, as the scenarios give it."""
    return {m: bytes([n]).hex() * 32 for m, n in SEEDS.items()}


def file_body(file):
    """What a file offer is signed with: id, size, type, piece, sha256, root, name."""
    return "\n".join(str(file[k]) for k in ("fid", "size", "type", "piece", "sha256", "root", "name"))


# The kinds of entries about another one (`re`), and those that write `text`.
TARGET_KINDS = ("reply", "edit", "delete", "react", "unreact")


def entry_body(kind, re, text):
    """What an entry of another kind is signed with: the target's author and
    number, then (but for a deletion) the text, one a line; a room name's is
    the name."""
    if kind not in TARGET_KINDS:
        return text
    return f"{re[0]}\n{re[1]}" if kind == "delete" else f"{re[0]}\n{re[1]}\n{text}"


def has_text(kind, text):
    """Whether an entry of `kind` writes `text`: not a deletion, nor an empty room name."""
    return kind != "delete" and not (kind == "room_name" and text == "")


def signed_bytes(author, nick, id, seq, clock, ts, text, file=None, to=None, kind=None, re=None):
    """What the author of an entry signs: kind `chat` (body the text),
    `file` (body `file_body`) or another kind (body `entry_body`); in a
    private conversation with `to`, kind `private` and body `to`, that kind
    and that body, one a line."""
    if file:
        kind, body = "file", file_body(file)
    elif kind:
        body = entry_body(kind, re, text)
    else:
        kind, body = "chat", text
    if to:
        kind, body = "private", f"{to}\n{kind}\n{body}"
    return "\n".join(["peerchat-v2 msg", CONTEXT, author, nick, str(seq), str(clock), str(ts), id, kind,
                      body]).encode()


def sig(author, nick, id, seq, clock, ts, text, signer=None, file=None, to=None, kind=None, re=None):
    """The signature of an entry by `signer` (its author by default)."""
    data = signed_bytes(author, nick, id, seq, clock, ts, text, file, to, kind, re)
    return b64u(PRIVATE[signer or author].sign(data))


def env(kind, **body):
    return json.dumps({"v": 2, "type": kind, **body}, separators=(",", ":"), ensure_ascii=False)


class ChatEnv:
    """A `chat` (or `file`) envelope, signed once its author is known: the
    sender of a `receive` step, or the member sending in a `send` step."""

    def __init__(self, id, seq, clock, ts, text, signer=None, sig=None, file=None, kind=None, re=None):
        self.fields = (id, seq, clock, ts, text)
        self.signer, self.sig, self.file = signer, sig, file
        self.kind, self.re = kind, re

    def text(self, author, nick, to=None):
        id, seq, clock, ts, text = self.fields
        signature = self.sig or sig(author, nick, id, seq, clock, ts, text, self.signer, self.file, to,
                                    self.kind, self.re)
        if self.kind:
            body = {"text": text} if has_text(self.kind, text) else {}
            if self.re:
                body["re"] = {"author": self.re[0], "seq": self.re[1]}
            return env(self.kind, id=id, seq=seq, clock=clock, ts=ts, **body, sig=signature)
        if self.file:
            return env("file", id=id, seq=seq, clock=clock, ts=ts, file=self.file, sig=signature)
        return env("chat", id=id, seq=seq, clock=clock, ts=ts, text=text, sig=signature)


def chat(id, seq, clock, ts, text, signer=None, sig=None):
    return ChatEnv(id, seq, clock, ts, text, signer, sig)


def file_entry(id, seq, clock, ts, file, signer=None, sig=None):
    return ChatEnv(id, seq, clock, ts, "", signer, sig, file)


def about(kind, id, seq, clock, ts, text="", re=None, signer=None, sig=None):
    """An envelope of another kind (`reply`, `edit`, …), about entry `re`
    (author, seq)."""
    return ChatEnv(id, seq, clock, ts, text, signer, sig, kind=kind, re=re)


def rec(author, nick, id, seq, clock, ts, text, signer=None, key=None, relayed_by=None, file=None, to=None,
        kind=None, re=None):
    """An entry (in a `history`, or as kept): signed by `signer` (its
    author by default), carrying `key`'s public key (the signer's); of
    another `kind`, about entry `re` (author, seq)."""
    signer = signer or author
    out = {"author": author, "nick": nick, "id": id, "seq": seq, "clock": clock, "ts": ts, "text": text}
    if file:
        out["file"] = file
    if kind:
        out["kind"] = kind
    if re:
        out["re"] = {"author": re[0], "seq": re[1]}
    out.update({"alg": "ed25519", "key": public(key or signer),
                "sig": sig(author, nick, id, seq, clock, ts, text, signer, file, to, kind, re)})
    if relayed_by:
        out["relayed_by"] = relayed_by
    return out


def arec(kind, author, nick, id, seq, clock, ts, text="", re=None, **kw):
    """An entry of another kind (`reply`, `edit`, …) as a log keeps it."""
    return rec(author, nick, id, seq, clock, ts, text, kind=kind, re=re, **kw)


def frec(author, nick, id, seq, clock, ts, file, **kw):
    """A file offer as a log keeps it (`text` empty)."""
    return rec(author, nick, id, seq, clock, ts, "", file=file, **kw)


def wire(record):
    """A record as a `history` envelope writes it: `kind` for offers (and
    no `text`), then the offer, the key and the signature."""
    head = {k: v for k, v in record.items() if k in ("author", "nick", "id", "seq", "clock", "ts")}
    tail = {k: record[k] for k in ("alg", "key", "sig") if k in record}
    if record.get("kind") and "file" not in record:
        kind = record["kind"]
        body = {"text": record["text"]} if has_text(kind, record["text"]) else {}
        if "re" in record:
            body["re"] = record["re"]
        return {**head, "kind": kind, **body, **tail}
    if "file" not in record:
        return record
    return {**head, "kind": "file", "file": record["file"], **tail}


def history(*records):
    return env("history", messages=[wire(r) for r in records])


def sync(have):
    return env("sync", have=dict(sorted(have.items())))


def ack(upto):
    return env("ack", upto=upto)


def send(to, text):
    return {"send": {"to": to, "text": text}}


def added(author, seq):
    return {"added": [author, seq]}


def forged(author, seq, by):
    return {"forged": {"author": author, "seq": seq, "by": by}}
