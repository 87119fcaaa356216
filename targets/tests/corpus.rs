//! Every input the fuzzers kept, and every regression, checked on every
//! `cargo test`: the targets' bodies run without libFuzzer.

use std::fs;
use std::panic;
use std::path::PathBuf;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use relayguard_core::Config;
use relayguard_core::Policy;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::replay::{self, Mode};
use relayguard_fuzz_targets::input::{
    Addr, BodyPiece, DomainKind, DomainSpec, LocalSpec, ScriptStep, Smuggle, Trailing,
};
use relayguard_fuzz_targets::{FuzzConfig, Script, TARGETS};

fn corpus() -> PathBuf {
    relayguard_corpus::dir()
}

#[test]
fn every_target_passes_its_fuzz_corpus() {
    let mut total = 0;
    let mut failures = Vec::new();
    for t in TARGETS {
        let dir = corpus().join("fuzz").join(t);
        let inputs = relayguard_corpus::inputs(&dir).unwrap();
        assert!(!inputs.is_empty(), "no seeds in {}", dir.display());
        for f in inputs {
            let data = fs::read(&f).unwrap();
            total += 1;
            if panic::catch_unwind(|| relayguard_fuzz_targets::run(t, &data)).is_err() {
                failures.push(f.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} fuzz inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The transcripts the fuzzers wrote (`@source fuzz/...`) replay clean.
#[test]
fn fuzz_regressions_replay_without_violation() {
    for f in relayguard_corpus::collect(&[corpus().join("regressions")]).unwrap() {
        let t = relayguard_corpus::load_transcript(&f).unwrap();
        if !t.source.as_deref().is_some_and(|s| s.starts_with("fuzz/")) {
            continue;
        }
        let cfg = f.parent().unwrap().join(t.config.as_ref().unwrap());
        let config = relayguard_corpus::load_config(&cfg).unwrap();
        let out = replay::replay(&t, Arc::new(Policy::new(config).unwrap()), Mode::Strict);
        assert!(out.passed(), "{}: {:?}", f.display(), out.first_failure());
    }
}

#[test]
fn generated_configs_are_their_toml() {
    let mut bytes = vec![0u8; 64];
    let mut valid = 0;
    for seed in 0..=255u8 {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed
                .wrapping_mul(31)
                .wrapping_add(i as u8)
                .rotate_left(i as u32 % 8);
        }
        let fc = FuzzConfig::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        // Validation refuses some (insecure without acknowledgement): those
        // the policy refuses too, and the targets skip them.
        match Config::from_toml(&fc.to_toml()) {
            Ok(parsed) => {
                assert_eq!(parsed, fc.config(), "{}", fc.to_toml());
                valid += 1;
            }
            Err(e) => assert!(
                fc.build(Bugs::NONE).is_none(),
                "TOML refused but policy built: {e}\n{}",
                fc.to_toml()
            ),
        }
    }
    assert!(
        valid > 64,
        "only {valid} of 256 generated configurations are valid"
    );
}

/// A script from the grammar that smuggles a second message with `\n.\n`:
/// clean without bugs, a violation with `lf-ends-data`. This is what makes
/// the targets' checks able to fail.
fn smuggling_script() -> Script {
    let local = DomainSpec {
        kind: DomainKind::Local(0),
        spelling: 0,
        salt: 0,
    };
    let foreign = DomainSpec {
        kind: DomainKind::Foreign(0),
        spelling: 0,
        salt: 0,
    };
    let addr = |local_part, domain| Addr {
        route: None,
        local: LocalSpec::User(local_part),
        domain: Some(domain),
        trailing: Trailing::None,
    };
    Script {
        config: FuzzConfig::default(),
        peer: 0,
        auth: 0,
        split: 0,
        steps: vec![
            ScriptStep::Ehlo(relayguard_fuzz_targets::input::HeloName::Foreign),
            ScriptStep::Mail(addr(4, foreign), 0),
            ScriptStep::Rcpt(addr(0, local)),
            ScriptStep::Data(
                vec![
                    BodyPiece::Line(0, false),
                    BodyPiece::Inject(Smuggle::LfDotLf, addr(0, local), addr(4, foreign)),
                ],
                true,
            ),
            ScriptStep::Quit,
        ],
    }
}

fn script_bytes_run(script: &Script, bugs: Bugs) -> bool {
    // Run through the same path as the target, from the script value.
    let policy = script.config.build(bugs).unwrap();
    let chunks = script.chunks(&script.render(policy.config()));
    let mut d = relayguard_core::check::drive::Driver::new(policy, script.peer());
    for c in &chunks {
        d.feed(c);
    }
    d.finish().1.violations.is_empty()
}

#[test]
fn the_checks_bite_on_lf_ends_data() {
    let s = smuggling_script();
    assert!(script_bytes_run(&s, Bugs::NONE), "clean core flagged");
    assert!(
        !script_bytes_run(&s, Bugs::NONE.with(Bug::LfEndsData)),
        "lf-ends-data not caught"
    );
}

/// The script grammar reaches BDAT: a chunk with a bare LF is clean on the
/// shipped core and a violation with `bdat-bare-lf-passes`.
#[test]
fn the_checks_bite_on_bdat_bare_lf_passes() {
    let mut s = smuggling_script();
    let ScriptStep::Data(pieces, _) = s.steps[3].clone() else {
        panic!("the smuggling script has DATA fourth")
    };
    s.steps[3] = ScriptStep::Bdat(pieces, 0, true);
    let rendered = s.render(&s.config.config());
    assert!(
        rendered[3].starts_with(b"BDAT "),
        "{:?}",
        String::from_utf8_lossy(&rendered[3])
    );
    assert!(script_bytes_run(&s, Bugs::NONE), "clean core flagged");
    assert!(
        !script_bytes_run(&s, Bugs::NONE.with(Bug::BdatBareLfPasses)),
        "bdat-bare-lf-passes not caught"
    );
}

#[test]
fn the_session_target_panics_on_a_violation() {
    // Raw bytes with the same smuggling, through the `session` target body.
    let mut data = relayguard_fuzz_targets::SessionInput::header(0, 0, 0);
    data.extend_from_slice(b"EHLO x.example\r\n");
    let mut d = data.clone();
    d.extend_from_slice(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    // Fed as one chunk the body arrives before the 354; the session refuses
    // that, so feed the body in a second session input chunking (split 7).
    let ok =
        panic::catch_unwind(|| relayguard_fuzz_targets::session_with(&d, Bugs::NONE.with(Bug::LfEndsData)));
    assert!(ok.is_ok());
    let s = smuggling_script();
    let bytes: Vec<u8> = s.render(&s.config.config()).concat();
    let mut data = relayguard_fuzz_targets::SessionInput::header(0, 0, 0);
    let n = data.len();
    data[n - 1] = 0;
    data.extend_from_slice(&bytes);
    let clean = panic::catch_unwind(|| relayguard_fuzz_targets::session_with(&data, Bugs::NONE));
    assert!(
        clean.is_ok(),
        "clean core flagged on {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

/// Inputs of bugs found and not fixed yet: each must still fail its target.
/// When one passes, the bug is fixed: move the input to `corpus/fuzz/<target>/`.
#[test]
fn known_bugs_still_fail() {
    for t in TARGETS {
        let dir = corpus().join("fuzz-known").join(t);
        if !dir.exists() {
            continue;
        }
        for f in relayguard_corpus::inputs(&dir).unwrap() {
            let data = fs::read(&f).unwrap();
            let failed = panic::catch_unwind(|| relayguard_fuzz_targets::run(t, &data)).is_err();
            assert!(failed, "{} passes now: move it to corpus/fuzz/{t}/", f.display());
        }
    }
}

/// The `session` target offers STARTTLS when the input's configuration has
/// `[tls]` and does each handshake a `220` asks for: commands pipelined
/// after STARTTLS pass on a clean core and are a finding with
/// `keep-buffer-after-starttls`, which runs them after the handshake.
#[test]
fn the_session_target_bites_on_keep_buffer_after_starttls() {
    let mut data = relayguard_fuzz_targets::SessionInput::header(0, 0, 0);
    let n = data.len();
    // The last byte of the configuration: `tls`.
    data[n - 4] = 1;
    let config = relayguard_fuzz_targets::SessionInput::decode(&data)
        .unwrap()
        .config;
    assert!(config.tls && config.config().tls.cert.is_some());
    data.extend_from_slice(b"EHLO x.example\r\nSTARTTLS\r\nEHLO y.example\r\nMAIL FROM:<a@example.org>\r\n");
    let clean = panic::catch_unwind(|| relayguard_fuzz_targets::session_with(&data, Bugs::NONE));
    assert!(clean.is_ok(), "clean core flagged");
    let bug = Bugs::NONE.with(Bug::KeepBufferAfterStarttls);
    let caught = panic::catch_unwind(|| relayguard_fuzz_targets::session_with(&data, bug));
    assert!(caught.is_err(), "keep-buffer-after-starttls not caught");
}
