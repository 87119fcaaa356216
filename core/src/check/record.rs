//! Turns a live session into a transcript of the corpus: what the client
//! sent, chunk by chunk as it arrived, and each whole reply.
//!
//! The real server records every session with it (`serve --record`), and the
//! simulation records the session behind a finding, so that both can be
//! replayed by `relayguard replay` and kept by `cargo test`. Chunks stay
//! chunks: bytes that arrived together are replayed together, so pipelining
//! (and DATA content sent too early) replays as it happened.

use std::net::IpAddr;
use std::path::PathBuf;

use super::transcript::{Step, Transcript, escape};

/// Builds a [`Transcript`] from a live session, fed both directions as the
/// bytes come.
#[derive(Debug)]
pub struct Recorder {
    t: Transcript,
    /// Server bytes not yet making a whole reply.
    pending: Vec<u8>,
    /// Lines of the reply being assembled.
    lines: Vec<String>,
    /// The most transcript text the steps may take; `None`: no cap.
    cap: Option<u64>,
    /// Transcript text the steps take so far.
    size: u64,
}

impl Recorder {
    /// A recorder for a session with the client at `peer`. `config` is the
    /// `@config` header as the transcript should carry it: relative to the
    /// directory the transcript will be saved in.
    pub fn new(peer: IpAddr, config: Option<PathBuf>) -> Recorder {
        Recorder {
            t: Transcript {
                peer: Some(peer),
                config,
                ..Transcript::default()
            },
            pending: Vec::new(),
            lines: Vec::new(),
            cap: None,
            size: 0,
        }
    }

    /// Caps the steps at `octets` of transcript text. The step that would
    /// pass it, and everything after it, is left out, nothing more is held
    /// in memory, and the transcript gets `@truncated` with the size kept:
    /// a visitor cannot fill the disk or the memory of a honeypot.
    pub fn with_cap(mut self, octets: u64) -> Recorder {
        self.cap = Some(octets);
        self
    }

    /// Whether the cap was reached and recording stopped.
    pub fn is_truncated(&self) -> bool {
        self.t.truncated.is_some()
    }

    /// Octets of transcript text the recorded steps take.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Counts `text` octets against the cap; false (and the recording
    /// stops for good) when they do not fit.
    fn fits(&mut self, text: u64) -> bool {
        if self.is_truncated() {
            return false;
        }
        if self.cap.is_some_and(|cap| self.size + text > cap) {
            self.t.truncated = Some(self.size);
            self.pending = Vec::new();
            self.lines = Vec::new();
            return false;
        }
        self.size += text;
        true
    }

    /// The `@peer` recorded so far.
    pub fn peer(&self) -> Option<IpAddr> {
        self.t.peer
    }

    /// Sets `@proxy`: the session came through the trusted proxy at
    /// `proxy`, whose header named `client`; both are recorded, `@peer`
    /// becoming the client.
    pub fn proxied(&mut self, client: IpAddr, proxy: IpAddr) {
        self.t.peer = Some(client);
        self.t.proxy = Some(proxy);
    }

    /// Adds a leading `#` comment; the first one says what the session is.
    pub fn comment(&mut self, text: &str) {
        self.t.comments.push(text.to_string());
    }

    /// Sets `@source`: where the session comes from.
    pub fn source(&mut self, text: &str) {
        self.t.source = Some(text.to_string());
    }

    /// Sets `@auth`: the session is authenticated as `user`. The replay
    /// starts it so, and the credentials stay out of the transcript.
    pub fn authenticated(&mut self, user: &str) {
        self.t.auth = Some(user.to_string());
    }

    /// Bytes from the client, as one read.
    pub fn client(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.is_truncated() {
            return;
        }
        // Whole CRLF lines become `C:` steps, anything else one raw step.
        let mut rest = bytes;
        while !rest.is_empty() {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").map(|i| i + 2);
            match line_end {
                Some(n) if is_plain_line(&rest[..n]) => {
                    self.push_send(false, &rest[..n]);
                    rest = &rest[n..];
                }
                _ => {
                    self.push_send(true, rest);
                    break;
                }
            }
        }
    }

    fn push_send(&mut self, raw: bool, bytes: &[u8]) {
        // The length of its line: `C: text` or `C~ escaped`.
        let text = if raw {
            escape(bytes).len() + 4
        } else {
            bytes.len() + 2
        };
        if !self.fits(text as u64) {
            return;
        }
        self.t.steps.push(Step::Send {
            raw,
            bytes: bytes.to_vec(),
            line: 0,
        });
    }

    /// The TLS handshake after STARTTLS was done: a `T: handshake` step.
    pub fn tls_established(&mut self) {
        // `T: handshake` and its LF.
        if self.fits(13) {
            self.t.steps.push(Step::Tls { line: 0 });
        }
    }

    /// Bytes from the server; whole replies become `S:` steps.
    pub fn server(&mut self, bytes: &[u8]) {
        if self.is_truncated() {
            return;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(nl) = memchr::memchr(b'\n', &self.pending) {
            let raw: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let line = String::from_utf8_lossy(text).into_owned();
            let more = text.get(3) == Some(&b'-');
            self.lines.push(line);
            if !more {
                let expected = std::mem::take(&mut self.lines).join("\r\n");
                // `S: ` and LF per line.
                let text = expected.len() + 4 * (expected.matches("\r\n").count() + 1);
                if !self.fits(text as u64) {
                    return;
                }
                self.t.steps.push(Step::Reply { expected, line: 0 });
            }
        }
    }

    /// The transcript so far. Its steps have line 0, as they come from no
    /// text; a reply not yet complete is left out.
    pub fn finish(self) -> Transcript {
        self.t
    }
}

/// A line that a `C:` step can carry: text, CRLF only at its end.
fn is_plain_line(line: &[u8]) -> bool {
    let body = &line[..line.len() - 2];
    std::str::from_utf8(body).is_ok()
        && !body
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || b < 0x20 && b != b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::replay::{Mode, replay};
    use crate::check::transcript::parse;
    use crate::config::Config;
    use crate::policy::Policy;
    use std::sync::Arc;

    #[test]
    fn a_recorded_session_replays_to_the_same_replies() {
        let policy = Arc::new(
            Policy::new(
                Config::from_toml("hostname = \"mx.example\"\n[domains]\nlocal = [\"example.com\"]\n")
                    .unwrap(),
            )
            .unwrap(),
        );
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let mut d = crate::check::drive::Driver::new(policy.clone(), peer);
        let mut rec = Recorder::new(peer, None);
        rec.server(&d.run.sent);
        let chunks: [&[u8]; 4] = [
            b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n",
            b"RCPT TO:<u@nmap.scanme.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
            b"hi\n.\r\n.\r\n",
            b"QUIT\r\n",
        ];
        for c in chunks {
            let before = d.run.sent.len();
            rec.client(c);
            d.feed(c);
            rec.server(&d.run.sent[before..]);
        }
        let t = rec.finish();
        // Through the text form and back, then replayed: every recorded
        // reply must match what the session says again.
        let t = parse(&t.to_text()).unwrap();
        assert!(t.steps.iter().any(|s| matches!(s, Step::Send { raw: true, .. })));
        let o = replay(&t, policy, Mode::Strict);
        assert!(o.passed(), "{:?}", o);
        assert_eq!(
            t.steps.iter().filter(|s| matches!(s, Step::Reply { .. })).count(),
            8
        );
    }

    #[test]
    fn a_capped_recording_stops_at_the_cap_and_says_so() {
        let policy = Arc::new(
            Policy::new(Config::from_toml("[domains]\nlocal = [\"example.com\"]\n").unwrap()).unwrap(),
        );
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let mut d = crate::check::drive::Driver::new(policy.clone(), peer);
        let cap = 64 * 1024;
        let mut rec = Recorder::new(peer, None).with_cap(cap);
        rec.server(&d.run.sent);
        let before = d.run.sent.len();
        rec.client(b"EHLO x\r\n");
        d.feed(b"EHLO x\r\n");
        rec.server(&d.run.sent[before..]);
        // 8 MiB of junk without a line end, in reads of 8 KiB, as serve
        // sees it: the recording keeps what fits and no more.
        let junk = vec![0xffu8; 8192];
        for _ in 0..1024 {
            rec.client(&junk);
            d.feed(&junk);
        }
        assert!(rec.is_truncated());
        assert!(rec.size() <= cap);
        let text = rec.finish().to_text();
        assert!(text.len() as u64 <= cap + 1024, "{}", text.len());
        let t = parse(&text).unwrap();
        assert!(t.truncated.is_some_and(|n| n <= cap), "{:?}", t.truncated);
        let o = replay(&t, policy, Mode::Strict);
        assert!(o.passed(), "{:?}", o.first_failure());
        assert_eq!(o.truncated, t.truncated);
    }

    #[test]
    fn an_uncapped_recording_keeps_everything() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let mut rec = Recorder::new(peer, None);
        let junk = vec![0xffu8; 8192];
        for _ in 0..64 {
            rec.client(&junk);
        }
        assert!(!rec.is_truncated());
        assert_eq!(rec.finish().steps.len(), 64);
    }
}
