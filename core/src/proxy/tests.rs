use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn v1_tcp4_and_tcp6_are_read_and_leave_the_smtp_after_them() {
    let mut bytes = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\n".to_vec();
    let len = bytes.len();
    bytes.extend_from_slice(b"EHLO x\r\n");
    assert_eq!(
        parse(&bytes),
        Ok(Some((
            ProxyHeader::Proxied {
                version: 1,
                source: sa("203.0.113.7:56324"),
                destination: sa("192.0.2.1:25"),
            },
            len
        )))
    );
    let h = encode_v1(sa("[2001:db8::7]:1000"), sa("[2001:db8::1]:25"));
    assert_eq!(
        parse(&h).unwrap().unwrap().0,
        ProxyHeader::Proxied {
            version: 1,
            source: sa("[2001:db8::7]:1000"),
            destination: sa("[2001:db8::1]:25"),
        }
    );
    assert_eq!(
        parse(b"PROXY UNKNOWN\r\n"),
        Ok(Some((ProxyHeader::Local { version: 1 }, 15)))
    );
}

#[test]
fn v2_proxy_and_local_are_read() {
    for (src, dst) in [
        ("203.0.113.7:4000", "192.0.2.1:25"),
        ("[2001:db8::7]:4000", "[2001:db8::1]:25"),
    ] {
        let mut h = encode_v2(sa(src), sa(dst), false);
        let len = h.len();
        h.extend_from_slice(b"EHLO");
        assert_eq!(
            parse(&h),
            Ok(Some((
                ProxyHeader::Proxied {
                    version: 2,
                    source: sa(src),
                    destination: sa(dst),
                },
                len
            )))
        );
    }
    let local = encode_v2(sa("0.0.0.0:0"), sa("0.0.0.0:0"), true);
    assert_eq!(
        parse(&local),
        Ok(Some((ProxyHeader::Local { version: 2 }, local.len())))
    );
}

#[test]
fn every_proper_prefix_asks_for_more() {
    let v1 = encode_v1(sa("203.0.113.7:1"), sa("192.0.2.1:25"));
    let v2 = encode_v2(sa("203.0.113.7:1"), sa("192.0.2.1:25"), false);
    for h in [v1, v2] {
        for n in 1..h.len() {
            assert_eq!(parse(&h[..n]), Ok(None), "{n} of {h:?}");
            assert!(looks_like_header(&h[..n]));
        }
    }
}

#[test]
fn plain_smtp_and_malformed_headers_are_told_apart() {
    assert_eq!(parse(b"EHLO x\r\n"), Err(ProxyError::NotAHeader));
    assert!(!looks_like_header(b"EHLO x\r\n"));
    assert!(!looks_like_header(b""));
    for bad in [
        &b"PROXY TCP4 203.0.113.7 192.0.2.1 1 25\n"[..],
        b"PROXY TCP4 2001:db8::1 192.0.2.1 1 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 01 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 65536\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
        b"PROXY UDP4 203.0.113.7 192.0.2.1 1 25\r\n",
        b"PROXY TCP4  203.0.113.7 192.0.2.1 1 25\r\n",
    ] {
        assert!(
            matches!(parse(bad), Err(ProxyError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut long = b"PROXY TCP4 ".to_vec();
    long.resize(V1_MAX, b'1');
    assert!(matches!(parse(&long), Err(ProxyError::Malformed(_))));

    let good = encode_v2(sa("203.0.113.7:1"), sa("192.0.2.1:25"), false);
    let mut wrong_version = good.clone();
    wrong_version[12] = 0x11;
    let mut wrong_command = good.clone();
    wrong_command[12] = 0x22;
    let mut udp = good.clone();
    udp[13] = 0x12;
    let mut short_block = good.clone();
    short_block[15] = 4;
    let mut huge = good.clone();
    huge[14] = 0xff;
    for b in [wrong_version, wrong_command, udp, short_block, huge] {
        assert!(matches!(parse(&b), Err(ProxyError::Malformed(_))), "{b:?}");
    }
}
