//! The probe's reports: a table for people, JSON for programs, JUnit XML
//! for CI, and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::client::{Record, shown};
use super::verdict::Verdict;
use super::{Audit, Run};

/// 0 when nothing failed, 1 when something was confirmed or suspected (or
/// a note, with `strict`), 2 when a transcript could not be judged.
pub fn exit_code(audit: &Audit, strict: bool) -> u8 {
    if audit.runs.iter().any(|r| r.verdict == Verdict::Error) {
        2
    } else if audit
        .runs
        .iter()
        .any(|r| r.verdict.fails() || (strict && !r.notes.is_empty()))
    {
        1
    } else {
        0
    }
}

/// Counts per class: confirmed, suspected, refused, skipped, error.
pub fn summary(audit: &Audit) -> BTreeMap<String, [usize; 5]> {
    let mut m: BTreeMap<String, [usize; 5]> = BTreeMap::new();
    for r in &audit.runs {
        let row = m.entry(r.class.clone()).or_default();
        let i = match r.verdict {
            Verdict::Confirmed => 0,
            Verdict::Suspected => 1,
            Verdict::Refused => 2,
            Verdict::Skipped => 3,
            Verdict::Error => 4,
        };
        row[i] += 1;
    }
    m
}

fn replies_of(rec: &Record) -> Vec<String> {
    rec.exchanges
        .iter()
        .flat_map(|e| e.replies.iter().map(|r| shown(r.trim_ascii_end())))
        .collect()
}

/// The table, the findings with their evidence, the notes.
pub fn text(audit: &Audit, strict: bool) -> String {
    let mut o = String::new();
    let s = &audit.site;
    let _ = writeln!(o, "target {}: {}", audit.target, audit.greeting);
    let _ = writeln!(
        o,
        "site: domain {}, host {}, literal [{}], mailbox {}, test domain {}{}",
        s.local_domain,
        s.hostname,
        s.ip,
        s.mailbox,
        s.test_domain,
        s.backup_domain
            .as_ref()
            .map(|b| format!(", backup MX for {b}"))
            .unwrap_or_default()
    );
    let _ = writeln!(o);
    let width = audit
        .runs
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(10)
        .min(60);
    let _ = writeln!(
        o,
        "{:<width$}  {:<7}  {:<9}  why",
        "transcript", "from", "verdict"
    );
    for r in &audit.runs {
        let _ = writeln!(
            o,
            "{:<width$}  {:<7}  {:<9}  {}",
            r.name,
            r.from,
            r.verdict.as_str(),
            r.reason
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<20} {:>9} {:>9} {:>7} {:>7} {:>5}",
        "class", "confirmed", "suspected", "refused", "skipped", "error"
    );
    let mut total = [0usize; 5];
    for (class, c) in summary(audit) {
        let _ = writeln!(
            o,
            "{:<20} {:>9} {:>9} {:>7} {:>7} {:>5}",
            class, c[0], c[1], c[2], c[3], c[4]
        );
        for i in 0..5 {
            total[i] += c[i];
        }
    }
    let _ = writeln!(
        o,
        "{:<20} {:>9} {:>9} {:>7} {:>7} {:>5}",
        "total", total[0], total[1], total[2], total[3], total[4]
    );
    let failing: Vec<&Run> = audit
        .runs
        .iter()
        .filter(|r| r.verdict.fails() || r.verdict == Verdict::Error)
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(o, "\nfindings:");
        for r in failing {
            finding(&mut o, r);
        }
    }
    let notes: Vec<&Run> = audit.runs.iter().filter(|r| !r.notes.is_empty()).collect();
    if !notes.is_empty() {
        let _ = writeln!(
            o,
            "\nother findings (not relaying; they fail the audit only with --strict{}):",
            if strict { ", which is on" } else { "" }
        );
        for r in notes {
            for n in &r.notes {
                let _ = writeln!(o, "  {}: {n}", r.name);
            }
        }
    }
    let _ = writeln!(o, "\nsink: {} message(s) received", audit.received.len());
    let _ = writeln!(
        o,
        "probe: {} confirmed, {} suspected, {} refused, {} skipped, {} error",
        total[0], total[1], total[2], total[3], total[4]
    );
    o
}

fn finding(o: &mut String, r: &Run) {
    let _ = writeln!(
        o,
        "- {} [{}] {}: {}",
        r.name,
        r.from,
        r.verdict.as_str().to_uppercase(),
        r.reason
    );
    if let Some(s) = &r.smuggle {
        let _ = writeln!(o, "    sequence sent: {}", shown(&s.sequence));
        if let Some(rec) = &r.record {
            let _ = writeln!(o, "    replies: {}", replies_of(rec).join(" | "));
        }
    }
    for a in r.attempts.iter().filter(|a| a.verdict == r.verdict) {
        let _ = writeln!(o, "    sent: {}", shown(&a.rcpt_line));
        let _ = writeln!(o, "    replies: {}", replies_of(&a.record).join(" | "));
    }
    if r.verdict == Verdict::Error
        && let Some(rec) = &r.record
    {
        let _ = writeln!(o, "    replies: {}", replies_of(rec).join(" | "));
    }
    if !r.hint.is_empty() {
        let _ = writeln!(o, "    fix: {}", r.hint);
    }
}

fn record_json(rec: &Record) -> serde_json::Value {
    serde_json::json!({
        "source": rec.source.map(|s| s.to_string()),
        "greeting": rec.greeting.as_ref().map(|g| shown(g)),
        "exchanges": rec.exchanges.iter().map(|e| serde_json::json!({
            "sent": relayguard_core::check::transcript::escape(&e.sent),
            "expected_replies": e.expected,
            "replies": e.replies.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "extra_replies": rec.extra_replies(),
        "closed": rec.closed,
        "error": rec.error,
    })
}

/// Everything, as JSON.
pub fn json(audit: &Audit) -> String {
    let runs: Vec<serde_json::Value> = audit
        .runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "transcript": r.name,
                "class": r.class,
                "from": r.from,
                "verdict": r.verdict.as_str(),
                "reason": r.reason,
                "hint": r.hint,
                "notes": r.notes,
                "session": r.record.as_ref().map(record_json),
                "smuggling": r.smuggle.as_ref().map(|s| serde_json::json!({
                    "outbound": s.outbound,
                    "sequence": shown(&s.sequence),
                    "extra_replies": s.extra_replies,
                    "smuggled_message_arrived": s.separate,
                    "forwarded_unchanged": s.unchanged,
                    "tokens": [s.token1, s.token2],
                })),
                "attempts": r.attempts.iter().map(|a| serde_json::json!({
                    "rcpt": relayguard_core::check::transcript::escape(&a.rcpt_line),
                    "destination": a.dest.as_str(),
                    "token": a.token,
                    "rcpt_code": a.rcpt_code,
                    "message_accepted": a.accepted,
                    "arrived_at_sink": a.arrived,
                    "verdict": a.verdict.as_str(),
                    "reason": a.reason,
                    "session": record_json(&a.record),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let summary: serde_json::Map<String, serde_json::Value> = summary(audit)
        .into_iter()
        .map(|(k, c)| {
            (
                k,
                serde_json::json!({"confirmed": c[0], "suspected": c[1], "refused": c[2], "skipped": c[3], "error": c[4]}),
            )
        })
        .collect();
    let s = &audit.site;
    let doc = serde_json::json!({
        "target": audit.target.to_string(),
        "greeting": audit.greeting,
        "site": {
            "local_domain": s.local_domain, "hostname": s.hostname, "literal": format!("[{}]", s.ip),
            "mailbox": s.mailbox, "mailbox2": s.mailbox2, "test_domain": s.test_domain,
            "backup_domain": s.backup_domain,
        },
        "summary": summary,
        "transcripts": runs,
        "sink": audit.received.iter().map(|m| serde_json::json!({
            "peer": m.peer.map(|p| p.to_string()),
            "mail": m.from,
            "rcpt": m.rcpts,
            "header": String::from_utf8_lossy(m.header()),
            "bare_cr_or_lf": has_bare_line_end(&m.data),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).expect("JSON of plain values")
}

/// Whether data holds a CR not followed by LF or an LF not preceded by CR.
pub fn has_bare_line_end(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &b)| {
        (b == b'\r' && data.get(i + 1) != Some(&b'\n')) || (b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
    })
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one test case per transcript; confirmed and suspected are
/// failures, errors are errors, skipped are skipped.
pub fn junit(audit: &Audit) -> String {
    let runs = &audit.runs;
    let count = |f: fn(Verdict) -> bool| runs.iter().filter(|r| f(r.verdict)).count();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites><testsuite name=\"relayguard probe {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        xml(&audit.target.to_string()),
        runs.len(),
        count(Verdict::fails),
        count(|v| v == Verdict::Error),
        count(|v| v == Verdict::Skipped),
    );
    for r in runs {
        let _ = write!(
            o,
            "  <testcase classname=\"{}\" name=\"{}\"",
            xml(&r.class),
            xml(&r.name)
        );
        let mut detail = String::new();
        finding(&mut detail, r);
        match r.verdict {
            Verdict::Confirmed | Verdict::Suspected => {
                let _ = writeln!(
                    o,
                    "><failure message=\"{}\" type=\"{}\">{}</failure></testcase>",
                    xml(&r.reason),
                    r.verdict.as_str(),
                    xml(&detail)
                );
            }
            Verdict::Error => {
                let _ = writeln!(
                    o,
                    "><error message=\"{}\">{}</error></testcase>",
                    xml(&r.reason),
                    xml(&detail)
                );
            }
            Verdict::Skipped => {
                let _ = writeln!(o, "><skipped message=\"{}\"/></testcase>", xml(&r.reason));
            }
            Verdict::Refused => {
                let _ = writeln!(o, "/>");
            }
        }
    }
    o.push_str("</testsuite></testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::template::Site;

    fn run(name: &str, v: Verdict, notes: Vec<String>) -> Run {
        Run {
            name: name.into(),
            class: crate::probe::class_of(name),
            from: "outside",
            record: Some(Record::default()),
            attempts: Vec::new(),
            smuggle: None,
            verdict: v,
            reason: "why <&>".into(),
            hint: "",
            notes,
        }
    }

    fn audit(runs: Vec<Run>) -> Audit {
        Audit {
            site: Site {
                local_domain: "example.com".into(),
                hostname: "mail.example.com".into(),
                ip: "127.0.0.1".into(),
                mailbox: "a@example.com".into(),
                mailbox2: "a@example.com".into(),
                test_domain: "sink.test".into(),
                backup_domain: None,
            },
            target: "127.0.0.1:25".parse().unwrap(),
            greeting: "220 x".into(),
            runs,
            received: Vec::new(),
        }
    }

    #[test]
    fn exit_codes() {
        let ok = audit(vec![run("nmap-1.smtp", Verdict::Refused, vec![])]);
        assert_eq!(exit_code(&ok, true), 0);
        let noted = audit(vec![run("nmap-1.smtp", Verdict::Refused, vec!["long".into()])]);
        assert_eq!(exit_code(&noted, false), 0);
        assert_eq!(exit_code(&noted, true), 1);
        let sus = audit(vec![
            run("a.smtp", Verdict::Refused, vec![]),
            run("b.smtp", Verdict::Suspected, vec![]),
        ]);
        assert_eq!(exit_code(&sus, false), 1);
        let conf = audit(vec![run("a.smtp", Verdict::Confirmed, vec![])]);
        assert_eq!(exit_code(&conf, false), 1);
        let err = audit(vec![
            run("a.smtp", Verdict::Confirmed, vec![]),
            run("b.smtp", Verdict::Error, vec![]),
        ]);
        assert_eq!(exit_code(&err, false), 2);
        let skipped = audit(vec![run("a.smtp", Verdict::Skipped, vec![])]);
        assert_eq!(exit_code(&skipped, false), 0);
    }

    #[test]
    fn summary_counts_per_class_and_junit_escapes() {
        let a = audit(vec![
            run("nmap-1.smtp", Verdict::Confirmed, vec![]),
            run("nmap-2.smtp", Verdict::Refused, vec![]),
            run("smuggling-lf-dot-lf.smtp", Verdict::Suspected, vec![]),
            run("auth-x.smtp", Verdict::Error, vec![]),
        ]);
        let s = summary(&a);
        assert_eq!(s["nmap"], [1, 0, 1, 0, 0]);
        assert_eq!(s["smuggling"], [0, 1, 0, 0, 0]);
        assert_eq!(s["auth"], [0, 0, 0, 0, 1]);
        let j = junit(&a);
        assert!(j.contains("tests=\"4\" failures=\"2\" errors=\"1\""));
        assert!(j.contains("message=\"why &lt;&amp;&gt;\""));
        assert!(!j.contains("why <&>"));
        let t = text(&a, false);
        assert!(t.contains("probe: 1 confirmed, 1 suspected, 1 refused, 0 skipped, 1 error"));
    }

    #[test]
    fn bare_line_ends() {
        assert!(!has_bare_line_end(b"a\r\nb\r\n"));
        assert!(has_bare_line_end(b"a\nb\r\n"));
        assert!(has_bare_line_end(b"a\r\r\n"));
        assert!(has_bare_line_end(b"\n"));
    }
}
