use super::*;

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

/// Delivery asks a destination for the address it is sent to: none for a
/// local mailbox, the recipient for the others.
#[test]
fn only_destinations_that_leave_have_a_remote_mailbox() {
    let m = mailbox("bob@elsewhere.example");
    assert_eq!(
        Destination::Remote { mailbox: m.clone() }.remote_mailbox(),
        Some(&m)
    );
    assert_eq!(
        Destination::RelayTo { mailbox: m.clone() }.remote_mailbox(),
        Some(&m)
    );
    let local = Destination::Local {
        mailbox: "alice@example.com".into(),
    };
    assert_eq!(local.remote_mailbox(), None);
}

/// `explain` and the logs print destinations and reasons as these texts.
#[test]
fn destinations_and_reasons_read_as_text() {
    let m = mailbox("bob@elsewhere.example");
    let local = Destination::Local {
        mailbox: "alice@example.com".into(),
    };
    assert_eq!(local.to_string(), "local mailbox alice@example.com");
    assert_eq!(
        Destination::Remote { mailbox: m.clone() }.to_string(),
        "remote bob@elsewhere.example"
    );
    assert_eq!(
        Destination::RelayTo { mailbox: m }.to_string(),
        "relay to bob@elsewhere.example (backup MX)"
    );
    assert_eq!(Reason::Allowed.to_string(), "allowed");
    assert_eq!(
        Reason::BlackListedClient.to_string(),
        "client address is on the black list"
    );
}

fn policy(extra: &str) -> Policy {
    let toml = format!(
        "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n[lan]\nnetworks = [\"192.168.1.0/24\"]\n{extra}"
    );
    Policy::new(Config::from_toml(&toml).unwrap()).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy_from(toml: &str) -> Policy {
    Policy::new(Config::from_toml(toml).unwrap()).unwrap()
}

/// A client that has said nothing yet: no HELO, no login, no sender.
fn fresh(client: &str) -> Context<'static> {
    Context {
        client: ip(client),
        helo: None,
        user: None,
        sender: None,
        accepted: 0,
    }
}

/// A black-listed network is refused at the greeting, except the addresses
/// the white list names; the rest of the world is admitted.
#[test]
fn the_black_list_refuses_at_connect_and_the_white_list_beats_it() {
    let p = policy("[lists]\nblack = [\"203.0.113.0/24\"]\nwhite = [\"203.0.113.7\"]\n");
    let refused = p.connect(ip("203.0.113.8")).unwrap_err();
    assert_eq!(
        (refused.reply.code, refused.reason),
        (554, Reason::BlackListedClient)
    );
    assert_eq!(p.connect(ip("203.0.113.7")), Ok(()));
    assert_eq!(p.connect(ip("198.51.100.1")), Ok(()));
}

/// An outside client that has not logged in may not call itself a local
/// domain; a LAN client or a logged-in one may, and any client may give
/// its own name; with the setting off, nobody is refused.
#[test]
fn a_local_helo_from_outside_is_refused_unless_inside_or_logged_in() {
    let ctx = |client: &str, user: Option<&'static str>| Context {
        client: ip(client),
        helo: None,
        user,
        sender: None,
        accepted: 0,
    };
    let p = policy("");
    let refused = p.helo(&ctx("203.0.113.8", None), "example.com").unwrap_err();
    assert_eq!(
        (refused.reply.code, refused.reason),
        (550, Reason::LocalHeloOutside)
    );
    assert_eq!(p.helo(&ctx("203.0.113.8", None), "client.example"), Ok(()));
    assert_eq!(p.helo(&ctx("192.168.1.10", None), "example.com"), Ok(()));
    assert_eq!(p.helo(&ctx("203.0.113.8", Some("carol")), "example.com"), Ok(()));
    let off = policy("[lists]\nreject_local_helo_outside = false\n");
    assert_eq!(off.helo(&ctx("203.0.113.8", None), "example.com"), Ok(()));
}

/// The percent hack is undone at most four times: an address routed four
/// times through this server's own domain reaches the mailbox, one routed
/// five times is left as written, a local part no mailbox has.
#[test]
fn the_percent_hack_is_undone_four_times_and_no_more() {
    let p = policy_from(
        "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\nmailboxes = [\"alice@example.com\"]\n[lan]\nnetworks = [\"192.168.1.0/24\"]\n[relay]\npercent_hack = true\n",
    );
    let ctx = fresh("192.168.1.10");
    let routed = |levels: usize| format!("<alice{}@example.com>", "%example.com".repeat(levels));
    for levels in 1..=4 {
        let d = p.rcpt(&ctx, &crate::parse_path(&routed(levels)).unwrap());
        assert!(
            matches!(&d, Decision::Accept { destination: Destination::Local { mailbox }, .. } if mailbox == "alice@example.com"),
            "{levels}: {d:?}"
        );
    }
    let d = p.rcpt(&ctx, &crate::parse_path(&routed(5)).unwrap());
    assert!(
        matches!(&d, Decision::Refuse(r) if r.reply.code == 550),
        "5: {d:?}"
    );
}

/// A percent-hack rewrite whose local part may not stand unquoted (a
/// space, a quote, a backslash, a parenthesis, dots out of place) is
/// quoted again before it is decided on, so that it names the mailbox it
/// spelled (named by its dequoted key) and is not refused as bad syntax.
#[test]
fn a_rewritten_local_part_is_quoted_again() {
    let p = policy_from(
        r#"hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ['"\""@example.com', '"\\"@example.com', '"a b"@example.com', '"a\"b"@example.com', '"a\\b"@example.com', '"a(b"@example.com', '"a..b"@example.com', '".a"@example.com', '"b."@example.com']
[lan]
networks = ["192.168.1.0/24"]
[relay]
percent_hack = true
"#,
    );
    let ctx = fresh("192.168.1.10");
    for (rcpt, mailbox) in [
        (r#"<"a b%example.com"@example.com>"#, "a b@example.com"),
        (r#"<"a\"b%example.com"@example.com>"#, r#"a"b@example.com"#),
        (r#"<"a\\b%example.com"@example.com>"#, r"a\b@example.com"),
        // Nothing but the character that needs the quotes.
        (r#"<"\"%example.com"@example.com>"#, r#""@example.com"#),
        (r#"<"\\%example.com"@example.com>"#, r"\@example.com"),
        // Graphic, but not a dot-string: needs the quotes all the same.
        (r#"<"a(b%example.com"@example.com>"#, "a(b@example.com"),
        (r#"<"a..b%example.com"@example.com>"#, "a..b@example.com"),
        (r#"<".a%example.com"@example.com>"#, ".a@example.com"),
        (r#"<"b.%example.com"@example.com>"#, "b.@example.com"),
    ] {
        let d = p.rcpt(&ctx, &crate::parse_path(rcpt).unwrap());
        assert!(
            matches!(&d, Decision::Accept { destination: Destination::Local { mailbox: m }, .. } if m == mailbox),
            "{rcpt}: {d:?}"
        );
    }
}

/// With the `lan-check-off` bug a local sender counts as inside: the
/// MAIL check of a local sender from outside must see the sender too, or
/// it would refuse the session before the bug could show at RCPT.
#[test]
fn the_local_sender_check_sees_the_sender() {
    let config = Config::from_toml(
        "hostname = \"mail.example.com\"\n[domains]\nlocal = [\"example.com\"]\n[lan]\nnetworks = [\"192.168.1.0/24\"]\n",
    )
    .unwrap();
    assert!(config.lists.reject_local_sender_outside);
    let ctx = fresh("203.0.113.9");
    let from = crate::parse_path("<alice@example.com>").unwrap();
    let sound = Policy::new(config.clone()).unwrap();
    assert!(sound.mail(&ctx, &from).is_err());
    let bugged = Policy::with_bugs(config, Bugs::NONE.with(Bug::LanCheckOff)).unwrap();
    assert_eq!(bugged.mail(&ctx, &from), Ok(()));
}

/// Address entries of the black list refuse a sender at MAIL and a
/// recipient at RCPT; the white list takes an address back out of it.
#[test]
fn black_and_white_listed_addresses() {
    let p = policy(
        r#"[lists]
black = ["*@spam.example", "mallory@example.com"]
white = ["friend@spam.example"]
"#,
    );
    let ctx = fresh("192.168.1.10");
    let path = |s: &str| crate::parse_path(s).unwrap();
    let refused = |r: Result<(), Refusal>| matches!(r, Err(r) if r.reason == Reason::BlackListedSender);
    assert!(refused(p.mail(&ctx, &path("<bot@spam.example>"))));
    assert_eq!(p.mail(&ctx, &path("<friend@spam.example>")), Ok(()));
    assert_eq!(p.mail(&ctx, &path("<alice@example.com>")), Ok(()));
    let d = p.rcpt(&ctx, &path("<mallory@example.com>"));
    assert!(
        matches!(&d, Decision::Refuse(r) if r.reason == Reason::BlackListedRecipient),
        "{d:?}"
    );
    let d = p.rcpt(&ctx, &path("<alice@example.com>"));
    assert!(matches!(&d, Decision::Accept { .. }), "{d:?}");
}

/// With a list of mailboxes, postmaster is accepted at every local domain
/// even when the list does not name it (RFC 5321 §4.5.1); another unlisted
/// name is not.
#[test]
fn postmaster_needs_no_listing() {
    let p = policy_from(
        r#"hostname = "mail.example.com"
[domains]
local = ["example.com", "example.org"]
mailboxes = ["alice@example.com"]
"#,
    );
    let ctx = fresh("203.0.113.9");
    let d = p.rcpt(&ctx, &crate::parse_path("<PostMaster@example.org>").unwrap());
    assert!(
        matches!(&d, Decision::Accept { destination: Destination::Local { mailbox }, .. } if mailbox == "postmaster@example.com"),
        "{d:?}"
    );
    let d = p.rcpt(&ctx, &crate::parse_path("<bob@example.org>").unwrap());
    assert!(
        matches!(&d, Decision::Refuse(r) if r.reason == Reason::UnknownMailbox),
        "{d:?}"
    );
}
