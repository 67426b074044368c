#!/usr/bin/env bash
# Soak of the end-to-end protection against a malicious signaling server:
# runs each attack of tests/e2e/tamper.test.mjs (flipped bits, redirected
# and re-attributed signals, forged offers with the attacker's DTLS
# fingerprint, replays within a session and from an earlier one) RUNS times
# (100 by default), each in a new room of two browsers and a terminal
# client, the attacked sender alternating between a browser and the
# terminal. Any signal accepted, any chat over a tampered connection, any
# receiver that does not tell its user, fails the run.
#
#   scripts/soak-e2e.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --locked --quiet --bin peerchat
export PEERCHAT_BIN="$PWD/target/debug/peerchat"
export PEERCHAT_TAMPER_RUNS="$runs"
XDG_DATA_HOME="$(mktemp -d)"
export XDG_DATA_HOME
trap 'rm -rf "$XDG_DATA_HOME"' EXIT
start=$(date +%s)
scripts/netns.sh node --test --test-reporter=spec tests/e2e/tamper.test.mjs
echo "soak: $runs runs of each attack passed in $(( $(date +%s) - start )) s"
