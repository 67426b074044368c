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
    """What a receiver sends first: it takes pieces 32 KiB at a time."""
    return ctl("get", fid=m["fid"], sha256=m["sha256"], list=lst, chunk=32 * KIB)


def want(*pieces):
    return ctl("want", pieces=list(pieces))


def cancel(reason):
    return ctl("cancel", reason=reason)


def have(n, chunk=None):
    """A holder's answer; without `chunk`, one that sends 16 KiB at a time (or knows no other)."""
    return ctl("have", pieces=n) if chunk is None else ctl("have", pieces=n, chunk=chunk)


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
    {"text": get(OFFER, True), "ok": {"get": {"fid": "f1", "sha256": OFFER["sha256"], "list": True, "chunk": 32 * KIB}}},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s"}' % H, "ok": {"get": {"fid": "f1", "sha256": H, "list": False}}},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s","chunk":262144}' % H,
     "ok": {"get": {"fid": "f1", "sha256": H, "list": False, "chunk": 262_144}}},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s","chunk":16383}' % H, "error": True},
    {"text": '{"v":2,"type":"get","fid":"f1","sha256":"%s","chunk":"32768"}' % H, "error": True},
    {"text": have(4, 16 * KIB), "ok": {"have": 4, "chunk": 16 * KIB}},
    {"text": have(4, 32 * KIB), "ok": {"have": 4, "chunk": 32 * KIB}},
    {"text": have(4, 64 * KIB), "error": True},
    {"text": have(4, 20_000), "error": True},
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
    {"hex": "01" + "00000000" + "00000000" + "00" * (16 * KIB + 1),
     "ok": {"piece": {"index": 0, "offset": 0, "hex": "00" * (16 * KIB + 1)}}},
    {"hex": "01" + "00000000" + "00000000" + "00" * (32 * KIB + 1), "error": True},
    {"hex": "02" + "00000000" + "00000000" + "11" * (32 * 513), "error": True},
]

# ------------------------------------------------------------------ receiver

P32 = 32 * KIB
F3 = {"size": 70_000, "salt": 1, "piece": P32}       # pieces of 32768, 32768, 4464
M3 = meta(70_000, 1, P32)
LAST = 70_000 - 2 * P32


def pieces_of(frm, index, length, corrupt=False, chunk=16 * KIB):
    """The data messages of piece `index` (`length` bytes) from `frm`, `chunk` bytes each."""
    out = []
    for off in range(0, length, chunk):
        step = {"piece": {"from": frm, "index": index, "offset": off, "len": min(chunk, length - off)}}
        if corrupt and off == 0:
            step["piece"]["corrupt"] = True
        out.append(step)
    return out


def fetch_piece(frm, index, length, t, verified=True, extra_last=None, chunk=16 * KIB):
    """Steps that deliver a whole piece, writes and all, ending with `verified`."""
    steps = []
    chunks = pieces_of(frm, index, length, chunk=chunk)
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


def connect(frm, t, lst=True, pieces=(0, 1, 2)):
    """Opening a channel to `frm`, `get`, `have` (and the list): up to the first `want`."""
    steps = [{"at": t, "in": {"opened": frm}, "want": [send(frm, get(M3, lst))]}]
    if lst:
        steps.append({"at": t, "in": {"text": {"from": frm, "text": have(3)}}, "want": []})
        steps.append({"at": t, "in": list_msg(frm, 0, 3), "want": [send(frm, want(*pieces))]})
    else:
        steps.append({"at": t, "in": {"text": {"from": frm, "text": have(3)}}, "want": [send(frm, want(*pieces))]})
    return steps


receiver_scenarios += [
    {
        "name": "a large offer waits for its user, who accepts it, then cancels",
        "file": F3, "author": A, "config": {"auto_accept": 50_000},
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("waiting")], "deadline": None},
            {"at": 1, "in": {"peer_up": A}, "want": [], "deadline": None},
            {"at": 2, "in": {"accept": {}}, "want": [{"open": A}, state("fetching")], "deadline": 10_002,
             "saved": {"accepted": True, "have": []}},
            {"at": 3, "in": {"cancel": {}}, "want": [send(A, cancel("cancelled")), {"close": A},
                                                      state({"cancelled": "us"})], "deadline": None},
            {"at": 4, "in": {"accept": {}}, "want": []},
        ],
    },
    {
        "name": "a piece that does not match its hash is asked for again",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            *connect(A, 1),
            {"at": 2, "in": pieces_of(A, 0, P32, corrupt=True)[0], "want": [write(0, 16 * KIB)]},
            {"at": 2, "in": pieces_of(A, 0, P32)[1],
             "want": [write(16 * KIB, 16 * KIB), {"corrupt": {"piece": 0, "from": A}}, send(A, want(0))]},
            *fetch_piece(A, 1, P32, 3),
            *fetch_piece(A, 2, LAST, 4),
            *fetch_piece(A, 0, P32, 5, extra_last=[{"read": {"offset": P32, "len": P32}}, state("checking")]),
            {"at": 6, "in": {"read": {"offset": P32, "len": P32}}, "want": [{"read": {"offset": 2 * P32, "len": LAST}}]},
            {"at": 6, "in": {"read": {"offset": 2 * P32, "len": LAST}}, "want": []},
            {"at": 7, "in": {"written": 3 * P32 + LAST}, "want": [{"close": A}, state("complete")], "disk": True},
        ],
    },
    {
        "name": "a blip midway: what was not finished is fetched again once the member is back",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            *connect(A, 1),
            {"at": 6, "in": pieces_of(A, 0, P32)[0], "want": [write(0, 16 * KIB)], "progress": 16 * KIB},
            {"at": 20, "in": {"peer_down": A}, "want": [{"source_failed": {"peer": A, "error": "closed"}}],
             "deadline": 10_006, "progress": 0},
            {"at": 500, "in": {"peer_up": A}, "want": [], "deadline": 1020},
            {"at": 1020, "in": None, "want": [{"open": A}]},
            *connect(A, 1021, lst=False),
            *fetch_piece(A, 0, P32, 1022),
            *fetch_piece(A, 1, P32, 1023),
            *fetch_piece(A, 2, LAST, 1024, extra_last=[state("checking")]),
            {"at": 1025, "in": {"written": 16 * KIB + 70_000}, "want": [{"close": A}, state("complete")],
             "disk": True},
        ],
    },
    {
        "name": "after a reload, the pieces kept are read back and checked, and only the others fetched",
        "file": F3, "author": A, "saved": {"accepted": False, "have": [[0, 1]]}, "disk": [[0, P32]],
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")], "progress": P32},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 1, "in": {"text": {"from": A, "text": have(3)}}, "want": []},
            {"at": 1, "in": list_msg(A, 0, 3), "want": [send(A, want(1, 2)), {"read": {"offset": 0, "len": P32}}]},
            {"at": 2, "in": {"read": {"offset": 0, "len": P32}}, "want": []},
            *fetch_piece(A, 1, P32, 3),
            *fetch_piece(A, 2, LAST, 4, extra_last=[state("checking")]),
            {"at": 5, "in": {"written": P32 + LAST}, "want": [{"close": A}, state("complete")], "disk": True},
        ],
    },
    {
        "name": "a kept piece that does not check out on disk is fetched again",
        "file": F3, "author": A, "saved": {"accepted": True, "have": [[0, 2]]}, "disk": [[0, 2 * P32]],
        "steps": [
            {"at": 0, "in": {"corrupt_disk": P32 + 5}, "want": []},
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 1, "in": {"text": {"from": A, "text": have(3)}}, "want": []},
            {"at": 1, "in": list_msg(A, 0, 3), "want": [send(A, want(2)), {"read": {"offset": 0, "len": P32}}]},
            {"at": 2, "in": {"read": {"offset": 0, "len": P32}}, "want": [{"read": {"offset": P32, "len": P32}}]},
            {"at": 2, "in": {"read": {"offset": P32, "len": P32}},
             "want": [{"corrupt": {"piece": 1, "from": None}}, send(A, want(1))],
             "saved": {"accepted": True, "have": [[0, 1]]}},
            *fetch_piece(A, 2, LAST, 3),
            *fetch_piece(A, 1, P32, 4, extra_last=[{"read": {"offset": 2 * P32, "len": LAST}}, state("checking")]),
            {"at": 5, "in": {"read": {"offset": 2 * P32, "len": LAST}}, "want": []},
            {"at": 6, "in": {"written": P32 + LAST}, "want": [{"close": A}, state("complete")], "disk": True},
        ],
    },
    {
        "name": "the author first; when it does not have the file, another member that does",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": C}, "want": [{"open": C}]},
            {"at": 0, "in": {"closed": C}, "want": [{"source_failed": {"peer": C, "error": "closed"}}]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 2, "in": {"text": {"from": A, "text": cancel("unavailable")}},
             "want": [{"close": A}, {"source_failed": {"peer": A, "error": "refused:unavailable"}}],
             "deadline": 1000},
            {"at": 1000, "in": None, "want": [{"open": C}]},
            *connect(C, 1001),
            *fetch_piece(C, 0, P32, 1002),
            *fetch_piece(C, 1, P32, 1002),
            *fetch_piece(C, 2, LAST, 1002, extra_last=[state("checking")]),
            {"at": 1003, "in": {"written": 70_000}, "want": [{"close": C}, state("complete")], "disk": True},
        ],
    },
    {
        "name": "the author cancels",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            *connect(A, 1),
            {"at": 2, "in": pieces_of(A, 0, P32)[0], "want": [write(0, 16 * KIB)]},
            {"at": 3, "in": {"text": {"from": A, "text": cancel("cancelled")}},
             "want": [{"close": A}, state({"cancelled": "author"})], "deadline": None},
            {"at": 4, "in": {"peer_up": A}, "want": []},
        ],
    },
    {
        "name": "a holder that falls silent: stalled, then fetching again",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 2, "in": {"text": {"from": A, "text": have(3)}}, "want": []},
            {"at": 3, "in": list_msg(A, 0, 3), "want": [send(A, want(0, 1, 2))], "deadline": 10_003},
            {"at": 10_003, "in": None,
             "want": [{"close": A}, {"source_failed": {"peer": A, "error": "stalled"}},
                      state({"stalled": {"since": 3}})], "deadline": 11_003},
            {"at": 11_003, "in": None, "want": [{"open": A}], "deadline": 26_003},
            {"at": 11_004, "in": {"opened": A}, "want": [send(A, get(M3, False))]},
            {"at": 11_005, "in": {"text": {"from": A, "text": have(3)}},
             "want": [send(A, want(0, 1, 2)), state("fetching")], "deadline": 21_005},
            *fetch_piece(A, 0, P32, 11_006),
        ],
    },
    {
        "name": "the window counts bytes asked for and bytes not yet written",
        "file": {"size": 100_000, "salt": 9, "piece": 16 * KIB}, "author": A, "config": {"window": 40_000},
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 1, "in": {"opened": A},
             "want": [send(A, get(meta(100_000, 9, 16 * KIB), True))]},
            {"at": 1, "in": {"text": {"from": A, "text": have(7)}}, "want": []},
            {"at": 1, "in": list_msg(A, 0, 7), "want": [send(A, want(0, 1, 2))]},
            {"at": 2, "in": {"piece": {"from": A, "index": 0, "offset": 0, "len": 16 * KIB}},
             "want": [write(0, 16 * KIB), {"verified": 0}]},
            {"at": 3, "in": {"written": 16 * KIB}, "want": [send(A, want(3))]},
            {"at": 4, "in": {"piece": {"from": A, "index": 1, "offset": 0, "len": 16 * KIB}},
             "want": [write(16 * KIB, 16 * KIB), {"verified": 1}]},
            {"at": 5, "in": {"piece": {"from": A, "index": 2, "offset": 0, "len": 16 * KIB}},
             "want": [write(32 * KIB, 16 * KIB), {"verified": 2}]},
            {"at": 6, "in": {"written": 32 * KIB}, "want": [send(A, want(4, 5))]},
            {"at": 7, "in": {"cancel": {}}, "want": [send(A, cancel("cancelled")), {"close": A},
                                                      state({"cancelled": "us"})]},
        ],
    },
    {
        "name": "a holder whose list does not match the offer, or that breaks a rule, is not asked again",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 0, "in": {"peer_up": C}, "want": []},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 1, "in": {"text": {"from": A, "text": have(3)}}, "want": []},
            {"at": 2, "in": list_msg(A, 0, 3, corrupt=True),
             "want": [send(A, cancel("protocol")), {"close": A}, {"source_failed": {"peer": A, "error": "protocol"}},
                      {"open": C}]},
            {"at": 3, "in": {"opened": C}, "want": [send(C, get(M3, True))]},
            {"at": 3, "in": {"text": {"from": C, "text": have(4)}},
             "want": [send(C, cancel("protocol")), {"close": C}, {"source_failed": {"peer": C, "error": "protocol"}}],
             "deadline": 10_002},
            {"at": 10_002, "in": None, "want": [state({"stalled": {"since": 2}})], "deadline": None},
            {"at": 10_003, "in": {"peer_up": A}, "want": []},
        ],
    },
    {
        "name": "a holder that sends 32 KiB at a time, as asked; one that sends more than it said is not asked again",
        "file": F3, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching")]},
            {"at": 0, "in": {"peer_up": A}, "want": [{"open": A}]},
            {"at": 0, "in": {"peer_up": C}, "want": []},
            {"at": 1, "in": {"opened": A}, "want": [send(A, get(M3, True))]},
            {"at": 1, "in": {"text": {"from": A, "text": have(3, 32 * KIB)}}, "want": []},
            {"at": 2, "in": list_msg(A, 0, 3), "want": [send(A, want(0, 1, 2))]},
            *fetch_piece(A, 0, P32, 3, chunk=32 * KIB),
            {"at": 4, "in": {"written": P32}, "want": []},
            {"at": 5, "in": {"closed": A}, "want": [{"source_failed": {"peer": A, "error": "closed"}}, {"open": C}]},
            {"at": 6, "in": {"opened": C}, "want": [send(C, get(M3, False))]},
            {"at": 6, "in": {"text": {"from": C, "text": have(3)}}, "want": [send(C, want(1, 2))]},
            {"at": 7, "in": {"piece": {"from": C, "index": 1, "offset": 0, "len": 32 * KIB}},
             "want": [send(C, cancel("protocol")), {"close": C}, {"source_failed": {"peer": C, "error": "protocol"}}]},
        ],
    },
    {
        "name": "an empty file is complete at once",
        "file": {"size": 0, "salt": 0, "piece": 16 * KIB}, "author": A,
        "steps": [
            {"at": 0, "in": {"start": {}}, "want": [state("fetching"), state("complete")], "deadline": None},
        ],
    },
]

F = {"size": 70_000, "salt": 1, "piece": P32}
SMALL = {"high_water": 40_000, "read_bytes": 16 * KIB}
sender_scenarios = [
    {
        "name": "the list, then the pieces asked for, read piece by piece and within the high water",
        "file": F, "config": SMALL,
        "steps": [
            {"at": 0, "in": {"create": {"list": True}}, "want": [{"send_text": have(3)}, {"send_list": {"first": 0, "count": 3}}],
             "deadline": 120_000},
            {"at": 1, "in": {"text": want(0, 1, 2)}, "want": [{"read": {"offset": 0, "len": 16 * KIB}}], "deadline": None},
            {"at": 2, "in": {"read": {"offset": 0, "len": 16 * KIB}},
             "want": [{"send_piece": {"index": 0, "offset": 0, "len": 16 * KIB}}, {"read": {"offset": 16 * KIB, "len": 16 * KIB}}]},
            {"at": 3, "in": {"read": {"offset": 16 * KIB, "len": 16 * KIB}},
             "want": [{"send_piece": {"index": 0, "offset": 16 * KIB, "len": 16 * KIB}}, {"read": {"offset": P32, "len": 16 * KIB}}]},
            {"at": 4, "in": {"read": {"offset": P32, "len": 16 * KIB}},
             "want": [{"send_piece": {"index": 1, "offset": 0, "len": 16 * KIB}}, {"read": {"offset": P32 + 16 * KIB, "len": 16 * KIB}}]},
            {"at": 5, "in": {"read": {"offset": P32 + 16 * KIB, "len": 16 * KIB}},
             "want": [{"read": {"offset": 2 * P32, "len": LAST}}], "delivered": 0},
            {"at": 6, "in": {"read": {"offset": 2 * P32, "len": LAST}}, "want": []},
            {"at": 7, "in": {"buffered": 16_000},
             "want": [{"send_piece": {"index": 1, "offset": 16 * KIB, "len": 16 * KIB}},
                      {"send_piece": {"index": 2, "offset": 0, "len": LAST}}],
             "delivered": 70_000 - (16_000 + 16 * KIB + 9 + LAST + 9), "deadline": 120_006},
            {"at": 8, "in": {"closed": {}}, "want": [{"state": "done"}], "deadline": None},
        ],
    },
    {
        "name": "asked for more than 32 KiB at a time, it sends 32 KiB; asked for 16 KiB, 16 KiB",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False, "chunk": 256 * KIB}}, "want": [{"send_text": have(3, 32 * KIB)}]},
            {"at": 1, "in": {"text": want(0, 2)}, "want": [{"read": {"offset": 0, "len": P32}}]},
            {"at": 2, "in": {"read": {"offset": 0, "len": P32}},
             "want": [{"send_piece": {"index": 0, "offset": 0, "len": P32}}, {"read": {"offset": 2 * P32, "len": LAST}}]},
            {"at": 3, "in": {"read": {"offset": 2 * P32, "len": LAST}},
             "want": [{"send_piece": {"index": 2, "offset": 0, "len": LAST}}]},
            {"at": 4, "in": {"create": {"list": False, "chunk": 16 * KIB}}, "want": [{"send_text": have(3, 16 * KIB)}]},
            {"at": 5, "in": {"text": want(1)}, "want": [{"read": {"offset": P32, "len": P32}}]},
            {"at": 6, "in": {"read": {"offset": P32, "len": P32}},
             "want": [{"send_piece": {"index": 1, "offset": 0, "len": 16 * KIB}},
                      {"send_piece": {"index": 1, "offset": 16 * KIB, "len": 16 * KIB}}]},
        ],
    },
    {
        "name": "a piece that no longer matches its hash ends the transfer",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(1)}, "want": [{"read": {"offset": P32, "len": P32}}]},
            {"at": 2, "in": {"read": {"offset": P32, "len": P32, "corrupt": True}},
             "want": [{"send_text": cancel("changed")}, {"close": {}}, {"state": {"failed": "changed"}}]},
            {"at": 3, "in": {"text": want(0)}, "want": []},
        ],
    },
    {
        "name": "a file cut short since it was offered ends the transfer",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(2)}, "want": [{"read": {"offset": 2 * P32, "len": LAST}}]},
            {"at": 2, "in": {"read": {"offset": 2 * P32, "len": LAST, "short": 100}},
             "want": [{"send_text": cancel("changed")}, {"close": {}}, {"state": {"failed": "changed"}}]},
        ],
    },
    {
        "name": "the fetching side cancels",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(0)}, "want": [{"read": {"offset": 0, "len": P32}}]},
            {"at": 2, "in": {"text": cancel("cancelled")}, "want": [{"state": {"cancelled": "peer"}}, {"close": {}}]},
            {"at": 3, "in": {"read": {"offset": 0, "len": P32}}, "want": []},
        ],
    },
    {
        "name": "this side cancels",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": True}}, "want": [{"send_text": have(3)}, {"send_list": {"first": 0, "count": 3}}]},
            {"at": 1, "in": {"cancel": {}},
             "want": [{"send_text": cancel("cancelled")}, {"close": {}}, {"state": {"cancelled": "us"}}]},
        ],
    },
    {
        "name": "asking for a piece that is not there breaks the protocol",
        "file": F, "config": {"max_queue": 2},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(3)},
             "want": [{"send_text": cancel("protocol")}, {"close": {}}, {"state": {"failed": "protocol"}}]},
        ],
    },
    {
        "name": "asking for more than it keeps breaks the protocol",
        "file": F, "config": {"max_queue": 2},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(0, 1, 2)},
             "want": [{"send_text": cancel("protocol")}, {"close": {}}, {"state": {"failed": "protocol"}}]},
        ],
    },
    {
        "name": "a channel nobody asks anything of is closed",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}], "deadline": 120_000},
            {"at": 119_999, "in": None, "want": []},
            {"at": 120_000, "in": None,
             "want": [{"send_text": cancel("idle")}, {"close": {}}, {"state": {"failed": "idle"}}], "deadline": None},
        ],
    },
    {
        "name": "a channel that closes with pieces still to send is interrupted",
        "file": F, "config": {},
        "steps": [
            {"at": 0, "in": {"create": {"list": False}}, "want": [{"send_text": have(3)}]},
            {"at": 1, "in": {"text": want(0)}, "want": [{"read": {"offset": 0, "len": P32}}]},
            {"at": 2, "in": {"closed": {}}, "want": [{"state": "interrupted"}]},
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
    "sender_scenarios": sender_scenarios,
}
out = pathlib.Path(__file__).with_name("transfer.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
