// A malicious signaling server, for tests: an HTTP and WebSocket proxy in
// front of a real peerchat server. It passes HTTP through as it is and
// relays `/ws` frames both ways, but a test can have it rewrite, drop,
// redirect, replay or forge the `signal`s members send, as whoever runs or
// breaks into a server could. It never knows the room secret.
import http from 'node:http';
import { readFileSync } from 'node:fs';

import { WebSocket, WebSocketServer } from 'ws';

import { base64urlDecode, base64urlEncode, makeSecret, parseSecret, roomContext, RoomCrypto } from '../../../web/js/e2e.js';

/**
 * One member's WebSocket, as the proxy sees it: what it learned from the
 * server's `joined`, and every `signal` the member sent.
 */
export class Conn {
  /**
   * @param {WebSocket} down the member's socket
   * @param {WebSocket} up the socket to the real server
   */
  constructor(down, up) {
    this.down = down;
    this.up = up;
    /** @type {string | null} the member's peer id, once joined */
    this.id = null;
    /** @type {string | null} */
    this.nick = null;
    /** @type {string | null} */
    this.room = null;
    /** @type {{to: string, payload: any}[]} every signal it sent, as it sent it */
    this.signals = [];
    /** @type {string[]} frames for the server while its socket opens */
    this.pending = [];
    /** @type {Promise<void>} the member's frames, relayed in order */
    this.chain = Promise.resolve();
  }

  /**
   * Sends a frame to the real server as if the member had sent it.
   * @param {object} frame
   */
  toServer(frame) {
    const text = JSON.stringify(frame);
    if (this.up.readyState === WebSocket.OPEN) this.up.send(text);
    else this.pending.push(text);
  }

  /**
   * Sends a frame to the member as if the server had sent it.
   * @param {object} frame
   */
  toMember(frame) {
    if (this.down.readyState === WebSocket.OPEN) this.down.send(JSON.stringify(frame));
  }
}

/**
 * What the proxy does with a `signal` a member sent: the frames to send to
 * the real server in its place, on the member's connection (none drops it),
 * or `null` to pass it on untouched.
 * @typedef {(conn: Conn, frame: {type: 'signal', to: string, payload: any}) => object[] | null | Promise<object[] | null>} Tamper
 */

/**
 * Starts the proxy on a free loopback port in front of the server at
 * `upstream` (`http://host:port`).
 * @param {string} upstream
 */
export async function startProxy(upstream) {
  const target = new URL(upstream);
  /** @type {Set<Conn>} */
  const conns = new Set();
  const proxy = {
    /** @type {string} */
    url: '',
    conns,
    /** @type {Tamper | null} */
    tamper: null,
    /** @type {unknown[]} what went wrong while tampering (the frame was dropped) */
    errors: [],
    /**
     * The connection of the member `nick` in `room`, if joined.
     * @param {string} room
     * @param {string} nick
     */
    member(room, nick) {
      return [...conns].find((c) => c.room === room && c.nick === nick && c.down.readyState === WebSocket.OPEN) ?? null;
    },
    async close() {
      for (const c of conns) {
        c.down.terminate();
        c.up.terminate();
      }
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const server = http.createServer((req, res) => {
    const forward = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (down) => {
      // The real server sees the member's Host and Origin, as if it were
      // reached directly.
      /** @type {Record<string, string>} */
      const headers = { host: req.headers.host ?? target.host };
      const up = new WebSocket(`ws://${target.host}${req.url}`, {
        headers,
        ...(req.headers.origin ? { origin: req.headers.origin } : {}),
      });
      const conn = new Conn(down, up);
      conns.add(conn);
      up.on('open', () => {
        for (const text of conn.pending.splice(0)) up.send(text);
      });
      up.on('message', (data, binary) => {
        if (!binary) learn(conn, String(data));
        if (down.readyState === WebSocket.OPEN) down.send(data, { binary });
      });
      down.on('message', (data, binary) => {
        // One frame after the other, in order, even while a forgery is made.
        conn.chain = conn.chain.then(async () => {
          const text = String(data);
          const frames = binary ? null : await relayed(conn, text);
          if (frames === null) {
            if (up.readyState === WebSocket.OPEN) up.send(data, { binary });
            else conn.pending.push(text);
          } else {
            for (const frame of frames) conn.toServer(frame);
          }
        }).catch((e) => proxy.errors.push(e));
      });
      const end = (/** @type {WebSocket} */ other, /** @type {number} */ code) => {
        conns.delete(conn);
        const closable = code >= 1000 && code < 5000 && code !== 1004 && code !== 1005 && code !== 1006;
        if (other.readyState === WebSocket.OPEN) closable ? other.close(code) : other.terminate();
        else if (other.readyState === WebSocket.CONNECTING) other.terminate();
      };
      up.on('close', (code) => end(down, code));
      down.on('close', (code) => end(up, code));
      up.on('error', () => down.terminate());
      down.on('error', () => up.terminate());
    });
  });

  /**
   * @param {Conn} conn
   * @param {string} text a frame from the server
   */
  function learn(conn, text) {
    const msg = parse(text);
    if (msg?.type === 'joined') {
      conn.id = msg.you?.id ?? null;
      conn.nick = msg.you?.nick ?? null;
      conn.room = msg.room ?? null;
    }
  }

  /**
   * @param {Conn} conn
   * @param {string} text a frame from the member
   * @returns {Promise<object[] | null>}
   */
  async function relayed(conn, text) {
    const msg = parse(text);
    if (msg?.type !== 'signal' || typeof msg.to !== 'string') return null;
    conn.signals.push({ to: msg.to, payload: msg.payload });
    return (await proxy.tamper?.(conn, msg)) ?? null;
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  proxy.url = `http://127.0.0.1:${address.port}`;
  return proxy;
}

/** @param {string} text */
function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * A sealed payload with one bit of its ciphertext (or, if `inIv`, its IV)
 * flipped.
 * @param {{iv: string, ct: string}} payload
 * @param {number} bit which bit, counted from the start (taken modulo the length)
 * @param {boolean} [inIv]
 */
export function flipBit(payload, bit, inIv = false) {
  const field = inIv ? 'iv' : 'ct';
  const bytes = base64urlDecode(payload[field]);
  if (!bytes) throw new Error(`not a sealed payload: ${JSON.stringify(payload).slice(0, 80)}`);
  const at = bit % (bytes.length * 8);
  bytes[at >> 3] ^= 1 << (at & 7);
  return { ...payload, [field]: base64urlEncode(bytes) };
}

const VECTORS = JSON.parse(readFileSync(new URL('../../vectors/e2e.json', import.meta.url), 'utf8'));
/** A real Chromium offer (from the shared vectors), to dress up as the attacker's own. */
const OFFER_SDP = /** @type {string} */ (VECTORS.fingerprints[0].sdp);

/** The attacker's own DTLS fingerprint, in normal form. */
export const ATTACKER_FINGERPRINT = `sha-256 ${[...Array(32).keys()].map((i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':')}`;

/** An offer whose DTLS fingerprint is the attacker's. */
export function attackerOffer() {
  return {
    sid: base64urlEncode(crypto.getRandomValues(new Uint8Array(9))),
    description: {
      type: 'offer',
      sdp: OFFER_SDP.replace(/a=fingerprint:[^\r\n]*/g, `a=fingerprint:${ATTACKER_FINGERPRINT}`),
    },
  };
}

/**
 * The forgeries a server that does not know the room secret can make of an
 * offer carrying its own DTLS fingerprint, from `from` to `to` in `room`:
 * sealed with a secret of its own for this room (the right sender and
 * recipient), sealed for another room of its own (as a payload captured
 * from another room would be), and not sealed at all (version 1).
 * @param {number} variant which one (taken modulo 3)
 * @param {string} room
 * @param {string} from
 * @param {string} to
 */
export async function forgedOffer(variant, room, from, to) {
  const offer = attackerOffer();
  switch (variant % 3) {
    case 0:
      return (await RoomCrypto.create(parseSecret(makeSecret()), roomContext(room), from)).seal(to, offer, Date.now());
    case 1: {
      const other = base64urlEncode(crypto.getRandomValues(new Uint8Array(16)));
      return (await RoomCrypto.create(parseSecret(makeSecret()), roomContext(other), from)).seal(to, offer, Date.now());
    }
    default:
      return offer;
  }
}
