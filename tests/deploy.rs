//! The campaign definitions for other engines (docs/campaigns.md) cannot
//! run here; what can be checked is that they parse, have the shape their
//! engine needs, and call relayguard only with subcommands and flags that
//! exist.

mod common;

use std::path::Path;

use common::relayguard;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}");
    docs.remove(0)
}

/// Every string in a YAML tree.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// The relayguard command lines in some text: each `relayguard sim ...`
/// up to the end of its line or a shell operator.
fn invocations(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("relayguard sim") {
        let rest = &text[i + "relayguard ".len()..];
        let end = rest.find(['\n', '>', ';', '|']).unwrap_or(rest.len());
        out.push(rest[..end].split_whitespace().map(str::to_string).collect());
    }
    out
}

/// Every `--flag` of an invocation is listed in that subcommand's help.
fn check_flags(file: &str, words: &[String]) {
    let sub: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .take_while(|w| !w.starts_with('-'))
        .collect();
    let sub = if sub.len() >= 2 && sub[1] == "merge" {
        &sub[..2]
    } else {
        &sub[..1]
    };
    let (code, help, err) = relayguard(&[sub, &["--help"]].concat());
    assert_eq!(code, 0, "{file}: relayguard {sub:?} --help: {err}");
    for flag in words.iter().filter(|w| w.starts_with("--")) {
        assert!(help.contains(flag.as_str()), "{file}: {sub:?} has no flag {flag}");
    }
}

#[test]
fn the_kubernetes_job_is_an_indexed_job_of_sim_shards() {
    let y = load("deploy/k8s/sim-job.yaml");
    assert_eq!(y["kind"].as_str(), Some("Job"));
    assert_eq!(y["spec"]["completionMode"].as_str(), Some("Indexed"));
    let container = &y["spec"]["template"]["spec"]["containers"][0];
    let mut s = Vec::new();
    strings(container, &mut s);
    let text = s.join("\n");
    assert!(
        text.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""),
        "{text}"
    );
    let calls = invocations(&text);
    assert_eq!(calls.len(), 1, "{text}");
    for c in calls {
        check_flags("sim-job.yaml", &c);
    }
}

#[test]
fn the_actions_workflows_parse_and_call_existing_flags() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let mut seen_merge = false;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let name = format!(".github/workflows/{}", f.file_name().unwrap().to_string_lossy());
        let y = load(&name);
        assert!(
            y["jobs"].as_hash().is_some_and(|j| !j.is_empty()),
            "{name}: no jobs"
        );
        let mut s = Vec::new();
        strings(&y, &mut s);
        for call in invocations(&s.join("\n")) {
            seen_merge |= call.get(1).is_some_and(|w| w == "merge");
            check_flags(&name, &call);
        }
    }
    assert!(seen_merge, "the campaign workflow merges its shards");
    let batch = load(".github/workflows/cflite_batch.yml");
    let mut s = Vec::new();
    strings(&batch, &mut s);
    assert!(s.iter().any(|x| x == "batch"), "batch mode");
    let cron = load(".github/workflows/cflite_cron.yml");
    let mut s = Vec::new();
    strings(&cron, &mut s);
    assert!(s.iter().any(|x| x == "prune") && s.iter().any(|x| x == "coverage"));
}

#[test]
fn the_dockerfile_builds_the_binary_from_files_that_exist() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(text.contains("cargo build --release --locked --bin relayguard"));
    for line in text.lines().filter(|l| l.starts_with("COPY --from=build /src/")) {
        let path = line
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_start_matches("/src/");
        if !path.starts_with("target/") {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists(),
                "{line}"
            );
        }
    }
    for c in invocations(&text) {
        check_flags("Dockerfile", &c);
    }
}
