//! `relayguard sim` as a user runs it.

mod common;
use common::relayguard;
use relayguard_core::check::buggify::{Bug, Bugs};

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
    // The first seed the bug fails, found through the library, so that a
    // new actor moving the worlds does not turn this test into a pass.
    let bugs = Bugs::NONE.with(Bug::LfEndsData);
    let seed = (0..60)
        .find(|&s| !relayguard_sim::run(s, bugs, false).passed())
        .expect("lf-ends-data fails some seed in 0..60");
    let dir = std::env::temp_dir().join(format!("relayguard-sim-cli-{}", std::process::id()));
    let (code, out, _) = relayguard(&[
        "sim",
        "--seed",
        &seed.to_string(),
        "--buggify",
        "lf-ends-data",
        "--regressions",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "reproduce: relayguard sim --seed {seed} --buggify lf-ends-data"
        )),
        "{out}"
    );
    assert!(out.contains("trace hash"), "{out}");
    let commit = format!("# at commit {}", relayguard_sim::COMMIT);
    assert!(out.contains(&commit), "{out}");
    let written = dir.join(format!("sim-seed-{seed}-lf-ends-data.smtp"));
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

/// Four shards run as separate processes, then `sim merge`, give the JSON,
/// the table and the exit code of one run over the same seeds, with a bug
/// switched on so that failing seeds have to be joined too.
#[test]
fn four_shards_merged_are_one_run() {
    let dir = std::env::temp_dir().join(format!("relayguard-sim-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let regressions = dir.join("regressions");
    let common = [
        "--seeds",
        "8",
        "--buggify",
        "lan-check-off",
        "--regressions",
        regressions.to_str().unwrap(),
    ];
    let (one_code, one, _) = relayguard(&[&["sim", "--json"][..], &common].concat());
    let (one_table_code, one_table, _) = relayguard(&[&["sim"][..], &common].concat());
    let mut files = Vec::new();
    for i in 0..4 {
        let shard = format!("{i}/4");
        let (_, out, _) = relayguard(&[&["sim", "--json", "--shard", &shard][..], &common].concat());
        let f = dir.join(format!("shard-{i}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f.to_str().unwrap().to_string());
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, merged, err) = relayguard(&[&["sim", "merge", "--json"][..], &files].concat());
    assert_eq!(merged, one, "{err}");
    assert_eq!(code, one_code);
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["seeds"], 8);
    assert!(
        !v["failing"].as_array().unwrap().is_empty(),
        "the bug should fail some of 8 seeds: {merged}"
    );
    // The table: the same lines as the single run's, but for the wall-clock line.
    let (table_code, table, _) = relayguard(&[&["sim", "merge"][..], &files].concat());
    let without_wall = |t: &str| {
        t.lines()
            .filter(|l| !l.contains(" s wall"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_wall(&table), without_wall(&one_table));
    assert_eq!(table_code, one_table_code);
    // A shard given twice is refused, not counted twice.
    let (code, _, err) = relayguard(&["sim", "merge", files[0], files[0]]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--check-determinism` passes on the shipped code and catches a run that
/// lets process state into its trace (the injected `process-state-leak`).
#[test]
fn check_determinism_passes_and_catches_a_leak() {
    let (code, out, err) = relayguard(&["sim", "--seeds", "3", "--jobs", "2", "--check-determinism"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("NONDETERMINISTIC"), "{out}");
    let (code, out, _) = relayguard(&[
        "sim",
        "--seeds",
        "3",
        "--jobs",
        "2",
        "--check-determinism",
        "--buggify",
        "process-state-leak",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NONDETERMINISTIC seed 0: trace line"), "{out}");
    assert!(out.contains("runs in this process so far"), "{out}");
}
