// Runs PeerJS server 1.0.2 (npm `peer`, the reference implementation of the
// PeerJS server protocol) on a free loopback port, path /peerjs, and prints
// `listening on PORT`. Its command line cannot pick a free port itself.
//
// usage: node lib/peer-reference.mjs KEY EXPIRE_MS ALIVE_MS CONCURRENT_LIMIT [--discovery]
import { PeerServer } from 'peer';

const [key, expire, alive, limit] = process.argv.slice(2);
const server = PeerServer(
  {
    host: '127.0.0.1',
    port: 0,
    path: '/peerjs',
    key,
    expire_timeout: Number(expire),
    alive_timeout: Number(alive),
    concurrent_limit: Number(limit),
    allow_discovery: process.argv.includes('--discovery'),
  },
  (server) => {
    const address = /** @type {import('node:net').AddressInfo} */ (server.address());
    console.log(`listening on ${address.port}`);
  },
);
// A message that is not JSON makes it emit `error`; with nobody listening,
// that would end the process. Its command line logs such errors and goes
// on (`uncaughtException`); so does this.
server.on('error', (error) => console.error(`peer 1.0.2: ${error}`));
