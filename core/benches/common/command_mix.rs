//! The command mix that the parse benchmark and the parse profiler share.

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
