//! The command mix that the parse benchmark and the parse profiler share,
//! and how each parser is called on one of its lines.

/// What a busy relay sees: a transaction's commands, with the lenient and
/// parameter-carrying forms real clients send.
pub const MIX: &[&[u8]] = &[
    b"EHLO client.example.org\r\n",
    b"MAIL FROM:<sender.name@example.org> SIZE=4096 BODY=8BITMIME\r\n",
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<bob.smith@example.com>\r\n",
    b"RCPT TO:<@relay.example:carol.jones@example.com>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"MAIL FROM:<>\r\n",
    b"RCPT TO:<\"quoted@local\"@example.com>\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
];

/// As the session does: the line's end is found, then the line parsed.
pub fn parse_relayguard(line: &[u8]) -> bool {
    let end = relayguard_core::line_end(line).unwrap_or(line.len());
    let text = &line[..end];
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    relayguard_core::parse_command(text).is_ok()
}

/// smtp-proto finds the line's end itself.
pub fn parse_smtp_proto(line: &[u8]) -> bool {
    smtp_proto::Request::parse(&mut line.iter()).is_ok()
}
