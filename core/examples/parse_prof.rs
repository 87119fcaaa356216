//! Parses the benchmark's command mix in a loop, for profilers that count
//! instructions (callgrind): `parse_prof N [relayguard|smtp-proto]`.
use std::hint::black_box;

const MIX: &[&[u8]] = &[
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(100_000, |a| a.parse().expect("N"));
    let which = args.next().unwrap_or_else(|| "relayguard".into());
    let mut ok = 0u32;
    for _ in 0..n {
        for line in MIX {
            let good = if which == "smtp-proto" {
                smtp_proto::Request::parse(&mut black_box(line).iter()).is_ok()
            } else {
                let l = black_box(line);
                let l = l.strip_suffix(b"\r\n").unwrap_or(l);
                relayguard_core::parse_command(l).is_ok()
            };
            ok += good as u32;
        }
    }
    println!("{which}: {ok} of {} parsed", n as usize * MIX.len());
}
