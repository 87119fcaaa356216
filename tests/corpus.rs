//! The whole corpus, replayed as `relayguard replay` does: every attack stays
//! closed, every legitimate session is accepted. And the proof that it can
//! fail: with a bug switched on inside the real code, the corpus catches it,
//! and names the transcripts that did.

use std::path::{Path, PathBuf};

use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_corpus::{Replayer, collect};

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    collect(&[root]).expect("corpus is readable")
}

fn name(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Replays the corpus and returns the failing transcripts with the reason.
fn failures(bugs: Bugs) -> Vec<(String, String)> {
    let mut r = Replayer::new(bugs);
    corpus()
        .iter()
        .filter_map(|p| match r.run(p) {
            Ok(o) if o.passed() => None,
            Ok(o) => Some((name(p), o.first_failure().unwrap_or_default())),
            Err(e) => Some((name(p), e.to_string())),
        })
        .collect()
}

#[test]
fn the_whole_corpus_passes() {
    let files = corpus();
    assert!(files.len() >= 60 + 5, "corpus too small: {}", files.len());
    let failed = failures(Bugs::NONE);
    assert!(
        failed.is_empty(),
        "{} transcripts failed:\n{failed:#?}",
        failed.len()
    );
}

fn caught_by(bug: Bug) -> Vec<(String, String)> {
    let failed = failures(Bugs::NONE.with(bug));
    eprintln!("{bug}: {} transcripts caught it:", failed.len());
    for (n, why) in &failed {
        eprintln!("  {n}: {why}");
    }
    failed
}

#[test]
fn the_corpus_catches_lf_ends_data() {
    let failed = caught_by(Bug::LfEndsData);
    assert!(
        failed.iter().any(|(n, _)| n == "smuggling-lf-dot-lf"),
        "{failed:#?}"
    );
}

#[test]
fn the_corpus_catches_trust_routed() {
    let failed = caught_by(Bug::TrustRouted);
    assert!(
        failed.iter().any(|(n, _)| n == "nmap-06-percent-hack-hostname"),
        "{failed:#?}"
    );
}

#[test]
fn the_corpus_catches_lan_check_off() {
    let failed = caught_by(Bug::LanCheckOff);
    assert!(
        failed.iter().any(|(n, _)| n == "forged-local-sender-outside"),
        "{failed:#?}"
    );
}

#[test]
fn the_corpus_catches_keep_buffer_after_starttls() {
    let failed = caught_by(Bug::KeepBufferAfterStarttls);
    for n in [
        "starttls-injection-mail-rcpt",
        "starttls-injection-auth",
        "starttls-injection-rset",
    ] {
        assert!(failed.iter().any(|(f, _)| f == n), "{n}: {failed:#?}");
    }
}
