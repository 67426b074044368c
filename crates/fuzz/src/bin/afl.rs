//! The coverage-guided harness: `peerchat-fuzz-afl TARGET` runs one fuzz
//! target (`peerchat_fuzz::TARGETS`) under AFL++, which feeds it inputs in
//! a persistent loop. Built with AFL++'s instrumentation and runtime by
//! `scripts/fuzz.sh`; outside AFL++ it runs the target once on standard
//! input, which is how a crash is reproduced.
#![forbid(unsafe_code)]

use peerchat_fuzz::TARGETS;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<_> = TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: peerchat-fuzz-afl TARGET  (one of {})",
            names.join(", ")
        );
        std::process::exit(2);
    };
    afl::fuzz(true, target);
}
