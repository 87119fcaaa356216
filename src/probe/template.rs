//! Templating: the corpus is written for `example.com`, `mail.example.com`,
//! `[198.51.100.25]`, the mailboxes alice and bob, and foreign domains such
//! as `nmap.scanme.org`. At probe time those names are replaced by the
//! target's own (from the command line, or derived from its greeting) and
//! by the sink's test domain, so the files stay replayable by
//! `relayguard replay` and the whole corpus applies to any site.
//!
//! Matching is ASCII case-insensitive and keeps the case of what it
//! replaces, letter by letter (`EXAMPLE.COM` becomes `MYCORP.TEST`,
//! `Example.Com` becomes `Mycorp.Test`), so the case tricks survive. The
//! full-width and ideographic-dot spellings are mapped to the same
//! spellings of the new names.

/// The names of the site under test and of the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The target's local (final-destination) domain: `example.com`.
    pub local_domain: String,
    /// The target's host name: `mail.example.com`.
    pub hostname: String,
    /// The target's address, without brackets: `198.51.100.25`.
    pub ip: String,
    /// A local mailbox that accepts mail: `alice@example.com`.
    pub mailbox: String,
    /// The mailbox smuggled messages are sent to: `bob@example.com`.
    pub mailbox2: String,
    /// The domain the target routes to the sink: foreign test domains.
    pub test_domain: String,
    /// The domain the target is a backup MX for, if any:
    /// `backup.example.org`.
    pub backup_domain: Option<String>,
}

/// The corpus's names, in the order they are tried at each position
/// (longer first where one contains another).
const CORPUS: &[(&str, Name)] = &[
    ("alice@example.com", Name::Mailbox),
    ("bob@example.com", Name::Mailbox2),
    ("[198.51.100.25]", Name::Literal),
    ("198.51.100.25", Name::Ip),
    ("mail.example.com", Name::Hostname),
    ("backup.example.org", Name::Backup),
    ("nmap.scanme.org", Name::Test),
    ("mail-abuse.org", Name::Test),
    ("example.com", Name::Local),
    ("ｅｘａｍｐｌｅ.ｃｏｍ", Name::LocalFullWidth),
    ("nmap。scanme。org", Name::TestIdeographic),
];

#[derive(Clone, Copy)]
enum Name {
    Mailbox,
    Mailbox2,
    Literal,
    Ip,
    Hostname,
    Backup,
    Test,
    Local,
    LocalFullWidth,
    TestIdeographic,
}

impl Site {
    fn value(&self, name: Name) -> Option<String> {
        Some(match name {
            Name::Mailbox => self.mailbox.clone(),
            Name::Mailbox2 => self.mailbox2.clone(),
            Name::Literal => format!("[{}]", self.ip),
            Name::Ip => self.ip.clone(),
            Name::Hostname => self.hostname.clone(),
            Name::Backup => self.backup_domain.clone()?,
            Name::Test => self.test_domain.clone(),
            Name::Local => self.local_domain.clone(),
            Name::LocalFullWidth => full_width(&self.local_domain),
            Name::TestIdeographic => self.test_domain.replace('.', "。"),
        })
    }

    /// The bytes with the corpus's names replaced by this site's.
    pub fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 32);
        let mut i = 0;
        'outer: while i < bytes.len() {
            for (pattern, name) in CORPUS {
                let p = pattern.as_bytes();
                if bytes.len() - i >= p.len() && bytes[i..i + p.len()].eq_ignore_ascii_case(p) {
                    let Some(value) = self.value(*name) else { continue };
                    out.extend_from_slice(&keep_case(&bytes[i..i + p.len()], &value));
                    i += p.len();
                    continue 'outer;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }

    /// Whether `domain` (lower case, no trailing dot) is the target's own:
    /// its local domain, its host name or its literal.
    pub fn is_own(&self, domain: &str) -> bool {
        domain == self.local_domain.to_ascii_lowercase()
            || domain == self.hostname.to_ascii_lowercase()
            || domain == format!("[{}]", self.ip)
    }

    /// Whether `domain` is the backup-MX domain.
    pub fn is_backup(&self, domain: &str) -> bool {
        self.backup_domain
            .as_ref()
            .is_some_and(|b| b.eq_ignore_ascii_case(domain))
    }
}

/// `value` in the case of `matched`: all upper case if `matched` has no
/// lower-case letter, else each label capitalised where the matched label
/// at the same place starts with a capital.
fn keep_case(matched: &[u8], value: &str) -> Vec<u8> {
    let has_upper = matched.iter().any(u8::is_ascii_uppercase);
    let has_lower = matched.iter().any(u8::is_ascii_lowercase);
    if has_upper && !has_lower {
        return value.to_ascii_uppercase().into_bytes();
    }
    let labels: Vec<&[u8]> = matched.split(|&b| b == b'.' || b == b'@').collect();
    let mut out = Vec::with_capacity(value.len());
    let mut label = 0;
    let mut start = true;
    for c in value.bytes() {
        if c == b'.' || c == b'@' {
            out.push(c);
            label += 1;
            start = true;
            continue;
        }
        let capital = labels
            .get(label.min(labels.len().saturating_sub(1)))
            .and_then(|l| l.first())
            .is_some_and(u8::is_ascii_uppercase);
        out.push(if start && capital {
            c.to_ascii_uppercase()
        } else {
            c
        });
        start = false;
    }
    out
}

/// The full-width form (U+FF01…U+FF5E) of the printable ASCII in `s`; the
/// dots stay ASCII, as in the corpus.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' if c != '.' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// The host name a greeting or EHLO reply names: the word after the code,
/// if it looks like a domain (has a dot, no odd characters).
pub fn hostname_from_greeting(reply: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(reply).ok()?;
    let first = text.lines().next()?;
    let word = first.get(4..)?.split_whitespace().next()?;
    let ok = word.contains('.')
        && !word.starts_with('.')
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| word.trim_end_matches('.').to_ascii_lowercase())
}

/// The local domain guessed from a host name: the host name without its
/// first label when it has three or more (`mail.mycorp.test` →
/// `mycorp.test`), the host name itself otherwise.
pub fn domain_from_hostname(hostname: &str) -> String {
    match hostname.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest.to_string(),
        _ => hostname.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            local_domain: "mycorp.test".into(),
            hostname: "mx1.mycorp.test".into(),
            ip: "127.0.0.1".into(),
            mailbox: "probe@mycorp.test".into(),
            mailbox2: "box2@mycorp.test".into(),
            test_domain: "sink.test".into(),
            backup_domain: None,
        }
    }

    fn apply(s: &str) -> String {
        String::from_utf8(site().apply(s.as_bytes())).unwrap()
    }

    #[test]
    fn corpus_names_become_the_sites() {
        assert_eq!(
            apply("RCPT TO:<alice@example.com>\r\n"),
            "RCPT TO:<probe@mycorp.test>\r\n"
        );
        assert_eq!(
            apply("MAIL FROM:<admin@example.com>"),
            "MAIL FROM:<admin@mycorp.test>"
        );
        assert_eq!(apply("bob@example.com"), "box2@mycorp.test");
        assert_eq!(
            apply("RCPT TO:<relaytest%nmap.scanme.org@mail.example.com>"),
            "RCPT TO:<relaytest%sink.test@mx1.mycorp.test>"
        );
        assert_eq!(apply("antispam@[198.51.100.25]"), "antispam@[127.0.0.1]");
        assert_eq!(apply("user%[1.2.3.4]@example.com"), "user%[1.2.3.4]@mycorp.test");
        assert_eq!(apply("relaytest@badexample.com"), "relaytest@badmycorp.test");
        assert_eq!(
            apply("relaytest@relay.example.com"),
            "relaytest@relay.mycorp.test"
        );
        assert_eq!(apply("nobody@mail-abuse.org"), "nobody@sink.test");
        // Untouched: names the site does not map.
        assert_eq!(apply("antispam@probe.example"), "antispam@probe.example");
        assert_eq!(apply("x@backup.example.org"), "x@backup.example.org");
    }

    #[test]
    fn case_and_spelling_tricks_survive() {
        assert_eq!(
            apply("NMAP.SCANME.ORG!RelayTest@Example.Com"),
            "SINK.TEST!RelayTest@Mycorp.Test"
        );
        assert_eq!(
            apply("relaytest%nmap.scanme.org@EXAMPLE.COM"),
            "relaytest%sink.test@MYCORP.TEST"
        );
        assert_eq!(apply("x@ｅｘａｍｐｌｅ.ｃｏｍ"), "x@ｍｙｃｏｒｐ.ｔｅｓｔ");
        assert_eq!(apply("relaytest@nmap。scanme。org"), "relaytest@sink。test");
    }

    #[test]
    fn backup_domain_is_mapped_when_given() {
        let mut s = site();
        s.backup_domain = Some("backup.mycorp.test".into());
        assert_eq!(
            s.apply(b"x%nmap.scanme.org@backup.example.org"),
            b"x%sink.test@backup.mycorp.test"
        );
        assert!(s.is_backup("BACKUP.mycorp.test"));
        assert!(!site().is_backup("backup.mycorp.test"));
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let input = b"\xff\x00example.com\r\n";
        assert_eq!(site().apply(input), b"\xff\x00mycorp.test\r\n");
    }

    #[test]
    fn names_from_the_greeting() {
        assert_eq!(
            hostname_from_greeting(b"220 mail.mycorp.test ESMTP Postfix\r\n").as_deref(),
            Some("mail.mycorp.test")
        );
        assert_eq!(
            hostname_from_greeting(b"220-MX.Corp.Test. hi\r\n220 ok\r\n").as_deref(),
            Some("mx.corp.test")
        );
        assert_eq!(hostname_from_greeting(b"220 localhost ESMTP\r\n"), None);
        assert_eq!(hostname_from_greeting(b"220 <x@y> ready\r\n"), None);
        assert_eq!(domain_from_hostname("mail.mycorp.test"), "mycorp.test");
        assert_eq!(domain_from_hostname("mycorp.test"), "mycorp.test");
    }

    #[test]
    fn own_domains() {
        let s = site();
        assert!(s.is_own("mycorp.test"));
        assert!(s.is_own("mx1.mycorp.test"));
        assert!(s.is_own("[127.0.0.1]"));
        assert!(!s.is_own("sink.test"));
    }
}
