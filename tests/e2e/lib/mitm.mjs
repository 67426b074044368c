// A man in the middle that knows a room's secret (as a server that served
// malicious page code, or a member, would): behind the malicious server of
// proxy.mjs, it opens the signals two members send each other and answers
// each of them itself, from two WebRTC peers of its own that run in a
// browser page; it relays what one member's data channel says to the other.
// Its DTLS certificates are its own, so each member sees another
// fingerprint than the other member's. It either forwards each member's
// hello as it is (`verbatim`) or signs hellos of its own, with its own
// identity key, over its own view of each connection (`own-key`).
import { parseSecret, roomContext, RoomCrypto, SignalKey } from '../../../web/js/e2e.js';

let engines = 0;

/**
 * Puts the man in the middle between the members `a` and `b` of the room
 * `link` names: from now on every signal between them goes to it instead.
 * `page` is a page of the server's origin (the engine runs there; it loads
 * the page's own e2e.js for the hellos).
 * @param {object} options
 * @param {Awaited<ReturnType<typeof import('./proxy.mjs').startProxy>>} options.proxy
 * @param {import('playwright-core').Page} options.page
 * @param {string} options.link the room link, with its secret
 * @param {[string, string]} options.pair the two members' nicknames
 * @param {'verbatim' | 'own-key'} options.mode
 */
export async function startMitm({ proxy, page, link, pair, mode }) {
  const url = new URL(link);
  const room = url.pathname.split('/').pop() ?? '';
  const secret = parseSecret(url.hash);
  const context = roomContext(room);
  const key = await SignalKey.derive(secret, context);
  /** @type {Map<string, Promise<RoomCrypto>>} a sealer per member it poses as */
  const sealers = new Map();
  const byId = (/** @type {string} */ id) => [...proxy.conns].find((c) => c.room === room && c.id === id) ?? null;
  const stats = { opened: 0, sent: 0 };

  await page.goto(`${proxy.url}/manifest.webmanifest`);
  // A page keeps what it was given: each man in the middle has its own name.
  const sender = `mitmSend${(engines += 1)}`;
  await page.exposeFunction(sender, async (/** @type {string} */ as, /** @type {string} */ to, /** @type {any} */ payload) => {
    let sealer = sealers.get(as);
    if (!sealer) sealers.set(as, (sealer = RoomCrypto.create(secret, context, as)));
    const sealed = await (await sealer).seal(to, payload, Date.now());
    stats.sent += 1;
    byId(to)?.toMember({ type: 'signal', from: as, payload: sealed });
  });
  await page.evaluate(installEngine, { context, mode, sender });

  proxy.tamper = async (conn, frame) => {
    const to = byId(frame.to);
    if (conn.room !== room || !conn.id || !conn.nick || !to?.nick) return null;
    if (!pair.includes(conn.nick) || !pair.includes(to.nick)) return null;
    const { payload } = await key.openPayload(conn.id, frame.to, frame.payload);
    stats.opened += 1;
    await page.evaluate((s) => /** @type {any} */ (window).mitm.signal(s), {
      from: conn.id,
      fromNick: conn.nick,
      to: frame.to,
      toNick: to.nick,
      payload,
    });
    return [];
  };
  return {
    stats,
    stop() {
      proxy.tamper = null;
    },
  };
}

/**
 * The engine, run in the page: two peer connections per intercepted
 * connection, one facing each member.
 * @param {{context: string, mode: 'verbatim' | 'own-key', sender: string}} options
 */
async function installEngine({ context, mode, sender }) {
  /** @type {any} */
  const e2e = await import('/js/e2e.js');
  const identity = mode === 'own-key' ? await e2e.generateIdentity() : null;
  /** @type {(as: string, to: string, payload: unknown) => Promise<void>} */
  const send = /** @type {any} */ (window)[sender];
  /** @type {Map<string, Map<string, any>>} per connection id, the face toward each member */
  const sessions = new Map();
  let queue = Promise.resolve();

  /**
   * A peer connection facing `victim`, posing as `as`.
   */
  function makeFace(victim, victimNick, as, asNick, sid, initiator) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const face = { victim, victimNick, as, asNick, sid, pc, dc: null, ready: false, out: [], candidates: [], local: '', remote: '', other: null, helloSeen: false, described: false, early: [] };
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate?.candidate) return;
      // Candidates go after the description they belong to.
      if (face.described) void send(as, victim, { sid, candidate: candidate.toJSON() });
      else face.early.push(candidate.toJSON());
    });
    const use = (dc) => {
      face.dc = dc;
      dc.addEventListener('open', () => void opened(face));
      dc.addEventListener('message', ({ data }) => relay(face, data));
      if (dc.readyState === 'open') void opened(face);
    };
    if (initiator) use(pc.createDataChannel('chat', { ordered: true }));
    else pc.addEventListener('datachannel', ({ channel }) => channel.label === 'chat' && !face.dc && use(channel));
    return face;
  }

  async function opened(face) {
    if (face.ready) return;
    if (identity) {
      const link = {
        context,
        sid: face.sid,
        me: face.as,
        myNick: face.asNick,
        peer: face.victim,
        peerNick: face.victimNick,
        myFingerprint: face.local,
        peerFingerprint: face.remote,
      };
      face.dc.send(e2e.helloEnvelope(await e2e.buildHello(identity, link)));
    }
    face.ready = true;
    for (const data of face.out.splice(0)) face.dc.send(data);
  }

  /** What one member said, on to the other. */
  function relay(face, data) {
    if (identity && !face.helloSeen) {
      // The member's own hello stays here: the other gets ours.
      face.helloSeen = true;
      return;
    }
    const other = face.other;
    if (!other) return;
    if (other.ready && other.dc?.readyState === 'open') other.dc.send(data);
    else if (other.out.length < 256) other.out.push(data);
  }

  async function describe(face, description) {
    await face.pc.setRemoteDescription(description);
    face.remote = e2e.fingerprintFromSdp(description.sdp);
    for (const c of face.candidates.splice(0)) await face.pc.addIceCandidate(c).catch(() => {});
  }

  /** Makes and sends the face's description, then the candidates it gathered meanwhile. */
  async function sendDescription(face) {
    await face.pc.setLocalDescription();
    const local = face.pc.localDescription;
    face.local = e2e.fingerprintFromSdp(local.sdp);
    await send(face.as, face.victim, { sid: face.sid, description: local.toJSON() });
    face.described = true;
    for (const candidate of face.early.splice(0)) await send(face.as, face.victim, { sid: face.sid, candidate });
  }

  async function signal({ from, fromNick, to, toNick, payload }) {
    const { sid, description, candidate } = payload;
    let session = sessions.get(sid);
    if (description?.type === 'offer' && !session) {
      // A new connection from `from` to `to`: answer it as `to`, and start
      // one to `to` as `from`, under the same id. Earlier ones stay until
      // the members give them up.
      const answering = makeFace(from, fromNick, to, toNick, sid, false);
      const offering = makeFace(to, toNick, from, fromNick, sid, true);
      answering.other = offering;
      offering.other = answering;
      session = new Map([[from, answering], [to, offering]]);
      sessions.set(sid, session);
      if (sessions.size > 16) {
        const [oldest, faces] = sessions.entries().next().value;
        for (const f of faces.values()) f.pc.close();
        sessions.delete(oldest);
      }
      await sendDescription(offering);
    }
    const face = session?.get(from);
    if (!face) return;
    if (description?.type === 'offer') {
      await describe(face, description);
      await sendDescription(face);
    } else if (description?.type === 'answer') {
      await describe(face, description);
    } else if (candidate) {
      if (face.pc.remoteDescription) await face.pc.addIceCandidate(candidate).catch(() => {});
      else face.candidates.push(candidate);
    }
  }

  /** @type {any} */ (window).mitm = {
    signal(s) {
      queue = queue.then(() => signal(s)).catch((e) => console.warn('mitm:', e));
      return queue;
    },
  };
}
