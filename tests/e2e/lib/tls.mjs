// Test certificates, made fresh by each test with Debian's openssl (no key
// is ever committed), and what Chromium needs to trust them.
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import tls from 'node:tls';

const run = promisify(execFile);

/** A fresh directory for a test's certificates. */
export function certDir() {
  return mkdtemp(path.join(tmpdir(), 'peerchat-tls-'));
}

/**
 * A self-signed certificate (EC P-256) for these IP addresses and names,
 * written as `NAME.crt` and `NAME.key` in `dir`.
 * @param {string} dir
 * @param {string} name
 * @param {{ips?: string[], names?: string[]}} [subject]
 */
export async function makeCert(dir, name, { ips = ['127.0.0.1'], names = ['localhost'] } = {}) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const san = [...ips.map((ip) => `IP:${ip}`), ...names.map((n) => `DNS:${n}`)].join(',');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=peerchat test ${name}`,
    '-addext', `subjectAltName=${san}`,
    // A server's certificate, not an authority's (rustls refuses a CA
    // certificate as a server's own).
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'extendedKeyUsage=serverAuth',
  ]);
  const pem = await readFile(cert, 'utf8');
  const x509 = new X509Certificate(pem);
  // What --ignore-certificate-errors-spki-list takes: the base64 SHA-256 of
  // the certificate's SubjectPublicKeyInfo.
  const spkiDer = x509.publicKey.export({ type: 'spki', format: 'der' });
  const spki = createHash('sha256').update(spkiDer).digest('base64');
  return { cert, key, pem, spki, fingerprint: x509.fingerprint256 };
}

/**
 * Chromium flags that make it trust exactly these certificates (by their
 * public keys), for https, wss and TURN over TLS.
 * @param {{spki: string}[]} certs
 */
export function trustArgs(certs) {
  return [`--ignore-certificate-errors-spki-list=${certs.map((c) => c.spki).join(',')}`];
}

/**
 * The SHA-256 fingerprint of the certificate a TLS server shows now.
 * @param {string} host
 * @param {number} port
 */
export function servedFingerprint(host, port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, servername: undefined }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      resolve(cert?.fingerprint256);
    });
    socket.once('error', reject);
  });
}
