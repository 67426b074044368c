// @ts-check
/**
 * Connecting two people with no server: one page makes an offer code, the
 * other answers it, and the first pastes the answer. Codes carry every ICE
 * candidate (no trickling), so gathering finishes before a code is shown.
 * Works with the terminal client's `peerchat chat --manual`.
 *
 * Once the channel opens, each side's hello (protocol version 2) binds both
 * DTLS fingerprints to its identity key; nothing else is sent or shown
 * before the other side's hello verifies. The two sides are `offerer` and
 * `answerer`, as in the terminal client.
 * @module
 */

import { ChatLog } from './chatlog.js';
import { copyField } from './clipboard.js';
import { byId, showStatus } from './dom.js';
import { wireComposer } from './composer.js';
import { ANSWERER, OFFERER, openCode, readCode, sealCode } from './codes.js';
import {
  base64urlDecode,
  base64urlEncode,
  buildHello,
  CODE_CONTEXT,
  makeSecret,
  parseSecret,
  SignalKey,
  fingerprintFromSdp,
  generateIdentity,
  groupDigits,
  helloEnvelope,
  parseHello,
  publicKeyFromWire,
  publicKeyToWire,
  safetyNumber,
  signWith,
  verifyHello,
  verifySignature,
} from './e2e.js';
import { History, isShown } from './history.js';
import { KeyStore } from './keystore.js';
import { ProtocolError, randomId, validateNick } from './protocol.js';

const NICK_STORAGE_KEY = 'peerchat.nick';
/** This browser's identity key, loaded (or made) as the page loads. */
const identity = KeyStore.open()
  .catch(() => null)
  .then((keystore) => (keystore ? keystore.identity() : generateIdentity()));
/** Longest wait for ICE gathering before a code is shown anyway. */
const GATHER_LIMIT_MS = 5000;

const ui = {
  status: byId('status'),
  setup: byId('setup'),
  nick: /** @type {HTMLInputElement} */ (byId('nick')),
  choose: byId('choose'),
  start: /** @type {HTMLButtonElement} */ (byId('start')),
  theirOffer: /** @type {HTMLTextAreaElement} */ (byId('their-offer')),
  answer: /** @type {HTMLButtonElement} */ (byId('answer')),
  mine: byId('mine'),
  mineTitle: byId('mine-title'),
  myCodeLabel: byId('my-code-label'),
  myCode: /** @type {HTMLTextAreaElement} */ (byId('my-code')),
  copyCode: /** @type {HTMLButtonElement} */ (byId('copy-code')),
  mineHint: byId('mine-hint'),
  finish: byId('finish'),
  theirAnswer: /** @type {HTMLTextAreaElement} */ (byId('their-answer')),
  connect: /** @type {HTMLButtonElement} */ (byId('connect')),
  error: byId('setup-error'),
  chat: byId('chat'),
  composer: /** @type {HTMLFormElement} */ (byId('composer')),
  message: /** @type {HTMLTextAreaElement} */ (byId('message')),
  composerNote: byId('composer-note'),
};
const log = new ChatLog(byId('log'));

/**
 * @param {'idle'|'connecting'|'open'|'offline'} state
 * @param {string} text
 */
function setStatus(state, text) {
  showStatus(ui.status, state, text);
}

/** @param {RTCPeerConnection} pc */
function gathered(pc) {
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === 'complete') resolve(undefined);
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, GATHER_LIMIT_MS);
    done();
  });
}

/** The nickname, checked; null (with the reason shown) if it is not valid. */
function nickname() {
  const nick = ui.nick.value.trim();
  try {
    validateNick(nick);
  } catch (e) {
    ui.error.textContent = `That nickname can't be used: ${/** @type {Error} */ (e).message}.`;
    ui.nick.focus();
    return null;
  }
  localStorage.setItem(NICK_STORAGE_KEY, nick);
  return nick;
}

/**
 * @param {string} title the step's heading
 * @param {string} label the code's name
 * @param {string} code
 * @param {string} hint
 */
function showMyCode(title, label, code, hint) {
  ui.choose.hidden = true;
  ui.mine.hidden = false;
  ui.mineTitle.textContent = title;
  ui.myCodeLabel.textContent = label;
  ui.myCode.value = code;
  ui.mineHint.textContent = hint;
  ui.myCode.focus();
  ui.myCode.select();
}

/**
 * Wires the data channel to the chat once it is there: hellos first, then
 * the chat.
 * @param {RTCPeerConnection} pc
 * @param {RTCDataChannel} dc
 * @param {{me: string, peer: string, sid: string}} ids our side's and theirs, and the connection's
 * @param {string} me our nickname
 * @param {() => string} peerNick
 * @param {() => string} remoteSdp the other side's description, as given to
 *   `setRemoteDescription` (Chromium can open the channel before that call's
 *   promise resolves and `pc.remoteDescription` is set)
 */
function chatOver(pc, dc, ids, me, peerNick, remoteSdp) {
  let verified = false;
  let failed = false;
  /** Envelopes are handled one after another, the hello first. */
  let chain = Promise.resolve();
  /** @returns {import('./e2e.js').Link} */
  const view = () => ({
    context: CODE_CONTEXT,
    sid: ids.sid,
    me: ids.me,
    myNick: me,
    peer: ids.peer,
    peerNick: peerNick(),
    myFingerprint: fingerprintFromSdp(pc.localDescription?.sdp ?? ''),
    peerFingerprint: fingerprintFromSdp(remoteSdp()),
  });
  /** @param {string} reason */
  const fail = (reason) => {
    failed = true;
    setStatus('offline', `Could not verify ${peerNick()}`);
    log.notice(`Could not verify ${peerNick()}: ${reason}. The connection was closed.`);
    pc.close();
  };
  let opened = false;
  const onOpen = () => {
    if (opened) return;
    opened = true;
    ui.setup.hidden = true;
    ui.chat.hidden = false;
    setStatus('connecting', `Verifying ${peerNick()}…`);
    chain = chain.then(async () => {
      try {
        dc.send(helloEnvelope(await buildHello(await identity, view())));
      } catch (e) {
        fail(`our hello could not be made (${/** @type {Error} */ (e).message})`);
      }
    });
  };
  dc.addEventListener('open', onOpen);
  // A channel received from the other side may be open already: then it
  // fires no `open` of its own.
  if (dc.readyState === 'open') queueMicrotask(onOpen);
  const history = new History(ids.me);
  void identity.then((id) => history.setIdentity(CODE_CONTEXT, publicKeyToWire(id.publicKey)));
  /** @param {number} seq */
  const status = (seq) =>
    history.delivery(seq).acked.length > 0
      ? { state: 'delivered', text: 'Delivered', detail: `Delivered to ${peerNick()}.` }
      : { state: 'sending', text: 'Sending…', detail: `Waiting for ${peerNick()}.` };
  /** @type {number[]} */
  const unacked = [];
  /**
   * Carries out what the log asks for; signatures are checked, and their
   * results handed back, before what follows.
   * @param {import('./history.js').Effect[]} effects
   */
  const apply = async (effects) => {
    for (const effect of effects) {
      if ('verify' in effect) {
        const results = await Promise.all(
          effect.verify.items.map(async (item) => {
            const sig = base64urlDecode(item.sig);
            return sig !== null && verifySignature(publicKeyFromWire(item), item.bytes, sig).catch(() => false);
          }),
        );
        await apply(history.verified(effect.verify.id, results));
        continue;
      }
      if ('forged' in effect) {
        log.notice(`A message from ${peerNick()} was refused: its signature does not verify.`, { warning: true });
        continue;
      }
      if ('added' in effect) {
        const m = effect.added;
        // Edits, deletions, reactions and room names are not messages of their own.
        if (!isShown(m)) continue;
        log.message({ ...m, authorId: m.author, author: peerNick(), own: false });
      } else if ('send' in effect && dc.readyState === 'open') {
        dc.send(effect.send.text);
      } else if ('acked' in effect) {
        for (const seq of unacked.splice(0)) log.setStatus(history.me, seq, status(seq));
      }
    }
  };
  /** @param {string} text */
  const receive = async (text) => {
    try {
      await apply(history.handle(ids.peer, peerNick(), text, Date.now()));
    } catch (e) {
      console.warn('peerchat: ignoring a malformed message', e);
    }
  };
  /** @param {string} text */
  const checkHello = async (text) => {
    let hello;
    try {
      hello = parseHello(JSON.parse(text));
      await verifyHello(hello, view());
    } catch {
      fail('its hello does not match this connection: someone may be in the middle');
      return;
    }
    await apply(history.keyConfirmed(ids.peer, publicKeyToWire(hello.key)));
    verified = true;
    setStatus('open', `Connected to ${peerNick()}, directly`);
    log.notice(`You are connected to ${peerNick()}, with no server in between.`);
    // Whoever saw both codes could stand in the middle: the safety number,
    // compared out of band, shows whether anyone does.
    const theirs = hello.key;
    void identity
      .then(async (ours) => groupDigits(await safetyNumber(ours.publicKey, theirs)))
      .then((digits) =>
        log.notice(`Your safety number with ${peerNick()}: ${digits}. Compare it with the one ${peerNick()} sees; if they match, nobody is in the middle.`),
      );
    ui.message.focus();
    for (const effect of history.linkOpened(ids.peer)) {
      if ('send' in effect && dc.readyState === 'open') dc.send(effect.send.text);
    }
  };
  dc.addEventListener('message', (event) => {
    if (typeof event.data !== 'string' || failed) return;
    const text = event.data;
    chain = chain.then(() => (verified ? receive(text) : checkHello(text)));
  });
  dc.addEventListener('close', () => {
    if (failed) return;
    setStatus('offline', `${peerNick()} left`);
    log.notice(`${peerNick()} left.`);
  });
  pc.addEventListener('connectionstatechange', () => {
    if (failed) return;
    if (pc.connectionState === 'disconnected') setStatus('connecting', `Connection to ${peerNick()} interrupted…`);
    if (pc.connectionState === 'connected' && verified) setStatus('open', `Connected to ${peerNick()}, directly`);
    // With no server to renegotiate through, a failed connection is over.
    if (pc.connectionState === 'failed') {
      setStatus('offline', `Connection to ${peerNick()} lost`);
      log.notice(`The connection to ${peerNick()} was lost. Swap new codes to reconnect.`);
      pc.close();
    }
  });
  let sending = Promise.resolve();
  wireComposer({ form: ui.composer, box: ui.message, note: ui.composerNote }, (text) => {
    if (!verified || dc.readyState !== 'open') throw new Error('Not connected.');
    const message = { id: randomId(), nick: me, text, ts: Date.now() };
    history.draft(message); // what cannot be sent throws here
    sending = sending.then(async () => {
      // One after another, so that each draft's number is the next.
      const draft = history.draft(message);
      const sig = base64urlEncode(await signWith(await identity, draft.bytes));
      const { message: sent, envelope } = history.commit(draft, sig, [ids.peer]);
      dc.send(envelope);
      unacked.push(sent.seq);
      log.message({ ...sent, authorId: sent.author, author: me, own: true, relayedBy: null }, status(sent.seq));
    }).catch((e) => {
      ui.composerNote.textContent = `Not sent: ${/** @type {Error} */ (e).message}`;
    });
  });
}

/**
 * Applies the other side's description, refusing one whose DTLS
 * fingerprint lines break the rule (the hello binds exactly one).
 * @param {RTCPeerConnection} pc
 * @param {RTCSdpType} type
 * @param {string} sdp
 */
async function applyRemote(pc, type, sdp) {
  try {
    fingerprintFromSdp(sdp);
  } catch (e) {
    throw new Error(`This code cannot be used: ${/** @type {Error} */ (e).message}.`);
  }
  await pc.setRemoteDescription({ type, sdp });
}

async function start() {
  ui.error.textContent = '';
  const me = nickname();
  if (!me) return;
  ui.start.disabled = true;
  ui.answer.disabled = true;
  setStatus('connecting', 'Gathering network addresses…');
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel('chat', { ordered: true });
  let peer = 'them';
  let answerSdp = '';
  const sid = randomId();
  chatOver(pc, dc, { me: OFFERER, peer: ANSWERER, sid }, me, () => peer, () => answerSdp);
  await pc.setLocalDescription();
  await gathered(pc);
  // A fresh secret travels in the offer code; the answer is sealed with it.
  const secret = makeSecret();
  const key = await SignalKey.derive(parseSecret(secret), CODE_CONTEXT);
  const offer = { type: /** @type {const} */ ('offer'), sdp: pc.localDescription?.sdp ?? '', sid, nick: me };
  const code = await sealCode(offer, key, secret);
  showMyCode(
    '1. Send your code',
    'Your connection code',
    code,
    'Send this code to the other person, then paste the answer code they send back below.',
  );
  setStatus('connecting', 'Waiting for their answer code');
  ui.finish.hidden = false;
  ui.connect.addEventListener('click', async () => {
    ui.error.textContent = '';
    try {
      const answer = await openCode(await readCode(ui.theirAnswer.value, 'answer'), key);
      peer = answer.nick;
      ui.connect.disabled = true;
      setStatus('connecting', `Connecting to ${peer}…`);
      answerSdp = answer.sdp;
      await applyRemote(pc, 'answer', answer.sdp);
    } catch (e) {
      ui.error.textContent = /** @type {Error} */ (e).message;
      ui.connect.disabled = false;
    }
  });
}

async function answer() {
  ui.error.textContent = '';
  const me = nickname();
  if (!me) return;
  let offer;
  let key;
  try {
    const code = await readCode(ui.theirOffer.value, 'offer');
    if (!code.secret) {
      throw new Error('This offer code carries no secret: it was made with a secret shared ahead, which this page cannot take.');
    }
    key = await SignalKey.derive(code.secret, CODE_CONTEXT);
    offer = await openCode(code, key);
  } catch (e) {
    ui.error.textContent = /** @type {Error} */ (e).message;
    return;
  }
  ui.start.disabled = true;
  ui.answer.disabled = true;
  const theirs = offer;
  const pc = new RTCPeerConnection();
  pc.addEventListener('datachannel', ({ channel }) => {
    if (channel.label === 'chat') {
      chatOver(pc, channel, { me: ANSWERER, peer: OFFERER, sid: theirs.sid }, me, () => theirs.nick, () => theirs.sdp);
    }
  });
  setStatus('connecting', 'Gathering network addresses…');
  try {
    await applyRemote(pc, 'offer', offer.sdp);
  } catch (e) {
    ui.error.textContent = /** @type {Error} */ (e).message;
    pc.close();
    ui.start.disabled = false;
    ui.answer.disabled = false;
    return;
  }
  await pc.setLocalDescription();
  await gathered(pc);
  const reply = { type: /** @type {const} */ ('answer'), sdp: pc.localDescription?.sdp ?? '', sid: offer.sid, nick: me };
  const code = await sealCode(reply, key, null);
  showMyCode(
    'Send your answer back',
    'Your answer code',
    code,
    `Send this answer back to ${offer.nick}. The chat opens here as soon as they paste it.`,
  );
  setStatus('connecting', `Waiting for ${offer.nick} to paste your answer`);
}

ui.nick.value = localStorage.getItem(NICK_STORAGE_KEY) ?? '';
ui.start.addEventListener('click', () => void start());
ui.answer.addEventListener('click', () => void answer());
ui.copyCode.addEventListener('click', () => void copyField(ui.myCode, ui.copyCode));
window.addEventListener('unhandledrejection', (event) => {
  ui.error.textContent = event.reason instanceof ProtocolError ? event.reason.message : String(event.reason);
});
