// What the message-log scenario runners (history.test.mjs,
// private.test.mjs) share: the scenarios' identity keys and the checks the
// logs ask for, done as the page does them.
import {
  base64urlDecode,
  identityFromPkcs8,
  publicKeyFromWire,
  publicKeyToWire,
  verifySignature,
} from '../../../web/js/e2e.js';

/** PKCS#8 (version 1) of an Ed25519 key: this prefix, then the 32-byte seed. */
const PKCS8_PREFIX = '302e020100300506032b657004220420';

/** @param {string} hex */
const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));

/**
 * A scenario's identity keys (from their seeds, hex) by peer id, and each
 * one's public key as the wire writes it.
 * @param {{keys: Record<string, string>}} scenario
 */
export async function scenarioKeys(scenario) {
  /** @type {Map<string, import('../../../web/js/e2e.js').Identity>} */
  const keys = new Map();
  for (const [id, seed] of Object.entries(scenario.keys)) {
    keys.set(id, await identityFromPkcs8('ed25519', fromHex(PKCS8_PREFIX + seed)));
  }
  const wire = (/** @type {string} */ id) => publicKeyToWire(/** @type {any} */ (keys.get(id)).publicKey);
  return { keys, wire };
}

/** @param {import('../../../web/js/history.js').Effect} e */
export function effect(e) {
  if ('added' in e) return { added: [e.added.author, e.added.seq] };
  return e;
}

/**
 * The effects, with every check asked for done at once and its answer
 * (from `verified`, the log's) in place of the request (as the page does,
 * asynchronously).
 * @param {import('../../../web/js/history.js').Effect[]} effects
 * @param {(id: number, results: boolean[]) => import('../../../web/js/history.js').Effect[]} verified
 * @returns {Promise<unknown[]>}
 */
export async function checked(effects, verified) {
  const out = [];
  for (const e of effects) {
    if ('verify' in e) {
      const results = await Promise.all(
        e.verify.items.map(async (item) => {
          const sig = base64urlDecode(item.sig);
          return sig !== null && verifySignature(publicKeyFromWire(item), item.bytes, sig);
        }),
      );
      out.push(...(await checked(verified(e.verify.id, results), verified)));
    } else {
      out.push(effect(e));
    }
  }
  return out;
}
