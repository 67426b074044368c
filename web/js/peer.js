// @ts-check
/**
 * One WebRTC connection to one other member: perfect negotiation, trickle
 * ICE with candidates buffered until the remote description is set, and one
 * reliable, ordered data channel labelled `chat`, opened in-band by the side
 * that starts the connection.
 *
 * Every signal payload carries `sid`, the id of the connection it belongs
 * to, chosen by the side that starts it. Which connection is current, and
 * when one is started, repaired or given up, is the mesh's to decide
 * (mesh.js): a link only reports what happens to it.
 *
 * It knows both DTLS fingerprints, for the hello: its own, from its local
 * description, and the other side's, from the description it applied. A
 * description whose fingerprint lines break the strict rule of
 * docs/protocol.md, or name another fingerprint than the first one
 * applied, is refused and not applied.
 * @module
 */

import { fingerprintFromSdp } from './e2e.js';

/** Candidates kept while waiting for the remote description. */
const MAX_PENDING_CANDIDATES = 256;
/** How long a relay-only connection may wait for a relay address. */
const RELAY_WAIT_MS = 10000;

/**
 * @typedef {{sid: string, description?: RTCSessionDescriptionInit, candidate?: RTCIceCandidateInit}} SignalPayload
 */

/**
 * Events: `open` (once, when the data channel opens), `message` (detail:
 * string), `transport` (detail: 'connected' | 'disconnected' | 'failed',
 * the connection's state), `closed` (once),
 * and in relay-only mode `no-relay` (detail: the relay's error, or null)
 * when no relay address could be had: nothing can connect then.
 */
export class PeerLink extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.selfId our peer id
   * @param {string} options.peerId their peer id
   * @param {RTCIceServer[]} options.iceServers
   * @param {string} options.sid the connection id
   * @param {boolean} options.initiator whether we start it: create the
   *   channel and offer (else we answer the other side's offer)
   * @param {(payload: SignalPayload) => void} options.sendSignal
   * @param {boolean} [options.relayOnly] use and reveal relay candidates only
   */
  constructor({ selfId, peerId, iceServers, sid, initiator, sendSignal, relayOnly = false }) {
    super();
    this.peerId = peerId;
    /** The side that starts a connection sends the first offer. */
    this.initiator = initiator;
    this.sid = sid;
    /** Of two peers, the one with the greater id gives way on glare. */
    this.polite = selfId > peerId;
    this.sendSignal = sendSignal;
    this.opened = false;
    this.closed = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** @type {RTCIceCandidateInit[]} */
    this.pendingCandidates = [];
    /** @type {string | null} our certificate's fingerprint, in normal form */
    this.localFingerprint = null;
    /** @type {string | null} theirs, from the description applied */
    this.remoteFingerprint = null;
    /** Incoming signals are handled one at a time, in order. */
    this.queue = Promise.resolve();

    this.relayOnly = relayOnly;
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
    /** @type {RTCDataChannel | null} */
    this.dc = null;

    this.pc.addEventListener('negotiationneeded', () => this.negotiate());
    this.pc.addEventListener('icecandidate', ({ candidate }) => {
      if (candidate?.type === 'relay') this.relayed = true;
      // In relay-only mode no candidate may name this machine's addresses.
      if (candidate && candidate.candidate && (!relayOnly || candidate.type === 'relay')) {
        this.sendSignal({ sid: this.sid, candidate: candidate.toJSON() });
      }
    });
    /** Whether a relay address was gathered. */
    this.relayed = false;
    /** @type {string | null} what the relay said when it refused, if it did */
    this.relayError = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.relayTimer = undefined;
    if (relayOnly) {
      // Relay-only with no relay address can never connect: say so, rather
      // than wait for ever.
      const check = () => {
        if (!this.relayed && !this.closed) {
          clearTimeout(this.relayTimer);
          this.dispatchEvent(new CustomEvent('no-relay', { detail: this.relayError }));
        }
      };
      this.pc.addEventListener('icecandidateerror', (e) => {
        const error = /** @type {RTCPeerConnectionIceErrorEvent} */ (e);
        if (/^turns?:/i.test(error.url ?? '')) this.relayError = `${error.errorCode} ${error.errorText}`.trim();
      });
      this.pc.addEventListener('icegatheringstatechange', () => {
        if (this.pc.iceGatheringState === 'complete') check();
      });
      this.relayTimer = setTimeout(check, RELAY_WAIT_MS);
    }
    this.pc.addEventListener('connectionstatechange', () => this.onConnectionState());
    // Transfer channels, each opened by the side that fetches a file.
    this.pc.addEventListener('datachannel', ({ channel }) => {
      if (channel.label === 'file') this.dispatchEvent(new CustomEvent('file-channel', { detail: channel }));
    });
    if (this.initiator) {
      this.useChannel(this.pc.createDataChannel('chat', { ordered: true }));
      // Offer now rather than when `negotiationneeded` comes round: on a
      // page that is busy drawing (the chat view appears as we join), that
      // event can wait tens of milliseconds.
      void this.negotiate();
    } else {
      this.pc.addEventListener('datachannel', ({ channel }) => {
        if (channel.label === 'chat' && !this.dc) this.useChannel(channel);
      });
    }
  }

  /**
   * @private
   * @param {RTCDataChannel} dc
   */
  useChannel(dc) {
    this.dc = dc;
    dc.addEventListener('open', () => this.onOpen());
    dc.addEventListener('message', (event) => {
      if (typeof event.data === 'string') {
        this.dispatchEvent(new CustomEvent('message', { detail: event.data }));
      }
    });
    dc.addEventListener('close', () => this.close());
    if (dc.readyState === 'open') queueMicrotask(() => this.onOpen());
  }

  /**
   * The channel is open: said once, though a channel received already open
   * may fire its own `open` event as well.
   * @private
   */
  onOpen() {
    if (this.opened || this.closed) return;
    this.opened = true;
    this.dispatchEvent(new Event('open'));
  }

  /** Whether chat messages can be sent now. */
  get isOpen() {
    return this.dc?.readyState === 'open';
  }

  /** @param {string} text */
  send(text) {
    if (!this.dc) throw new Error('the data channel is not open');
    this.dc.send(text);
  }

  /**
   * Handles a signal meant for this connection (same `sid`).
   * @param {SignalPayload} payload
   */
  handleSignal(payload) {
    this.queue = this.queue
      .then(() => this.applySignal(payload))
      .catch((e) => console.warn('peerchat: signal failed', this.peerId, e));
  }

  /**
   * The route in use and its figures, from the selected candidate pair.
   * @returns {Promise<{local: string, remote: string, protocol: string, relayProtocol: string | null,
   *   rttMs: number | null, bytesSent: number, bytesReceived: number} | null>}
   */
  async stats() {
    const report = await this.pc.getStats();
    /** @type {any} */
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
      });
    }
    if (!pair) return null;
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    return {
      local: local?.candidateType ?? 'unknown',
      remote: remote?.candidateType ?? 'unknown',
      protocol: local?.protocol ?? 'udp',
      // How this side reaches its relay (udp, tcp or tls), when it uses one.
      relayProtocol: local?.candidateType === 'relay' ? (local?.relayProtocol ?? null) : null,
      rttMs: typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null,
      bytesSent: pair.bytesSent ?? 0,
      bytesReceived: pair.bytesReceived ?? 0,
    };
  }

  /** Restarts ICE: new credentials and candidates, on the same connection. */
  restartIce() {
    if (!this.closed) this.pc.restartIce();
  }

  /** Closes the connection; fires `closed` once. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.relayTimer);
    this.dc?.close();
    this.pc.close();
    this.dispatchEvent(new Event('closed'));
  }

  /** @private */
  async negotiate() {
    // The other side answers before it ever offers on a connection.
    if (!this.initiator && !this.pc.remoteDescription) return;
    // An offer on its way covers whatever asked for this one.
    if (this.makingOffer || this.pc.signalingState !== 'stable') return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const description = this.pc.localDescription;
      if (description) {
        this.localFingerprint = fingerprintFromSdp(description.sdp);
        this.sendSignal({ sid: this.sid, description: description.toJSON() });
      }
    } catch (e) {
      console.warn('peerchat: could not make an offer', this.peerId, e);
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * @private
   * @param {SignalPayload} payload
   */
  async applySignal({ description, candidate }) {
    if (this.closed) return;
    if (description) {
      const collision =
        description.type === 'offer' && (this.makingOffer || this.pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      // The hello binds one fingerprint: a description with any other, or
      // with lines that break the rule, is not applied (this throws).
      const fingerprint = fingerprintFromSdp(description.sdp ?? '');
      if (this.remoteFingerprint !== null && fingerprint !== this.remoteFingerprint) {
        throw new Error("refused a description: its DTLS fingerprint differs from the connection's");
      }
      // Noted before the description is applied: Chromium can fire the
      // channel's open (and the hello needs this) before the promise of
      // setRemoteDescription resolves.
      const previous = this.remoteFingerprint;
      this.remoteFingerprint = fingerprint;
      try {
        await this.pc.setRemoteDescription(description);
      } catch (e) {
        this.remoteFingerprint = previous;
        throw e;
      }
      for (const c of this.pendingCandidates.splice(0)) await this.addCandidate(c);
      if (description.type === 'offer') {
        await this.pc.setLocalDescription();
        const answer = this.pc.localDescription;
        if (answer) {
          this.localFingerprint = fingerprintFromSdp(answer.sdp);
          this.sendSignal({ sid: this.sid, description: answer.toJSON() });
        }
      }
    } else if (candidate) {
      if (!this.pc.remoteDescription) {
        if (this.pendingCandidates.length < MAX_PENDING_CANDIDATES) this.pendingCandidates.push(candidate);
        return;
      }
      await this.addCandidate(candidate);
    }
  }

  /**
   * @private
   * @param {RTCIceCandidateInit} candidate
   */
  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (e) {
      // Candidates of an offer we ignored on glare are expected to fail.
      if (!this.ignoreOffer) console.warn('peerchat: bad ICE candidate', this.peerId, e);
    }
  }

  /** @private */
  onConnectionState() {
    const state = this.pc.connectionState;
    if (state === 'connected' || state === 'disconnected' || state === 'failed') {
      this.dispatchEvent(new CustomEvent('transport', { detail: state }));
    } else if (state === 'closed') {
      this.close();
    }
  }
}
