use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

const DESIGN_EXAMPLE: &str = "\
# nmap smtp-open-relay test 6: percent hack at the IP literal
@peer 203.0.113.7
@config ../configs/default.toml
@expect closed
C: EHLO probe.example
S: 250
C: MAIL FROM:<antispam@[198.51.100.25]>
S: 250
C: RCPT TO:<relaytest%nmap.scanme.org@[198.51.100.25]>
S: 5
C: QUIT
S: 221
";

fn send(text: &str, line: usize) -> Step {
    Step::Send {
        raw: false,
        bytes: format!("{text}\r\n").into_bytes(),
        line,
    }
}

fn reply(expected: &str, line: usize) -> Step {
    Step::Reply {
        expected: expected.to_string(),
        line,
    }
}

fn err_line(text: &str) -> usize {
    match parse(text) {
        Ok(t) => panic!("parsed, expected an error: {t:?}"),
        Err(e) => e.line,
    }
}

#[test]
fn transcript_design_example() {
    let t = parse(DESIGN_EXAMPLE).unwrap();
    assert_eq!(
        t.comments,
        ["nmap smtp-open-relay test 6: percent hack at the IP literal"]
    );
    assert_eq!(t.peer, Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))));
    assert_eq!(t.config, Some(PathBuf::from("../configs/default.toml")));
    assert_eq!(t.expect, Some(Expect::Closed));
    assert_eq!(t.auth, None);
    assert_eq!(t.source, None);
    assert_eq!(
        t.steps,
        vec![
            send("EHLO probe.example", 5),
            reply("250", 6),
            send("MAIL FROM:<antispam@[198.51.100.25]>", 7),
            reply("250", 8),
            send("RCPT TO:<relaytest%nmap.scanme.org@[198.51.100.25]>", 9),
            reply("5", 10),
            send("QUIT", 11),
            reply("221", 12),
        ]
    );
    // The example is already in the written form.
    assert_eq!(t.to_text(), DESIGN_EXAMPLE);
}

#[test]
fn transcript_all_headers() {
    let t = parse(
        "@peer 2001:db8::1\n@config  cfg/a b.toml \n@auth carol\n\
         @expect accepted\n@source RFC 5321 §3.6.1, and more\nC: NOOP\n",
    )
    .unwrap();
    assert_eq!(t.peer, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(t.config, Some(PathBuf::from("cfg/a b.toml")));
    assert_eq!(t.auth.as_deref(), Some("carol"));
    assert_eq!(t.expect, Some(Expect::Accepted));
    assert_eq!(t.source.as_deref(), Some("RFC 5321 §3.6.1, and more"));
    assert_eq!(t.steps, vec![send("NOOP", 6)]);
}

#[test]
fn transcript_errors_name_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("@peer 1.2.3.4\n@color blue\n", 2, "unknown header @color"),
        ("# c\n\n@peer 300.1.2.3\n", 3, "not an IP address"),
        ("@peer\n", 1, "needs a value"),
        ("@source  \n", 1, "needs a value"),
        ("@expect open\n", 1, "closed"),
        (
            "@peer 1.2.3.4\n@auth a\n@peer 1.2.3.5\n",
            3,
            "duplicate header @peer",
        ),
        ("@source a\n@source a\n", 2, "duplicate header @source"),
        ("@expect closed\n@expect closed\n", 2, "duplicate"),
        ("C: EHLO x\nS: 250\n@peer 1.2.3.4\n", 3, "after the first step"),
        ("C: EHLO x\nX: what\n", 2, "unknown line"),
        ("C: EHLO x\n  C: indented\n", 2, "unknown line"),
        ("C:EHLO\nc: lower case\n", 2, "unknown line"),
        ("\n\n\nC~ a\\qb\n", 4, "unknown escape `\\q`"),
        ("C~ a\\\n", 1, "backslash at the end"),
        ("C~ \\x4\n", 1, "two hex digits"),
        ("C~ \\xzz\n", 1, "two hex digits"),
        ("C: a\rb\n", 1, "carriage return"),
        ("S: 250\r\r\n", 1, "carriage return"),
    ];
    for (text, line, needle) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")));
    }
    assert_eq!(err_line("C: a\n# late comment\nS: 2\nnope\n"), 4);
}

#[test]
fn transcript_comments_blank_lines_and_crlf_files() {
    let t = parse("#first\n# second\n#\n\n@peer 1.2.3.4\n#  third\r\nC: X\r\n# dropped\n\n").unwrap();
    assert_eq!(t.comments, ["first", "second", "", " third"]);
    assert_eq!(t.steps, vec![send("X", 7)]);
    // An empty C: line sends a bare CRLF (a blank line in a body).
    let t = parse("C:\nC: \nC:  x \n").unwrap();
    assert_eq!(t.steps[0], send("", 1));
    assert_eq!(t.steps[1], send("", 2));
    assert_eq!(t.steps[2], send(" x ", 3));
}

#[test]
fn transcript_escapes() {
    assert_eq!(
        unescape(r"a\r\n.\r\n\0\t\\\x00\xFF\x7f é").unwrap(),
        b"a\r\n.\r\n\0\t\\\0\xff\x7f \xc3\xa9"
    );
    assert_eq!(unescape("").unwrap(), b"");
    assert!(unescape(r"\a").unwrap_err().contains(r"\a"));
    assert_eq!(escape(b"\r\n.\r\n"), r"\r\n.\r\n");
    assert_eq!(
        escape(b"a\\b\0\t\x01\x7f\xc3\xa9 "),
        r"a\\b\0\t\x01\x7f\xc3\xa9\x20"
    );
    assert_eq!(escape(b" a b"), " a b");
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(unescape(&escape(&all)).unwrap(), all);

    let t = parse("C~ hello\\n.\\n\nC~\nC~ x \n").unwrap();
    assert_eq!(
        t.steps,
        vec![
            Step::Send {
                raw: true,
                bytes: b"hello\n.\n".to_vec(),
                line: 1
            },
            Step::Send {
                raw: true,
                bytes: vec![],
                line: 2
            },
            Step::Send {
                raw: true,
                bytes: b"x ".to_vec(),
                line: 3
            },
        ]
    );
}

#[test]
fn transcript_multi_line_replies() {
    let text = "\
C: EHLO probe.example
S: 250-mail.example.com
S: 250-PIPELINING
S: 250 SMTPUTF8
S: 250-next
# a comment ends a reply
S: 250-again
S: 250 x

S: 250-a
C: NOOP
S: 250 2.0.0
S: 221-bye
";
    let t = parse(text).unwrap();
    assert_eq!(
        t.steps,
        vec![
            send("EHLO probe.example", 1),
            reply("250-mail.example.com\r\n250-PIPELINING\r\n250 SMTPUTF8", 2),
            reply("250-next", 5),
            reply("250-again\r\n250 x", 7),
            reply("250-a", 10),
            send("NOOP", 11),
            reply("250 2.0.0", 12),
            reply("221-bye", 13),
        ]
    );
    // Written back, the reply that ends with a continuation line and is
    // followed by another reply gets a blank line.
    let back = parse(&t.to_text()).unwrap();
    assert_eq!(back.steps.len(), t.steps.len());
    assert!(
        t.to_text()
            .contains("S: 250 SMTPUTF8\nS: 250-next\n\nS: 250-again\n")
    );
    assert_eq!(parse(&back.to_text()).unwrap(), back);
}

#[test]
fn transcript_matches_is_a_prefix_check() {
    let ehlo = "250-mail.example.com\r\n250-PIPELINING\r\n250 SMTPUTF8";
    assert!(matches("250", ehlo));
    assert!(matches("250-mail.example.com\r\n250-PIPELINING", ehlo));
    assert!(matches(ehlo, ehlo));
    assert!(!matches("250 ", ehlo));
    assert!(matches("5", "550 5.7.1 relay denied"));
    assert!(matches("550 5.7.1", "550 5.7.1 relay denied"));
    assert!(!matches("550 5.7.1", "550 5.1.1 unknown"));
    assert!(!matches("250 2.0.0 queued", "250 2.0.0"));
    assert!(matches("", "421 4.7.0"));
}

#[test]
fn transcript_to_text_picks_c_or_c_tilde() {
    let t = Transcript {
        steps: vec![
            send("MAIL FROM:<a@b>", 0),
            Step::Send {
                raw: false,
                bytes: b"no crlf".to_vec(),
                line: 0,
            },
            Step::Send {
                raw: false,
                bytes: b"bare\nlf\r\n".to_vec(),
                line: 0,
            },
            Step::Send {
                raw: false,
                bytes: b"\xff\r\n".to_vec(),
                line: 0,
            },
            Step::Send {
                raw: true,
                bytes: b"QUIT\r\n".to_vec(),
                line: 0,
            },
        ],
        ..Transcript::default()
    };
    assert_eq!(
        t.to_text(),
        "C: MAIL FROM:<a@b>\nC~ no crlf\nC~ bare\\nlf\\r\\n\nC~ \\xff\\r\\n\nC~ QUIT\\r\\n\n"
    );
}

fn without_lines(mut t: Transcript) -> Transcript {
    for s in &mut t.steps {
        match s {
            Step::Send { line, .. } | Step::Reply { line, .. } | Step::Tls { line } => *line = 0,
        }
    }
    t
}

/// A one-line value: no CR or LF, no surrounding white space, not empty.
fn value() -> impl Strategy<Value = String> {
    "[^\r\n]{1,24}".prop_filter_map("needs a trimmed value", |s| {
        let v = s.trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| Step::Send {
            raw: true,
            bytes,
            line: 0
        }),
        "[^\r\n]{0,30}".prop_map(|t| send(&t, 0)),
        (
            proptest::collection::vec("[0-9]{3}-[^\r\n]{0,10}", 0..3),
            "[^\r\n]{0,20}"
        )
            .prop_map(|(mut lines, last)| {
                lines.push(last);
                reply(&lines.join("\r\n"), 0)
            }),
        Just(Step::Tls { line: 0 }),
    ]
}

fn transcript() -> impl Strategy<Value = Transcript> {
    (
        proptest::collection::vec("[^\r\n]{0,20}", 0..3),
        proptest::option::of(any::<IpAddr>()),
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of(prop_oneof![Just(Expect::Closed), Just(Expect::Accepted)]),
        proptest::option::of(value()),
        (
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(step(), 0..12),
        ),
    )
        .prop_map(
            |(comments, peer, config, auth, expect, source, (truncated, steps))| Transcript {
                comments,
                peer,
                proxy: None,
                config: config.map(PathBuf::from),
                auth,
                expect,
                source,
                truncated,
                steps,
            },
        )
}

proptest! {
    #[test]
    fn transcript_write_parse_round_trips(t in transcript()) {
        let text = t.to_text();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(without_lines(back.clone()), without_lines(t));
        // Writing what was parsed gives the same text, line numbers and all.
        prop_assert_eq!(back.to_text(), text.clone());
        prop_assert_eq!(parse(&back.to_text()).unwrap(), back);
    }

    #[test]
    fn transcript_escape_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let e = escape(&bytes);
        prop_assert!(!e.contains(['\r', '\n']));
        prop_assert!(!e.ends_with(' '));
        prop_assert_eq!(unescape(&e).unwrap(), bytes);
    }

    #[test]
    fn transcript_parse_never_panics(text in "(([#@CS][:~]?|C:|C~|S:)[^\n]{0,12}\n?){0,8}") {
        let _ = parse(&text);
    }
}
