"""Writes mesh.json, the shared scenarios for the mesh rules.

Run `python3 tests/vectors/mesh.py` after editing; both the Rust crate
(crates/mesh/tests/vectors.rs) and the web client (tests/e2e/mesh.test.mjs)
replay every scenario and must produce exactly the outputs written here.

The expected outputs are written by hand. Only the random draws are
computed here, with the generator the file's format names (xorshift128, as
in the paper "Xorshift RNGs", seeded with four 32-bit words), so that the
connection ids and delays below are the ones a conforming implementation
draws, in the order it draws them.
"""
import base64
import json
import pathlib

M32 = 0xFFFFFFFF

A, B, C, D = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc", "dddddddddddddddd"
NICK = {A: "alice", B: "bob", C: "carol", D: "dave"}
SEED = [0x9E3779B9, 0x243F6A88, 0xB7E15162, 0x6A09E667]
# The defaults (docs/protocol.md, section 2); scenarios override some.
DEFAULTS = {
    "relays_signals": True,
    "ice_restart": True,
    "relink_min_ms": 1000,
    "relink_max_ms": 30000,
    "gone_after_ms": 20000,
    "rejoin_delay_ms": 2000,
    "setup_timeout_ms": 30000,
    "repair_timeout_ms": 20000,
    "glare_wait_ms": 5000,
}


class Rng:
    """xorshift128: the connection ids and backoff jitter of the scenarios."""

    def __init__(self, seed):
        self.s = list(seed) if any(seed) else [0xBAD5EED] * 4

    def next(self):
        x, y, z, w = self.s
        t = (x ^ (x << 11)) & M32
        new = (w ^ (w >> 19) ^ (t ^ (t >> 8))) & M32
        self.s = [y, z, w, new]
        return new

    def sid(self):
        raw = b"".join(self.next().to_bytes(4, "little") for _ in range(4))
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def backoff(self, attempt, config):
        base = min(config["relink_max_ms"], config["relink_min_ms"] * 2 ** attempt)
        half = base // 2
        return half + ((self.next() * half) >> 32)


def peer(id):
    return {"id": id, "nick": NICK[id]}


class Scenario:
    def __init__(self, name, config=None, seed=SEED):
        self.doc = {"name": name, "seed": seed, "steps": []}
        if config:
            self.doc["config"] = config
        self.config = {**DEFAULTS, **(config or {})}
        self.rng = Rng(seed)

    def step(self, at, input, want, deadline="-", members=None):
        step = {"at": at}
        if input == "timeout":
            step["timeout"] = True
        else:
            step["in"] = input
        step["want"] = want
        if deadline != "-":
            step["deadline"] = deadline
        if members is not None:
            step["members"] = members
        self.doc["steps"].append(step)
        return self

    def sid(self):
        return self.rng.sid()

    def enter(self, me, *members, open_at=None):
        """Online, joined as `me`, a link started to each member listed (and
        opened at `open_at`, when given); returns the links' sids."""
        self.step(0, server("open"), [])
        self.step(1, JOIN, [o("join")])
        sids = [self.sid() for _ in members]
        want = []
        for m, sid in zip(members, sids):
            want += [added(m, False), o("start", peer=m, sid=sid)]
        self.step(2, joined(me, *members), want + [o("entered", first=True)])
        if open_at is not None:
            for i, (m, sid) in enumerate(zip(members, sids)):
                opened(self, m, sid, open_at + i)
        return sids

    def host(self, me, *newcomers):
        """Online and alone as `me`; then each newcomer joins and offers
        `x1` for the first, `x2`…, and the links open. Returns the sids."""
        self.step(0, server("open"), [])
        self.step(1, JOIN, [o("join")])
        self.step(2, joined(me), [o("entered", first=True)])
        sids = []
        for i, m in enumerate(newcomers):
            sid = f"x{i + 1}"
            self.step(3 + 3 * i, {"peer_joined": peer(m)}, [added(m, True)])
            self.step(4 + 3 * i, signal(m, sid, "offer"), [o("accept", peer=m, sid=sid)])
            opened(self, m, sid, 5 + 3 * i)
            sids.append(sid)
        return sids

    def backoff(self, attempt):
        return self.rng.backoff(attempt, self.config)


# Inputs.
def server(state):
    return {"server": state}


def joined(you, *members, resumed=False):
    return {"joined": {"you": you, "members": [peer(m) for m in members], "resumed": resumed}}


def signal(frm, sid, kind):
    return {"signal": {"from": frm, "sid": sid, "kind": kind}}


def link(kind, sid, state=None):
    body = {"sid": sid}
    if state:
        body["state"] = state
    return {kind: body}


JOIN = {"join": {}}


def error(code):
    return {"error": {"code": code}}


# Outputs.
def o(kind, **body):
    return {kind: body}


def added(id, announce):
    return o("added", peer=id, nick=NICK[id], announce=announce)


def state(id, s):
    return o("state", peer=id, state=s)


def member(id, state, listed=True, sid=None, open=False, verified=None):
    return {"id": id, "nick": NICK[id], "state": state, "listed": listed, "sid": sid, "open": open,
            "verified": open if verified is None else verified}


def opened(s, id, sid, at):
    """The link's channel opens (the member is verifying: hellos go both
    ways), then the other side's hello verifies: the member is connected
    and its channel up."""
    s.step(at, link("link_opened", sid), [state(id, "verifying"), o("hello", peer=id, sid=sid)])
    return s.step(at, link("verified", sid), [state(id, "connected"), o("up", peer=id, sid=sid)])


scenarios = []

# --- The newcomer starts. --------------------------------------------------
s = Scenario("the newcomer starts a link to every member listed; members wait for newcomers")
s.step(0, server("connecting"), [])
s.step(5, server("open"), [], deadline=None)
s.step(10, JOIN, [o("join")])
sb, sc = s.sid(), s.sid()
s.step(20, joined(A, B, C), [
    added(B, False), o("start", peer=B, sid=sb),
    added(C, False), o("start", peer=C, sid=sc),
    o("entered", first=True),
], deadline=30020, members=[member(B, "connecting", sid=sb), member(C, "connecting", sid=sc)])
s.step(30, signal(B, sb, "answer"), [o("forward", peer=B, sid=sb)])
s.step(31, signal(B, sb, "candidate"), [o("forward", peer=B, sid=sb)])
# Signals for a link that is not the current one are stale.
s.step(32, signal(B, "old", "answer"), [])
s.step(33, signal(B, "old", "candidate"), [])
# Signals from someone who is not a member are ignored.
s.step(34, signal(D, "x", "offer"), [])
opened(s, B, sb, 40)
# A channel received already open may say so twice: it opens once.
s.step(41, link("link_opened", sb), [])
s.step(42, link("transport", sb, "connected"), [])
opened(s, C, sc, 50)
s.step(51, "timeout", [], deadline=None)
# A newcomer is shown; it offers, and its offer is accepted.
# It is given the setup time to offer (A's id is the smaller).
s.step(60, {"peer_joined": peer(D)}, [added(D, True)], deadline=30060)
s.step(70, signal(D, "d-offer", "offer"), [o("accept", peer=D, sid="d-offer")], deadline=30070)
s.step(71, signal(D, "d-offer", "candidate"), [o("forward", peer=D, sid="d-offer")])
opened(s, D, "d-offer", 80)
s.step(90, {"peer_left": {"id": C}}, [
    o("drop", peer=C, sid=sc), o("down", peer=C), o("removed", peer=C, announce=True),
], deadline=None, members=[
    member(B, "connected", sid=sb, open=True), member(D, "connected", sid="d-offer", open=True),
])
scenarios.append(s.doc)

s = Scenario("a newcomer whose offer never comes: the smaller id starts a link when the setup time is over")
s.enter(A)
s.step(10, {"peer_joined": peer(B)}, [added(B, True)], deadline=30010)
sb = s.sid()
s.step(30010, "timeout", [o("start", peer=B, sid=sb)], deadline=60010)
# The greater id only waits.
s.step(30020, {"peer_joined": peer(C)}, [added(C, True)], deadline=60010)
s.step(30030, signal(C, "c", "offer"), [o("accept", peer=C, sid="c")], deadline=60010)
scenarios.append(s.doc)

s = Scenario("a newcomer with a smaller id: wait for its offer, however long")
s.enter(C)
s.step(10, {"peer_joined": peer(A)}, [added(A, True)], deadline=None)
scenarios.append(s.doc)

# --- Glare. -----------------------------------------------------------------
s = Scenario("both start at once: the smaller id keeps its own link and ignores the other's offer")
sb, = s.enter(A, B)
# Ours has heard nothing from B yet: B answers it once it arrives.
s.step(3, signal(B, "theirs", "offer"), [], deadline=5003)
s.step(4, signal(B, "theirs", "candidate"), [], deadline=5003)
s.step(5, signal(B, sb, "answer"), [o("forward", peer=B, sid=sb)], deadline=30002)
opened(s, B, sb, 6)
# Once ours is open, a new offer is a new link (B reloaded, say): it replaces ours.
s.step(7, signal(B, "again", "offer"), [
    o("drop", peer=B, sid=sb), o("down", peer=B), o("accept", peer=B, sid="again"), state(B, "reconnecting"),
], members=[member(B, "reconnecting", sid="again")])
opened(s, B, "again", 8)
scenarios.append(s.doc)

s = Scenario("both start at once, but our offer was lost: the smaller id hears nothing, gives its link up, starts again")
sb, = s.enter(A, B)
s.step(10, signal(B, "theirs", "offer"), [], deadline=5010)
# Nothing from B about ours: our offer never reached it (a server died
# with it, say), and B still waits for an answer to its own.
s.step(5009, "timeout", [], deadline=5010)
d0 = s.backoff(0)
s.step(5010, "timeout", [o("drop", peer=B, sid=sb), state(B, "reconnecting")], deadline=5010 + d0)
s1 = s.sid()
t1 = 5010 + d0
s.step(t1, "timeout", [o("start", peer=B, sid=s1)], deadline=t1 + 30000)
# B, the greater id, gives its own up for this one and answers it.
s.step(t1 + 10, signal(B, s1, "answer"), [o("forward", peer=B, sid=s1)], deadline=t1 + 30000)
opened(s, B, s1, t1 + 20)
scenarios.append(s.doc)

s = Scenario("both start at once: the greater id gives its own link up for the other's")
sa, = s.enter(B, A)
s.step(3, signal(A, "theirs", "offer"), [o("drop", peer=A, sid=sa), o("accept", peer=A, sid="theirs")],
       deadline=30003, members=[member(A, "connecting", sid="theirs")])
# The answer to our own offer comes too late: that link is gone.
s.step(4, signal(A, sa, "answer"), [])
opened(s, A, "theirs", 5)
scenarios.append(s.doc)

s = Scenario("a restart asked for replaces the link; crossing restarts settle on the smaller id's")
sb, = s.enter(A, B, open_at=3)
s2 = s.sid()
s.step(4, {"restart": {"peer": B}}, [
    o("drop", peer=B, sid=sb), o("down", peer=B), o("start", peer=B, sid=s2), state(B, "reconnecting"),
])
s.step(5, signal(B, "crossing", "offer"), [])
opened(s, B, s2, 6)
s.step(7, {"restart": {"peer": D}}, [])
scenarios.append(s.doc)

# --- The hello. ---------------------------------------------------------------
s = Scenario("an open link is verifying until the other side's hello verifies; only then is its channel up")
sb, = s.enter(A, B)
s.step(10, link("link_opened", sb), [state(B, "verifying"), o("hello", peer=B, sid=sb)], deadline=30002,
       members=[member(B, "verifying", sid=sb, open=True, verified=False)])
# A hello for a link that is not the current one changes nothing.
s.step(11, link("verified", "other"), [])
s.step(12, link("verified", sb), [state(B, "connected"), o("up", peer=B, sid=sb)], deadline=None,
       members=[member(B, "connected", sid=sb, open=True)])
# It verifies once.
s.step(13, link("verified", sb), [])
scenarios.append(s.doc)

s = Scenario("a hello that does not verify drops the link; the member is not verified until a link to it verifies")
sb, = s.enter(A, B)
s.step(10, link("link_opened", sb), [state(B, "verifying"), o("hello", peer=B, sid=sb)])
d0 = s.backoff(0)
s.step(20, link("rejected", sb), [o("drop", peer=B, sid=sb), state(B, "not_verified")], deadline=20 + d0,
       members=[member(B, "not_verified")])
# The smaller id tries again after the backoff, which keeps doubling while
# hellos fail (an attempt counts as successful only once it verifies).
s1 = s.sid()
t1 = 20 + d0
s.step(t1, "timeout", [o("start", peer=B, sid=s1)], deadline=t1 + 30000)
s.step(t1 + 10, link("link_opened", s1), [state(B, "verifying"), o("hello", peer=B, sid=s1)])
d1 = s.backoff(1)
s.step(t1 + 20, link("rejected", s1), [o("drop", peer=B, sid=s1), state(B, "not_verified")], deadline=t1 + 20 + d1)
s2 = s.sid()
t2 = t1 + 20 + d1
s.step(t2, "timeout", [o("start", peer=B, sid=s2)])
opened(s, B, s2, t2 + 10)
# A verified link whose peer then sends a hello with another key.
d0 = s.backoff(0)
s.step(t2 + 20, link("rejected", s2), [o("drop", peer=B, sid=s2), o("down", peer=B), state(B, "not_verified")],
       deadline=t2 + 20 + d0)
scenarios.append(s.doc)

s = Scenario("the greater id whose peer's hello fails waits for the other's next link")
s.step(0, server("open"), [])
s.step(1, JOIN, [o("join")])
s.step(2, joined(B), [o("entered", first=True)])
s.step(3, {"peer_joined": peer(A)}, [added(A, True)])
s.step(4, signal(A, "x1", "offer"), [o("accept", peer=A, sid="x1")])
s.step(5, link("link_opened", "x1"), [state(A, "verifying"), o("hello", peer=A, sid="x1")])
s.step(6, link("rejected", "x1"), [o("drop", peer=A, sid="x1"), state(A, "not_verified")], deadline=None)
s.step(2000, signal(A, "x2", "offer"), [o("accept", peer=A, sid="x2")], deadline=32000,
       members=[member(A, "not_verified", sid="x2")])
opened(s, A, "x2", 2100)
scenarios.append(s.doc)

s = Scenario("a link whose hello never verifies is given up when the setup time is over")
sb, = s.enter(A, B)
s.step(10, link("link_opened", sb), [state(B, "verifying"), o("hello", peer=B, sid=sb)], deadline=30002)
d0 = s.backoff(0)
s.step(30002, "timeout", [o("drop", peer=B, sid=sb), state(B, "reconnecting")], deadline=30002 + d0)
scenarios.append(s.doc)

# --- Restart after failure. ---------------------------------------------------
s = Scenario("a link lost while the server is up: the smaller id rebuilds it after a doubling, jittered backoff")
sb, = s.enter(A, B, open_at=10)
d0 = s.backoff(0)
s.step(1000, link("link_closed", sb), [o("down", peer=B), state(B, "reconnecting")], deadline=1000 + d0,
       members=[member(B, "reconnecting")])
s.step(1000 + d0 - 1, "timeout", [], deadline=1000 + d0)
s1 = s.sid()
t1 = 1000 + d0
s.step(t1, "timeout", [o("start", peer=B, sid=s1)], deadline=t1 + 30000)
# It closes again before opening: the backoff doubles.
d1 = s.backoff(1)
t2 = t1 + 100
s.step(t2, link("link_closed", s1), [], deadline=t2 + d1)
s2 = s.sid()
t3 = t2 + d1
s.step(t3, "timeout", [o("start", peer=B, sid=s2)], deadline=t3 + 30000)
# Nobody answers: the link is given up after the setup timeout, and the backoff doubles again.
d2 = s.backoff(2)
t4 = t3 + 30000
s.step(t4, "timeout", [o("drop", peer=B, sid=s2)], deadline=t4 + d2)
s3 = s.sid()
t5 = t4 + d2
s.step(t5, "timeout", [o("start", peer=B, sid=s3)])
# Once a link opens, the backoff starts over.
opened(s, B, s3, t5 + 50)
d0 = s.backoff(0)
t6 = t5 + 1000
s.step(t6, link("link_closed", s3), [o("down", peer=B), state(B, "reconnecting")], deadline=t6 + d0)
# A closed link that is not the current one changes nothing.
s.step(t6 + 1, link("link_closed", sb), [], deadline=t6 + d0)
scenarios.append(s.doc)

s = Scenario("the backoff stops doubling at its ceiling", config={"relink_min_ms": 1000, "relink_max_ms": 4000})
sid, = s.enter(A, B)
t = 10
for attempt in range(4):
    d = s.backoff(attempt)
    assert d <= 4000 and d >= min(4000, 1000 * 2 ** attempt) // 2
    s.step(t, link("link_closed", sid), [state(B, "reconnecting")] if attempt == 0 else [], deadline=t + d)
    sid = s.sid()
    s.step(t + d, "timeout", [o("start", peer=B, sid=sid)])
    t += d + 10
scenarios.append(s.doc)

s = Scenario("a link lost while the server is up: the greater id waits for the other's new link")
first, = s.host(B, A)
s.step(1000, link("link_closed", first), [o("down", peer=A), state(A, "reconnecting")], deadline=None)
s.step(2500, signal(A, "second", "offer"), [o("accept", peer=A, sid="second")], deadline=32500)
opened(s, A, "second", 2600)
scenarios.append(s.doc)

s = Scenario("a failed transport: the starter restarts ICE; a link that does not recover counts as closed")
sb, sc = s.enter(A, B, C, open_at=10)
s.step(100, link("transport", sb, "disconnected"), [state(B, "reconnecting")], deadline=None)
s.step(200, link("transport", sb, "connected"), [state(B, "connected")])
s.step(300, link("transport", sb, "failed"), [o("restart_ice", peer=B, sid=sb), state(B, "reconnecting")],
       deadline=20300)
# Failing again does not push the repair deadline on.
s.step(400, link("transport", sb, "failed"), [o("restart_ice", peer=B, sid=sb)], deadline=20300)
s.step(500, link("transport", sb, "connected"), [state(B, "connected")], deadline=None)
s.step(600, link("transport", sc, "failed"), [o("restart_ice", peer=C, sid=sc), state(C, "reconnecting")],
       deadline=20600)
d = s.backoff(0)
s.step(20600, "timeout", [o("drop", peer=C, sid=sc), o("down", peer=C)], deadline=20600 + d,
       members=[member(B, "connected", sid=sb, open=True), member(C, "reconnecting")])
scenarios.append(s.doc)

s = Scenario("a failed transport of a link the other started: wait for its ICE restart, then give the link up")
x, = s.host(B, A)
s.step(100, link("transport", x, "failed"), [state(A, "reconnecting")], deadline=20100)
s.step(150, signal(A, x, "offer"), [o("forward", peer=A, sid=x)])
s.step(20100, "timeout", [o("drop", peer=A, sid=x), o("down", peer=A)], deadline=None)
scenarios.append(s.doc)

s = Scenario("a stack that cannot restart ICE drops a failed link at once; it counts as closed",
             config={"ice_restart": False})
sb, = s.enter(A, B, open_at=10)
s.step(50, link("transport", sb, "disconnected"), [state(B, "reconnecting")], deadline=None)
d = s.backoff(0)
s.step(100, link("transport", sb, "failed"), [o("drop", peer=B, sid=sb), o("down", peer=B)], deadline=100 + d)
s1 = s.sid()
s.step(100 + d, "timeout", [o("start", peer=B, sid=s1)])
scenarios.append(s.doc)

# --- Without the server. --------------------------------------------------------
s = Scenario("the gone timer: a member the server does not list counts as gone unless it comes back")
sb, sc, sd = s.enter(A, B, C, D, open_at=10)
s.step(1000, server("offline"), [], deadline=None)
# Without the server, a closed link waits for the member list.
s.step(1100, link("link_closed", sc), [o("down", peer=C), state(C, "reconnecting")], deadline=None)
s.step(1200, link("link_closed", sd), [o("down", peer=D), state(D, "reconnecting")], deadline=None)
s.step(3000, server("open"), [o("join")])
# The server restarted and lists nobody yet: B's open link is kept; C and D get a while to come back.
s.step(3010, joined(A), [o("entered", first=False)], deadline=23010, members=[
    member(B, "connected", listed=False, sid=sb, open=True),
    member(C, "reconnecting", listed=False), member(D, "reconnecting", listed=False),
])
# D comes back in time.
s.step(4000, {"peer_joined": peer(D)}, [], deadline=23010)
s.step(4100, signal(D, "d2", "offer"), [o("accept", peer=D, sid="d2")])
# B's link closes while B is not listed: it gets a while too.
s.step(5000, link("link_closed", sb), [o("down", peer=B), state(B, "reconnecting")], deadline=23010)
s.step(23009, "timeout", [], deadline=23010)
s.step(23010, "timeout", [o("removed", peer=C, announce=True)], deadline=25000)
s.step(25000, "timeout", [o("removed", peer=B, announce=True)], deadline=34100,
       members=[member(D, "reconnecting", sid="d2")])
scenarios.append(s.doc)

s = Scenario("rejoin after a server restart: open links are kept, missing ones started, newcomers announced")
sb, sc = s.enter(A, B, C, open_at=10)
s.step(1000, server("offline"), [])
s.step(1001, server("connecting"), [])
s.step(1500, link("link_closed", sc), [o("down", peer=C), state(C, "reconnecting")], deadline=None)
s.step(2000, server("open"), [o("join")])
sc2, sd = s.sid(), s.sid()
s.step(2010, joined(A, B, C, D), [
    o("start", peer=C, sid=sc2), added(D, True), o("start", peer=D, sid=sd), o("entered", first=False),
], deadline=32010)
opened(s, C, sc2, 2020)
scenarios.append(s.doc)

s = Scenario("rejoining repairs a lost link by restarting ICE, whoever started it")
a1, c1 = s.host(B, A, C)
s.step(100, server("offline"), [])
s.step(200, link("transport", a1, "disconnected"), [state(A, "reconnecting")], deadline=None)
s.step(300, server("open"), [o("join")])
s.step(310, joined(B, A, C), [o("restart_ice", peer=A, sid=a1), o("entered", first=False)], deadline=None)
s.step(400, link("transport", a1, "connected"), [state(A, "connected")])
scenarios.append(s.doc)

s = Scenario("rejoining replaces a lost link where ICE cannot be restarted", config={"ice_restart": False})
sb, = s.enter(A, B, open_at=3)
s.step(100, server("offline"), [])
s.step(200, link("transport", sb, "disconnected"), [state(B, "reconnecting")])
s.step(300, server("open"), [o("join")])
s2 = s.sid()
s.step(310, joined(A, B), [
    o("drop", peer=B, sid=sb), o("down", peer=B), o("start", peer=B, sid=s2), o("entered", first=False),
])
opened(s, B, s2, 400)
scenarios.append(s.doc)

s = Scenario("resume with a member key: the resumed member starts anew; the others replace their link")
s.step(0, server("open"), [])
s.step(1, JOIN, [o("join")])
sb, sc = s.sid(), s.sid()
# A reloaded page: a fresh start that takes the membership over.
s.step(2, joined(A, B, C, resumed=True), [
    added(B, False), o("start", peer=B, sid=sb), added(C, False), o("start", peer=C, sid=sc),
    o("entered", first=True),
])
opened(s, B, sb, 3)
scenarios.append(s.doc)

s = Scenario("resume with a member key: seen from a member that stayed")
a1, = s.host(B, A)
# A lost its connection and took its membership back under another nickname.
s.step(100, {"peer_joined": {"id": A, "nick": "alicia"}}, [o("renamed", peer=A, nick="alicia")])
s.step(110, signal(A, "a2", "offer"), [
    o("drop", peer=A, sid=a1), o("down", peer=A), o("accept", peer=A, sid="a2"), state(A, "reconnecting"),
])
s.step(111, link("link_closed", a1), [])
s.step(120, link("link_opened", "a2"), [state(A, "verifying"), o("hello", peer=A, sid="a2")])
s.step(120, link("verified", "a2"), [state(A, "connected"), o("up", peer=A, sid="a2")],
       members=[{"id": A, "nick": "alicia", "state": "connected", "listed": True, "sid": "a2", "open": True,
                 "verified": True}])
scenarios.append(s.doc)

s = Scenario("a signal refused with peer_busy drops a link being set up, which is rebuilt like a closed one")
sb, sc = s.enter(A, B, C)
opened(s, C, sc, 3)
# The signal was for B, whose link is not open yet: it may have lost it.
s.step(10, {"error": {"code": "peer_busy", "to": B}}, [o("drop", peer=B, sid=sb), state(B, "reconnecting")],
       deadline=10 + s.backoff(0))
sb2 = s.sid()
s.step(10 + 500 + 2000, "timeout", [o("start", peer=B, sid=sb2)])
# An open link needs no more signals: nothing changes.
s.step(3000, {"error": {"code": "peer_busy", "to": C}}, [])
# Nor for someone who is not a member, or with no member named.
s.step(3001, {"error": {"code": "peer_busy", "to": D}}, [])
s.step(3002, error("peer_busy"), [])
scenarios.append(s.doc)

s = Scenario("a link being set up to a member found away gives way to the member's own offer when it is back")
sb, = s.enter(A, B)
# B reloaded its page: our offer met peer_away and never reached it.
s.step(10, {"error": {"code": "peer_away", "to": B}}, [o("drop", peer=B, sid=sb), state(B, "reconnecting")],
       deadline=10 + s.backoff(0))
# Back, B starts a link itself (the newcomer starts): ours is not in its way.
s.step(20, signal(B, "b2", "offer"), [o("accept", peer=B, sid="b2")])
opened(s, B, "b2", 30)
scenarios.append(s.doc)

s = Scenario("an away member stays; signals refused with peer_away change nothing for an open link")
sb, = s.enter(A, B, open_at=3)
s.step(100, link("transport", sb, "disconnected"), [state(B, "reconnecting")])
s.step(110, error("peer_away"), [], deadline=None,
       members=[member(B, "reconnecting", sid=sb, open=True)])
s.step(120, link("transport", sb, "connected"), [state(B, "connected")])
s.step(130, error("rate_limited"), [])
s.step(140, error("something_new"), [])
scenarios.append(s.doc)

# --- Joining. -----------------------------------------------------------------
s = Scenario("a refused join is shown and not sent again until asked")
s.step(0, server("open"), [])
s.step(1, server("offline"), [])
s.step(2, server("open"), [])
s.step(3, JOIN, [o("join")])
s.step(4, error("nick_taken"), [o("join_refused", code="nick_taken")])
s.step(5, server("offline"), [])
s.step(6, server("open"), [])
s.step(7, JOIN, [o("join")])
s.step(8, error("room_full"), [o("join_refused", code="room_full")])
s.step(9, JOIN, [o("join")])
s.step(10, joined(A), [o("entered", first=True)])
s.step(11, JOIN, [])
scenarios.append(s.doc)

s = Scenario("a refused rejoin is retried while the server is up and we are not back in")
s.enter(A)
s.step(100, server("offline"), [])
s.step(200, server("open"), [o("join")])
# Our previous session still holds the nickname.
s.step(210, error("nick_taken"), [], deadline=2210)
s.step(2209, "timeout", [], deadline=2210)
s.step(2210, "timeout", [o("join")], deadline=None)
s.step(2220, error("nick_taken"), [], deadline=4220)
s.step(3000, server("offline"), [], deadline=None)
s.step(4220, "timeout", [])
s.step(5000, server("open"), [o("join")])
s.step(5010, error("nick_taken"), [], deadline=7010)
s.step(5020, joined(A), [o("entered", first=False)], deadline=None)
s.step(7010, "timeout", [])
scenarios.append(s.doc)

s = Scenario("shutting_down: the server stops; an outage like a crash, links stay, join again when it is back")
sb, = s.enter(A, B, open_at=3)
s.step(100, error("shutting_down"), [], deadline=None)
# A link that closes now waits for the member list.
s.step(110, link("link_closed", sb), [o("down", peer=B), state(B, "reconnecting")], deadline=None)
s.step(120, server("offline"), [])
s.step(5000, server("open"), [o("join")])
s2 = s.sid()
s.step(5010, joined(A, B), [o("start", peer=B, sid=s2), o("entered", first=False)])
scenarios.append(s.doc)

s = Scenario("replaced: another connection took our place; do not join again by ourselves")
s.enter(A)
s.step(3, error("replaced"), [o("join_refused", code="replaced")])
s.step(4, server("offline"), [])
s.step(5, server("open"), [])
s.step(6, JOIN, [o("join")])
scenarios.append(s.doc)

s = Scenario("a server that gives us another id: links made under the old one are dropped")
sb, = s.enter(A, B, open_at=3)
s.step(4, server("offline"), [])
s.step(5, server("open"), [o("join")])
s2 = s.sid()
s.step(6, joined(C, B), [
    o("drop", peer=B, sid=sb), o("down", peer=B), state(B, "reconnecting"),
    o("start", peer=B, sid=s2), o("entered", first=False),
])
# C is greater than B now: crossing offers go B's way.
s.step(7, signal(B, "b", "offer"), [o("drop", peer=B, sid=s2), o("accept", peer=B, sid="b")])
scenarios.append(s.doc)

s = Scenario("a member renamed in place")
a1, = s.host(B, A)
# The server's peer_renamed: the same member and link under a new nickname.
s.step(100, {"peer_renamed": {"id": A, "nick": "ally"}}, [o("renamed", peer=A, nick="ally")],
       members=[{"id": A, "nick": "ally", "state": "connected", "listed": True, "sid": a1, "open": True,
                 "verified": True}])
# The same nickname again, or a member not known (yet): nothing.
s.step(101, {"peer_renamed": {"id": A, "nick": "ally"}}, [])
s.step(102, {"peer_renamed": {"id": C, "nick": "cleo"}}, [],
       members=[{"id": A, "nick": "ally", "state": "connected", "listed": True, "sid": a1, "open": True,
                 "verified": True}])
scenarios.append(s.doc)

# --- Pairs. --------------------------------------------------------------------
s = Scenario("a pair: no timers, and a closed link means the other left", config={"relays_signals": False, "ice_restart": False})
s.step(0, server("open"), [])
s.step(1, JOIN, [o("join")])
sb = s.sid()
s.step(2, joined(A, B), [added(B, False), o("start", peer=B, sid=sb), o("entered", first=True)], deadline=None)
s.step(3, {"peer_joined": {"id": B, "nick": "bobby"}}, [o("renamed", peer=B, nick="bobby")])
s.step(4, signal(B, sb, "answer"), [o("forward", peer=B, sid=sb)])
s.step(5, link("link_opened", sb), [state(B, "verifying"), o("hello", peer=B, sid=sb)], deadline=None)
s.step(5, link("verified", sb), [state(B, "connected"), o("up", peer=B, sid=sb)], deadline=None)
s.step(6, link("link_closed", sb), [o("down", peer=B), o("removed", peer=B, announce=True)], deadline=None,
       members=[])
scenarios.append(s.doc)

s = Scenario("a pair: a hello that does not verify ends the pairing", config={"relays_signals": False, "ice_restart": False})
s.enter(B)
s.step(3, {"peer_joined": peer(A)}, [added(A, True)])
s.step(4, signal(A, "x", "offer"), [o("accept", peer=A, sid="x")], deadline=None)
s.step(5, link("link_opened", "x"), [state(A, "verifying"), o("hello", peer=A, sid="x")])
s.step(6, link("rejected", "x"), [o("drop", peer=A, sid="x"), o("removed", peer=A, announce=True)], members=[])
scenarios.append(s.doc)

s = Scenario("a pair: a failed link is dropped and the other counts as gone", config={"relays_signals": False, "ice_restart": False})
s.enter(B)
s.step(3, {"peer_joined": peer(A)}, [added(A, True)])
s.step(4, signal(A, "x", "offer"), [o("accept", peer=A, sid="x")], deadline=None)
s.step(5, link("transport", "x", "failed"), [o("drop", peer=A, sid="x"), o("removed", peer=A, announce=True)])
scenarios.append(s.doc)

# The generator itself: a conforming implementation draws these numbers.
rng = Rng(SEED)
random = {"seed": SEED, "u32": [rng.next() for _ in range(8)], "sids": [rng.sid() for _ in range(2)]}

doc = {
    "comment": "Shared scenarios for the mesh rules (docs/protocol.md, section 2; docs/architecture.md). Generated by "
               "mesh.py. Each scenario starts a mesh with `seed` and the defaults of `defaults` overridden by `config`, "
               "and replays `steps` in order: `in` is an input handled at time `at` (ms), `timeout` handles the timers "
               "due at `at`; `want` lists the outputs, in order; `deadline`, when present, is the next deadline "
               "afterwards (null: none); `members`, when present, the members afterwards. Randomness: xorshift128 "
               "(Marsaglia) seeded with the four words of `seed`; a connection id is four draws as little-endian "
               "bytes in base64url without padding; a backoff for attempt n is h + floor(draw * h / 2^32), h half of "
               "min(relink_max_ms, relink_min_ms * 2^n). `random` checks the generator.",
    "defaults": DEFAULTS,
    "random": random,
    "scenarios": scenarios,
}
out = pathlib.Path(__file__).with_name("mesh.json")
out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
