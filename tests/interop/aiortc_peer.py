#!/usr/bin/env python3
"""An independent peerchat client, written from docs/protocol.md alone.

It uses aiortc (a WebRTC stack unrelated to webrtc-rs and Chromium) and
speaks the protocol as documented: join over the /ws WebSocket, start a
connection to every member listed in `joined` (sid, in-band data channel
"chat"), answer offers from newcomers, relay candidates, and exchange chat
envelopes. Line mode like `peerchat chat --plain`: each stdin line is sent
as a message; received messages are printed as `nick: text`; notices go to
stderr. Used by the interop tests; not part of the product.

usage: aiortc_peer.py WS_URL ROOM NICK
"""

import asyncio
import base64
import json
import os
import sys
import time

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
import websockets

# aiortc skips loopback when gathering; the tests run where only loopback
# exists.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def notice(text):
    print(f"* {text}", file=sys.stderr, flush=True)


def random_id():
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


class Member:
    def __init__(self, peer_id, nick):
        self.id = peer_id
        self.nick = nick
        self.pc = None
        self.sid = None
        self.channel = None
        self.pending = []  # candidates before the remote description
        self.outbox = []  # envelopes before the channel opens


class Peer:
    def __init__(self, ws_url, room, nick):
        self.ws_url = ws_url
        self.room = room
        self.nick = nick
        self.me = None
        self.members = {}
        self.seen = set()  # (author, seq) of messages shown
        self.floor = {}  # author -> every seq up to this one was seen
        self.seq = 0  # our last message number
        self.mine = []  # our messages, for peers whose channel opens later
        self.clock = 0  # Lamport clock
        self.ws = None

    async def signal(self, member, payload):
        payload["sid"] = member.sid
        await self.ws.send(json.dumps({"type": "signal", "to": member.id, "payload": payload}))

    def use_channel(self, member, channel):
        member.channel = channel

        def flush():
            # What we hold, so that they send what we missed.
            have = dict(self.floor)
            if self.seq:
                have[self.me["id"]] = self.seq
            channel.send(json.dumps({"v": 1, "type": "sync", "have": have}))
            for envelope in member.outbox:
                channel.send(envelope)
            member.outbox.clear()

        @channel.on("open")
        def on_open():
            flush()

        @channel.on("message")
        def on_message(text):
            self.on_envelope(member, text)

        if channel.readyState == "open":
            flush()

    def on_envelope(self, member, text):
        try:
            env = json.loads(text)
        except ValueError:
            return
        if not isinstance(env, dict):
            return
        kind = env.get("type")
        if kind == "chat":
            self.on_message(member.id, member.nick, env, member)
        elif kind == "history" and isinstance(env.get("messages"), list):
            # What we missed (sent before our channel opened), in order.
            for record in env["messages"]:
                if isinstance(record, dict) and isinstance(record.get("author"), str):
                    ack_to = self.members.get(record["author"])
                    self.on_message(record["author"], record.get("nick", "?"), record, ack_to)
        elif kind == "sync" and isinstance(env.get("have"), dict):
            # Answer with what they lack of ours (we keep only our own).
            held = env["have"].get(self.me["id"], 0)
            missing = [m for m in self.mine if m["seq"] > held]
            if missing:
                member.channel.send(json.dumps({"v": 1, "type": "history", "messages": missing}))
        # ack, typing: optional, ignored here

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
            if ack_to is not None and ack_to.channel is not None and ack_to.channel.readyState == "open":
                ack_to.channel.send(json.dumps({"v": 1, "type": "ack", "upto": floor}))
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
        await self.signal(member, {"description": {"type": "offer", "sdp": pc.localDescription.sdp}})

    async def on_signal(self, sender, payload):
        member = self.members.get(sender)
        if member is None or not isinstance(payload, dict):
            return
        description = payload.get("description")
        candidate = payload.get("candidate")
        sid = payload.get("sid")
        if description and description.get("type") == "offer" and sid != member.sid:
            if member.pc is not None:
                await member.pc.close()
            member.sid, member.channel, member.pending = sid, None, []
            self.new_pc(member)
        if sid != member.sid or member.pc is None:
            return
        pc = member.pc
        if description:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=description["sdp"], type=description["type"]))
            for c in member.pending:
                await pc.addIceCandidate(c)
            member.pending = []
            if description["type"] == "offer":
                await pc.setLocalDescription(await pc.createAnswer())
                await self.signal(member, {"description": {"type": "answer", "sdp": pc.localDescription.sdp}})
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
        self.mine.append({"author": self.me["id"], "nick": self.me["nick"], **message})
        envelope = json.dumps({"v": 1, "type": "chat", **message})
        for member in self.members.values():
            if member.channel is not None and member.channel.readyState == "open":
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
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(Peer(*sys.argv[1:]).run())


if __name__ == "__main__":
    main()
