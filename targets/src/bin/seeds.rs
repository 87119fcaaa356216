//! Converts every transcript in `corpus/` into seed inputs of the matching
//! fuzz targets, under `corpus/fuzz/<target>/`.
//!
//! `cargo run -p relayguard-fuzz-targets --bin seeds [CORPUS_DIR]`
//!
//! Seeds are named by a hash of their content (FNV-1a, 64 bits), so running
//! it again adds nothing new; the set is capped per target to stay small.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use relayguard_core::check::transcript::{self, Step};
use relayguard_fuzz_targets::SessionInput;
use relayguard_fuzz_targets::input::peer_index;

const CAP: usize = 40;

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(relayguard_corpus::dir);
    let files = match relayguard_corpus::collect(std::slice::from_ref(&root)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seeds: {e}");
            std::process::exit(2);
        }
    };
    let mut seeds: Vec<(&str, BTreeSet<Vec<u8>>)> = relayguard_fuzz_targets::TARGETS
        .iter()
        .map(|t| (*t, BTreeSet::new()))
        .collect();
    let mut add = |target: &str, data: Vec<u8>| {
        let set = &mut seeds.iter_mut().find(|(t, _)| *t == target).unwrap().1;
        if set.len() < CAP && data.len() <= 4096 {
            set.insert(data);
        }
    };
    for f in &files {
        let text = fs::read_to_string(f).unwrap_or_default();
        let Ok(t) = transcript::parse(&text) else {
            eprintln!("skipping {}: does not parse", f.display());
            continue;
        };
        add("transcript", text.clone().into_bytes());
        if let Some(cfg) = &t.config {
            let p = f.parent().unwrap().join(cfg);
            if let Ok(c) = fs::read(&p) {
                add("config", c);
            }
        }
        let mut client = Vec::new();
        let mut replies = Vec::new();
        for s in &t.steps {
            match s {
                Step::Send { bytes, .. } => {
                    client.extend_from_slice(bytes);
                    for line in bytes.split(|&b| b == b'\n') {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if line.len() > 4 {
                            add("command", line.to_vec());
                            if let Some(i) = line.iter().position(|&b| b == b'<') {
                                let path = &line[i..];
                                let end = path.iter().position(|&b| b == b'>').map_or(path.len(), |e| e + 1);
                                let mut a = vec![(fnv(path) & 0xff) as u8];
                                a.extend_from_slice(&path[1..end.saturating_sub(1).max(1)]);
                                add("address", a);
                            }
                        }
                    }
                }
                // The session seed is the client's bytes; the handshake is the
                // driver's (the target does one after each 220 to STARTTLS).
                Step::Tls { .. } => {}
                Step::Reply { expected, .. } => {
                    replies.extend_from_slice(expected.as_bytes());
                    replies.extend_from_slice(b"\r\n");
                }
            }
        }
        let peer = t.peer.and_then(peer_index).unwrap_or(0);
        let auth = match t.auth.as_deref() {
            Some("carol") => 1,
            Some("dave") => 2,
            Some(_) => 4,
            None => 0,
        };
        // One chunk, and the same bytes cut in small pieces.
        for split in [0u8, 7] {
            let mut s = SessionInput::header(peer, auth, split);
            s.extend_from_slice(&client);
            add("session", s);
        }
        // The client target: a default job, then the recorded replies.
        let mut c = vec![0u8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9];
        c.extend_from_slice(&replies);
        add("client", c);
        // Structured targets: the transcript's bytes as the generator's
        // input (not an inverse of it, but a start that differs per file).
        add("session_script", client.clone());
        add("policy", client);
    }
    let out = root.join("fuzz");
    let mut total = 0;
    for (target, set) in &seeds {
        let dir = out.join(target);
        fs::create_dir_all(&dir).unwrap();
        for s in set {
            let p = dir.join(format!("seed-{:016x}", fnv(s)));
            if !p.exists() {
                fs::write(&p, s).unwrap();
            }
        }
        total += set.len();
        println!("{target}: {} seeds", set.len());
    }
    println!(
        "{total} seeds from {} transcripts into {}",
        files.len(),
        out.display()
    );
}
