#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++: builds the fuzz targets of
# crates/fuzz with AFL++'s instrumentation (scripts/afl-rustc.sh, in its own
# target directory, target/afl) and runs each target under afl-fuzz for a
# bounded time, starting from its corpus (crates/fuzz/corpus/TARGET) with
# the protocol's dictionary (crates/fuzz/dict). Fails if any target crashes
# or hangs, printing how to reproduce each finding.
#
# usage: scripts/fuzz.sh [-s SECONDS] [-j JOBS] [TARGET...]
#   -s  seconds of fuzzing per target (default $PEERCHAT_FUZZ_SECONDS or 20)
#   -j  targets fuzzed at once (default $PEERCHAT_FUZZ_JOBS or 2)
#   TARGET  the targets to fuzz (default: every directory of crates/fuzz/corpus)
# What AFL++ found (new inputs, crashes, hangs) is left in
# target/afl/findings/TARGET/default/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${PEERCHAT_FUZZ_SECONDS:-20}
jobs=${PEERCHAT_FUZZ_JOBS:-2}
while getopts s:j: opt; do
  case $opt in
    s) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '9,13s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for dir in crates/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v afl-fuzz >/dev/null || [ ! -f /usr/lib/afl/afl-compiler-rt.o ]; then
  echo "==> installing afl++"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

export CARGO_TARGET_DIR="$PWD/target/afl" CARGO_INCREMENTAL=0
export RUSTC_WRAPPER="$PWD/scripts/afl-rustc.sh" AFL_RUNTIME=/usr/lib/afl/afl-compiler-rt.o
# Without `cfg(fuzzing)`, which some dependencies read to skip checks (as
# `cargo afl` does with AFL_NO_CFG_FUZZING): the targets test the code that
# runs.
export RUSTFLAGS="--cfg no_fuzzing"
cargo build --locked --profile fuzz -p peerchat-fuzz --features afl --bin peerchat-fuzz-afl
harness="$CARGO_TARGET_DIR/fuzz/peerchat-fuzz-afl"

# Checks of a developer's desktop that do not apply here (no CPU frequency
# governor in a container or VM, core dumps possibly piped elsewhere, other
# work on the same cores), and no screen to draw.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFL_NO_UI=1 AFL_FAST_CAL=1

findings="$CARGO_TARGET_DIR/findings"
mkdir -p "$findings"

fuzz() {
  local target=$1 out="$findings/$1"
  local dicts=(-x crates/fuzz/dict/protocol.dict)
  [ -f "crates/fuzz/dict/$target.dict" ] && dicts+=(-x "crates/fuzz/dict/$target.dict")
  rm -rf "$out"
  # -t: a run over 2 s is a hang (one input takes well under 10 ms).
  afl-fuzz -i "crates/fuzz/corpus/$target" -o "$out" "${dicts[@]}" -V "$seconds" -t 2000 \
    -- "$harness" "$target" >"$out.log" 2>&1
}

failed=0
report() {
  local target=$1 status=$2 out="$findings/$1/default"
  if [ "$status" != 0 ] || [ ! -f "$out/fuzzer_stats" ]; then
    echo "FAIL $target: afl-fuzz exited with $status"
    tail -n 20 "$findings/$target.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'
    failed=1
    return
  fi
  field() { sed -n "s/^$1 *: //p" "$out/fuzzer_stats"; }
  printf '%-17s %9s runs  %5s/s  %5s inputs  %5s edges  %s crashes  %s hangs\n' "$target" \
    "$(field execs_done)" "$(field execs_per_sec | cut -d. -f1)" "$(field corpus_count)" \
    "$(field edges_found)" "$(field saved_crashes)" "$(field saved_hangs)"
  local found
  found=$(find "$out/crashes" "$out/hangs" -type f ! -name README.txt 2>/dev/null | sort)
  [ -n "$found" ] || return 0
  failed=1
  while IFS= read -r file; do
    echo "FAIL $target: $file"
    echo "  reproduce: $harness $target < '$file'"
    (ulimit -c 0; RUST_BACKTRACE=0 timeout 10 "$harness" "$target" <"$file"; true) 2>&1 |
      head -n 6 | sed 's/^/  /'
  done <<<"$found"
  echo "  fix the cause, then add the input to crates/fuzz/corpus/$target/ (cargo test replays it)"
}

echo "==> fuzzing ${#targets[@]} targets with AFL++, ${seconds}s each, $jobs at once"
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  pids=()
  for target in "${batch[@]}"; do
    [ -d "crates/fuzz/corpus/$target" ] || { echo "no corpus for $target" >&2; exit 2; }
    fuzz "$target" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    status=0
    wait "${pids[$j]}" || status=$?
    report "${batch[$j]}" "$status"
  done
done
if [ "$failed" != 0 ]; then
  echo "fuzzing found problems (above)"
  exit 1
fi
echo "fuzzing found no crash and no hang"
