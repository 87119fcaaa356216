//! What the spammers send: relay attacks generated from the seed, and the
//! recorded ones of `corpus/attacks`.
//!
//! The generated attacks combine the address forms that open relays have
//! been fooled by (percent hack, bang paths, source routes, quoted locals,
//! case and trailing-dot variants, address literals, the backup domain) with
//! senders that pretend to be local, and sometimes smuggle a second message
//! behind a bare-LF or bare-CR end of data. Each carries an X-Sim-Id, so that
//! if it ever arrives the delivery checker knows who sent it.

use std::path::PathBuf;
use std::sync::OnceLock;

use relayguard_core::config::Config;
use relayguard_core::transcript::{self, Step};

use super::Task;
use crate::options::{BACKUP, FOREIGN, RELAY, USERS};
use crate::rng::Rng;

pub(crate) fn generated_attack(r: &mut Rng, config: &Config, local: &[String], id: &str) -> Task {
    let h = config.hostname.clone();
    let ip = format!("[{RELAY}]");
    let f = r.pick(&FOREIGN[..3]).to_string();
    let l = r.pick(local).clone();
    let u = *r.pick(&["relaytest", "bob", "Victim"]);
    let forms = [
        format!("{u}%{f}@{h}"),
        format!("{u}%{f}@{ip}"),
        format!("{u}%{f}@{l}"),
        format!("\"{u}@{f}\"@{l}"),
        format!("\"{u}@{f}\""),
        format!("\"{u}%{f}\""),
        format!("{f}!{u}@{h}"),
        format!("{f}!{u}@{ip}"),
        format!("{f}!{u}"),
        format!("{u}@{f}@{l}"),
        format!("@{h}:{u}@{f}"),
        format!("@{ip}:{u}@{f}"),
        format!("{u}@{f}."),
        format!("{u}@{f}@"),
        format!("{u}@{}", f.to_ascii_uppercase()),
        format!("{u}@{f}"),
        format!("{u}%{}@{}", f.to_ascii_uppercase(), l.to_ascii_uppercase()),
        format!("{u}@[192.0.2.99]"),
        format!("{u}@xn--bcher-kva.example"),
        format!("{u}@{BACKUP}"),
        format!("{u}%{f}@{BACKUP}"),
    ];
    let senders = [
        String::new(),
        format!("spammer@{f}"),
        format!("alice@{l}"),
        format!("antispam@{ip}"),
        "x@spam.example".to_string(),
    ];
    let from = r.pick(&senders).clone();
    let mut chunks: Vec<Vec<u8>> = vec![b"EHLO spam.example\r\n".to_vec()];
    if r.chance(20) {
        // A wrong password, then relaying anyway.
        chunks.push(b"AUTH PLAIN AGNhcm9sAHdyb25n\r\n".to_vec());
    }
    chunks.push(format!("MAIL FROM:<{from}>\r\n").into_bytes());
    for _ in 0..1 + r.below(3) {
        chunks.push(format!("RCPT TO:<{}>\r\n", r.pick(&forms)).into_bytes());
    }
    if r.chance(30) {
        chunks.push(format!("RCPT TO:<{}@{l}>\r\n", r.pick(&USERS)).into_bytes());
    }
    chunks.push(b"DATA\r\n".to_vec());
    let mut body = format!("X-Sim-Id: {id}\r\nSubject: buy\r\n\r\nspam\r\n").into_bytes();
    if r.chance(40) {
        let seqs: [&[u8]; 6] = [
            b"\n.\n",
            b"\r.\r",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r\n\x00.\r\n",
            b"\r\n.\r\r\n",
        ];
        let seq = *r.pick(&seqs);
        body.extend_from_slice(seq);
        body.extend_from_slice(
            format!(
                "MAIL FROM:<ceo@{l}>\r\nRCPT TO:<{}@{l}>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n",
                r.pick(&USERS)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(b".\r\nQUIT\r\n");
    chunks.push(body);
    Task::Raw {
        chunks,
        id: Some(id.to_string()),
    }
}

/// The corpus attacks as chunks to send, loaded once.
pub(crate) fn attacks() -> &'static [(String, Vec<Vec<u8>>)] {
    static ATTACKS: OnceLock<Vec<(String, Vec<Vec<u8>>)>> = OnceLock::new();
    ATTACKS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/attacks");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "smtp"))
            .filter_map(|p| {
                let t = transcript::parse(&std::fs::read_to_string(&p).ok()?).ok()?;
                if t.auth.is_some() {
                    return None;
                }
                let chunks = t
                    .steps
                    .into_iter()
                    .filter_map(|s| match s {
                        Step::Send { bytes, .. } => Some(bytes),
                        Step::Reply { .. } => None,
                    })
                    .collect();
                Some((p.file_stem()?.to_string_lossy().into_owned(), chunks))
            })
            .collect()
    })
}
