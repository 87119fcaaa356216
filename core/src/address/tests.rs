use super::*;

fn dom(s: &str) -> Domain {
    canonical_domain(s).unwrap()
}

#[test]
fn domains_canonicalize() {
    assert_eq!(dom("EXAMPLE.com."), Domain::Name("example.com".into()));
    assert_eq!(
        dom("Bücher.example"),
        Domain::Name("xn--bcher-kva.example".into())
    );
    assert_eq!(
        dom("XN--BCHER-KVA.example"),
        Domain::Name("xn--bcher-kva.example".into())
    );
    assert_eq!(
        dom("[198.51.100.25]"),
        Domain::Literal("198.51.100.25".parse().unwrap())
    );
    assert_eq!(
        dom("[IPv6:2001:db8::1]"),
        Domain::Literal("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        dom("[ipv6:2001:DB8::1]"),
        Domain::Literal("2001:db8::1".parse().unwrap())
    );
}

#[test]
fn bad_domains_are_refused() {
    for (d, e) in [
        ("example..com", AddressError::BadDomain),
        ("example.com..", AddressError::BadDomain),
        (".", AddressError::EmptyDomain),
        ("[321.1.2.3]", AddressError::InvalidLiteral),
        ("[1.2.3]", AddressError::InvalidLiteral),
        ("[IPv6:zz::1]", AddressError::InvalidLiteral),
        ("1.2.3", AddressError::NumericDomain),
        ("1.2.3.4", AddressError::NumericDomain),
        ("host:25", AddressError::BadDomain),
        ("-a.example", AddressError::BadDomain),
    ] {
        assert_eq!(canonical_domain(d), Err(e), "{d}");
    }
}

#[test]
fn literals_with_non_ascii_do_not_panic() {
    // "abcdé": byte 5 falls inside the é.
    for d in ["[abcdé]", "[IPvé6:1]", "[ééé]", "[IPv6é::1]"] {
        assert_eq!(canonical_domain(d), Err(AddressError::InvalidLiteral), "{d}");
    }
    assert_eq!(Mailbox::parse("u@[abcdé]"), Err(AddressError::InvalidLiteral));
}

#[test]
fn ipv4_mapped_literal_is_the_ipv4_literal() {
    assert_eq!(dom("[IPv6:::ffff:198.51.100.25]"), dom("[198.51.100.25]"));
    assert_eq!(dom("[IPv6:::FFFF:c633:6419]").to_string(), "[198.51.100.25]");
}

#[test]
fn canonical_form_is_idempotent() {
    for d in [
        "ExAmple.COM.",
        "bücher.example",
        "[IPv6:2001:DB8::1]",
        "a_b.example",
    ] {
        let once = dom(d).to_string();
        assert_eq!(dom(&once).to_string(), once);
    }
}

#[test]
fn routing_is_found_in_every_form() {
    let cases = [
        (
            "relaytest%nmap.scanme.org",
            RoutingKind::Percent,
            "relaytest",
            "nmap.scanme.org",
        ),
        (
            "\"relaytest%nmap.scanme.org\"",
            RoutingKind::Percent,
            "relaytest",
            "nmap.scanme.org",
        ),
        (
            "\"relaytest@nmap.scanme.org\"",
            RoutingKind::At,
            "relaytest",
            "nmap.scanme.org",
        ),
        (
            "nmap.scanme.org!relaytest",
            RoutingKind::Bang,
            "relaytest",
            "nmap.scanme.org",
        ),
        ("a%b%c", RoutingKind::Percent, "a%b", "c"),
        ("a!b!c", RoutingKind::Bang, "b!c", "a"),
    ];
    for (local, kind, l, d) in cases {
        let m = Mailbox::from_parts(local, Some("example.com")).unwrap();
        assert!(m.is_routed(), "{local}");
        let r = m.routing().unwrap();
        assert_eq!(
            (r.kind, r.local.as_str(), r.domain.as_str()),
            (kind, l, d),
            "{local}"
        );
    }
    assert!(!Mailbox::parse("alice@example.com").unwrap().is_routed());
}

/// What the dot-string and quoted-string rules let through and what they
/// refuse, at their edges.
#[test]
fn local_part_edges() {
    // A backslash late in a quoted local part skips one octet, not more.
    assert_eq!(
        split_mailbox(r#""abcd\""@x.example"#),
        Ok((r#""abcd\"""#, Some("x.example")))
    );
    // Outside quotes only atext and single dots.
    for bad in ["a(b", "a)b", "a,b", "a;b", "a:b", "a[b", "a]b", "a<b", "a>b"] {
        assert_eq!(
            Mailbox::from_parts(bad, Some("example.com")),
            Err(AddressError::BadLocalPart),
            "{bad}"
        );
    }
    // The length limit is inclusive.
    let longest = "a".repeat(MAX_LOCAL);
    assert!(Mailbox::from_parts(&longest, Some("example.com")).is_ok());
    assert_eq!(
        Mailbox::from_parts(&format!("{longest}a"), Some("example.com")),
        Err(AddressError::LocalPartTooLong)
    );
    // Inside quotes, no controls, and a backslash quotes printable ASCII
    // only.
    for bad in ["\"a\u{1}b\"", "\"a\u{7f}b\"", "\"a\\\u{1}b\"", "\"a\\\u{e9}b\""] {
        assert_eq!(
            Mailbox::from_parts(bad, Some("example.com")),
            Err(AddressError::BadLocalPart),
            "{bad:?}"
        );
    }
    // A quoted local part needs both quotes.
    for bad in ["\"", "\"abc"] {
        assert_eq!(
            Mailbox::from_parts(bad, Some("example.com")),
            Err(AddressError::UnterminatedQuote),
            "{bad}"
        );
    }
}

/// A name may have 255 octets and no more, counted as written for an
/// ASCII name and after IDNA for the others.
#[test]
fn domain_length_limits() {
    let l63 = "a".repeat(63);
    let ascii255 = format!("{l63}.{l63}.{l63}.{l63}");
    assert_eq!(ascii255.len(), MAX_DOMAIN);
    assert!(canonical_domain(&ascii255).is_ok());
    let ascii256 = format!("{l63}.{l63}.{l63}.{}.a", &l63[1..]);
    assert_eq!(ascii256.len(), MAX_DOMAIN + 1);
    assert_eq!(canonical_domain(&ascii256), Err(AddressError::DomainTooLong));
    // `é` and 55 `a` make a 63-octet A-label (`xn--a…a-91e`) from 57 octets.
    let u55 = format!("é{}", "a".repeat(55));
    let u54 = format!("é{}", "a".repeat(54));
    let idna255 = format!("{u55}.{u55}.{u55}.{u55}");
    assert!(idna255.len() < MAX_DOMAIN);
    match canonical_domain(&idna255) {
        Ok(Domain::Name(n)) => assert_eq!(n.len(), MAX_DOMAIN),
        other => panic!("{other:?}"),
    }
    let idna256 = format!("{u55}.{u55}.{u55}.{u54}.a");
    assert!(idna256.len() < MAX_DOMAIN);
    assert_eq!(canonical_domain(&idna256), Err(AddressError::Idna));
    // A name IDNA maps to nothing (a soft hyphen).
    assert_eq!(canonical_domain("\u{ad}"), Err(AddressError::Idna));
}

#[test]
fn double_and_trailing_at_are_refused() {
    assert_eq!(
        Mailbox::parse("u@f.example@example.com"),
        Err(AddressError::BadDomain)
    );
    assert_eq!(Mailbox::parse("u@"), Err(AddressError::TrailingAt));
    assert_eq!(Mailbox::parse("@example.com"), Err(AddressError::EmptyLocalPart));
    assert_eq!(
        Mailbox::parse("\"\"@example.com"),
        Err(AddressError::EmptyLocalPart)
    );
    assert_eq!(
        Mailbox::parse("a..b@example.com"),
        Err(AddressError::BadLocalPart)
    );
    assert_eq!(Mailbox::parse(".a@example.com"), Err(AddressError::BadLocalPart));
    assert_eq!(Mailbox::parse("a.@example.com"), Err(AddressError::BadLocalPart));
    assert_eq!(
        Mailbox::parse("\"abc@example.com"),
        Err(AddressError::UnterminatedQuote)
    );
}

#[test]
fn quoted_local_parts_are_dequoted() {
    let m = Mailbox::parse("\"john \\\"x\\\" doe\"@example.com").unwrap();
    assert!(m.quoted);
    assert_eq!(m.dequoted, "john \"x\" doe");
    assert_eq!(m.to_string(), "\"john \\\"x\\\" doe\"@example.com");
}

#[test]
fn paths_with_routes() {
    let p = parse_path("<@[198.51.100.25],@mail.example.com:relaytest@nmap.scanme.org>").unwrap();
    assert_eq!(p.route.len(), 2);
    let m = p.mailbox.as_ref().unwrap();
    assert_eq!(m.domain, Some(Domain::Name("nmap.scanme.org".into())));
    assert_eq!(parse_path("<>").unwrap(), Path::NULL);
    assert!(parse_path("<>").unwrap().is_null());
    assert!(!p.is_null());
    assert_eq!(parse_path("<@a.example>"), Err(AddressError::BadRoute));
    assert_eq!(parse_path("<@a.example:>"), Err(AddressError::BadRoute));
    assert_eq!(parse_path("<@:u@example.com>"), Err(AddressError::BadRoute));
    assert_eq!(parse_path("u@example.com"), Err(AddressError::MissingBracket));
    let unq = parse_path("<postmaster>").unwrap();
    assert_eq!(unq.mailbox.unwrap().domain, None);
}

#[test]
fn display_round_trips() {
    for s in [
        "<>",
        "<alice@example.com>",
        "<@a.example,@b.example:u@c.example>",
        "<\"a b\"@[1.2.3.4]>",
    ] {
        assert_eq!(parse_path(s).unwrap().to_string(), s);
    }
}

/// The rules of `canonical_domain` for names written the plain way, in
/// several passes (the form before the one-pass checks): the reference the
/// property below holds the fast path to.
fn canonical_name_reference(d: &str) -> Result<Domain, AddressError> {
    let ldh = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if d.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    if d.bytes().any(|b| b < 0x80 && !(ldh(b) || b == b'.')) {
        return Err(AddressError::BadDomain);
    }
    let name = if d.is_ascii()
        && !d
            .split('.')
            .any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--"))
    {
        d.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(d).map_err(|_| AddressError::Idna)?
    };
    if name.is_empty() || name.len() > MAX_DOMAIN {
        return Err(AddressError::Idna);
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::BadDomain);
        }
        if !label.bytes().all(ldh) {
            return Err(AddressError::BadDomain);
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AddressError::NumericDomain);
    }
    Ok(Domain::Name(name))
}

proptest::proptest! {
    /// Names made of letters, digits, hyphens, underscores, dots, `xn--`
    /// prefixes, a non-LDH octet and a U-label character, in labels of up
    /// to 70: the one-pass checks give what the reference gives.
    #[test]
    fn one_pass_domain_checks_agree_with_the_reference(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "a", "Z", "0", "9", "-", "_", ".", "xn--", "XN--", "!", "ü",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ]),
            1..12,
        ),
    ) {
        let d: String = parts.concat();
        proptest::prop_assert_eq!(canonical_domain(&d), canonical_name_reference(&d), "{:?}", d);
    }
}

#[test]
fn a_label_may_hold_63_octets_not_64() {
    let label = |n| "a".repeat(n);
    assert!(canonical_domain(&format!("{}.example", label(63))).is_ok());
    assert_eq!(
        canonical_domain(&format!("{}.example", label(64))),
        Err(AddressError::BadDomain)
    );
    assert_eq!(
        canonical_domain(&format!("example.{}", label(64))),
        Err(AddressError::BadDomain)
    );
}
