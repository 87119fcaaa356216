//! Verdicts, decided by where messages go and by what the server said:
//!
//! - a relay is **confirmed** when a probe message sent for a foreign or
//!   routed recipient arrives at the sink; **suspected** when the
//!   recipient was accepted (2xx) but nothing arrived within the wait;
//! - a routed address at the target's own domain (`user%host@local`,
//!   `host!user@local`, `"user@host"@local`) that was accepted but never
//!   left is delivered locally: not a relay (judged by where it went, not
//!   by its spelling);
//! - smuggling is **confirmed** when the smuggled second message arrives on
//!   its own (inbound), or when the target forwards the smuggling sequence
//!   unchanged (outbound); **suspected** when the server answered more
//!   replies than the one the end of the message calls for, a sign that it
//!   ended DATA early and ran the smuggled commands.

use crate::probe::template::Site;

/// What a transcript (or one attempt of it) showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Nothing relayed or smuggled.
    Refused,
    /// Not run (a LAN transcript without `--lan`).
    Skipped,
    /// Accepted, but nothing arrived: likely a relay, not proven.
    Suspected,
    /// A probe message arrived where it must not.
    Confirmed,
    /// The session could not be judged (the server did not greet, closed,
    /// stopped answering, or could not be reached).
    Error,
}

impl Verdict {
    /// The word in the table and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Refused => "refused",
            Verdict::Skipped => "skipped",
            Verdict::Suspected => "suspected",
            Verdict::Confirmed => "confirmed",
            Verdict::Error => "error",
        }
    }

    /// Whether it fails the audit (exit 1).
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Suspected | Verdict::Confirmed)
    }
}

/// Where a recipient points, for a relay check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A plain address at a domain that is not the target's.
    Foreign,
    /// A routed address (`%`, `!`, a second `@`, a quoted `@`, a source
    /// route, a NUL); `own` when its final domain is the target's own, so
    /// that local delivery is the right outcome.
    Routed {
        /// The final domain is the target's.
        own: bool,
    },
}

impl Dest {
    /// A short word for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Dest::Foreign => "foreign",
            Dest::Routed { own: true } => "routed via the local domain",
            Dest::Routed { own: false } => "routed",
        }
    }
}

/// The address of a `RCPT TO:` line (between `<` and `>`, or the first
/// word), or `None` for any other line.
pub fn rcpt_address(line: &[u8]) -> Option<Vec<u8>> {
    let prefix = b"RCPT TO:";
    if line.len() < prefix.len() || !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_ascii();
    if let (Some(open), Some(close)) = (
        rest.iter().position(|&b| b == b'<'),
        rest.iter().rposition(|&b| b == b'>'),
    ) && open < close
    {
        return Some(rest[open + 1..close].to_vec());
    }
    Some(rest.split(|&b| b == b' ').next().unwrap_or(b"").to_vec())
}

/// ASCII for the full-width forms and the ideographic full stop, lower
/// case: what an IDNA-mapping server compares.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            0x3002 | 0xFF61 => '.',
            _ => c,
        })
        .collect::<String>()
        .to_lowercase()
}

/// Whether a recipient is a relay candidate, and which kind; `None` for a
/// plain address at the target's own domain or at its backup-MX domain.
pub fn classify(addr: &[u8], site: &Site) -> Option<Dest> {
    let a = fold(&String::from_utf8_lossy(addr));
    if a.is_empty() {
        return None;
    }
    let (local, domain) = match a.rfind('@') {
        Some(i) => (&a[..i], a[i + 1..].trim_end_matches('.')),
        None => (a.as_str(), ""),
    };
    let routed = a.starts_with('@') || local.contains(['%', '!', '@', '\0']) || domain.contains('\0');
    if domain.is_empty() {
        // Unqualified: the target's own domain is added.
        return routed.then_some(Dest::Routed { own: true });
    }
    let own = site.is_own(domain);
    if routed {
        return Some(Dest::Routed { own });
    }
    if own || site.is_backup(domain) {
        return None;
    }
    Some(Dest::Foreign)
}

/// The verdict of one delivery attempt.
pub fn attempt_verdict(
    dest: Dest,
    error: Option<&str>,
    rcpt_code: Option<u16>,
    arrived: bool,
    wait_secs: f32,
) -> (Verdict, String) {
    if arrived {
        return (
            Verdict::Confirmed,
            "the probe message arrived at the sink: the target relayed it".into(),
        );
    }
    if let Some(e) = error {
        return (Verdict::Error, e.to_string());
    }
    match rcpt_code {
        Some(c) if (200..300).contains(&c) => {}
        Some(c) => return (Verdict::Refused, format!("RCPT refused with {c}")),
        None => return (Verdict::Error, "no reply to RCPT".into()),
    }
    match dest {
        Dest::Routed { own: true } => (
            Verdict::Refused,
            format!(
                "accepted, but nothing left the target within {wait_secs} s: delivered locally, not relayed"
            ),
        ),
        _ => (
            Verdict::Suspected,
            format!(
                "RCPT accepted with {}, but nothing arrived at the sink within {wait_secs} s",
                rcpt_code.unwrap_or(0)
            ),
        ),
    }
}

/// The verdict of a smuggling transcript. Inbound, the smuggled message
/// arriving on its own confirms, extra replies suspect. Outbound (from the
/// LAN, which may send any message it likes) only the sequence reaching
/// the next hop unchanged counts: the target would be server A.
pub fn smuggling_verdict(
    outbound: bool,
    extra_replies: usize,
    separate: bool,
    unchanged: bool,
) -> (Verdict, String) {
    if outbound {
        return if unchanged {
            (
                Verdict::Confirmed,
                "the target forwarded the smuggling sequence unchanged to the next hop".into(),
            )
        } else {
            (
                Verdict::Refused,
                "the smuggling sequence did not reach the next hop unchanged".into(),
            )
        };
    }
    if separate {
        return (
            Verdict::Confirmed,
            "the smuggled second message arrived as a message of its own".into(),
        );
    }
    if extra_replies > 0 {
        return (
            Verdict::Suspected,
            format!(
                "{extra_replies} more replies than expected: the server ended DATA early and answered the smuggled commands"
            ),
        );
    }
    (
        Verdict::Refused,
        "one message, one reply: nothing smuggled".into(),
    )
}

/// The smuggling sequence of a transcript's bytes: the line-end
/// characters, dots and NULs just before the first `MAIL FROM:` that such
/// a run holding a dot or a NUL precedes (the smuggled command, not the
/// transcript's own), starting at its first CR or LF.
pub fn smuggling_sequence(content: &[u8]) -> Option<Vec<u8>> {
    let needle = b"MAIL FROM:";
    let mut from = 0;
    while let Some(off) = crate::probe::sink::find(&content[from..], needle) {
        let at = from + off;
        let before = &content[..at];
        let start = before
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b'\n' | b'.' | 0))
            .map_or(0, |i| i + 1);
        let mut seq = &before[start..];
        while let Some((b'.', rest)) = seq.split_first() {
            seq = rest;
        }
        if seq.iter().any(|&b| b == b'.' || b == 0) {
            return Some(seq.to_vec());
        }
        from = at + needle.len();
    }
    None
}

/// One line on what to change, for the usual MTAs.
pub fn hint(kind: &str) -> &'static str {
    match kind {
        "foreign" => {
            "Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and a narrow mynetworks; Exim: hosts = +relay_from_hosts / domains = +local_domains : +relay_to_domains in acl_smtp_rcpt; OpenSMTPD: relay only `from local` or `auth`"
        }
        "routed" => {
            "Postfix: allow_untrusted_routing = no (the default) and reject_unauth_destination; Exim: leave percent_hack_domains empty and deny local_parts = ^.*[@%!/|]; OpenSMTPD: match by final domain only"
        }
        "smuggling" => {
            "Postfix: smtpd_forbid_bare_newline = normalize (3.9 default; 3.8.5, 3.7.10, 3.6.14, 3.5.24 and later); Exim: 4.97.1 or later; OpenSMTPD: 7.4.2 or later"
        }
        "smuggling-outbound" => {
            "Postfix: smtpd_forbid_bare_newline = normalize, so bare CR/LF are not passed on; Exim: 4.97.1 or later; OpenSMTPD: 7.4.2 or later"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            local_domain: "example.com".into(),
            hostname: "mail.example.com".into(),
            ip: "198.51.100.25".into(),
            mailbox: "alice@example.com".into(),
            mailbox2: "bob@example.com".into(),
            test_domain: "sink.test".into(),
            backup_domain: Some("backup.example.org".into()),
        }
    }

    fn class(a: &str) -> Option<Dest> {
        classify(a.as_bytes(), &site())
    }

    #[test]
    fn rcpt_lines() {
        assert_eq!(rcpt_address(b"RCPT TO:<a@b>\r\n").unwrap(), b"a@b");
        assert_eq!(rcpt_address(b"rcpt to:<a@b> NOTIFY=NEVER\r\n").unwrap(), b"a@b");
        assert_eq!(rcpt_address(b"RCPT TO:a@b\r\n").unwrap(), b"a@b");
        assert_eq!(rcpt_address(b"RCPT TO:<a@b\0@c>\r\n").unwrap(), b"a@b\0@c");
        assert_eq!(rcpt_address(b"MAIL FROM:<a@b>\r\n"), None);
    }

    #[test]
    fn routed_is_decided_by_the_final_domain() {
        assert_eq!(class("relaytest@sink.test"), Some(Dest::Foreign));
        assert_eq!(class("relaytest@SINK.TEST."), Some(Dest::Foreign));
        assert_eq!(class("alice@example.com"), None);
        assert_eq!(class("alice@Mail.Example.Com"), None);
        assert_eq!(class("x@[198.51.100.25]"), None);
        assert_eq!(class("x@backup.example.org"), None);
        assert_eq!(
            class("relaytest%sink.test@example.com"),
            Some(Dest::Routed { own: true })
        );
        assert_eq!(
            class("sink.test!relaytest@example.com"),
            Some(Dest::Routed { own: true })
        );
        assert_eq!(
            class("\"relaytest@sink.test\"@example.com"),
            Some(Dest::Routed { own: true })
        );
        assert_eq!(
            class("@mail.example.com:relaytest@sink.test"),
            Some(Dest::Routed { own: false })
        );
        assert_eq!(
            class("relaytest%sink.test@backup.example.org"),
            Some(Dest::Routed { own: false })
        );
        assert_eq!(class("sink.test!relaytest"), Some(Dest::Routed { own: true }));
        assert_eq!(
            class("relaytest@sink.test\0@example.com"),
            Some(Dest::Routed { own: true })
        );
        assert_eq!(class("postmaster"), None);
        // Full-width letters and ideographic dots fold to the local domain.
        assert_eq!(
            class("x%sink.test@ｅｘａｍｐｌｅ.ｃｏｍ"),
            Some(Dest::Routed { own: true })
        );
        assert_eq!(class("relaytest@sink。test"), Some(Dest::Foreign));
    }

    #[test]
    fn attempts_are_judged_by_arrival() {
        let v = |d, e, c, a| attempt_verdict(d, e, c, a, 5.0).0;
        assert_eq!(v(Dest::Foreign, None, Some(250), true), Verdict::Confirmed);
        assert_eq!(v(Dest::Foreign, None, Some(250), false), Verdict::Suspected);
        assert_eq!(v(Dest::Foreign, None, Some(554), false), Verdict::Refused);
        assert_eq!(
            v(Dest::Routed { own: true }, None, Some(250), false),
            Verdict::Refused
        );
        assert_eq!(
            v(Dest::Routed { own: true }, None, Some(250), true),
            Verdict::Confirmed
        );
        assert_eq!(
            v(Dest::Routed { own: false }, None, Some(250), false),
            Verdict::Suspected
        );
        assert_eq!(v(Dest::Foreign, Some("no greeting"), None, false), Verdict::Error);
        assert_eq!(v(Dest::Foreign, None, None, false), Verdict::Error);
    }

    #[test]
    fn smuggling_is_judged_by_arrival_then_by_extra_replies() {
        assert_eq!(smuggling_verdict(false, 4, true, false).0, Verdict::Confirmed);
        assert_eq!(smuggling_verdict(false, 4, false, false).0, Verdict::Suspected);
        assert_eq!(smuggling_verdict(false, 0, false, false).0, Verdict::Refused);
        assert_eq!(smuggling_verdict(false, 0, false, true).0, Verdict::Refused);
        assert_eq!(smuggling_verdict(true, 0, false, true).0, Verdict::Confirmed);
        // From the LAN, the target splitting the message is not a finding:
        // the LAN may send any message. Only what goes on counts.
        assert_eq!(smuggling_verdict(true, 4, true, false).0, Verdict::Refused);
    }

    #[test]
    fn smuggling_sequences() {
        let seq = |s: &[u8]| smuggling_sequence(s).unwrap();
        assert_eq!(seq(b"the first message.\r\n.\nMAIL FROM:<a>"), b"\r\n.\n");
        assert_eq!(seq(b"Outbound message.\r\n.\r\r\nMAIL FROM:<a>"), b"\r\n.\r\r\n");
        assert_eq!(seq(b"x\r\n\0.\r\nMAIL FROM:<a>"), b"\r\n\0.\r\n");
        assert_eq!(smuggling_sequence(b"no commands here"), None);
        // The transcript's own MAIL FROM (after a plain CRLF) is skipped.
        assert_eq!(
            seq(b"EHLO x\r\nMAIL FROM:<s>\r\nDATA\r\nbody.\r\n.\r\r\nMAIL FROM:<a>"),
            b"\r\n.\r\r\n"
        );
        assert_eq!(smuggling_sequence(b"EHLO x\r\nMAIL FROM:<s>\r\n"), None);
    }

    #[test]
    fn verdict_order_puts_errors_and_confirmations_first() {
        assert!(Verdict::Error > Verdict::Confirmed);
        assert!(Verdict::Confirmed > Verdict::Suspected);
        assert!(Verdict::Suspected > Verdict::Refused);
        assert!(Verdict::Confirmed.fails() && Verdict::Suspected.fails());
        assert!(!Verdict::Refused.fails() && !Verdict::Error.fails());
    }
}
