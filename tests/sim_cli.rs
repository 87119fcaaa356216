//! `relayguard sim` as a user runs it.

mod common;
use common::relayguard;

#[test]
fn a_small_campaign_passes_and_reports_json() {
    let (code, out, _) = relayguard(&["sim", "--seeds", "4", "--jobs", "2", "--shard", "1/2", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["seeds"], 2);
    assert!(v["sessions"].as_u64().unwrap() > 10, "{out}");
    assert_eq!(v["failing"].as_array().unwrap().len(), 0);
    assert_eq!(v["commit"], relayguard_sim::COMMIT, "{out}");
}

#[test]
fn a_buggy_seed_fails_names_its_reproduction_and_writes_the_session() {
    let dir = std::env::temp_dir().join(format!("relayguard-sim-cli-{}", std::process::id()));
    let (code, out, _) = relayguard(&[
        "sim",
        "--seed",
        "1",
        "--buggify",
        "lf-ends-data",
        "--regressions",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("reproduce: relayguard sim --seed 1 --buggify lf-ends-data"),
        "{out}"
    );
    assert!(out.contains("trace hash"), "{out}");
    let commit = format!("# at commit {}", relayguard_sim::COMMIT);
    assert!(out.contains(&commit), "{out}");
    let written = dir.join("sim-seed-1-lf-ends-data.smtp");
    let text = std::fs::read_to_string(&written).expect("the offending session is written");
    assert!(text.contains("@expect closed"), "{text}");
    assert!(
        text.contains(&format!("at commit {}", relayguard_sim::COMMIT)),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_bug_is_a_usage_error() {
    let (code, _, _) = relayguard(&["sim", "--seeds", "1", "--buggify", "nope"]);
    assert_eq!(code, 2);
}
