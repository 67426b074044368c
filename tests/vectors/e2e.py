"""Writes e2e.json, the known-answer vectors of protocol version 2's
cryptography (docs/protocol.md, "Version 2").

Run `python3 tests/vectors/e2e.py` after editing. Everything here is made
independently of peerchat's two implementations, with Python's
`cryptography` package (HKDF, AES-GCM, Ed25519, ECDSA P-256) and `hashlib`;
the Rust crate (crates/e2e/tests/vectors.rs) and the web client
(tests/e2e/crypto.test.mjs) must reproduce every value byte for byte.
The output is deterministic: Ed25519 and the RFC 6979 ECDSA used here
need no randomness, and every IV and key is fixed below.
"""
import base64
import hashlib
import json
import pathlib
import unicodedata

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# --- Secrets, contexts, pairings ---------------------------------------------

ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def parse_secret(fragment: str):
    """The reference reading of a link fragment: bytes, or an error code."""
    text = fragment[1:] if fragment.startswith("#") else fragment
    if text == "":
        return "missing_secret"
    if not set(text) <= ALPHABET or not 22 <= len(text) <= 86 or len(text) % 4 == 1:
        return "bad_secret"
    data = unb64u(text)
    if b64u(data) != text:  # unused bits set: not the one text form of these bytes
        return "bad_secret"
    if not 16 <= len(data) <= 64:
        return "bad_secret"
    return data


SECRET = bytes(range(1, 33))  # the 32-byte secret most vectors use
ROOM = "abcdefghijklmnopqrstuv"
CONTEXT = "room:" + ROOM

secret_inputs = [
    "#" + b64u(SECRET),
    b64u(SECRET),
    b64u(bytes(16)),  # 22 characters, 128 bits: the shortest
    b64u(bytes(range(64))),  # 86 characters: the longest
    "",
    "#",
    "AAAAAAAAAAAAAAAAAAAAA",  # 21 characters
    b64u(bytes(range(64))) + "A",  # 87 characters
    b64u(SECRET)[:-1] + "+",  # standard alphabet
    b64u(SECRET) + "=",  # padding
    "AAAAAAAAAAAAAAAAAAAAAB",  # 22 characters with unused bits set
    "AAAAAAAAAAAAAAAAAAAAAAAAA",  # 25 characters: 25 % 4 == 1 is no base64
    "AAAAAAAAAAAAAAAAAAAAA AA",  # white space
]
secrets = []
for text in secret_inputs:
    got = parse_secret(text)
    secrets.append({"fragment": text, "error": got} if isinstance(got, str) else {"fragment": text, "bytes": got.hex()})

PAIR_ID = b64u(bytes(range(100, 116)))
pairings = [
    {"text": PAIR_ID + "." + b64u(SECRET), "id": PAIR_ID, "secret": SECRET.hex(), "context": "mailbox:" + PAIR_ID},
    {"text": "  " + PAIR_ID + "." + b64u(SECRET) + "\n", "id": PAIR_ID, "secret": SECRET.hex(), "context": "mailbox:" + PAIR_ID},
    {"text": PAIR_ID, "error": "bad_pairing"},
    {"text": PAIR_ID + ".", "error": "missing_secret"},
    {"text": PAIR_ID + ".abc", "error": "bad_secret"},
    {"text": "short." + b64u(SECRET), "error": "bad_pairing"},
    {"text": PAIR_ID + "!." + b64u(SECRET), "error": "bad_pairing"},
]

contexts = [
    {"kind": "room", "id": ROOM, "text": CONTEXT},
    {"kind": "mailbox", "id": PAIR_ID, "text": "mailbox:" + PAIR_ID},
    {"kind": "code", "text": "code"},
    {"kind": "room", "id": "short", "error": "bad_context"},
    {"kind": "room", "id": "a" * 65, "error": "bad_context"},
    {"kind": "mailbox", "id": "abcdefghijklmnopqrstu.", "error": "bad_context"},
]


# --- Key schedule and sealing --------------------------------------------------

def signal_key(secret: bytes, context: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"peerchat-v2",
                info=("signal key\n" + context).encode()).derive(secret)


def signal_ad(context: str, frm: str, to: str) -> bytes:
    return ("peerchat-v2 signal\n" + context + "\n" + frm + "\n" + to).encode()


def seal(secret, context, frm, to, iv: bytes, plaintext: bytes) -> dict:
    ct = AESGCM(signal_key(secret, context)).encrypt(iv, plaintext, signal_ad(context, frm, to))
    return {"iv": b64u(iv), "ct": b64u(ct)}


signal_keys = [
    {"secret": SECRET.hex(), "context": c, "key": signal_key(SECRET, c).hex()}
    for c in [CONTEXT, "room:" + "Z" * 64, "mailbox:" + PAIR_ID, "code"]
] + [{"secret": bytes(16).hex(), "context": CONTEXT, "key": signal_key(bytes(16), CONTEXT).hex()}]

A, B, C = "0123456789abcdef", "fedcba9876543210", "00000000000000cc"
NOW = 1_763_769_600_000
MIN = 60_000
E1 = b64u(bytes(range(16)))
E2 = b64u(bytes(range(16, 32)))
E3 = b64u(bytes(range(32, 48)))
E4 = b64u(bytes(range(48, 64)))

OFFER_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SID = "Q2xvdWRzIGFyZSBwcmV0dH"


def plain(payload: dict, e: str, n: int, ts: int) -> bytes:
    return compact({**payload, "e": e, "n": n, "ts": ts}).encode()


offer = {"sid": SID, "description": {"type": "offer", "sdp": OFFER_SDP}}
candidate = {"sid": SID, "candidate": {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
                                       "sdpMid": "0", "sdpMLineIndex": 0}}

seals = []
for iv_byte, (frm, to, payload, e, n, ts) in enumerate([
    (A, B, offer, E1, 1, NOW),
    (A, B, candidate, E1, 2, NOW + 5),
    (B, A, {"sid": SID, "description": {"type": "answer", "sdp": "v=0\r\n"}}, E2, 1, NOW + 9),
]):
    iv = bytes([0xA0 + iv_byte] * 12)
    pt = plain(payload, e, n, ts)
    seals.append({
        "secret": SECRET.hex(), "context": CONTEXT, "from": frm, "to": to, "iv": iv.hex(),
        "plaintext": pt.decode(), "ad": signal_ad(CONTEXT, frm, to).decode(),
        "payload": seal(SECRET, CONTEXT, frm, to, iv, pt),
    })
# A payload sealed with unicode and an empty payload object, to pin UTF-8 handling.
seals.append({
    "secret": SECRET.hex(), "context": "code", "from": "offer", "to": "answer", "iv": bytes(range(12)).hex(),
    "plaintext": plain({"nick": "Zoë 🐙"}, E3, 7, 0).decode(), "ad": signal_ad("code", "offer", "answer").decode(),
    "payload": seal(SECRET, "code", "offer", "answer", bytes(range(12)), plain({"nick": "Zoë 🐙"}, E3, 7, 0)),
})


def flip(payload: dict, field: str, bit: int) -> dict:
    data = bytearray(unb64u(payload[field]))
    data[bit // 8] ^= 1 << (bit % 8)
    return {**payload, field: b64u(bytes(data))}


# --- The replay guard: a reference implementation, checked against the
# expected outcomes written by hand in the scenarios. -------------------------

class Guard:
    def __init__(self, window_ms=600_000, retired=16, max_senders=4096):
        self.window, self.retired_max, self.max = window_ms, retired, max_senders
        self.senders = {}  # insertion order = least recently accepted first

    def step(self, frm, e, n, ts, now):
        s = self.senders.get(frm)
        if s and s["e"] == e:
            if n <= s["n"]:
                return "replayed"
        elif s and (e in s["retired"] or ts <= s["first"]):
            return "stale"
        elif abs(ts - now) > self.window:
            return "clock_skew"
        # accepted
        if s is None:
            if len(self.senders) >= self.max:
                del self.senders[next(iter(self.senders))]
            s = {"e": e, "n": n, "first": ts, "retired": []}
        elif s["e"] != e:
            s["retired"] = (s["retired"] + [s["e"]])[-self.retired_max:]
            s["e"], s["first"] = e, ts
        s["n"] = n
        self.senders.pop(frm, None)
        self.senders[frm] = s
        return "ok"


def g(frm, e, n, ts, now, want):
    return {"from": frm, "e": e, "n": n, "ts": ts, "now": now, "want": want}


guard_scenarios = [
    {"name": "counters within an epoch must grow; the time is not checked again", "steps": [
        g(A, E1, 1, NOW, NOW, "ok"),
        g(A, E1, 1, NOW, NOW, "replayed"),
        g(A, E1, 3, NOW, NOW, "ok"),
        g(A, E1, 2, NOW, NOW, "replayed"),
        g(A, E1, 4, NOW - 60 * MIN, NOW + 60 * MIN, "ok"),
        g(B, E1, 1, NOW, NOW, "ok"),
        g(B, E1, 2, NOW, NOW, "ok"),
    ]},
    {"name": "a new epoch must start later than the current one and within ten minutes", "steps": [
        g(A, E1, 5, NOW, NOW, "ok"),
        g(A, E2, 1, NOW, NOW, "stale"),
        g(A, E2, 1, NOW - 1, NOW, "stale"),
        g(A, E2, 1, NOW + 10 * MIN + 1, NOW, "clock_skew"),
        g(A, E2, 1, NOW + 10 * MIN, NOW, "ok"),
        g(A, E1, 6, NOW + 11 * MIN, NOW + 11 * MIN, "stale"),
        g(A, E2, 1, NOW + 10 * MIN, NOW, "replayed"),
        g(A, E3, 1, NOW + 10 * MIN + 1, NOW + 10 * MIN, "ok"),
        g(A, E2, 9, NOW + 20 * MIN, NOW + 20 * MIN, "stale"),
    ]},
    {"name": "a first signal is checked against the clock only", "steps": [
        g(A, E1, 9, NOW - 10 * MIN, NOW, "ok"),
        g(B, E1, 1, NOW - 10 * MIN - 1, NOW, "clock_skew"),
        g(C, E1, 1, NOW + 10 * MIN + 1, NOW, "clock_skew"),
        g(C, E1, 1, 0, NOW, "clock_skew"),
        g(C, E1, 1, NOW, NOW, "ok"),
    ]},
    {"name": "retired epochs are bounded; senders are bounded, least recently accepted first",
     "config": {"window_ms": 100, "retired": 2, "max_senders": 2}, "steps": [
        g(A, E1, 1, 1000, 1000, "ok"),
        g(A, E2, 1, 1001, 1000, "ok"),
        g(A, E3, 1, 1002, 1000, "ok"),
        g(A, E4, 1, 1003, 1000, "ok"),
        # E1 is no longer remembered, but a genuine E1 signal is older than E4's start.
        g(A, E1, 2, 1000, 1000, "stale"),
        g(A, E2, 2, 1050, 1000, "stale"),
        g(A, E1, 2, 1050, 1000, "ok"),
        g(B, E1, 1, 1000, 1000, "ok"),
        g(A, E1, 3, 1000, 1000, "ok"),
        g(C, E1, 1, 1000, 1000, "ok"),
        # B was forgotten to make room for C: its signals start afresh.
        g(B, E1, 1, 1000, 1000, "ok"),
        # and now A (least recently accepted) was forgotten.
        g(A, E1, 3, 1000, 1000, "ok"),
        g(C, E1, 1, 1000, 1000, "ok"),
    ]},
]
for sc in guard_scenarios:
    guard = Guard(**sc.get("config", {}))
    for i, st in enumerate(sc["steps"]):
        got = guard.step(st["from"], st["e"], st["n"], st["ts"], st["now"])
        assert got == st["want"], (sc["name"], i, got, st)


# --- Opening, end to end (key, guard and all) --------------------------------

def sealed(frm, to, payload_obj, e, n, ts, iv_byte, context=CONTEXT, secret=SECRET):
    return seal(secret, context, frm, to, bytes([iv_byte] * 12), plain(payload_obj, e, n, ts))


def sealed_bytes(frm, to, pt: bytes, iv_byte, context=CONTEXT):
    return seal(SECRET, context, frm, to, bytes([iv_byte] * 12), pt)


def ok(payload_obj, e, n, ts):
    return {"payload": payload_obj, "e": e, "n": n, "ts": ts}


first = sealed(A, B, offer, E1, 1, NOW, 1)
second = sealed(A, B, candidate, E1, 2, NOW + 1, 2)
open_scenarios = [
    {"name": "opens what was sealed for us, once", "secret": SECRET.hex(), "context": CONTEXT, "me": B, "steps": [
        {"from": A, "now": NOW, "payload": first, "want": ok(offer, E1, 1, NOW)},
        {"from": A, "now": NOW, "payload": first, "want": {"refusal": "replayed"}},
        {"from": A, "now": NOW + 2, "payload": second, "want": ok(candidate, E1, 2, NOW + 1)},
        {"from": A, "now": NOW + 3, "payload": first, "want": {"refusal": "replayed"}},
    ]},
    {"name": "anything altered, redirected or reflected does not authenticate", "secret": SECRET.hex(),
     "context": CONTEXT, "me": B, "steps": [
        {"from": A, "now": NOW, "payload": flip(first, "ct", 0), "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": flip(first, "ct", 8 * len(unb64u(first["ct"])) - 1), "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": flip(first, "iv", 77), "want": {"refusal": "tampered"}},
        # the server says it came from C
        {"from": C, "now": NOW, "payload": first, "want": {"refusal": "tampered"}},
        # meant for C, delivered to us
        {"from": A, "now": NOW, "payload": sealed(A, C, offer, E1, 3, NOW, 3), "want": {"refusal": "tampered"}},
        # our own signal to A, reflected back as if from A
        {"from": A, "now": NOW, "payload": sealed(B, A, offer, E2, 1, NOW, 4), "want": {"refusal": "tampered"}},
        # another room, the same secret
        {"from": A, "now": NOW, "payload": sealed(A, B, offer, E1, 4, NOW, 5, context="room:" + "x" * 22), "want": {"refusal": "tampered"}},
        # the same room, another secret
        {"from": A, "now": NOW, "payload": sealed(A, B, offer, E1, 5, NOW, 6, secret=bytes(32)), "want": {"refusal": "tampered"}},
        # a version-1 payload, and broken wire forms
        {"from": A, "now": NOW, "payload": offer, "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": {"iv": first["iv"] + "AA", "ct": first["ct"]}, "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": {"iv": first["iv"], "ct": first["ct"][:20]}, "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": {"iv": first["iv"], "ct": 5}, "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": {"ct": first["ct"]}, "want": {"refusal": "tampered"}},
        {"from": A, "now": NOW, "payload": "text", "want": {"refusal": "tampered"}},
        # after all that, the genuine one still opens
        {"from": A, "now": NOW, "payload": {**first, "extra": "ignored"}, "want": ok(offer, E1, 1, NOW)},
    ]},
    {"name": "authenticated but malformed plaintexts", "secret": SECRET.hex(), "context": CONTEXT, "me": B, "steps": [
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, b"not json", 10), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, b"[1,2]", 11), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"sid": SID, "n": 1, "ts": NOW}).encode(), 12), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": "short", "n": 1, "ts": NOW}).encode(), 13), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 0, "ts": NOW}).encode(), 14), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 1.5, "ts": NOW}).encode(), 15), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 2 ** 53, "ts": NOW}).encode(), 16), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 1, "ts": str(NOW)}).encode(), 17), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 1, "ts": -1}).encode(), 18), "want": {"refusal": "malformed"}},
        # not UTF-8, or with a byte order mark
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, b'{"e":"' + E1.encode() + b'","n":1,"ts":1,"x":"\xff"}', 30), "want": {"refusal": "malformed"}},
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, "\ufeff".encode() + compact({"e": E1, "n": 1, "ts": NOW}).encode(), 31), "want": {"refusal": "malformed"}},
        # the smallest valid plaintext: nothing but the stamp
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, compact({"e": E1, "n": 1, "ts": NOW}).encode(), 19), "want": ok({}, E1, 1, NOW)},
        # numbers are read by value: 2.0 is 2 (JSON does not tell them apart in every parser)
        {"from": A, "now": NOW, "payload": sealed_bytes(A, B, b'{"e":"' + E1.encode() + b'","n":2.0,"ts":1.763769600001e12}', 32), "want": ok({}, E1, 2, NOW + 1)},
    ]},
    {"name": "a sender that joins afresh; its earlier session and a skewed clock", "secret": SECRET.hex(),
     "context": CONTEXT, "me": B, "steps": [
        {"from": A, "now": NOW, "payload": sealed(A, B, offer, E1, 1, NOW, 20), "want": ok(offer, E1, 1, NOW)},
        {"from": A, "now": NOW + MIN, "payload": sealed(A, B, offer, E2, 1, NOW + MIN, 21), "want": ok(offer, E2, 1, NOW + MIN)},
        {"from": A, "now": NOW + MIN, "payload": sealed(A, B, candidate, E1, 2, NOW + 1, 22), "want": {"refusal": "stale"}},
        {"from": A, "now": NOW + 2 * MIN, "payload": sealed(A, B, offer, E3, 1, NOW + 20 * MIN, 23), "want": {"refusal": "clock_skew", "offset_ms": 18 * MIN}},
        {"from": C, "now": NOW, "payload": sealed(C, B, offer, E1, 1, NOW - 11 * MIN, 24), "want": {"refusal": "clock_skew", "offset_ms": -11 * MIN}},
    ]},
]

# --- DTLS fingerprints from SDP ------------------------------------------------

CHROMIUM_OFFER = (
    "v=0\r\no=- 8363879559604265415 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=ice-ufrag:fkDX\r\na=ice-pwd:QQYjvH5ZUTigzyRxiDRFq6Xo\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 AC:A5:0D:45:49:B0:59:16:EC:99:7D:E0:50:47:02:4F:A4:B3:5E:7B:C9:43:9B:37:55:B3:71:B4:75:37:3E:A1\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
)
WEBRTC_RS_OFFER = (
    "v=0\r\no=- 6851326486190381028 569676759 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "a=fingerprint:sha-256 D7:68:4A:03:88:C7:AA:1B:EF:80:83:7F:6C:1E:FC:CA:A7:62:53:1E:24:93:F8:13:DD:9D:F6:0A:36:81:A8:2A\r\n"
    "a=extmap-allow-mixed\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=sctp-port:5000\r\na=max-message-size:65536\r\n"
    "a=ice-ufrag:QKHpHJPhrGBzpWBe\r\na=ice-pwd:AnUMuZdriubaneqhxAwsGmazBqecbeno\r\n"
    "a=candidate:2693830880 1 udp 2130706431 127.0.0.1 43231 typ host\r\n"
    "a=candidate:2693830880 2 udp 2130706431 127.0.0.1 43231 typ host\r\na=end-of-candidates\r\n"
)
CHROMIUM_FP = "sha-256 AC:A5:0D:45:49:B0:59:16:EC:99:7D:E0:50:47:02:4F:A4:B3:5E:7B:C9:43:9B:37:55:B3:71:B4:75:37:3E:A1"
RS_FP = "sha-256 D7:68:4A:03:88:C7:AA:1B:EF:80:83:7F:6C:1E:FC:CA:A7:62:53:1E:24:93:F8:13:DD:9D:F6:0A:36:81:A8:2A"
RS_LOWER = RS_FP.split(" ")[1].lower()
SHA384 = ":".join(["AB"] * 48)


def fp_from_sdp(sdp: str):
    """The reference reading of a description's fingerprint."""
    found = None
    for line in sdp.split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        if not line.startswith("a=fingerprint:"):
            continue
        parts = line[len("a=fingerprint:"):].split()
        if len(parts) != 2:
            return "bad_fingerprint"
        if parts[0].lower() != "sha-256":
            return "unsupported_hash"
        pairs = parts[1].split(":")
        if len(pairs) != 32 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in pairs):
            return "bad_fingerprint"
        fp = "sha-256 " + parts[1].upper()
        if found is not None and fp != found:
            return "conflicting_fingerprints"
        found = fp
    return found or "no_fingerprint"


sdp_cases = [
    ("a Chromium offer (media level, upper case)", CHROMIUM_OFFER),
    ("a webrtc-rs offer (session level, upper case, with candidates)", WEBRTC_RS_OFFER),
    ("lower case, LF line ends", WEBRTC_RS_OFFER.replace(RS_FP.split(" ")[1], RS_LOWER).replace("\r\n", "\n")),
    ("session and media level agree, in different case, hash name in upper case",
     WEBRTC_RS_OFFER.replace("a=mid:0\r\n", "a=mid:0\r\na=fingerprint:SHA-256 " + RS_LOWER + "\r\n")),
    ("session and media level disagree", WEBRTC_RS_OFFER.replace("a=mid:0\r\n", "a=mid:0\r\na=fingerprint:" + CHROMIUM_FP + "\r\n")),
    ("two media sections with different fingerprints",
     CHROMIUM_OFFER + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:" + RS_FP + "\r\n"),
    ("a second hash function beside sha-256 (as aiortc writes)",
     CHROMIUM_OFFER.replace("a=setup:actpass", "a=fingerprint:sha-384 " + SHA384 + "\r\na=setup:actpass")),
    ("sha-1 only", CHROMIUM_OFFER.replace(CHROMIUM_FP, "sha-1 " + ":".join(["AB"] * 20))),
    ("no fingerprint", CHROMIUM_OFFER.replace("a=fingerprint:" + CHROMIUM_FP + "\r\n", "")),
    ("a fingerprint one byte short", CHROMIUM_OFFER.replace(":3E:A1\r\n", ":3E\r\n")),
    ("not hex", CHROMIUM_OFFER.replace(":3E:A1\r\n", ":3E:G1\r\n")),
    ("no value", CHROMIUM_OFFER.replace(CHROMIUM_FP, "sha-256")),
    ("white space around the value is ignored", CHROMIUM_OFFER.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256   ").replace(":3E:A1\r\n", ":3E:A1 \r\n")),
]
fingerprints = []
for name, sdp in sdp_cases:
    got = fp_from_sdp(sdp)
    key = "fingerprint" if got.startswith("sha-256 ") else "error"
    fingerprints.append({"name": name, "sdp": sdp, key: got})
assert fingerprints[0]["fingerprint"] == CHROMIUM_FP and fingerprints[1]["fingerprint"] == RS_FP

fingerprint_values = [
    # as Chromium's RTCCertificate.getFingerprints() and webrtc-rs give their own
    {"hash": "sha-256", "value": "be:32:3a:86:51:4e:4e:e6:90:37:ec:54:ce:a9:5b:fc:7e:34:e4:c2:63:7f:cd:61:8b:fb:81:1c:5e:a1:c7:48",
     "fingerprint": "sha-256 BE:32:3A:86:51:4E:4E:E6:90:37:EC:54:CE:A9:5B:FC:7E:34:E4:C2:63:7F:CD:61:8B:FB:81:1C:5E:A1:C7:48"},
    {"hash": "SHA-256", "value": RS_LOWER, "fingerprint": RS_FP},
    {"hash": "sha-512", "value": RS_LOWER, "error": "unsupported_hash"},
    {"hash": "sha-256", "value": RS_LOWER + ":00", "error": "bad_fingerprint"},
    {"hash": "sha-256", "value": RS_LOWER.replace(":", ""), "error": "bad_fingerprint"},
]
CERT = b"0\x82\x01 not a real certificate, only bytes to hash"
certificates = [{"der": CERT.hex(), "fingerprint": "sha-256 " + ":".join("%02X" % b for b in hashlib.sha256(CERT).digest())}]

# --- Identity keys, signatures ------------------------------------------------

ALICE_SEED = bytes(range(32, 64))
BOB_SEED = bytes(range(64, 96))


def ed25519(seed: bytes):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, pub, pkcs8


alice_key, alice_pub, alice_pkcs8 = ed25519(ALICE_SEED)
bob_key, bob_pub, bob_pkcs8 = ed25519(BOB_SEED)
carol_key = ec.derive_private_key(0xC0FFEE_5EED_1234_5678_9ABC_DEF0_1357_9BDF_0246_8ACE_FDB9_7531, ec.SECP256R1())
carol_pub = carol_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def p256_sign(message: bytes) -> bytes:
    der = carol_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


identities = [
    {"name": "alice", "seed": ALICE_SEED.hex(), "pkcs8": alice_pkcs8.hex(), "alg": "ed25519", "key": b64u(alice_pub)},
    {"name": "bob", "seed": BOB_SEED.hex(), "pkcs8": bob_pkcs8.hex(), "alg": "ed25519", "key": b64u(bob_pub)},
]
public_keys = [
    {"alg": "ed25519", "key": b64u(alice_pub), "tagged": (b"\x01" + alice_pub).hex()},
    {"alg": "p256", "key": b64u(carol_pub), "tagged": (b"\x02" + carol_pub).hex()},
    {"alg": "ed25519", "key": b64u(alice_pub[:31]), "error": "bad_key"},
    {"alg": "ed25519", "key": b64u(alice_pub) + "=", "error": "bad_key"},
    {"alg": "p256", "key": b64u(b"\x03" + carol_pub[1:]), "error": "bad_key"},
    {"alg": "p256", "key": b64u(carol_pub[:33]), "error": "bad_key"},
    {"alg": "rsa", "key": b64u(alice_pub), "error": "unknown_alg"},
]
MSG = "peerchat test message\n".encode()
sig_a = alice_key.sign(MSG)
sig_c = p256_sign(MSG)
signatures = [
    {"alg": "ed25519", "key": b64u(alice_pub), "message": MSG.hex(), "sig": b64u(sig_a), "valid": True},
    {"alg": "ed25519", "key": b64u(bob_pub), "message": MSG.hex(), "sig": b64u(sig_a), "valid": False},
    {"alg": "ed25519", "key": b64u(alice_pub), "message": (MSG + b"!").hex(), "sig": b64u(sig_a), "valid": False},
    {"alg": "ed25519", "key": b64u(alice_pub), "message": MSG.hex(), "sig": b64u(sig_a[:63]), "valid": False},
    {"alg": "p256", "key": b64u(carol_pub), "message": MSG.hex(), "sig": b64u(sig_c), "valid": True},
    {"alg": "p256", "key": b64u(carol_pub), "message": (MSG + b"!").hex(), "sig": b64u(sig_c), "valid": False},
    {"alg": "p256", "key": b64u(carol_pub), "message": MSG.hex(), "sig": b64u(sig_c[32:] + sig_c[:32]), "valid": False},
    {"alg": "p256", "key": b64u(carol_pub), "message": MSG.hex(), "sig": b64u(sig_c + b"\0"), "valid": False},
]

# --- Hellos -------------------------------------------------------------------


def hello_bytes(context, sid, signer, signer_nick, receiver, signer_fp, receiver_fp) -> bytes:
    return "\n".join(["peerchat-v2 hello", context, sid, signer, signer_nick, receiver, signer_fp, receiver_fp]).encode()


def envelope(alg, key: bytes, sig: bytes) -> str:
    return compact({"v": 2, "type": "hello", "alg": alg, "key": b64u(key), "sig": b64u(sig)})


def view(context, sid, me, my_nick, peer, peer_nick, my_fp, peer_fp):
    return {"context": context, "sid": sid, "me": me, "my_nick": my_nick, "peer": peer, "peer_nick": peer_nick,
            "my_fingerprint": my_fp, "peer_fingerprint": peer_fp}


MITM_FP = "sha-256 " + ":".join(["5A"] * 32)
# Alice (A, Chromium certificate) and Bob (B, webrtc-rs certificate) on connection SID.
alice_view = view(CONTEXT, SID, A, "alice", B, "bob", CHROMIUM_FP, RS_FP)
bob_view = view(CONTEXT, SID, B, "bob", A, "alice", RS_FP, CHROMIUM_FP)
alice_bytes = hello_bytes(CONTEXT, SID, A, "alice", B, CHROMIUM_FP, RS_FP)
bob_bytes = hello_bytes(CONTEXT, SID, B, "bob", A, RS_FP, CHROMIUM_FP)
alice_hello = envelope("ed25519", alice_pub, alice_key.sign(alice_bytes))
bob_hello = envelope("ed25519", bob_pub, bob_key.sign(bob_bytes))
# Carol (P-256, as a browser without Ed25519) says hello to Bob.
carol_view = view(CONTEXT, SID, C, "Carol ✓", B, "bob", CHROMIUM_FP, RS_FP)
carol_bytes = hello_bytes(CONTEXT, SID, C, "Carol ✓", B, CHROMIUM_FP, RS_FP)
carol_hello = envelope("p256", carol_pub, p256_sign(carol_bytes))
bob_sees_carol = view(CONTEXT, SID, B, "bob", C, "Carol ✓", RS_FP, CHROMIUM_FP)

hellos = [
    {"name": "alice to bob", "identity": "alice", "view": alice_view, "bytes": alice_bytes.decode(), "envelope": alice_hello},
    {"name": "bob to alice", "identity": "bob", "view": bob_view, "bytes": bob_bytes.decode(), "envelope": bob_hello},
]


def with_(v, **changes):
    return {**v, **changes}


hello_checks = [
    {"name": "bob verifies alice's hello", "view": bob_view, "envelope": alice_hello, "want": "ok"},
    {"name": "alice verifies bob's hello", "view": alice_view, "envelope": bob_hello, "want": "ok"},
    {"name": "bob verifies carol's P-256 hello", "view": bob_sees_carol, "envelope": carol_hello, "want": "ok",
     "bytes": carol_bytes.decode()},
    {"name": "a middle's certificate on bob's side", "view": with_(bob_view, peer_fingerprint=MITM_FP), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "a middle's certificate on alice's side", "view": with_(bob_view, my_fingerprint=MITM_FP), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "the fingerprints swapped", "view": with_(bob_view, my_fingerprint=CHROMIUM_FP, peer_fingerprint=RS_FP), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "another connection", "view": with_(bob_view, sid="another-sid-aaaaaaaaaa"), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "another room", "view": with_(bob_view, context="room:" + "x" * 22), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "the server calls alice something else", "view": with_(bob_view, peer_nick="Alice"), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "forwarded to carol", "view": with_(bob_view, me=C), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "claimed by another peer id", "view": with_(bob_view, peer=C), "envelope": alice_hello, "want": "bad_signature"},
    {"name": "reflected back to alice", "view": alice_view, "envelope": alice_hello, "want": "bad_signature"},
    {"name": "alice's signature under bob's key", "view": bob_view,
     "envelope": envelope("ed25519", bob_pub, alice_key.sign(alice_bytes)), "want": "bad_signature"},
    {"name": "a version-1 envelope", "view": bob_view, "envelope": alice_hello.replace('"v":2', '"v":1'), "want": "bad_hello"},
    {"name": "a later version with more fields", "view": bob_view,
     "envelope": alice_hello.replace('"v":2', '"v":3,"more":[1]'), "want": "ok"},
    {"name": "the version written as 2.0", "view": bob_view, "envelope": alice_hello.replace('"v":2', '"v":2.0'), "want": "ok"},
    {"name": "not a hello", "view": bob_view, "envelope": alice_hello.replace('"hello"', '"chat"'), "want": "bad_hello"},
    {"name": "no signature", "view": bob_view, "envelope": compact({"v": 2, "type": "hello", "alg": "ed25519", "key": b64u(alice_pub)}), "want": "bad_hello"},
    {"name": "an unknown algorithm", "view": bob_view, "envelope": alice_hello.replace('"ed25519"', '"ed448"'), "want": "unknown_alg"},
    {"name": "a short key", "view": bob_view, "envelope": envelope("ed25519", alice_pub[:30], b"\0" * 64), "want": "bad_key"},
    {"name": "a line break in the sid", "view": with_(bob_view, sid="a\nb"), "envelope": alice_hello, "want": "bad_field"},
]

# --- Signed messages ----------------------------------------------------------


def msg_bytes(m) -> bytes:
    return "\n".join(["peerchat-v2 msg", m["context"], m["author"], m["nick"], str(m["seq"]), str(m["clock"]),
                      str(m["ts"]), m["id"], m["kind"], m["body"]]).encode()


def message(author_key, **fields):
    m = {"context": CONTEXT, "author": A, "nick": "alice", "seq": 1, "clock": 1, "ts": NOW, "id": "k3v9Qm2xT0a8bL1cD4eF5g",
         "kind": "chat", "body": "Hello!"}
    m.update(fields)
    b = msg_bytes(m)
    return {"fields": m, "bytes": b.decode(), "sig": b64u(author_key.sign(b))}


messages = [
    message(alice_key),
    message(alice_key, seq=3, clock=17, body="two\nlines, ünïcödé 🐙 and \"quotes\""),
    message(alice_key, seq=9007199254740991, clock=9007199254740991, ts=8640000000000000, body="x"),
    message(bob_key, author=B, nick="bob", ts=0, body=""),
    message(alice_key, context="mailbox:" + PAIR_ID, kind="edit", body="{\"of\":3}"),
]
m0 = messages[0]
message_checks = [
    {"name": "alice's message", "alg": "ed25519", "key": b64u(alice_pub), "fields": m0["fields"], "sig": m0["sig"], "want": "ok"},
    {"name": "another text", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "body": "Hello?"}, "sig": m0["sig"], "want": "bad_signature"},
    {"name": "another nickname", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "nick": "bob"}, "sig": m0["sig"], "want": "bad_signature"},
    {"name": "another number", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "seq": 2}, "sig": m0["sig"], "want": "bad_signature"},
    {"name": "another room", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "context": "room:" + "x" * 22}, "sig": m0["sig"], "want": "bad_signature"},
    {"name": "attributed to bob, bob's key", "alg": "ed25519", "key": b64u(bob_pub), "fields": {**m0["fields"], "author": B}, "sig": m0["sig"], "want": "bad_signature"},
    {"name": "a line break in the id", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "id": "a\nb"}, "sig": m0["sig"], "want": "bad_field"},
    {"name": "a number past 2^53 - 1", "alg": "ed25519", "key": b64u(alice_pub), "fields": {**m0["fields"], "clock": 2 ** 53}, "sig": m0["sig"], "want": "bad_field"},
]
carol_msg_fields = {**m0["fields"], "author": C, "nick": "Carol ✓"}
carol_msg_sig = b64u(p256_sign(msg_bytes(carol_msg_fields)))
message_checks.append({"name": "carol's P-256 message", "alg": "p256", "key": b64u(carol_pub), "fields": carol_msg_fields, "sig": carol_msg_sig, "want": "ok"})

# --- Safety numbers -----------------------------------------------------------


def safety_digits(key: bytes, ident: bytes, iterations: int) -> str:
    h = b"\x00\x00" + key + ident
    for _ in range(iterations):
        h = hashlib.sha512(h + key).digest()
    return "".join("%05d" % (int.from_bytes(h[i:i + 5], "big") % 100000) for i in range(0, 30, 5))


def pair_number(a: str, b: str) -> str:
    return a + b if a <= b else b + a


def grouped(digits: str) -> str:
    return " ".join(digits[i:i + 5] for i in range(0, len(digits), 5))


# libsignal-protocol-c tests/test_fingerprint.c
LS_ALICE = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
LS_BOB = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
LS_WANT = "300354477692869396892869876765458257569162576843440918079131"
ls_a = safety_digits(LS_ALICE, b"+14152222222", 5200)
ls_b = safety_digits(LS_BOB, b"+14153333333", 5200)
assert pair_number(ls_a, ls_b) == LS_WANT

safety = {
    "libsignal": {"iterations": 5200,
                  "a": {"key": LS_ALICE.hex(), "id": "+14152222222", "digits": ls_a},
                  "b": {"key": LS_BOB.hex(), "id": "+14153333333", "digits": ls_b},
                  "number": LS_WANT},
    "pairs": [],
}
for (alg_a, key_a), (alg_b, key_b) in [
    (("ed25519", alice_pub), ("ed25519", bob_pub)),
    (("ed25519", bob_pub), ("ed25519", alice_pub)),
    (("p256", carol_pub), ("ed25519", alice_pub)),
    (("ed25519", alice_pub), ("ed25519", alice_pub)),
]:
    tag = {"ed25519": b"\x01", "p256": b"\x02"}
    da = safety_digits(tag[alg_a] + key_a, b"", 5200)
    db = safety_digits(tag[alg_b] + key_b, b"", 5200)
    n = pair_number(da, db)
    safety["pairs"].append({"a": {"alg": alg_a, "key": b64u(key_a), "digits": da},
                            "b": {"alg": alg_b, "key": b64u(key_b), "digits": db},
                            "number": n, "grouped": grouped(n)})

# --- Pin names ----------------------------------------------------------------

pin_names = [{"nick": n, "pin": unicodedata.normalize("NFKC", n).lower()} for n in [
    "alice", "Alice", "ALICE", "Ａｌｉｃｅ", "ﬁona", "Zoë", "Zoe\u0308", "Straße", "ΟΔΟΣ", "İstanbul", "ǅemal", "Carol ✓",
]]

doc = {
    "comment": "Known-answer vectors for protocol version 2 (docs/protocol.md). Generated by e2e.py with Python's "
               "cryptography package; crates/e2e/tests/vectors.rs and tests/e2e/crypto.test.mjs reproduce them. "
               "Bytes are lowercase hex unless a field is a wire field (base64url, no padding). Times are ms since the "
               "Unix epoch. Guard and open scenarios start from an empty replay guard with window_ms 600000, retired 16 "
               "and max_senders 4096 unless `config` says otherwise.",
    "secrets": secrets,
    "pairings": pairings,
    "contexts": contexts,
    "signal_keys": signal_keys,
    "seals": seals,
    "open_scenarios": open_scenarios,
    "guard_scenarios": guard_scenarios,
    "fingerprints": fingerprints,
    "fingerprint_values": fingerprint_values,
    "certificates": certificates,
    "identities": identities,
    "public_keys": public_keys,
    "signatures": signatures,
    "hellos": hellos,
    "hello_checks": hello_checks,
    "messages": messages,
    "message_checks": message_checks,
    "safety": safety,
    "pin_names": pin_names,
}
out = pathlib.Path(__file__).with_name("e2e.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
