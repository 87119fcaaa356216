//! Embeds `corpus/attacks` into the simulation at build time.
//!
//! The corpus spammers replay these files, and the swarm picks among them by
//! index: the set of files is part of every seed's world. Read at run time,
//! a binary run away from the checkout found no files, lost its spammers
//! without a word, and gave other hashes for the same seeds. Embedded, the
//! binary carries the corpus it was built with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
