//! `relayguard probe`: audits a live relay with the attack corpus and
//! judges it by what arrives.
//!
//! Each transcript is templated for the site ([`template`]), sent from the
//! outsider's or the LAN's address by a client that reads every reply
//! ([`client`]). Then, for each foreign or routed recipient it names, a
//! delivery attempt from the same address sends a message carrying a
//! unique token; the probe's own sink ([`sink`]) — the foreign mail
//! exchanger the operator routes the test domain to — tells which of them
//! left the target. Smuggling transcripts carry tokens in both of their
//! messages. [`verdict`] turns all that into confirmed / suspected /
//! refused / error, and [`report`] prints it.

pub mod client;
pub mod report;
pub mod sink;
pub mod template;
pub mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relayguard_core::MAX_REPLY_LINE;
use relayguard_core::check::transcript::{Step, Transcript};

use client::{Dialog, Record, Timing, code};
use sink::{Received, Sink};
use template::Site;
use verdict::{Dest, Verdict};

/// Everything a probe run needs.
pub struct Options {
    /// The relay under test.
    pub target: SocketAddr,
    /// The outsider's address (any local address if `None`).
    pub outside: Option<IpAddr>,
    /// The LAN client's address; LAN transcripts are skipped without it.
    pub lan: Option<IpAddr>,
    /// The site's names.
    pub site: Site,
    /// Reply timeout and quiet window.
    pub timing: Timing,
    /// How long to wait for probe messages at the sink.
    pub wait: Duration,
    /// Transcripts run at the same time.
    pub jobs: usize,
    /// A prefix that makes this run's tokens unique.
    pub run_id: String,
}

/// A transcript to run.
pub struct Case {
    /// Its name in reports (the file name).
    pub name: String,
    /// The parsed transcript.
    pub transcript: Transcript,
}

/// A delivery attempt for one recipient of a transcript.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The `RCPT TO:` line as sent (templated).
    pub rcpt_line: Vec<u8>,
    /// What kind of destination it is.
    pub dest: Dest,
    /// The token in the message's header.
    pub token: String,
    /// The session.
    pub record: Record,
    /// The code RCPT got.
    pub rcpt_code: Option<u16>,
    /// The message got a 2xx after its end.
    pub accepted: bool,
    /// The message arrived at the sink.
    pub arrived: bool,
    /// This attempt's verdict and why.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

/// The smuggling side of a smuggling transcript.
#[derive(Clone, Debug)]
pub struct Smuggle {
    /// From the LAN, to a foreign domain: the target would be server A.
    pub outbound: bool,
    /// The token in the first message's header.
    pub token1: String,
    /// The token in the smuggled message's header.
    pub token2: String,
    /// The end-of-data look-alike the transcript hides.
    pub sequence: Vec<u8>,
    /// Replies beyond those expected.
    pub extra_replies: usize,
    /// The smuggled message arrived on its own.
    pub separate: bool,
    /// The first message arrived with the sequence unchanged.
    pub unchanged: bool,
}

/// One transcript's result.
#[derive(Clone, Debug)]
pub struct Run {
    /// The file name.
    pub name: String,
    /// Its class in the summary (the name's first word: `nmap`,
    /// `smuggling`, `backup-mx`...).
    pub class: String,
    /// `outside` or `lan`.
    pub from: &'static str,
    /// The transcript's own session (none when skipped).
    pub record: Option<Record>,
    /// The delivery attempts.
    pub attempts: Vec<Attempt>,
    /// For smuggling transcripts.
    pub smuggle: Option<Smuggle>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: String,
    /// What to change, when it fails.
    pub hint: &'static str,
    /// Findings that are not relaying: an overlong reply line, extra
    /// replies, a LAN client relaying. They fail only with `--strict`.
    pub notes: Vec<String>,
}

/// The whole audit.
pub struct Audit {
    /// The site as probed (derived names included).
    pub site: Site,
    /// The target.
    pub target: SocketAddr,
    /// The greeting of the first session.
    pub greeting: String,
    /// One per transcript, in the order given.
    pub runs: Vec<Run>,
    /// Every message the sink received.
    pub received: Vec<Received>,
}

/// The class of a transcript from its file name.
pub fn class_of(name: &str) -> String {
    let stem = name.trim_end_matches(".smtp");
    if stem.starts_with("smuggling-outbound") {
        return "smuggling-outbound".into();
    }
    if stem.starts_with("backup-mx") {
        return "backup-mx".into();
    }
    stem.split('-').next().unwrap_or(stem).to_string()
}

/// Whether a transcript's `@peer` is a LAN client (a private address).
fn is_lan(t: &Transcript) -> bool {
    match t.peer {
        Some(IpAddr::V4(ip)) => ip.is_private(),
        Some(IpAddr::V6(ip)) => (ip.segments()[0] & 0xfe00) == 0xfc00,
        None => false,
    }
}

/// The rounds of a transcript: bytes to send and the number of replies the
/// transcript expects for them. A leading `S:` (the greeting) is dropped.
pub fn rounds(t: &Transcript) -> Vec<(Vec<u8>, usize)> {
    let mut out: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut bytes = Vec::new();
    let mut started = false;
    for step in &t.steps {
        match step {
            Step::Send { bytes: b, .. } => {
                started = true;
                bytes.extend_from_slice(b);
            }
            // Transcripts with a handshake are skipped before this.
            Step::Tls { .. } => {}
            Step::Reply { .. } if !started => {}
            Step::Reply { .. } => match out.last_mut() {
                Some(last) if bytes.is_empty() => last.1 += 1,
                _ => out.push((std::mem::take(&mut bytes), 1)),
            },
        }
    }
    if !bytes.is_empty() {
        out.push((bytes, 0));
    }
    out
}

/// Puts `X-Relayguard-Probe: {token}-{n}` before the n-th `Subject:`
/// header line (n from 1) of the content.
pub fn tag_subjects(bytes: &[u8], token: &str, n: &mut usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut i = 0;
    while i < bytes.len() {
        let line_start = i == 0 || bytes[i - 1] == b'\n';
        if line_start && bytes[i..].starts_with(b"Subject: ") {
            *n += 1;
            out.extend_from_slice(format!("X-Relayguard-Probe: {token}-{n}\r\n").as_bytes());
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `bytes` with every `from` replaced by `to`.
pub fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(i) = sink::find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The first line starting with `prefix` (ASCII case-insensitive), in
/// order, from the rounds.
fn lines(rounds: &[(Vec<u8>, usize)]) -> Vec<Vec<u8>> {
    rounds
        .iter()
        .flat_map(|(b, _)| b.split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec))
        .collect()
}

fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A relay candidate: the greeting line, the MAIL line and the RCPT line
/// to send, and where the recipient points.
type Candidate = (Vec<u8>, Vec<u8>, Vec<u8>, Dest);

/// The relay candidates of a transcript, without repeats.
fn candidates(rounds: &[(Vec<u8>, usize)], site: &Site) -> Vec<Candidate> {
    let mut helo = b"EHLO relayguard.probe\r\n".to_vec();
    let mut mail = b"MAIL FROM:<>\r\n".to_vec();
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen_helo = false;
    for line in lines(rounds) {
        let line = if line.ends_with(b"\r\n") {
            line
        } else {
            // The probe's own sessions end each command properly.
            let mut l = line.trim_ascii_end().to_vec();
            l.extend_from_slice(b"\r\n");
            l
        };
        if !seen_helo && (starts_with_ci(&line, b"EHLO ") || starts_with_ci(&line, b"HELO ")) {
            helo = line;
            seen_helo = true;
        } else if starts_with_ci(&line, b"MAIL FROM:") {
            mail = line;
        } else if let Some(addr) = verdict::rcpt_address(&line)
            && let Some(dest) = verdict::classify(&addr, site)
            && !out.iter().any(|c| c.2 == line && c.1 == mail)
        {
            out.push((helo.clone(), mail.clone(), line, dest));
        }
    }
    out
}

/// Text of an address for a header: printable, no angle brackets.
fn header_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() || c == '<' || c == '>' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Sends one probe message: greeting line, MAIL, RCPT, then DATA and the
/// message only if RCPT was accepted.
fn attempt(opts: &Options, source: Option<IpAddr>, name: &str, cand: &Candidate, token: String) -> Attempt {
    let (helo, mail, rcpt, dest) = cand;
    let mut d = Dialog::open(opts.target, source, opts.timing);
    d.exchange(helo, 1);
    d.exchange(mail, 1);
    let rcpt_code = d.exchange(rcpt, 1).first().and_then(|r| code(r));
    let mut accepted = false;
    if rcpt_code.is_some_and(|c| (200..300).contains(&c)) {
        let data = d.exchange(b"DATA\r\n", 1);
        if data.first().and_then(|r| code(r)) == Some(354) {
            let from = verdict::rcpt_address(&[b"RCPT TO:", &mail[10..]].concat()).unwrap_or_default();
            let to = verdict::rcpt_address(rcpt).unwrap_or_default();
            let msg = format!(
                "From: <{}>\r\nTo: <{}>\r\nSubject: relayguard probe {name}\r\nMessage-ID: <{token}@relayguard.probe>\r\nX-Relayguard-Probe: {token}\r\n\r\nrelayguard probe {token} ({name}): if this reached you, {} relayed it.\r\n.\r\n",
                header_text(&from),
                header_text(&to),
                opts.target
            );
            accepted = d
                .exchange(msg.as_bytes(), 1)
                .first()
                .and_then(|r| code(r))
                .is_some_and(|c| (200..300).contains(&c));
        }
    }
    d.exchange(b"QUIT\r\n", 1);
    Attempt {
        rcpt_line: rcpt.clone(),
        dest: *dest,
        token,
        record: d.finish(),
        rcpt_code,
        accepted,
        arrived: false,
        verdict: Verdict::Error,
        reason: String::new(),
    }
}

/// Runs one transcript and its attempts (verdicts come later, when the
/// sink has had its wait).
fn run_case(opts: &Options, index: usize, case: &Case) -> Run {
    let class = class_of(&case.name);
    let lan = is_lan(&case.transcript);
    let mut run = Run {
        name: case.name.clone(),
        class: class.clone(),
        from: if lan { "lan" } else { "outside" },
        record: None,
        attempts: Vec::new(),
        smuggle: None,
        verdict: Verdict::Refused,
        reason: String::new(),
        hint: "",
        notes: Vec::new(),
    };
    let source = if lan {
        match opts.lan {
            Some(ip) => Some(ip),
            None => {
                run.verdict = Verdict::Skipped;
                run.reason = "a LAN transcript: pass --lan ADDRESS to run it".into();
                return run;
            }
        }
    } else {
        opts.outside
    };
    if case.transcript.auth.is_some() {
        run.verdict = Verdict::Skipped;
        run.reason = "@auth: the session starts authenticated, which a live server cannot be told".into();
        return run;
    }
    if case
        .transcript
        .steps
        .iter()
        .any(|s| matches!(s, Step::Tls { .. }))
    {
        run.verdict = Verdict::Skipped;
        run.reason = "T: handshake: the probe does not do TLS".into();
        return run;
    }
    let token = format!("{}-{index}", opts.run_id);
    let smuggling = class.starts_with("smuggling");
    let mut n = 0;
    let rounds: Vec<(Vec<u8>, usize)> = rounds(&case.transcript)
        .into_iter()
        .map(|(b, k)| {
            let b = opts.site.apply(&b);
            let b = if smuggling {
                // The smuggled recipient names the run, so that a log can
                // tell which transcript's smuggled commands were run.
                let b = replace_all(&b, b"victim@", format!("victim-{token}@").as_bytes());
                tag_subjects(&b, &token, &mut n)
            } else {
                b
            };
            (b, k)
        })
        .collect();
    let mut d = Dialog::open(opts.target, source, opts.timing);
    for (bytes, expected) in &rounds {
        d.exchange(bytes, *expected);
    }
    let record = d.finish();
    if smuggling {
        let content: Vec<u8> = rounds.iter().flat_map(|(b, _)| b.clone()).collect();
        run.smuggle = Some(Smuggle {
            outbound: class == "smuggling-outbound",
            token1: format!("{token}-1"),
            token2: format!("{token}-2"),
            sequence: verdict::smuggling_sequence(&content).unwrap_or_default(),
            extra_replies: record.extra_replies(),
            separate: false,
            unchanged: false,
        });
    } else {
        for (k, cand) in candidates(&rounds, &opts.site).iter().enumerate() {
            run.attempts
                .push(attempt(opts, source, &case.name, cand, format!("{token}-r{k}")));
        }
    }
    run.record = Some(record);
    run
}

/// The tokens worth waiting for: those of messages the target accepted.
fn awaited(runs: &[Run]) -> Vec<String> {
    let mut out = Vec::new();
    for r in runs {
        out.extend(r.attempts.iter().filter(|a| a.accepted).map(|a| a.token.clone()));
        if let Some(s) = &r.smuggle
            && r.record.as_ref().is_some_and(|rec| rec.error.is_none())
        {
            if s.outbound {
                // Worth waiting for only if the first message was taken.
                let taken = r.record.as_ref().is_some_and(|rec| {
                    rec.exchanges.iter().any(|e| {
                        sink::find(&e.sent, s.token1.as_bytes()).is_some()
                            && e.replies
                                .first()
                                .and_then(|r| code(r))
                                .is_some_and(|c| (200..300).contains(&c))
                    })
                });
                if taken {
                    out.push(s.token1.clone());
                }
            } else if s.extra_replies > 0 {
                out.push(s.token2.clone());
            }
        }
    }
    out
}

/// Decides a run's verdict from its sessions and the sink.
fn judge(run: &mut Run, received: &[Received], wait: Duration) {
    if run.verdict == Verdict::Skipped {
        return;
    }
    let wait_secs = wait.as_secs_f32();
    let lan = run.from == "lan";
    let record = run.record.as_ref().expect("run not skipped");
    for len in record.long_lines(MAX_REPLY_LINE) {
        run.notes.push(format!(
            "a reply line of {len} octets (RFC 5321 allows {MAX_REPLY_LINE})"
        ));
    }
    let mut worst = (Verdict::Refused, String::from("nothing relayed"));
    let mut kind = "";
    if let Some(s) = &mut run.smuggle {
        s.separate = received.iter().any(|m| m.has_token(&s.token2));
        s.unchanged = !s.sequence.is_empty()
            && received
                .iter()
                .any(|m| m.has_token(&s.token1) && sink::find(&m.data, &s.sequence).is_some());
        worst = verdict::smuggling_verdict(s.outbound, s.extra_replies, s.separate, s.unchanged);
        if s.outbound && (s.separate || s.extra_replies > 0) {
            run.notes.push(format!(
                "from the LAN, the target ended DATA at `{}` and ran the commands after it (inbound smuggling by a trusted client)",
                client::shown(&s.sequence)
            ));
        }
        kind = if s.outbound {
            "smuggling-outbound"
        } else {
            "smuggling"
        };
    } else if record.extra_replies() > 0 {
        run.notes.push(format!(
            "{} replies more than the transcript expects",
            record.extra_replies()
        ));
    }
    for a in &mut run.attempts {
        a.arrived = received.iter().any(|m| m.has_token(&a.token));
        let (v, why) = verdict::attempt_verdict(
            a.dest,
            a.record.error.as_deref(),
            a.rcpt_code,
            a.arrived,
            wait_secs,
        );
        let (v, why) = if lan && v.fails() {
            // A LAN client relaying is the LAN's right on most relays: a
            // policy finding, not an open relay.
            run.notes.push(format!(
                "from the LAN, `{}` was {}: a LAN client may relay here",
                client::shown(&a.rcpt_line),
                v.as_str()
            ));
            (
                Verdict::Refused,
                format!("{why} (from the LAN: policy, not an open relay)"),
            )
        } else {
            (v, why)
        };
        a.verdict = v;
        a.reason = format!("{}: {why}", client::shown(a.rcpt_line.trim_ascii_end()));
        if v > worst.0 {
            worst = (v, a.reason.clone());
            kind = match a.dest {
                Dest::Foreign => "foreign",
                Dest::Routed { .. } => "routed",
            };
        }
    }
    if let Some(e) = &record.error
        && worst.0 < Verdict::Confirmed
    {
        if let Some(n) = awaited_chunk(&record.exchanges) {
            // RFC 3030 §2: the server reads the declared octets whatever
            // it thinks of them, so silence after a BDAT whose octets
            // never came is the server keeping to the protocol, and it
            // accepted nothing.
            run.notes.push(format!(
                "the server waited for the {n} octets a BDAT declared and never got: {e}"
            ));
        } else {
            worst = (Verdict::Error, e.clone());
        }
    }
    run.verdict = worst.0;
    run.reason = worst.1;
    if run.verdict.fails() {
        run.hint = verdict::hint(kind);
    }
}

/// The declared size of a BDAT chunk in the last exchange that the bytes
/// sent after it (in that exchange and none later) fall short of: the
/// server is still reading that chunk.
fn awaited_chunk(exchanges: &[client::Exchange]) -> Option<u64> {
    let last = exchanges.last()?;
    let mut rest = &last.sent[..];
    let mut awaited = None;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if words.len() < 2 || !words[0].eq_ignore_ascii_case(b"BDAT") {
            continue;
        }
        let n: u64 = std::str::from_utf8(words[1]).ok()?.parse().ok()?;
        if (rest.len() as u64) < n {
            awaited = Some(n);
            break;
        }
        rest = &rest[n as usize..];
    }
    awaited
}

/// Runs every case, `jobs` at a time, waits for the sink, and judges.
pub fn audit(opts: &Options, sink: &Sink, greeting: String, cases: &[Case]) -> Audit {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, 64).min(cases.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let run = run_case(opts, i, case);
                    results.lock().expect("results lock")[i] = Some(run);
                }
            });
        }
    });
    let mut runs: Vec<Run> = results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect();
    let tokens = awaited(&runs);
    let received = sink.wait_for(&tokens, Instant::now() + opts.wait);
    for r in &mut runs {
        judge(r, &received, opts.wait);
    }
    Audit {
        site: opts.site.clone(),
        target: opts.target,
        greeting,
        runs,
        received,
    }
}

/// The first session: checks that the target talks, and reads the names it
/// gives (greeting and EHLO). An error means the target cannot be audited.
pub fn discover(
    target: SocketAddr,
    source: Option<IpAddr>,
    timing: Timing,
) -> Result<(String, Option<String>), String> {
    let mut d = Dialog::open(target, source, timing);
    if let Some(e) = &d.record.error {
        return Err(e.clone());
    }
    let greeting = d.record.greeting.clone().unwrap_or_default();
    let ehlo = d.exchange(b"EHLO relayguard.probe\r\n", 1);
    d.exchange(b"QUIT\r\n", 1);
    let record = d.finish();
    if let Some(e) = record.error {
        return Err(e);
    }
    let name = template::hostname_from_greeting(&greeting)
        .or_else(|| ehlo.first().and_then(|r| template::hostname_from_greeting(r)));
    Ok((String::from_utf8_lossy(&greeting).trim_end().to_string(), name))
}

/// Loads the transcripts named by `paths` (files or folders).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>, String> {
    let files = relayguard_corpus::collect(paths).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("no .smtp transcripts under {paths:?}"));
    }
    files
        .into_iter()
        .map(|p| {
            let transcript = relayguard_corpus::load_transcript(&p).map_err(|e| e.to_string())?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string());
            Ok(Case { name, transcript })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayguard_core::check::transcript::parse;

    #[test]
    fn rounds_group_pipelined_sends_and_count_replies() {
        let t = parse("S: 220\nC: EHLO x\nS: 250\nC: MAIL FROM:<a>\nC: RCPT TO:<b>\nS: 250\nS: 550\nC~ x\\r\\n\nC: QUIT\n").unwrap();
        let r = rounds(&t);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], (b"EHLO x\r\n".to_vec(), 1));
        assert_eq!(r[1], (b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\n".to_vec(), 2));
        assert_eq!(r[2], (b"x\r\nQUIT\r\n".to_vec(), 0));
    }

    #[test]
    fn a_bdat_whose_octets_never_came_is_awaited_and_a_whole_one_is_not() {
        let ex = |sent: &[u8]| client::Exchange {
            sent: sent.to_vec(),
            expected: 2,
            replies: Vec::new(),
        };
        assert_eq!(
            awaited_chunk(&[ex(b"BDAT 99999999999999 LAST\r\nMAIL FROM:<a>\r\nQUIT\r\n")]),
            Some(99_999_999_999_999)
        );
        assert_eq!(awaited_chunk(&[ex(b"bdat 5 LAST\r\nhelloQUIT\r\n")]), None);
        assert_eq!(
            awaited_chunk(&[ex(b"BDAT 3\r\nabcBDAT 10 LAST\r\nabc")]),
            Some(10)
        );
        assert_eq!(awaited_chunk(&[ex(b"DATA\r\n")]), None);
        assert_eq!(awaited_chunk(&[]), None);
    }

    #[test]
    fn replace_all_replaces_every_occurrence() {
        assert_eq!(
            replace_all(b"victim@a victim@b", b"victim@", b"v-1@"),
            b"v-1@a v-1@b"
        );
        assert_eq!(replace_all(b"none", b"victim@", b"x"), b"none");
    }

    #[test]
    fn subjects_get_numbered_tokens() {
        let mut n = 0;
        let out = tag_subjects(b"From: a\r\nSubject: one\r\n\r\nx Subject: no\r\n", "T", &mut n);
        assert_eq!(
            out,
            b"From: a\r\nX-Relayguard-Probe: T-1\r\nSubject: one\r\n\r\nx Subject: no\r\n"
        );
        let out = tag_subjects(b"Subject: two\r\n", "T", &mut n);
        assert_eq!(out, b"X-Relayguard-Probe: T-2\r\nSubject: two\r\n");
    }

    #[test]
    fn candidates_keep_the_helo_and_mail_before_each_rcpt() {
        let site = Site {
            local_domain: "example.com".into(),
            hostname: "mail.example.com".into(),
            ip: "127.0.0.1".into(),
            mailbox: "alice@example.com".into(),
            mailbox2: "alice@example.com".into(),
            test_domain: "sink.test".into(),
            backup_domain: None,
        };
        let r = vec![
            (b"HELO h\r\n".to_vec(), 1),
            (
                b"MAIL FROM:<a@x>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<r@sink.test>\r\n".to_vec(),
                3,
            ),
            (
                b"MAIL FROM:<>\r\nRCPT TO:<r%sink.test@example.com>\r\nRCPT TO:<r@sink.test>\r\n".to_vec(),
                3,
            ),
        ];
        let c = candidates(&r, &site);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            (
                b"HELO h\r\n".to_vec(),
                b"MAIL FROM:<a@x>\r\n".to_vec(),
                b"RCPT TO:<r@sink.test>\r\n".to_vec(),
                Dest::Foreign
            )
        );
        assert_eq!(c[1].3, Dest::Routed { own: true });
        assert_eq!(c[2].1, b"MAIL FROM:<>\r\n");
    }

    #[test]
    fn classes_and_lan_peers() {
        assert_eq!(class_of("nmap-06-percent-hack-hostname.smtp"), "nmap");
        assert_eq!(class_of("backup-mx-bang-path.smtp"), "backup-mx");
        assert_eq!(
            class_of("smuggling-outbound-crlf-dot-cr-crlf.smtp"),
            "smuggling-outbound"
        );
        assert_eq!(class_of("smuggling-lf-dot-lf.smtp"), "smuggling");
        let lan = parse("@peer 192.168.1.40\nC: QUIT\n").unwrap();
        let out = parse("@peer 203.0.113.7\nC: QUIT\n").unwrap();
        assert!(is_lan(&lan) && !is_lan(&out));
    }
}
