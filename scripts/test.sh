#!/usr/bin/env bash
# Runs every peerchat test: Rust unit and integration tests, the web
# client's protocol tests against the shared vectors, and the browser
# end-to-end tests in headless Chromium. Everything that opens sockets runs
# inside a network namespace that has only loopback. Installs what it
# needs (Debian chromium and an emoji font, redis-server, iproute2, Node.js
# packages, afl++) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v tmux >/dev/null || missing+=(tmux)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v unshare >/dev/null || missing+=(util-linux)
# Emoji in the screenshots the tests save, drawn as people's systems draw them.
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
# The UDP-blocked namespace of the TURN over TCP/TLS tests.
command -v nft >/dev/null || missing+=(nftables)
# Coverage-guided fuzzing (scripts/fuzz.sh).
command -v afl-fuzz >/dev/null || missing+=(afl++)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d tests/e2e/node_modules/playwright-core ] ||
   [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  log "installing Node.js test packages"
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! python3 -c 'import aiortc, websockets, cryptography' 2>/dev/null; then
  log "installing Python test packages"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
fi

log "Rust tests (loopback-only network namespace)"
cargo build --locked --bin peerchat
cargo test --workspace --locked --no-run
scripts/netns.sh cargo test --workspace --locked --offline

log "coverage-guided fuzzing (AFL++): every fuzz target for a bounded time"
scripts/fuzz.sh

log "type-check the web client (JSDoc, // @ts-check)"
(cd tests/e2e && node node_modules/typescript/bin/tsc -p tsconfig.web.json && node node_modules/typescript/bin/tsc -p tsconfig.sw.json)

log "web client and browser tests (loopback-only network namespace)"
export PEERCHAT_BIN="$PWD/target/debug/peerchat"
# Terminal clients started by the tests keep their history here, not in $HOME.
XDG_DATA_HOME="$(mktemp -d)"
export XDG_DATA_HOME
scripts/netns.sh node --test tests/e2e/

log "benchmarks, quick mode (so they cannot rot)"
PEERCHAT_BENCH_DEBUG=1 scripts/bench.sh --quick
