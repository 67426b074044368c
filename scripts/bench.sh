#!/usr/bin/env bash
# Runs peerchat's benchmarks in release builds, inside a loopback-only
# network namespace, prints tables and writes JSON under target/bench/:
# data channels (native and Chromium), files between two pages, between
# two terminals and from a terminal to a page (throughput against a bare
# data channel; memory), signaling
# (peerchat against PeerJS server, installed from npm when missing), several
# servers sharing rooms through redis-server, and signaling over each
# transport (WebSocket, long polling; without and with TLS).
# `scripts/bench.sh --quick` runs small sizes (the test suite does this so
# the benchmarks cannot rot). `scripts/bench.sh --peerjs [--quick]` runs only
# the PeerJS workloads: PeerJS server and peerchat's PeerJS endpoint
# (`peerchat serve --peerjs`), with the same client bytes, in one run.
# Further options go to bench/signaling.mjs (and, without --peerjs, to
# bench/webrtc.mjs too).
set -euo pipefail
cd "$(dirname "$0")/.."
peerjs_only=
if [ "${1:-}" = --peerjs ]; then
  peerjs_only=1
  shift
fi
profile=release
if [ "${1:-}" = --quick ] && [ -n "${PEERCHAT_BENCH_DEBUG:-}" ]; then profile=debug; fi
if [ "$profile" = release ]; then
  cargo build --locked --release -p peerchat -p peerchat-bench
else
  cargo build --locked -p peerchat -p peerchat-bench
fi
export PEERCHAT_BIN="$PWD/target/$profile/peerchat"
export PEERCHAT_BENCH_BIN="$PWD/target/$profile/peerchat-bench"
if [ ! -d bench/node_modules/peer ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
  echo "== installing the reference server (PeerJS server, npm peer)"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -n "$peerjs_only" ]; then
  # The summary reads what this run wrote, not an earlier run's figures.
  rm -f target/bench/webrtc.json target/bench/cluster.json
  echo "== the PeerJS protocol: PeerJS server and peerchat --peerjs, the same client bytes"
  scripts/netns.sh node bench/signaling.mjs --server peerjs,peerchat-peerjs "$@"
else
  echo "== data channels: connect time and round trips"
  scripts/netns.sh node bench/webrtc.mjs "$@"
  echo
  echo "== files between two pages: throughput against a bare blast, heap, chat meanwhile"
  files_args=()
  for a in "$@"; do if [ "$a" = --quick ]; then files_args+=(--quick); fi; done
  scripts/netns.sh node bench/files.mjs "${files_args[@]}"
  echo
  echo "== files, terminal to terminal: throughput against a bare data channel, and memory"
  scripts/netns.sh node bench/terminal-files.mjs "$@"
  echo
  echo "== files, terminal to browser: throughput against a bare data channel, heap, chat meanwhile"
  scripts/netns.sh node bench/terminal-browser-files.mjs "${files_args[@]}"
  echo
  echo "== signaling: peerchat and PeerJS server under the same load"
  scripts/netns.sh node bench/signaling.mjs "$@"
  echo
  echo "== several servers sharing Redis: joins, signals within and across servers, cost"
  scripts/netns.sh node bench/cluster.mjs "$@"
  echo
  echo "== signaling transports: WebSocket and long polling, without and with TLS"
  scripts/netns.sh node bench/transports.mjs "$@"
fi
echo
echo "== summary: the figures with targets (target/bench/summary.json)"
node bench/summary.mjs
