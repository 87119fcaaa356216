use super::*;

#[test]
fn one_line_with_enhanced_code() {
    let r = Reply::new(250, Enhanced(2, 1, 0), "Sender OK");
    assert_eq!(r.to_bytes(), b"250 2.1.0 Sender OK\r\n");
}

#[test]
fn multi_line_uses_dash_until_last() {
    let r = Reply::plain(250, vec!["mx".into(), "PIPELINING".into(), "8BITMIME".into()]);
    assert_eq!(r.to_bytes(), b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
}

#[test]
fn text_is_cleaned_and_cut() {
    let r = Reply::new(550, Enhanced(5, 1, 1), format!("a\r\nb{}", "x".repeat(1000)));
    let b = r.to_bytes();
    assert!(b.len() <= MAX_REPLY_LINE);
    assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
    assert!(check_line(&b).is_ok());
}

#[test]
fn check_line_catches_bad_lines() {
    assert_eq!(check_line(b"250 ok\r\n"), Ok((250, false)));
    assert_eq!(check_line(b"250-ok\r\n"), Ok((250, true)));
    assert_eq!(check_line(b"250\r\n"), Ok((250, false)));
    assert_eq!(check_line(b"250 ok\n"), Err(LineError::NoCrlf));
    assert_eq!(check_line(b"25x ok\r\n"), Err(LineError::BadCode));
    assert_eq!(check_line(b"650 ok\r\n"), Err(LineError::BadCode));
    assert_eq!(check_line(b"250_ok\r\n"), Err(LineError::BadSeparator));
    assert_eq!(check_line(b"250 o\rk\r\n"), Err(LineError::ControlCharacter));
    let long = [b"250 ".as_slice(), &[b'a'; 600], b"\r\n"].concat();
    assert!(matches!(check_line(&long), Err(LineError::TooLong(_))));
}

#[test]
fn reader_joins_multi_line_replies_across_splits() {
    let mut r = ReplyReader::new();
    r.push(b"250-mx.example\r\n250-PIPE");
    assert_eq!(r.next_reply(), Ok(None));
    r.push(b"LINING\r\n250 SIZE 10\r\n354 go\r\n");
    let a = r.next_reply().unwrap().unwrap();
    assert_eq!(a.code, 250);
    assert_eq!(a.lines, vec!["mx.example", "PIPELINING", "SIZE 10"]);
    let b = r.next_reply().unwrap().unwrap();
    assert_eq!(b.code, 354);
    assert_eq!(r.next_reply(), Ok(None));
}

#[test]
fn reader_splits_off_enhanced_codes() {
    let mut r = ReplyReader::new();
    r.push(b"550 5.7.1 Relay access denied\r\n");
    let a = r.next_reply().unwrap().unwrap();
    assert_eq!(a.enhanced, Some(Enhanced(5, 7, 1)));
    assert_eq!(a.lines, vec!["Relay access denied"]);
    assert_eq!(a.to_bytes(), b"550 5.7.1 Relay access denied\r\n");
}

#[test]
fn reader_refuses_code_change() {
    let mut r = ReplyReader::new();
    r.push(b"250-a\r\n251 b\r\n");
    assert!(matches!(r.next_reply(), Err(LineError::CodeChanged { .. })));
}
