//! `relayguard probe` end to end against tiny fake relays on loopback: a
//! closed one passes, an open one that forwards to the probe's sink is
//! confirmed, one that accepts and drops is only suspected, and a server
//! that never greets or closes at once is an error (exit 2).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refuses foreign and routed recipients.
    Closed,
    /// Closed, but ends DATA at a dot line after a bare LF too, as Postfix
    /// 3.7 does by default: smuggled commands run.
    ClosedLfDot,
    /// Accepts everything and sends foreign mail to the sink.
    Open,
    /// Accepts everything and delivers nothing.
    BlackHole,
    /// Accepts the connection and never says anything.
    Silent,
    /// Accepts the connection and closes it at once.
    CloseAtOnce,
}

/// The fake relay: one thread per connection, until the test ends.
fn fake(mode: Mode, sink: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || session(s, mode, sink));
        }
    });
    addr
}

fn is_local(addr: &str) -> bool {
    let a = addr.to_ascii_lowercase();
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            (domain == "example.com" || domain == "mail.example.com") && !local.contains(['%', '!', '@', '"'])
        }
        None => false,
    }
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line.get(start..end).unwrap_or("").to_string()
}

fn session(stream: TcpStream, mode: Mode, sink: SocketAddr) {
    match mode {
        Mode::CloseAtOnce => return,
        Mode::Silent => {
            let mut s = stream;
            let mut b = [0u8; 64];
            while s.read(&mut b).unwrap_or(0) > 0 {}
            return;
        }
        _ => {}
    }
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    let _ = out.write_all(b"220 mail.example.com ESMTP fake\r\n");
    let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&line).to_string();
        let verb = text.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-mail.example.com\r\n250 PIPELINING\r\n",
            "MAIL" => {
                from = address(&text);
                rcpts.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                let a = address(&text);
                if matches!(mode, Mode::Closed | Mode::ClosedLfDot) && !is_local(&a) {
                    b"554 5.7.1 relay denied\r\n"
                } else {
                    rcpts.push(a);
                    b"250 2.1.5 ok\r\n"
                }
            }
            "DATA" if rcpts.is_empty() => b"554 5.5.1 no valid recipients\r\n",
            "DATA" => {
                let _ = out.write_all(b"354 go on\r\n");
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" && (data.is_empty() || data.ends_with(b"\r\n")) {
                        break;
                    }
                    let after_lf = data.is_empty() || data.ends_with(b"\n");
                    if mode == Mode::ClosedLfDot && after_lf && (line == b".\n" || line == b".\r\n") {
                        break;
                    }
                    data.extend_from_slice(&line);
                }
                let foreign: Vec<String> = rcpts.iter().filter(|r| !is_local(r)).cloned().collect();
                if mode == Mode::Open && !foreign.is_empty() {
                    forward(sink, &from, &foreign, &data);
                }
                rcpts.clear();
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                let _ = out.write_all(b"221 bye\r\n");
                return;
            }
            "RSET" | "NOOP" => b"250 ok\r\n",
            _ => b"500 5.5.2 what?\r\n",
        };
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

/// Relays a message to the sink, as an open relay does.
fn forward(sink: SocketAddr, from: &str, rcpts: &[String], data: &[u8]) {
    let s = TcpStream::connect(sink).unwrap();
    let mut out = s.try_clone().unwrap();
    let mut input = BufReader::new(s);
    let reply = |input: &mut BufReader<TcpStream>| loop {
        let mut l = String::new();
        input.read_line(&mut l).unwrap();
        if l.as_bytes().get(3) != Some(&b'-') {
            return l;
        }
    };
    reply(&mut input);
    let mut say = |cmd: String| {
        out.write_all(cmd.as_bytes()).unwrap();
        reply(&mut input)
    };
    say("EHLO mail.example.com\r\n".into());
    say(format!("MAIL FROM:<{from}>\r\n"));
    for r in rcpts {
        say(format!("RCPT TO:<{r}>\r\n"));
    }
    say("DATA\r\n".into());
    let mut body = data.to_vec();
    body.extend_from_slice(b".\r\n");
    say(String::from_utf8_lossy(&body).into_owned());
    say("QUIT\r\n".into());
}

/// A port free on loopback for the probe's sink.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

const CASES: &[&str] = &[
    "corpus/attacks/nmap-02-foreign-sender.smtp",
    "corpus/attacks/nmap-06-percent-hack-hostname.smtp",
    "corpus/attacks/smuggling-lf-dot-lf.smtp",
    "corpus/attacks/lan-non-local-sender-refused.smtp",
];

/// Runs probe against `target`; returns the exit code and the JSON.
fn probe(target: SocketAddr, sink: SocketAddr) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relayguard"))
        .args(["probe", &target.to_string(), "--sink", &sink.to_string()])
        .args(["--test-domain", "sink.test", "--mailbox", "alice@example.com"])
        .args(["--timeout", "5", "--wait", "3", "--quiet-ms", "50", "--json"])
        .args(CASES)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verdict<'a>(json: &'a serde_json::Value, name: &str) -> &'a str {
    json["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transcript"] == name)
        .and_then(|t| t["verdict"].as_str())
        .unwrap()
}

#[test]
fn a_closed_relay_passes() {
    let sink = free_port();
    let (code, json, err) = probe(fake(Mode::Closed, sink), sink);
    assert_eq!(code, 0, "{json:#}\n{err}");
    assert_eq!(verdict(&json, "nmap-02-foreign-sender.smtp"), "refused");
    assert_eq!(verdict(&json, "smuggling-lf-dot-lf.smtp"), "refused");
    // No --lan: the LAN transcript is skipped, not passed.
    assert_eq!(verdict(&json, "lan-non-local-sender-refused.smtp"), "skipped");
    assert_eq!(json["site"]["hostname"], "mail.example.com");
    assert_eq!(json["site"]["local_domain"], "example.com");
}

#[test]
fn an_open_relay_is_confirmed_by_what_reaches_the_sink() {
    let sink = free_port();
    let (code, json, err) = probe(fake(Mode::Open, sink), sink);
    assert_eq!(code, 1, "{json:#}\n{err}");
    assert_eq!(verdict(&json, "nmap-02-foreign-sender.smtp"), "confirmed");
    assert_eq!(verdict(&json, "nmap-06-percent-hack-hostname.smtp"), "confirmed");
    let received = json["sink"].as_array().unwrap();
    assert!(
        received
            .iter()
            .any(|m| m["rcpt"][0] == "RCPT TO:<relaytest@sink.test>"),
        "{received:?}"
    );
}

#[test]
fn an_open_relay_that_delivers_nothing_is_only_suspected() {
    let sink = free_port();
    let (code, json, err) = probe(fake(Mode::BlackHole, sink), sink);
    assert_eq!(code, 1, "{json:#}\n{err}");
    assert_eq!(verdict(&json, "nmap-02-foreign-sender.smtp"), "suspected");
    assert!(json["sink"].as_array().unwrap().is_empty());
}

#[test]
fn a_closed_relay_that_ends_data_at_a_bare_lf_is_suspected_of_smuggling() {
    let sink = free_port();
    let (code, json, err) = probe(fake(Mode::ClosedLfDot, sink), sink);
    assert_eq!(code, 1, "{json:#}\n{err}");
    // The relay itself is closed...
    assert_eq!(verdict(&json, "nmap-02-foreign-sender.smtp"), "refused");
    // ...but it answered the commands smuggled after `\n.\n`.
    assert_eq!(verdict(&json, "smuggling-lf-dot-lf.smtp"), "suspected");
    let t = json["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transcript"] == "smuggling-lf-dot-lf.smtp")
        .unwrap();
    assert!(t["smuggling"]["extra_replies"].as_u64().unwrap() >= 2, "{t:#}");
}

#[test]
fn a_dead_server_is_an_error_never_a_pass() {
    for mode in [Mode::Silent, Mode::CloseAtOnce] {
        let sink = free_port();
        let (code, _, err) = probe(fake(mode, sink), sink);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("greeting"), "{err}");
    }
}
