//! Replays a transcript against a fresh core session: checks each `S:`
//! expectation, the `@expect` line, and runs the wire oracle.
//!
//! File handling (finding transcripts, loading their `@config`) is the
//! caller's; this is the pure part, so that tests, the fuzzers and the CLI
//! judge transcripts the same way.

use std::sync::Arc;

use super::drive::Driver;
use super::oracle::{Stats, Violation};
use super::transcript::{Expect, Step, Transcript, matches};
use crate::policy::Policy;

/// How a reply expectation went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Line of the `S:` step in the transcript.
    pub line: usize,
    /// The expected prefix, as in the transcript.
    pub expected: String,
    /// The reply the server sent, lines joined by CRLF; empty if none came.
    pub got: String,
}

/// The result of one replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every `S:` step whose reply did not match; none in [`Mode::Audit`].
    pub mismatches: Vec<Mismatch>,
    /// What the wire oracle found.
    pub violations: Vec<Violation>,
    /// Why `@expect` does not hold, if it does not.
    pub expectation: Option<String>,
    /// The oracle's counts.
    pub stats: Stats,
    /// Every byte the server sent, for recording and debugging.
    pub sent: Vec<u8>,
    /// From `@truncated`: the transcript is the beginning of a session cut
    /// after this many octets, and only that beginning was replayed.
    pub truncated: Option<u64>,
}

impl Outcome {
    /// No mismatch, no violation, and `@expect` held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.violations.is_empty() && self.expectation.is_none()
    }

    /// The first thing that went wrong, in a line.
    pub fn first_failure(&self) -> Option<String> {
        if let Some(m) = self.mismatches.first() {
            let got = if m.got.is_empty() {
                "no reply".to_string()
            } else {
                format!("{:?}", m.got)
            };
            return Some(format!("line {}: expected {:?}, got {got}", m.line, m.expected));
        }
        if let Some(v) = self.violations.first() {
            return Some(v.to_string());
        }
        self.expectation.clone()
    }
}

/// Whether reply expectations are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Replies, `@expect` and the oracle.
    Strict,
    /// Against another configuration: only the oracle judges.
    Audit,
}

/// Replays `t` against a session of `policy`.
pub fn replay(t: &Transcript, policy: Arc<Policy>, mode: Mode) -> Outcome {
    let peer = t.peer.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    // STARTTLS is offered when the configuration names a certificate, as
    // `serve` would; the handshake is in memory, so no key file is read.
    let offer_tls = policy.config().tls.cert.is_some();
    let mut d = match t.proxy {
        Some(proxy) => Driver::proxied(policy, peer, proxy),
        None => Driver::new(policy, peer),
    };
    if offer_tls {
        d.offer_tls();
    }
    if let Some(user) = &t.auth {
        d.authenticate(user);
    }
    let mut replies = Replies::default();
    if !matches!(t.steps.first(), Some(Step::Reply { .. })) {
        // The transcript does not check the greeting: skip it.
        let _ = replies.next(&d.run.sent);
    }
    let mut mismatches = Vec::new();
    let mut chunk: Vec<u8> = Vec::new();
    for (i, step) in t.steps.iter().enumerate() {
        match step {
            Step::Send { bytes, .. } => {
                chunk.extend_from_slice(bytes);
                continue;
            }
            Step::Reply { expected, line } => {
                if !chunk.is_empty() {
                    d.feed(&std::mem::take(&mut chunk));
                } else if i > 0 {
                    // Waiting for a reply with nothing sent: let time pass,
                    // as a client would, so that timeouts can fire.
                    if replies.peek(&d.run.sent).is_none() {
                        d.expire();
                    }
                }
                let got = replies.next(&d.run.sent);
                if mode == Mode::Strict && !got.as_deref().is_some_and(|g| matches(expected, g)) {
                    mismatches.push(Mismatch {
                        line: *line,
                        expected: expected.clone(),
                        got: got.unwrap_or_default(),
                    });
                }
            }
            Step::Tls { line } => {
                if !chunk.is_empty() {
                    d.feed(&std::mem::take(&mut chunk));
                }
                if !d.handshake() && mode == Mode::Strict {
                    mismatches.push(Mismatch {
                        line: *line,
                        expected: "T: handshake".into(),
                        got: "no handshake: the server did not answer a STARTTLS with 220".into(),
                    });
                }
            }
        }
    }
    if !chunk.is_empty() {
        d.feed(&chunk);
    }
    let (run, verdict) = d.finish();
    let expectation = match (mode, t.expect) {
        (Mode::Strict, Some(Expect::Closed)) if verdict.stats.foreign_messages_accepted > 0 => Some(format!(
            "@expect closed, but {} message(s) for foreign recipients were accepted",
            verdict.stats.foreign_messages_accepted
        )),
        (Mode::Strict, Some(Expect::Accepted)) if verdict.stats.messages_accepted == 0 => {
            Some("@expect accepted, but no message was accepted".to_string())
        }
        _ => None,
    };
    Outcome {
        mismatches,
        violations: verdict.violations,
        expectation,
        stats: verdict.stats,
        sent: run.sent,
        truncated: t.truncated,
    }
}

/// Splits the server's output into whole replies as it grows.
#[derive(Default)]
struct Replies {
    /// Offset of the next unread octet of `sent`.
    at: usize,
}

impl Replies {
    /// The end offset and text of the reply at `from`, if complete.
    fn reply_at(sent: &[u8], from: usize) -> Option<(usize, String)> {
        let len = crate::reply::whole_reply_len(&sent[from..])?;
        let text = String::from_utf8_lossy(&sent[from..from + len]);
        let lines: Vec<&str> = text.lines().collect();
        Some((from + len, lines.join("\r\n")))
    }

    fn peek(&mut self, sent: &[u8]) -> Option<String> {
        Self::reply_at(sent, self.at).map(|(_, t)| t)
    }

    fn next(&mut self, sent: &[u8]) -> Option<String> {
        let (end, text) = Self::reply_at(sent, self.at)?;
        self.at = end;
        Some(text)
    }
}
