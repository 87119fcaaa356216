//! What the spammers send: relay attacks generated from the seed, and the
//! recorded ones of `corpus/attacks`.
//!
//! The generated attacks combine the address forms that open relays have
//! been fooled by (percent hack, bang paths, source routes, quoted locals,
//! case and trailing-dot variants, address literals, the backup domain) with
//! senders that pretend to be local, and sometimes smuggle a second message
//! behind a bare-LF or bare-CR end of data. Each carries an X-Sim-Id, so that
//! if it ever arrives the delivery checker knows who sent it.

use std::sync::OnceLock;

use relayguard_core::Config;
use relayguard_core::check::transcript::{self, Step};

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
    if r.chance(25) {
        // Forged XCLIENT naming a LAN client, from outside (issue 15):
        // refused, or, with trust-any-proxy-header, an open relay.
        if let Some(lan) = lan_address(config) {
            chunks.insert(
                1,
                format!("XCLIENT ADDR={lan}\r\nEHLO spam.example\r\n").into_bytes(),
            );
        }
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
        forged: None,
    }
}

/// A BDAT trick from outside (docs/attacks.md "BDAT (CHUNKING)"): a bare
/// LF or CR inside a chunk with a smuggled message behind it, a chunk
/// declared longer than its body so that a foreign RCPT rides in it, BDAT
/// then DATA, or BDAT after a refused foreign RCPT. The relay must refuse
/// the first, take the RCPT as body in the second, and never relay; with
/// `bdat-bare-lf-passes` the bare LF gets through and the oracle sees it.
pub(crate) fn chunk_attack(r: &mut Rng, local: &[String], id: &str) -> Task {
    let f = r.pick(&FOREIGN[..3]).to_string();
    let l = r.pick(local).clone();
    let user = format!("{}@{l}", r.pick(&USERS));
    let victim = format!("victim@{f}");
    let mut chunks: Vec<Vec<u8>> = vec![
        b"EHLO chunks.example\r\n".to_vec(),
        format!("MAIL FROM:<spammer@{f}>\r\n").into_bytes(),
    ];
    let head = format!("X-Sim-Id: {id}\r\nSubject: buy\r\n\r\nspam\r\n");
    let bdat = |data: &[u8], last: bool| {
        let mut c = format!("BDAT {}{}\r\n", data.len(), if last { " LAST" } else { "" }).into_bytes();
        c.extend_from_slice(data);
        c
    };
    match r.below(4) {
        0 => {
            chunks.push(format!("RCPT TO:<{user}>\r\n").into_bytes());
            chunks.push(bdat(head.as_bytes(), false));
            let seqs: [&[u8]; 4] = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"];
            let seq = *r.pick(&seqs);
            let mut smuggled = b"more spam".to_vec();
            smuggled.extend_from_slice(seq);
            smuggled.extend_from_slice(
                format!("MAIL FROM:<ceo@{l}>\r\nRCPT TO:<{victim}>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n").as_bytes(),
            );
            chunks.push(bdat(&smuggled, true));
        }
        1 => {
            // Declared longer than the body: the RCPT after it is body.
            chunks.push(format!("RCPT TO:<{user}>\r\n").into_bytes());
            let hidden = format!("{head}RCPT TO:<{victim}>\r\n");
            let mut c = format!("BDAT {} LAST\r\n", hidden.len()).into_bytes();
            c.extend_from_slice(head.as_bytes());
            chunks.push(c);
            chunks.push(format!("RCPT TO:<{victim}>\r\n").into_bytes());
        }
        2 => {
            chunks.push(format!("RCPT TO:<{user}>\r\n").into_bytes());
            chunks.push(bdat(head.as_bytes(), false));
            chunks.push(b"DATA\r\n".to_vec());
            chunks.push(format!("RCPT TO:<{victim}>\r\n").into_bytes());
            chunks.push(bdat(b"", true));
        }
        _ => {
            chunks.push(format!("RCPT TO:<{victim}>\r\n").into_bytes());
            chunks.push(bdat(head.as_bytes(), true));
        }
    }
    chunks.push(b"QUIT\r\n".to_vec());
    Task::Raw {
        chunks,
        id: Some(id.to_string()),
        forged: None,
    }
}

/// An address inside the seed's first LAN network, for a forged XCLIENT
/// or PROXY header.
pub(super) fn lan_address(config: &Config) -> Option<&'static str> {
    match config.lan.networks.first()?.as_str() {
        "192.168.1.0/24" => Some("192.168.1.10"),
        "10.1.*.*" => Some("10.1.7.10"),
        "10.2.3.10-20" => Some("10.2.3.10"),
        "172.16.0.5" => Some("172.16.0.5"),
        _ => None,
    }
}

/// `corpus/attacks/*.smtp` as build.rs found them: (file name, contents),
/// sorted by file name.
static EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/attacks.rs"));

/// A corpus attack: its file stem, and the chunks a spammer sends.
pub(crate) type Attack = (&'static str, Vec<Vec<u8>>);

/// The corpus attacks as chunks to send, parsed at first use.
///
/// A file that does not parse is a panic naming it, not a skipped file: the
/// corpus is built in, so a bad file is a bug of this build, and skipping it
/// would quietly change which attacks every seed draws.
pub(crate) fn attacks() -> &'static [Attack] {
    static ATTACKS: OnceLock<Vec<Attack>> = OnceLock::new();
    ATTACKS.get_or_init(|| {
        EMBEDDED
            .iter()
            .filter_map(|&(name, bytes)| chunks(name, bytes))
            .collect()
    })
}

/// One attack's chunks: what the client sends, step by step; the replies
/// recorded in the file are left to the oracle.
fn chunks(name: &'static str, bytes: &[u8]) -> Option<Attack> {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("corpus/attacks/{name}: not UTF-8: {e}"));
    let t = transcript::parse(text).unwrap_or_else(|e| panic!("corpus/attacks/{name}: {e}"));
    // A transcript with @auth starts its session already authenticated; a
    // spammer on the wire has no credentials to get there.
    if t.auth.is_some() {
        return None;
    }
    let chunks = t
        .steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Send { bytes, .. } => Some(bytes),
            Step::Reply { .. } | Step::Tls { .. } => None,
        })
        .collect();
    Some((name.strip_suffix(".smtp").unwrap_or(name), chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_corpus_parses_in_file_name_order() {
        // By file name, not by stem: "a-b.smtp" comes before "a.smtp", the
        // order read_dir + sort gave when the corpus was read at run time.
        assert!(
            EMBEDDED.windows(2).all(|w| w[0].0 < w[1].0),
            "not sorted by file name"
        );
        let a = attacks();
        assert!(a.len() > 50, "only {} corpus attacks embedded", a.len());
        let names: Vec<String> = a.iter().map(|(stem, _)| format!("{stem}.smtp")).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(a.iter().all(|(_, chunks)| !chunks.is_empty()));
    }
}
