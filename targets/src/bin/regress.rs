//! Writes a fuzz finding of `session` or `session_script` as a corpus
//! transcript with its configuration:
//!
//! `cargo run -p relayguard-fuzz-targets --bin regress -- TARGET INPUT OUT_STEM`
//!
//! writes `OUT_STEM.smtp` and `OUT_STEM.toml` (the transcript's `@config`),
//! then says whether the target still fails on the input. A finding the
//! wire oracle judges is shrunk first (`relayguard shrink`'s delta
//! debugging), with the bugs of `RELAYGUARD_BUGGIFY`.

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use relayguard_core::Policy;
use relayguard_core::check::shrink;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, input, stem] = args.as_slice() else {
        eprintln!("usage: regress TARGET INPUT OUT_STEM");
        return ExitCode::from(2);
    };
    let data = fs::read(input).expect("read input");
    let Some(case) = relayguard_fuzz_targets::finding::case(target, &data) else {
        eprintln!(
            "{target}: not a session-shaped target or input does not decode; keep the raw input instead"
        );
        return ExitCode::from(1);
    };
    let stem = Path::new(stem);
    let name = stem.file_name().unwrap().to_string_lossy().to_string();
    let toml = format!("{name}.toml");
    fs::write(stem.with_extension("toml"), case.config.to_toml()).expect("write config");
    let mut t = case.transcript(target, &toml);
    // An oracle violation (not a crash) is cut down to the client lines
    // that still show it, with the bugs the fuzzer ran with.
    let bugs = relayguard_fuzz_targets::bugs();
    if let Ok(policy) = Policy::with_bugs(case.config.config(), bugs) {
        if let Some(s) = shrink(&t, Arc::new(policy)) {
            println!(
                "shrunk: {} client lines to {}, still {}",
                s.lines_before, s.lines_after, s.kind
            );
            t = s.transcript;
        }
    }
    fs::write(stem.with_extension("smtp"), t.to_text()).expect("write transcript");
    println!("wrote {}.smtp and {toml}", stem.display());
    ExitCode::SUCCESS
}
