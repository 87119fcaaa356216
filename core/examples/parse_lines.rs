//! Nanoseconds per command line, relayguard against smtp-proto, one line at
//! a time: `parse_lines`. A quick look; the figures of record come from
//! `cargo bench --bench protocol`.
use std::hint::black_box;
use std::time::Instant;

const MIX: &[&[u8]] = &[
    b"EHLO client.example.org\r\n",
    b"MAIL FROM:<sender.name@example.org> SIZE=4096 BODY=8BITMIME\r\n",
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<@relay.example:carol.jones@example.com>\r\n",
    b"MAIL FROM:<>\r\n",
    b"RCPT TO:<\"quoted@local\"@example.com>\r\n",
    b"QUIT\r\n",
];

fn main() {
    for line in MIX {
        let n: u32 = std::env::var("N").map_or(2_000_000, |v| v.parse().unwrap());
        let t = Instant::now();
        for _ in 0..n {
            let l = black_box(*line);
            black_box(relayguard_core::command::parse(&l[..l.len() - 2]).is_ok());
        }
        let ours = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        for _ in 0..n {
            black_box(smtp_proto::Request::parse(&mut black_box(*line).iter()).is_ok());
        }
        let theirs = t.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{ours:6.1} {theirs:6.1}  {}",
            String::from_utf8_lossy(&line[..line.len() - 2])
        );
    }
}
