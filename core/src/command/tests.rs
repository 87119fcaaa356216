use super::*;

fn p(s: &str) -> Result<Command<'_>, ParseError> {
    parse(s.as_bytes())
}

#[test]
fn verbs_are_case_insensitive() {
    assert_eq!(p("ehlo client.example"), Ok(Command::Ehlo("client.example")));
    assert_eq!(p("HeLo client.example"), Ok(Command::Helo("client.example")));
    assert_eq!(p("data"), Ok(Command::Data));
    assert_eq!(p("QUIT"), Ok(Command::Quit));
    assert_eq!(p("starttls"), Ok(Command::Starttls));
    assert_eq!(p("noop anything"), Ok(Command::Noop));
    assert_eq!(p("HELP"), Ok(Command::Help("")));
}

#[test]
fn unknown_and_malformed_commands() {
    assert_eq!(p("XYZZ"), Err(ParseError::UnknownCommand));
    assert_eq!(p(""), Err(ParseError::UnknownCommand));
    assert_eq!(p("MAILFROM:<a@b.example>"), Err(ParseError::UnknownCommand));
    assert_eq!(
        p("EHLO"),
        Err(ParseError::Syntax("HELO/EHLO needs a domain or address literal"))
    );
    assert_eq!(p("DATA now"), Err(ParseError::Syntax("no arguments allowed")));
    assert_eq!(
        parse(b"MAIL FROM:<a\0@b.example>"),
        Err(ParseError::BadCharacters)
    );
    assert_eq!(parse(b"EHLO \xff"), Err(ParseError::BadCharacters));
}

#[test]
fn mail_from_with_parameters() {
    let c = p("MAIL FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>").unwrap();
    let Command::Mail { from, params } = c else {
        panic!()
    };
    assert_eq!(
        from,
        PathArg::Mailbox {
            route: "",
            local: "alice",
            domain: Some("example.com")
        }
    );
    assert_eq!(params.size, Some(1000));
    assert_eq!(params.body, Some(Body::EightBitMime));
    assert!(params.smtputf8);
    assert_eq!(params.auth, Some("<>"));
}

#[test]
fn lenient_forms_real_clients_send() {
    let want = PathArg::Mailbox {
        route: "",
        local: "a",
        domain: Some("b.example"),
    };
    for s in [
        "MAIL FROM: <a@b.example>",
        "mail from:<a@b.example>",
        "MAIL FROM:a@b.example",
    ] {
        let Ok(Command::Mail { from, .. }) = p(s) else {
            panic!("{s}")
        };
        assert_eq!(from, want, "{s}");
    }
    assert_eq!(p("RCPT TO: <a@b.example>"), Ok(Command::Rcpt { to: want }));
}

#[test]
fn parameter_errors() {
    assert_eq!(
        p("MAIL FROM:<a@b.example> FOO=1"),
        Err(ParseError::UnknownParameter)
    );
    assert_eq!(
        p("MAIL FROM:<a@b.example> BODY=BINARYMIME"),
        Err(ParseError::UnknownParameter)
    );
    assert_eq!(
        p("RCPT TO:<a@b.example> NOTIFY=NEVER"),
        Err(ParseError::UnknownParameter)
    );
    assert!(matches!(
        p("MAIL FROM:<a@b.example> SIZE=x"),
        Err(ParseError::Syntax(_))
    ));
    assert!(matches!(
        p("MAIL FROM:<a@b.example> SIZE=1 SIZE=2"),
        Err(ParseError::Syntax(_))
    ));
}

#[test]
fn null_path_only_for_mail() {
    assert!(matches!(
        p("MAIL FROM:<>"),
        Ok(Command::Mail {
            from: PathArg::Null,
            ..
        })
    ));
    assert_eq!(p("RCPT TO:<>"), Err(ParseError::Address(AddressError::Empty)));
}

#[test]
fn paths_keep_what_the_policy_must_see() {
    let Ok(Command::Rcpt { to }) = p("RCPT TO:<@[198.51.100.25]:relaytest@nmap.scanme.org>") else {
        panic!()
    };
    assert_eq!(
        to,
        PathArg::Mailbox {
            route: "@[198.51.100.25]",
            local: "relaytest",
            domain: Some("nmap.scanme.org")
        }
    );
    let Ok(Command::Rcpt { to }) = p("RCPT TO:<\"relaytest@nmap.scanme.org\"@[198.51.100.25]>") else {
        panic!()
    };
    assert_eq!(
        to,
        PathArg::Mailbox {
            route: "",
            local: "\"relaytest@nmap.scanme.org\"",
            domain: Some("[198.51.100.25]")
        }
    );
    assert_eq!(
        p("RCPT TO:<\"a>b\"@example.com>"),
        Ok(Command::Rcpt {
            to: PathArg::Mailbox {
                route: "",
                local: "\"a>b\"",
                domain: Some("example.com")
            }
        })
    );
    assert_eq!(
        p("RCPT TO:<postmaster>"),
        Ok(Command::Rcpt {
            to: PathArg::Mailbox {
                route: "",
                local: "postmaster",
                domain: None
            }
        })
    );
}

#[test]
fn address_syntax_errors() {
    for (s, e) in [
        (
            "RCPT TO:<u@nmap.scanme.org@[198.51.100.25]>",
            AddressError::BadDomain,
        ),
        ("RCPT TO:<u@>", AddressError::TrailingAt),
        ("RCPT TO:<u@host:25>", AddressError::BadDomain),
        ("RCPT TO:<u@example.com", AddressError::MissingBracket),
        ("RCPT TO:<@a.example>", AddressError::BadRoute),
        ("RCPT TO:<u v@example.com>", AddressError::BadLocalPart),
    ] {
        assert_eq!(p(s), Err(ParseError::Address(e)), "{s}");
    }
}

proptest::proptest! {
    /// The one-pass path reader accepts only what the general parser
    /// accepts, and reads it the same way.
    #[test]
    fn plain_path_agrees_with_the_general_parser(s in "<[a-z.@%!\"\\[\\]<>:,\\\\ -]{0,24}>?[ A-Z=]{0,6}") {
        if let Some((fast, rest)) = plain_path(&s).map(|spans| spans.split(&s)) {
            let (inner, slow_rest) = split_path(&s).unwrap();
            proptest::prop_assert_eq!(rest, slow_rest);
            proptest::prop_assert_eq!(Ok(fast), parse_path_arg(inner, true));
        }
    }

    /// The same, on inputs built from the pieces the one-pass reader
    /// handles (routes, quoted local parts), so that its longer forms are
    /// reached and not only its refusals.
    #[test]
    fn plain_path_agrees_on_routes_and_quotes(
        s in "<(@[a-z.\\[\\]]{0,4}[,:]){0,3}(\"[a-z@>, \\\\]{0,4}\"|[a-z.%\"]{0,4})(@[a-z.\\[\\]@]{0,4})?>?[ A-Z]{0,3}"
    ) {
        if let Some((fast, rest)) = plain_path(&s).map(|spans| spans.split(&s)) {
            let (inner, slow_rest) = split_path(&s).unwrap();
            proptest::prop_assert_eq!(rest, slow_rest);
            proptest::prop_assert_eq!(Ok(fast), parse_path_arg(inner, true));
        }
    }
}

#[test]
fn routes_and_quoted_local_parts_take_the_one_pass_reader() {
    for (path, route, local, domain) in [
        (
            "<@a.example,@b.example:u@c.example>",
            "@a.example,@b.example",
            "u",
            Some("c.example"),
        ),
        ("<\"q@x y\"@c.example> SIZE=1", "", "\"q@x y\"", Some("c.example")),
        ("<@a.example:\"q\">", "@a.example", "\"q\"", None),
    ] {
        let (fast, _) = plain_path(path).expect(path).split(path);
        assert_eq!(fast, PathArg::Mailbox { route, local, domain }, "{path}");
    }
    for path in ["<\"a\\\"b\"@c>", "<@[1.2.3.4]:u@c>", "<@a,b:u@c>", "<@a:>"] {
        assert!(plain_path(path).is_none(), "{path}");
    }
}

#[test]
fn word_scan_agrees_with_the_table() {
    for b in 0..=255u8 {
        for len in 1..18 {
            for pos in 0..len {
                let mut line = vec![b'a'; len];
                line[pos] = b;
                assert_eq!(
                    line_classes(&line),
                    classes(&line) & (CTRL | HIGH),
                    "byte {b:#x} at {pos} of {len}"
                );
            }
        }
    }
}

#[test]
fn line_end_agrees_with_memchr() {
    // Every byte value at every place of lines around the word sizes and
    // the 64-octet head, with and without an LF further on.
    for b in 0..=255u8 {
        for len in 0..80 {
            for pos in 0..len {
                for later in [None, Some(len - 1)] {
                    let mut line = vec![b'a'; len];
                    line[pos] = b;
                    if let Some(l) = later {
                        line[l] = b'\n';
                    }
                    assert_eq!(
                        line_end(&line),
                        memchr::memchr(b'\n', &line),
                        "byte {b:#x} at {pos} of {len}, LF at {later:?}"
                    );
                }
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn line_end_agrees_with_memchr_on_any_input(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        proptest::prop_assert_eq!(line_end(&bytes), memchr::memchr(b'\n', &bytes));
    }
}

#[test]
fn auth_forms() {
    assert_eq!(
        p("AUTH PLAIN"),
        Ok(Command::Auth {
            mechanism: "PLAIN",
            initial: None
        })
    );
    assert_eq!(
        p("AUTH PLAIN AGNhcm9s"),
        Ok(Command::Auth {
            mechanism: "PLAIN",
            initial: Some("AGNhcm9s")
        })
    );
    assert!(matches!(p("AUTH"), Err(ParseError::Syntax(_))));
}

#[test]
fn bdat_forms() {
    assert_eq!(p("BDAT 0 LAST"), Ok(Command::Bdat { size: 0, last: true }));
    assert_eq!(p("bdat\t12 last"), Ok(Command::Bdat { size: 12, last: true }));
    assert_eq!(
        p("BDAT 12"),
        Ok(Command::Bdat {
            size: 12,
            last: false
        })
    );
    assert_eq!(
        p("BDAT 99999999999999999999 LAST"),
        Ok(Command::Bdat {
            size: u64::MAX,
            last: true
        })
    );
    for bad in [
        "BDAT",
        "BDAT LAST",
        "BDAT -1",
        "BDAT 1x",
        "BDAT +5",
        "BDAT 5 FIRST",
        "BDAT 5 LAST LAST",
        "BDAT 123456789012345678901",
    ] {
        assert!(matches!(p(bad), Err(ParseError::Syntax(_))), "{bad}");
    }
}

#[test]
fn display_reparses_to_the_same_command() {
    for s in [
        "mail from: <a@b.example> size=10 body=7bit",
        "RCPT TO:<@x.example,@y.example:\"q r\"@[IPv6:::1]>",
        "ehlo [127.0.0.1]",
        "AUTH LOGIN",
        "help mail",
        "bdat 7 last",
        "BDAT 0",
    ] {
        let c = p(s).unwrap();
        let text = c.to_string();
        assert_eq!(p(&text), Ok(c), "{s} -> {text}");
    }
}

#[test]
fn a_local_part_with_two_forbidden_octets_anywhere_is_refused() {
    // Two of them side by side at every place of the first words: a check
    // that combined the octets' classes any way but a union would let a
    // pair cancel out.
    for len in [8, 9, 16, 17] {
        for pos in 0..len - 1 {
            for pair in ["((", "()", ");", "[]"] {
                let mut local = "a".repeat(len);
                local.replace_range(pos..pos + 2, pair);
                let line = format!("RCPT TO:<{local}@example.com>");
                assert_eq!(
                    p(&line),
                    Err(ParseError::Address(AddressError::BadLocalPart)),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn underscores_and_utf8_in_domains_take_the_one_pass_reader() {
    // Both are domain octets to the shape check (the names are judged
    // later, by IDNA and the policy), so the fast reader must not send
    // them to the general parser.
    for path in ["<u@mail_1.example>", "<u@bücher.example>", "<u@例え.jp>"] {
        let (fast, rest) = plain_path(path).expect(path).split(path);
        assert_eq!(rest, "");
        let (inner, _) = split_path(path).unwrap();
        assert_eq!(Ok(fast), parse_path_arg(inner, true), "{path}");
        let line = format!("RCPT TO:{path}");
        assert!(p(&line).is_ok(), "{line}");
    }
}

#[test]
fn verbs_and_keywords_are_read_whole() {
    // STARTTLS is the one eight-letter verb: the last four letters count.
    assert_eq!(p("STARTTLX"), Err(ParseError::UnknownCommand));
    assert_eq!(p("STARTLS1"), Err(ParseError::UnknownCommand));
    // The keyword after the verb is checked, not only counted; a line that
    // stops inside it or right after it is refused, not read past its end.
    let expected = Err(ParseError::Syntax("expected MAIL FROM:<address>"));
    for line in ["MAIL FORM:<a@b.example>", "MAIL FR", "MAIL"] {
        assert_eq!(p(line), expected, "{line}");
    }
    assert_eq!(
        p("RCPT OT:<a@b.example>"),
        Err(ParseError::Syntax("expected RCPT TO:<address>"))
    );
    assert!(p("MAIL FROM:").is_err());
    assert!(p("MAIL FROM:   ").is_err());
    // VRFY and EXPN need their argument, and keep it as written.
    assert_eq!(p("VRFY"), Err(ParseError::Syntax("VRFY needs an argument")));
    assert_eq!(p("EXPN"), Err(ParseError::Syntax("EXPN needs an argument")));
    assert_eq!(p("VRFY alice"), Ok(Command::Vrfy("alice")));
    assert_eq!(p("EXPN staff list"), Ok(Command::Expn("staff list")));
}

#[test]
fn parse_errors_say_what_is_wrong() {
    // What a log or a tool prints for each refusal.
    for (e, text) in [
        (ParseError::UnknownCommand, "command not recognized"),
        (ParseError::BadCharacters, "invalid characters in command"),
        (
            ParseError::Syntax("VRFY needs an argument"),
            "VRFY needs an argument",
        ),
        (
            ParseError::Address(AddressError::MissingBracket),
            &AddressError::MissingBracket.to_string(),
        ),
        (ParseError::UnknownParameter, "unsupported ESMTP parameter"),
    ] {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn paths_the_one_pass_reader_leaves_are_read_exactly() {
    // A quoted quote is escaped: the closing bracket is found after it.
    let line = r#"RCPT TO:<"a\"b"@example.com> "#;
    assert_eq!(
        p(line),
        Ok(Command::Rcpt {
            to: PathArg::Mailbox {
                route: "",
                local: r#""a\"b""#,
                domain: Some("example.com")
            }
        }),
        "{line}"
    );
    // Outside quotes a backslash escapes nothing: the bracket after it
    // closes the path, whose domain is then bad.
    assert_eq!(
        p(r#"RCPT TO:<"x"@a\>"#),
        Err(ParseError::Address(AddressError::BadDomain))
    );
    // A bare path (no brackets) is one word: a `>` at its end is part of
    // its domain, not a bracket closing a path that never opened.
    assert_eq!(
        p("RCPT TO:ab@example.com>"),
        Err(ParseError::Address(AddressError::BadDomain))
    );
    // Every hop of a route starts with `@`.
    assert_eq!(
        p("RCPT TO:<@a.example,xb.example:u@c.example>"),
        Err(ParseError::Address(AddressError::BadRoute))
    );
    // A path longer than the one-pass reader's 16-bit offsets is read by
    // the general parser, whole.
    let local = "a".repeat(70_000);
    let line = format!("RCPT TO:<{local}@example.com>");
    assert_eq!(
        p(&line),
        Ok(Command::Rcpt {
            to: PathArg::Mailbox {
                route: "",
                local: &local,
                domain: Some("example.com")
            }
        })
    );
}

#[test]
fn domains_and_literals_have_their_shape_checked() {
    for (line, e) in [
        // A non-domain octet among the first four of a domain.
        ("RCPT TO:<u@ab+c.example>", AddressError::BadDomain),
        ("RCPT TO:<u@a+.example>", AddressError::BadDomain),
        // A literal needs its closing bracket and something inside.
        ("RCPT TO:<u@[192.0.2.1>", AddressError::InvalidLiteral),
        ("RCPT TO:<u@[]>", AddressError::InvalidLiteral),
        // A route hop is a domain, never an address, even in brackets.
        ("RCPT TO:<@[a@b]:u@c.example>", AddressError::BadRoute),
    ] {
        assert_eq!(p(line), Err(ParseError::Address(e)), "{line}");
    }
    assert!(p("RCPT TO:<u@[192.0.2.1]>").is_ok());
}

#[test]
fn size_is_a_number_of_at_most_twenty_digits() {
    let size = |v: &str| match p(&format!("MAIL FROM:<a@b.example> SIZE={v}")) {
        Ok(Command::Mail { params, .. }) => Ok(params.size),
        Err(e) => Err(e),
        Ok(other) => panic!("{other:?}"),
    };
    let not_a_number = Err(ParseError::Syntax("SIZE value is not a number"));
    assert_eq!(size(""), not_a_number);
    assert_eq!(size(&"1".repeat(21)), not_a_number);
    assert_eq!(size(&"1".repeat(22)), not_a_number);
    assert_eq!(size("00000000000000001000"), Ok(Some(1000)));
    assert_eq!(size("18446744073709551615"), Ok(Some(u64::MAX)));
    // Twenty digits past u64: as large as can be, which no limit admits.
    assert_eq!(size("99999999999999999999"), Ok(Some(u64::MAX)));
}
