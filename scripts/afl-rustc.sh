#!/usr/bin/env bash
# rustc wrapper for the AFL++ build of the fuzz targets (scripts/fuzz.sh):
# adds AFL++'s edge coverage (LLVM's SanitizerCoverage with trace-pc-guard,
# the flags cargo-afl uses on stable Rust) to peerchat's own crates and to
# serde_json, whose branches steer the fuzzer through JSON, and links
# AFL++'s runtime into the harness. Other dependencies are built as usual.
set -euo pipefail
rustc=$1
shift
crate=
previous=
for arg in "$@"; do
  [ "$previous" = --crate-name ] && crate=$arg
  previous=$arg
done
case $crate in
  peerchat_* | serde_json)
    flags=(
      -C passes=sancov-module
      -C llvm-args=-sanitizer-coverage-level=3
      -C llvm-args=-sanitizer-coverage-trace-pc-guard
      -C llvm-args=-sanitizer-coverage-prune-blocks=0
      -C llvm-args=-sanitizer-coverage-trace-compares
    )
    [ "$crate" = peerchat_fuzz_afl ] && flags+=(-C "link-arg=${AFL_RUNTIME:?}")
    exec "$rustc" "$@" "${flags[@]}"
    ;;
esac
exec "$rustc" "$@"
