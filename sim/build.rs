//! Embeds `corpus/attacks` into the simulation at build time, and records
//! the commit it was built from.
//!
//! The corpus spammers replay these files, and the swarm picks among them by
//! index: the set of files is part of every seed's world. Read at run time,
//! a binary run away from the checkout found no files, lost its spammers
//! without a word, and gave other hashes for the same seeds. Embedded, the
//! binary carries the corpus it was built with.
//!
//! The commit goes beside a failing seed's reproduction line: a seed
//! reproduces exactly only on the code that failed it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    // A directory: cargo rebuilds when any file in it is added, removed or
    // changed.
    println!("cargo:rerun-if-changed=../corpus/attacks");
    let table = attacks_table(&manifest.join("../corpus/attacks"));
    fs::write(out.join("attacks.rs"), table).expect("OUT_DIR is writable");
    // A build without the git directory (a container image) is told its
    // commit by RELAYGUARD_COMMIT.
    println!("cargo:rerun-if-env-changed=RELAYGUARD_COMMIT");
    let commit = env::var("RELAYGUARD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&manifest, &["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RELAYGUARD_SIM_COMMIT={commit}");
    for path in head_files(&manifest) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The files whose change means another commit: HEAD (a checkout of
/// another branch), the branch it points to (a commit), packed-refs (a
/// branch packed away). Asked of git rather than read under `../.git`,
/// which in a worktree is a file naming the real git directory, and where
/// HEAD itself does not change on a commit. Only files that exist: cargo
/// reruns the script on every build for one that does not.
fn head_files(manifest: &Path) -> Vec<PathBuf> {
    let mut names = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    names
        .iter()
        .filter_map(|n| git(manifest, &["rev-parse", "--git-path", n]))
        .map(|p| manifest.join(p))
        .filter(|p| p.is_file())
        .collect()
}

/// Git's answer, trimmed, or `None` when git or the repository is missing
/// (a build from a source archive).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// The `*.smtp` files of `dir` as a Rust expression of type
/// `&[(&str, &[u8])]`: (file name, contents), sorted by file name, the order
/// the swarm's draws index into.
fn attacks_table(dir: &Path) -> String {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("corpus/attacks: {e}"));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("corpus/attacks: {e}")).path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "smtp"))
        .collect();
    files.sort();
    let mut table = String::from("&[\n");
    for p in &files {
        let name = p.file_name().and_then(|n| n.to_str());
        let name = name.unwrap_or_else(|| panic!("corpus/attacks: a file name is not UTF-8: {p:?}"));
        let path = p
            .to_str()
            .unwrap_or_else(|| panic!("corpus/attacks: the path is not UTF-8: {p:?}"));
        writeln!(table, "    ({name:?}, include_bytes!({path:?})),").expect("writing to a String");
    }
    table.push_str("]\n");
    table
}
