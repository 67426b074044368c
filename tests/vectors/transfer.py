"""Writes transfer.json, the shared vectors and scenarios for file transfers.

Run `python3 tests/vectors/transfer.py` after editing; both the Rust crate
(crates/transfer/tests/vectors.rs) and the web client
(tests/e2e/transfer.test.mjs) check every case and replay every scenario,
and must produce exactly what is written here.

Hashes are computed here with Python's hashlib, independently of both
implementations; the names, media types, wire messages and the machines'
actions are written by hand (docs/protocol.md, "Files").
"""
import hashlib
import json
import pathlib

A, B, C = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"
KIB = 1024


def content(size, salt):
    """Byte k of a scenario's file: the top byte of (k + salt) * 0x9E3779B1 mod 2^32."""
    return bytes((((k + salt) * 0x9E3779B1) & 0xFFFFFFFF) >> 24 for k in range(size))


def digests(size, salt, piece):
    data = content(size, salt)
    pieces = [hashlib.sha256(data[i:i + piece]).digest() for i in range(0, size, piece)]
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "pieces": [p.hex() for p in pieces],
        "root": hashlib.sha256(b"".join(pieces)).hexdigest(),
    }


def meta(size, salt, piece):
    d = digests(size, salt, piece)
    return {"fid": "f1", "name": "data.bin", "size": size, "type": "application/octet-stream",
            "piece": piece, "sha256": d["sha256"], "root": d["root"]}


def ctl(kind, **fields):
    return json.dumps({"v": 2, "type": kind, **fields}, separators=(",", ":"))


def get(m, lst):
    return ctl("get", fid=m["fid"], sha256=m["sha256"], list=lst)


def want(*pieces):
    return ctl("want", pieces=list(pieces))


def cancel(reason):
    return ctl("cancel", reason=reason)


def have(n):
    return ctl("have", pieces=n)


def send(to, text):
    return {"send": {"to": to, "text": text}}


def write(offset, length):
    return {"write": {"offset": offset, "len": length}}


def state(s):
    return {"state": s}


# ------------------------------------------------------------------ vectors

hashes = []
for size, salt, piece in [(0, 0, 16 * KIB), (1, 3, 16 * KIB), (16 * KIB - 1, 1, 16 * KIB), (16 * KIB, 2, 16 * KIB),
                          (16 * KIB + 1, 5, 16 * KIB), (100_000, 9, 32 * KIB)]:
    hashes.append({"size": size, "salt": salt, "piece": piece, **digests(size, salt, piece)})

piece_sizes = [
    {"size": 0, "piece": 256 * KIB},
    {"size": 5 * KIB * KIB, "piece": 256 * KIB},
    {"size": 2 ** 30, "piece": 256 * KIB},
    {"size": 2 ** 30 + 1, "piece": 512 * KIB},
    {"size": 200 * 2 ** 30, "piece": 16 * 2 ** 20},
    {"size": 2 ** 40, "piece": 16 * 2 ** 20},
    {"size": 2 ** 40 + 1, "piece": None},
]

names = [
    {"in": "cat.png", "out": "cat.png"},
    {"in": "../../etc/passwd", "out": "passwd"},
    {"in": "C:\\Users\\mallory\\evil.exe", "out": "evil.exe"},
    {"in": "dir/sub\\file.txt", "out": "file.txt"},
    {"in": "..", "out": "file"},
    {"in": "/", "out": "file"},
    {"in": "...", "out": "file"},
    {"in": " .bashrc ", "out": "bashrc"},
    {"in": "trailing. . .", "out": "trailing"},
    {"in": "photo\u202egnp.exe", "out": "photognp.exe"},
    {"in": "\u2067invoice\u2069 \u200fpdf.exe", "out": "invoice pdf.exe"},
    {"in": "zero\u200bwidth\ufeff.txt", "out": "zerowidth.txt"},
    {"in": "bell\u0007\u0000nul\u007f\u0085.txt", "out": "bellnul .txt"},
    {"in": "tab\there\nnew\r\nline.txt", "out": "tab here new line.txt"},
    {"in": "wide      gap.txt", "out": "wide gap.txt"},
    {"in": "report.pdf                                                  .exe", "out": "report.pdf .exe"},
    {"in": "line\u2028sep\u3000ideo.txt", "out": "line sep ideo.txt"},
    {"in": "a<b>c:d\"e|f?g*h.txt", "out": "a_b_c_d_e_f_g_h.txt"},
    {"in": "CON", "out": "_CON"},
    {"in": "con.txt", "out": "_con.txt"},
    {"in": "Lpt1 .tar.gz", "out": "_Lpt1 .tar.gz"},
    {"in": "console.log", "out": "console.log"},
    {"in": "naïve résumé 履歴書.pdf", "out": "naïve résumé 履歴書.pdf"},
    {"in": "🐱 cat 👨\u200d👩\u200d👧.jpg", "out": "🐱 cat 👨👩👧.jpg"},
    {"in": "Ａｂｃ．ｔｘｔ", "out": "Ａｂｃ．ｔｘｔ"},
    {"in": "x" * 300 + ".pdf", "out": "x" * 251 + ".pdf"},
    {"in": "é" * 200 + ".tar.gz", "out": "é" * 126 + ".gz"},
    {"in": "y" * 300, "out": "y" * 255},
    {"in": "z" * 250 + ". . . .mp4", "out": "z" * 250 + ".mp4"},
    {"in": "long extension." + "e" * 20, "out": "long extension." + "e" * 20},
]

numbered = [
    {"name": "cat.png", "n": 0, "out": "cat.png"},
    {"name": "cat.png", "n": 1, "out": "cat (1).png"},
    {"name": "cat.png", "n": 12, "out": "cat (12).png"},
    {"name": "README", "n": 1, "out": "README (1)"},
    {"name": "archive.tar.gz", "n": 2, "out": "archive.tar (2).gz"},
    {"name": "notes. v2", "n": 1, "out": "notes. v2 (1)"},
    {"name": "x" * 251 + ".pdf", "n": 3, "out": "x" * 247 + " (3).pdf"},
    {"name": "é" * 127, "n": 1, "out": "é" * 125 + " (1)"},
]

sniff = [
    {"hex": "89504e470d0a1a0a0000000d", "type": "image/png"},
    {"hex": "89504e470d0a1a", "type": None},
    {"hex": "ffd8ffe000104a4649460001", "type": "image/jpeg"},
    {"hex": "ffd8", "type": None},
    {"hex": "474946383961", "type": "image/gif"},
    {"hex": "474946383761010001008000", "type": "image/gif"},
    {"hex": "474946383861", "type": None},
    {"hex": "52494646240000005745425056503820", "type": "image/webp"},
    {"hex": "524946462400000057415645", "type": None},
    {"hex": "3c3f786d6c2076657273696f6e3d22312e30223f3e3c737667", "type": None},
    {"hex": "3c737667", "type": None},
    {"hex": "", "type": None},
]

OFFER = meta(100_000, 9, 32 * KIB)
offers = [
    {"file": OFFER, "body": "\n".join([OFFER["fid"], "100000", OFFER["type"], str(32 * KIB), OFFER["sha256"],
                                       OFFER["root"], OFFER["name"]])},
    {"file": {**OFFER, "name": "two\nlines.txt"},
     "body": "\n".join([OFFER["fid"], "100000", OFFER["type"], str(32 * KIB), OFFER["sha256"], OFFER["root"],
                        "two\nlines.txt"])},
    {"file": {**OFFER, "piece": 20_000}, "error": "piece"},
    {"file": {**OFFER, "piece": 8 * KIB}, "error": "piece"},
    {"file": {**OFFER, "piece": 32 * 2 ** 20}, "error": "piece"},
    {"file": {**OFFER, "size": 2 ** 16 * 32 * KIB + 1}, "error": "piece"},
    {"file": {**OFFER, "size": -1}, "error": "size"},
    {"file": {**OFFER, "size": 1.5}, "error": "size"},
    {"file": {**OFFER, "fid": "a/b"}, "error": "fid"},
    {"file": {**OFFER, "name": ""}, "error": "name"},
    {"file": {**OFFER, "name": "n" * 1025}, "error": "name"},
    {"file": {**OFFER, "type": "image/SVG+xml"}, "error": "type"},
    {"file": {**OFFER, "type": "image"}, "error": "type"},
    {"file": {**OFFER, "sha256": OFFER["sha256"].upper()}, "error": "sha256"},
    {"file": {**OFFER, "root": OFFER["root"][:-2]}, "error": "root"},
    {"file": {**OFFER, "size": 0}, "error": "sha256"},
    {"file": {k: v for k, v in OFFER.items() if k != "piece"}, "error": "piece"},
]

H = hashlib.sha256(b"x").hexdigest()
control = [
    {"text": get(OFFER, True), "ok": {"get": {"fid": "f1", "sha256": OFFER["sha256"], "list": True}}},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s"}' % H, "ok": {"get": {"fid": "f1", "sha256": H, "list": False}}},
    {"text": '{"v":2,"type":"get","fid":"f/1","sha256":"%s"}' % H, "error": True},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s","list":1}' % H, "error": True},
    {"text": have(4), "ok": {"have": 4}},
    {"text": '{"v":2.0,"type":"have","pieces":4.0}', "ok": {"have": 4}},
    {"text": '{"v":2,"type":"have","pieces":-1}', "error": True},
    {"text": want(0, 1, 2), "ok": {"want": [0, 1, 2]}},
    {"text": ctl("want", pieces=[]), "error": True},
    {"text": ctl("want", pieces=list(range(257))), "error": True},
    {"text": ctl("want", pieces=[1.5]), "error": True},
    {"text": cancel("busy"), "ok": {"cancel": "busy"}},
    {"text": cancel("gone fishing"), "ok": {"cancel": "unavailable"}},
    {"text": ctl("cancel"), "ok": {"cancel": "unavailable"}},
    {"text": ctl("hello", x=1), "ok": {"unknown": None}},
    {"text": '{"type":"have","pieces":4}', "error": True},
    {"text": '[1]', "error": True},
    {"text": 'nope', "error": True},
]
data = [
    {"hex": "01" + "00000003" + "00004000" + "abcd", "ok": {"piece": {"index": 3, "offset": 16384, "hex": "abcd"}}},
    {"hex": "02" + "00000200" + "00000000" + "11" * 32, "ok": {"list": {"first": 512, "hex": "11" * 32}}},
    {"hex": "02" + "00000000" + "00000001" + "11" * 32, "error": True},
    {"hex": "02" + "00000000" + "00000000" + "11" * 31, "error": True},
    {"hex": "01" + "00000000" + "00000000", "error": True},
    {"hex": "03" + "00000000" + "00000000" + "00", "error": True},
    {"hex": "01000000", "error": True},
    {"hex": "01" + "00000000" + "00000000" + "00" * (16 * KIB + 1), "error": True},
]

# ------------------------------------------------------------------ receiver

P32 = 32 * KIB
F3 = {"size": 70_000, "salt": 1, "piece": P32}       # pieces of 32768, 32768, 4464
M3 = meta(70_000, 1, P32)
LAST = 70_000 - 2 * P32


def pieces_of(frm, index, length, corrupt=False):
    """The data messages of piece `index` (`length` bytes) from `frm`, 16 KiB each."""
    out = []
    for off in range(0, length, 16 * KIB):
        step = {"piece": {"from": frm, "index": index, "offset": off, "len": min(16 * KIB, length - off)}}
        if corrupt and off == 0:
            step["piece"]["corrupt"] = True
        out.append(step)
    return out


def fetch_piece(frm, index, length, t, verified=True, extra_last=None):
    """Steps that deliver a whole piece, writes and all, ending with `verified`."""
    steps = []
    chunks = pieces_of(frm, index, length)
    for i, c in enumerate(chunks):
        wants = [write(index * P32 + c["piece"]["offset"], c["piece"]["len"])]
        if i == len(chunks) - 1:
            wants.append({"verified": index} if verified else {"corrupt": {"piece": index, "from": frm}})
            wants += extra_last or []
        steps.append({"at": t, "in": c, "want": wants})
    return steps


def list_msg(frm, first, count, corrupt=False):
    step = {"list": {"from": frm, "first": first, "count": count}}
    if corrupt:
        step["list"]["corrupt"] = True
    return step


receiver_scenarios = [
    {
        "name": "an offer is accepted by itself, fetched from its author and checked",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")], "deadline": 10_000},
            {"at": 1, "in": {"peer_up": B}, "want": [{"open": B}]},
            {"at": 2, "in": {"peer_up": A}, "want": []},
            {"at": 3, "in": {"opened": B}, "want": [send(B, get(M3, True))], "deadline": 10_000},
            {"at": 4, "in": {"text": {"from": B, "text": have(3)}}, "want": []},
            {"at": 5, "in": list_msg(B, 0, 3), "want": [send(B, want(0, 1, 2))], "deadline": 10_005},
            *fetch_piece(B, 0, P32, 6),
            {"at": 7, "in": {"written": 70_000}, "want": [], "progress": P32},
            *fetch_piece(B, 1, P32, 8),
            *fetch_piece(B, 2, LAST, 9, extra_last=[state("checking")]),
            {"at": 10, "in": {"written": P32 + LAST}, "want": [{"close": B}, state("complete")], "disk": True,
             "deadline": None, "saved": {"accepted": True, "have": [[0, 3]]}},
        ],
    },
]

doc = {
    "comment": "Shared vectors and scenarios for file transfers (docs/protocol.md, \"Files\"). Generated by "
               "transfer.py. content: how a scenario's file is made. hashes: SHA-256 of such files, per piece and "
               "whole, and the root (SHA-256 of the piece hashes concatenated). piece_sizes: the piece size "
               "peerchat writes (null: too large). names: offered name -> plain name. numbered: the n-th name "
               "to try. sniff: first bytes (hex) -> image type or null. offers: a file offer's object -> its "
               "signed BODY, or the field at fault. control, data: transfer-channel messages -> what they read "
               "as, or an error. receiver_scenarios / sender_scenarios: each machine replays `steps` "
               "(`at`: the time in ms, `in`: the input, `want`: the actions in order; optional `deadline`, "
               "`progress`, `saved`, and `disk`: the partial file now equals the file). See the test runners "
               "for the input and action forms.",
    "content": "byte k of a file of salt s is (((k + s) * 0x9E3779B1) mod 2^32) >> 24",
    "hashes": hashes,
    "piece_sizes": piece_sizes,
    "names": names,
    "numbered": numbered,
    "sniff": sniff,
    "offers": offers,
    "control": control,
    "data": data,
    "receiver_defaults": {"auto_accept": 10 * 2 ** 20, "window": 4 * 2 ** 20, "max_sources": 1, "stall_ms": 10_000,
                          "open_timeout_ms": 15_000, "unavailable_ms": 60_000, "backoff_min_ms": 1000,
                          "backoff_max_ms": 30_000, "max_bad_pieces": 3, "read_bytes": 256 * KIB},
    "sender_defaults": {"high_water": 2 ** 20, "low_water": 2 ** 18, "read_bytes": 256 * KIB, "max_queue": 256,
                        "idle_ms": 120_000},
    "receiver_scenarios": receiver_scenarios,
    "sender_scenarios": [],
}
out = pathlib.Path(__file__).with_name("transfer.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
