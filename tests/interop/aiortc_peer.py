#!/usr/bin/env python3
"""An independent peerchat client, written from docs/protocol.md alone.

It uses aiortc (a WebRTC stack unrelated to webrtc-rs and Chromium) and
speaks the protocol as documented: join over the /ws WebSocket, start a
connection to every member listed in `joined` (sid, in-band data channel
"chat"), answer offers from newcomers, relay candidates, and exchange chat
envelopes. Protocol version 2: every signal payload is sealed with a key
from the room's secret (the room link's fragment, which never goes to the
server). Line mode like `peerchat chat --plain`: each stdin line is sent as
a message; received messages are printed as `nick: text`; notices go to
stderr. Used by the interop tests; not part of the product.

usage: aiortc_peer.py ROOM_LINK NICK [--forge] [--bad-hello] [--early-get=FID:SHA256]
  ROOM_LINK  http://HOST/r/ROOM_ID#SECRET
  --forge      misbehave, for tests: answer every sync with a history that
               also holds a message attributed to another member and one
               attributed to the receiver, both signed with our own key
  --bad-hello  misbehave, for tests: sign hellos over the wrong bytes
  --early-get=FID:SHA256
               ask for that file on a `file` channel once the other side's
               hello verified and before sending ours (as a fetcher that
               verified first may); says on stderr whether it was answered
"""

import asyncio
import base64
import json
import math
import os
import sys
import time
from urllib.parse import urlsplit

import aioice.ice
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
import websockets

# aiortc skips loopback when gathering; the tests run where only loopback
# exists.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def notice(text):
    print(f"* {text}", file=sys.stderr, flush=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def unb64url(text):
    """Strict base64url without padding (docs/protocol.md, Notation); None
    for anything else."""
    if not isinstance(text, str) or len(text) % 4 == 1 or not set(text) <= B64URL:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if b64url(data) == text else None


def random_id():
    return b64url(os.urandom(16))


def now_ms():
    return int(time.time() * 1000)


class Refused(Exception):
    """A signal refused: tampered, malformed, replayed, stale, clock_skew."""


class Sealer:
    """Sealed signal payloads and the replay guard (docs/protocol.md,
    "Sealed signal payloads", "Replay guard")."""

    WINDOW_MS = 10 * 60 * 1000

    def __init__(self, secret, context):
        self.context = context
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"peerchat-v2",
                   info=f"signal key\n{context}".encode()).derive(secret)
        self.aead = AESGCM(key)
        self.epoch = b64url(os.urandom(16))
        self.n = 0
        self.guard = {}  # sender -> {"e", "n", "first", "retired"}

    def ad(self, sender, receiver):
        return f"peerchat-v2 signal\n{self.context}\n{sender}\n{receiver}".encode()

    def seal(self, me, to, payload):
        self.n += 1
        plain = json.dumps({**payload, "e": self.epoch, "n": self.n, "ts": now_ms()}).encode()
        iv = os.urandom(12)
        return {"iv": b64url(iv), "ct": b64url(self.aead.encrypt(iv, plain, self.ad(me, to)))}

    def open(self, sender, me, payload):
        iv = unb64url(payload.get("iv")) if isinstance(payload, dict) else None
        ct = unb64url(payload.get("ct")) if isinstance(payload, dict) else None
        if iv is None or ct is None or len(iv) != 12 or len(ct) < 16:
            raise Refused("tampered")
        try:
            plain = self.aead.decrypt(iv, ct, self.ad(sender, me))
        except InvalidTag:
            raise Refused("tampered") from None
        try:
            obj = json.loads(plain.decode("utf-8"))
        except ValueError:
            raise Refused("malformed") from None
        if not isinstance(obj, dict):
            raise Refused("malformed")
        e, n, ts = obj.pop("e", None), obj.pop("n", None), obj.pop("ts", None)
        number = lambda x, low: isinstance(x, (int, float)) and not isinstance(x, bool) \
            and math.isfinite(x) and x == int(x) and low <= x <= 2 ** 53 - 1
        if not (isinstance(e, str) and 22 <= len(e) <= 64 and set(e) <= B64URL and number(n, 1) and number(ts, 0)):
            raise Refused("malformed")
        n, ts = int(n), int(ts)
        state = self.guard.get(sender)
        if state is not None and state["e"] == e:
            if n <= state["n"]:
                raise Refused("replayed")
            state["n"] = n
            return obj
        if state is not None and (e in state["retired"] or ts <= state["first"]):
            raise Refused("stale")
        if abs(ts - now_ms()) > self.WINDOW_MS:
            raise Refused("clock_skew")
        retired = [] if state is None else (state["retired"] + [state["e"]])[-16:]
        self.guard[sender] = {"e": e, "n": n, "first": ts, "retired": retired}
        return obj


class BadFingerprint(Exception):
    """A description whose fingerprint lines break the strict rule."""


def fingerprint_of(sdp):
    """The one SHA-256 DTLS fingerprint of a description, in normal form
    (docs/protocol.md, "DTLS fingerprints")."""
    found = None
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if not line.startswith("a=fingerprint:"):
            continue
        parts = line[len("a=fingerprint:"):].split()
        if len(parts) != 2:
            raise BadFingerprint("bad_fingerprint")
        hash_name, value = parts
        if hash_name.lower() != "sha-256":
            raise BadFingerprint("unsupported_hash")
        pairs = value.split(":")
        if len(pairs) != 32 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in pairs):
            raise BadFingerprint("bad_fingerprint")
        fp = "sha-256 " + value.upper()
        if found is not None and fp != found:
            raise BadFingerprint("conflicting_fingerprints")
        found = fp
    if found is None:
        raise BadFingerprint("no_fingerprint")
    return found


def only_sha256(sdp):
    """aiortc writes sha-384 and sha-512 fingerprints too: the strict rule
    allows exactly one (SHA-256), so the others are dropped before sending."""
    lines = sdp.split("\r\n")
    keep = [l for l in lines if not l.startswith("a=fingerprint:") or l.split(":", 1)[1].lower().startswith("sha-256 ")]
    return "\r\n".join(keep)


class Identity:
    """An Ed25519 identity key, for this run (docs/protocol.md, "Identity keys")."""

    def __init__(self):
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data):
        return self.private.sign(data)


def verify(alg, key, data, sig):
    """Whether `sig` by the wire key (`alg`, raw `key`) is a signature over `data`."""
    try:
        if alg == "ed25519" and len(key) == 32:
            Ed25519PublicKey.from_public_bytes(key).verify(sig, data)
            return True
        if alg == "p256" and len(key) == 65 and key[0] == 4 and len(sig) == 64:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError):
        pass
    return False


def message_bytes(context, author, nick, m):
    """What an author signs of a chat message (docs/protocol.md, "Signed messages")."""
    return "\n".join(["peerchat-v2 msg", context, author, nick, str(m["seq"]), str(m["clock"]), str(m["ts"]),
                      m["id"], "chat", m["text"]]).encode()


def hello_bytes(context, sid, signer, signer_nick, receiver, signer_fp, receiver_fp):
    return "\n".join(["peerchat-v2 hello", context, sid, signer, signer_nick, receiver, signer_fp, receiver_fp]).encode()


class Member:
    def __init__(self, peer_id, nick):
        self.id = peer_id
        self.nick = nick
        self.pc = None
        self.sid = None
        self.channel = None
        self.pending = []  # candidates before the remote description
        self.outbox = []  # envelopes before its hello verified
        self.local_fp = None  # our certificate's fingerprint on this connection
        self.remote_fp = None  # theirs, from the description applied
        self.key = None  # (alg, raw key) once its hello verified
        self.hello = None  # sends our hello on its channel


class Peer:
    def __init__(self, link, nick, forge=False, bad_hello=False, early_get=None):
        self.forge = forge
        self.bad_hello = bad_hello
        self.early_get = early_get  # (fid, sha256), or None
        url = urlsplit(link)
        secret = unb64url(url.fragment)
        if secret is None or not 16 <= len(secret) <= 64 or not 22 <= len(url.fragment) <= 86:
            sys.exit("the room link needs its secret: the part after #")
        self.ws_url = f"{'wss' if url.scheme == 'https' else 'ws'}://{url.netloc}/ws"
        self.room = url.path.rstrip("/").rsplit("/", 1)[-1]
        self.sealer = Sealer(secret, f"room:{self.room}")
        self.identity = Identity()
        self.nick = nick
        self.me = None
        self.members = {}
        self.seen = set()  # (author, seq) of messages shown
        self.floor = {}  # author -> every seq up to this one was seen
        self.seq = 0  # our last message number
        self.mine = []  # our messages, for peers whose channel opens later
        self.clock = 0  # Lamport clock
        self.ws = None
        self.keys = {}  # author -> (alg, raw key), from their verified hellos

    async def signal(self, member, payload):
        payload["sid"] = member.sid
        sealed = self.sealer.seal(self.me["id"], member.id, payload)
        await self.ws.send(json.dumps({"type": "signal", "to": member.id, "payload": sealed}))

    def use_channel(self, member, channel):
        member.channel = channel
        sid = member.sid

        def hello():
            # Our hello goes first: both fingerprints as we see them.
            signed = hello_bytes(self.sealer.context, sid, self.me["id"], self.me["nick"], member.id,
                                 member.local_fp, member.remote_fp)
            if self.bad_hello:
                # As a man in the middle forwarding another's hello would:
                # the receiver's view of the fingerprints differs.
                signed = hello_bytes(self.sealer.context, sid, self.me["id"], self.me["nick"], member.id,
                                     member.remote_fp, member.local_fp)
            channel.send(json.dumps({"v": 2, "type": "hello", "alg": "ed25519", "key": b64url(self.identity.public),
                                     "sig": b64url(self.identity.sign(signed))}))

        member.hello = hello

        @channel.on("open")
        def on_open():
            if not self.early_get:
                hello()

        @channel.on("message")
        def on_message(text):
            if member.sid != sid:
                return
            if member.key is None:
                self.check_hello(member, text)
            else:
                self.on_envelope(member, text)

        if channel.readyState == "open" and not self.early_get:
            hello()

    def ask_early(self, member, then):
        """Opens a `file` channel and sends `get` on it before our hello;
        `then` sends the hello once the channel is open."""
        fid, sha256 = self.early_get
        files = member.pc.createDataChannel("file", ordered=True)
        answered = []

        @files.on("open")
        def on_open():
            files.send(json.dumps({"v": 2, "type": "get", "fid": fid, "sha256": sha256, "list": True,
                                   "chunk": 16384}))
            then()

        @files.on("message")
        def on_message(data):
            if isinstance(data, str) and not answered:
                answered.append(data)
                notice(f"early get: {json.loads(data).get('type')}")
                files.close()

        @files.on("close")
        def on_close():
            if not answered:
                notice("early get: closed unanswered")

    def check_hello(self, member, text):
        """The first envelope must be the other side's hello, verifying
        against our own view of the connection."""
        try:
            env = json.loads(text)
            key = unb64url(env.get("key"))
            sig = unb64url(env.get("sig"))
            ok = (env.get("type") == "hello" and isinstance(env.get("v"), int) and env["v"] >= 2
                  and key is not None and sig is not None)
        except (ValueError, AttributeError):
            ok = False
        signed = hello_bytes(self.sealer.context, member.sid, member.id, member.nick, self.me["id"],
                             member.remote_fp, member.local_fp)
        if not ok or not verify(env.get("alg"), key, signed, sig):
            notice(f"could not verify {member.nick}; closing the connection")
            asyncio.ensure_future(member.pc.close())
            return
        member.key = (env["alg"], key)
        self.keys[member.id] = member.key
        if self.early_get:
            def then():
                member.hello()
                self.after_hello(member)
            self.ask_early(member, then)
        else:
            self.after_hello(member)

    def after_hello(self, member):
        # Verified: now the sync (what we hold, so that they send what we
        # missed) and whatever waited.
        have = dict(self.floor)
        if self.seq:
            have[self.me["id"]] = self.seq
        member.channel.send(json.dumps({"v": 2, "type": "sync", "have": have}))
        for envelope in member.outbox:
            member.channel.send(envelope)
        member.outbox.clear()

    def on_envelope(self, member, text):
        try:
            env = json.loads(text)
        except ValueError:
            return
        if not isinstance(env, dict):
            return
        kind = env.get("type")
        if kind == "chat":
            if self.signed_by(member.key, member.id, member.nick, env):
                self.on_message(member.id, member.nick, env, member)
        elif kind == "history" and isinstance(env.get("messages"), list):
            # What we missed (sent before our channel opened), in order;
            # each signed by its author, checked against the author's key
            # from its hello (or, not known yet, the key it carries).
            for record in env["messages"]:
                if not isinstance(record, dict) or not isinstance(record.get("author"), str):
                    continue
                author, nick = record["author"], record.get("nick", "?")
                key = self.keys.get(author)
                if key is None and author != self.me["id"]:
                    carried = unb64url(record.get("key"))
                    key = (record.get("alg"), carried) if carried is not None else None
                if author == self.me["id"] or not self.signed_by(key, author, nick, record):
                    continue
                self.on_message(author, nick, record, self.members.get(author))
        elif kind == "sync" and isinstance(env.get("have"), dict):
            # Answer with what they lack of ours (we keep only our own).
            held = env["have"].get(self.me["id"], 0)
            missing = [m for m in self.mine if m["seq"] > held]
            if self.forge:
                missing = missing + self.forgeries(member)
            if missing:
                member.channel.send(json.dumps({"v": 2, "type": "history", "messages": missing}))
        # ack, typing: optional, ignored here

    def forgeries(self, member):
        """Messages signed with our key in others' names: one attributed to
        another member, one to the receiver itself (for tests)."""
        victims = [(m.id, m.nick) for m in self.members.values() if m.id != member.id]
        victims.append((member.id, member.nick))
        out = []
        for author, nick in victims:
            m = {"id": random_id(), "seq": 1, "clock": 1, "ts": now_ms(), "text": f"FORGED: {nick} never wrote this"}
            m["sig"] = b64url(self.identity.sign(message_bytes(self.sealer.context, author, nick, m)))
            out.append({"author": author, "nick": nick, **m, "alg": "ed25519", "key": b64url(self.identity.public)})
        return out

    def signed_by(self, key, author, nick, m):
        """Whether message `m` carries a valid signature by `key` (its author's)."""
        sig = unb64url(m.get("sig"))
        if key is None or sig is None or not all(isinstance(m.get(f), int) for f in ("seq", "clock", "ts")) \
                or not isinstance(m.get("id"), str) or not isinstance(m.get("text"), str):
            return False
        if verify(key[0], key[1], message_bytes(self.sealer.context, author, nick, m), sig):
            return True
        notice(f"refused a message attributed to {nick}: its signature does not verify")
        return False

    def on_message(self, author, nick, env, ack_to):
        seq, clock = env.get("seq"), env.get("clock")
        if not isinstance(seq, int) or not isinstance(clock, int) or (author, seq) in self.seen:
            return
        if author == self.me["id"]:
            return
        self.seen.add((author, seq))
        self.clock = max(self.clock, clock)
        floor = self.floor.get(author, 0)
        while (author, floor + 1) in self.seen:
            floor += 1
        if floor > self.floor.get(author, 0):
            self.floor[author] = floor
            if ack_to is not None and ack_to.key is not None and ack_to.channel is not None \
                    and ack_to.channel.readyState == "open":
                ack_to.channel.send(json.dumps({"v": 2, "type": "ack", "upto": floor}))
        body = env.get("text", "").replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        print(f"{nick}: {body}", flush=True)

    def new_pc(self, member):
        pc = RTCPeerConnection()
        member.pc = pc

        @pc.on("datachannel")
        def on_datachannel(channel):
            if channel.label == "chat" and member.channel is None:
                self.use_channel(member, channel)

        @pc.on("connectionstatechange")
        async def on_connection_state():
            # aiortc cannot restart ICE: the protocol has such a stack close a
            # failed connection at once ("Who starts").
            if pc.connectionState == "failed":
                await pc.close()

        return pc

    async def start(self, member):
        """We are the newcomer: open the channel and offer."""
        member.sid = random_id()
        pc = self.new_pc(member)
        self.use_channel(member, pc.createDataChannel("chat", ordered=True))
        await pc.setLocalDescription(await pc.createOffer())
        # aiortc gathers every candidate before this returns: they travel
        # inside the SDP, with no trickling.
        sdp = only_sha256(pc.localDescription.sdp)
        member.local_fp = fingerprint_of(sdp)
        await self.signal(member, {"description": {"type": "offer", "sdp": sdp}})

    async def on_signal(self, sender, sealed):
        try:
            payload = self.sealer.open(sender, self.me["id"], sealed)
        except Refused as why:
            notice(f"a signal from {sender} was refused: {why}")
            return
        member = self.members.get(sender)
        if member is None:
            return
        description = payload.get("description")
        candidate = payload.get("candidate")
        sid = payload.get("sid")
        if description and description.get("type") == "offer" and sid != member.sid:
            if member.pc is not None:
                await member.pc.close()
            member.sid, member.channel, member.pending = sid, None, []
            member.local_fp = member.remote_fp = member.key = None
            self.new_pc(member)
        if sid != member.sid or member.pc is None:
            return
        pc = member.pc
        if description:
            # The hello binds one fingerprint: a description breaking the
            # rule, or naming another than the first, is not applied.
            try:
                remote_fp = fingerprint_of(description.get("sdp", ""))
            except BadFingerprint as why:
                notice(f"refused a description from {member.nick}: {why}")
                return
            if member.remote_fp is not None and remote_fp != member.remote_fp:
                notice(f"refused a description from {member.nick}: another fingerprint")
                return
            await pc.setRemoteDescription(RTCSessionDescription(sdp=description["sdp"], type=description["type"]))
            member.remote_fp = remote_fp
            for c in member.pending:
                await pc.addIceCandidate(c)
            member.pending = []
            if description["type"] == "offer":
                await pc.setLocalDescription(await pc.createAnswer())
                sdp = only_sha256(pc.localDescription.sdp)
                member.local_fp = fingerprint_of(sdp)
                await self.signal(member, {"description": {"type": "answer", "sdp": sdp}})
        elif candidate and candidate.get("candidate"):
            line = candidate["candidate"]
            if line.startswith("candidate:"):
                line = line[len("candidate:"):]
            c = candidate_from_sdp(line)
            c.sdpMid = candidate.get("sdpMid")
            c.sdpMLineIndex = candidate.get("sdpMLineIndex")
            if pc.remoteDescription is None:
                member.pending.append(c)
            else:
                await pc.addIceCandidate(c)

    def send_chat(self, text):
        self.seq += 1
        self.clock += 1
        message = {"id": random_id(), "seq": self.seq, "clock": self.clock, "ts": int(time.time() * 1000), "text": text}
        message["sig"] = b64url(self.identity.sign(message_bytes(self.sealer.context, self.me["id"], self.me["nick"],
                                                                 message)))
        self.mine.append({"author": self.me["id"], "nick": self.me["nick"], **message, "alg": "ed25519",
                          "key": b64url(self.identity.public)})
        envelope = json.dumps({"v": 2, "type": "chat", **message})
        for member in self.members.values():
            if member.key is not None and member.channel is not None and member.channel.readyState == "open":
                member.channel.send(envelope)
            else:
                member.outbox.append(envelope)

    async def read_stdin(self):
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            line = line.rstrip("\n")
            if line.strip():
                self.send_chat(line)

    async def run(self):
        async with websockets.connect(self.ws_url) as ws:
            self.ws = ws
            await ws.send(json.dumps({"type": "join", "v": 2, "room": self.room, "nick": self.nick}))
            stdin_task = None
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "joined":
                    self.me = msg["you"]
                    names = ", ".join(m["nick"] for m in msg["members"]) or "nobody else is here yet"
                    notice(f"joined as {self.me['nick']}; here: {names}")
                    for m in msg["members"]:
                        member = self.members[m["id"]] = Member(m["id"], m["nick"])
                        await self.start(member)
                    stdin_task = asyncio.create_task(self.read_stdin())
                elif kind == "peer_joined":
                    self.members[msg["peer"]["id"]] = Member(msg["peer"]["id"], msg["peer"]["nick"])
                    notice(f"{msg['peer']['nick']} joined")
                elif kind == "peer_left":
                    member = self.members.pop(msg["id"], None)
                    if member is not None:
                        notice(f"{member.nick} left")
                        if member.pc is not None:
                            await member.pc.close()
                elif kind == "signal":
                    await self.on_signal(msg["from"], msg["payload"])
                elif kind == "error":
                    notice(f"error {msg['code']}: {msg.get('message', '')}")
                    if self.me is None:
                        sys.exit(1)
                if stdin_task is not None and stdin_task.done():
                    break
            for member in self.members.values():
                if member.pc is not None:
                    await member.pc.close()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    early = [f.split("=", 1)[1].split(":", 1) for f in flags if f.startswith("--early-get=")]
    plain = {f for f in flags if not f.startswith("--early-get=")}
    if len(args) != 2 or not plain <= {"--forge", "--bad-hello"} or any(len(e) != 2 for e in early):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(Peer(*args, forge="--forge" in flags, bad_hello="--bad-hello" in flags,
                     early_get=tuple(early[0]) if early else None).run())


if __name__ == "__main__":
    main()
