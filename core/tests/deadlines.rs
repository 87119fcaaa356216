//! Hostile peers against the sans-IO session, on a fake clock: deadlines
//! that trickling octets do not move, the lifetime cap, backpressure on a
//! client that does not read, and the stop after a failed AUTH.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::{Config, MAX_PENDING_OUTPUT, Output, Peer, Policy, Session};

const CONFIG: &str = r#"
hostname = "mail.example.com"
[domains]
local = ["example.com"]
[auth]
users = [{ name = "carol", password = "secret", relay = true }]
[limits]
max_errors = 1000
command_timeout_secs = 10
data_timeout_secs = 30
min_data_rate = 500
session_timeout_secs = 60
"#;

fn policy(bugs: Bugs) -> Arc<Policy> {
    Arc::new(Policy::with_bugs(Config::from_toml(CONFIG).unwrap(), bugs).unwrap())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn start(bugs: Bugs) -> Session {
    let peer = Peer::direct("203.0.113.7".parse::<IpAddr>().unwrap());
    let mut s = Session::new(policy(bugs), peer, Duration::ZERO);
    drain(&mut s);
    s
}

/// Everything the session sends, and whether it closed.
fn drain(s: &mut Session) -> (String, bool) {
    let mut text = String::new();
    let mut closed = false;
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send(b) => text.push_str(&String::from_utf8_lossy(&b)),
            Output::Message(_) => s.message_stored(Duration::ZERO, Ok("id".into())),
            Output::Close => closed = true,
            Output::StartTls => {}
            Output::Body(_) | Output::DropBody => {}
        }
    }
    (text, closed)
}

/// Feeds `bytes` one octet every `every`, from `from`; calls the timeout
/// whenever it falls before the next octet. Returns when and with what the
/// session closed, if it did.
fn trickle(s: &mut Session, from: Duration, every: Duration, bytes: &[u8]) -> Option<(Duration, String)> {
    let mut now = from;
    for &b in bytes {
        if let Some(d) = s.poll_timeout().filter(|&d| d <= now) {
            s.handle_timeout(d);
            let (text, closed) = drain(s);
            if closed {
                return Some((d, text));
            }
        }
        s.handle_input(now, &[b]);
        let (text, closed) = drain(s);
        if closed {
            return Some((now, text));
        }
        now += every;
    }
    None
}

#[test]
fn a_command_line_must_be_complete_within_the_timeout_of_its_first_octet() {
    // One byte every 3 s, command_timeout 10 s: cut 10 s after the first.
    let mut s = start(Bugs::NONE);
    let line = b"EHLO a-rather-slow-client.example\r\n";
    let (at, text) = trickle(&mut s, secs(1.0), secs(3.0), line).expect("cut off");
    assert_eq!(at, secs(11.0));
    assert!(text.starts_with("421 4.4.2 "), "{text}");
}

#[test]
fn with_idle_timer_rearms_only_the_lifetime_cuts_the_trickle() {
    let mut s = start(Bugs::NONE.with(Bug::IdleTimerRearms));
    let line = b"EHLO a-rather-slow-client.example\r\n";
    let (at, _) = trickle(&mut s, secs(1.0), secs(3.0), line).expect("cut off");
    assert_eq!(at, secs(60.0));
}

#[test]
fn a_complete_line_starts_a_new_deadline() {
    let mut s = start(Bugs::NONE);
    s.handle_input(secs(9.0), b"NOOP\r\nNO");
    drain(&mut s);
    // The partial "NO" began at 9 s.
    assert_eq!(s.poll_timeout(), Some(secs(19.0)));
    s.handle_input(secs(12.0), b"OP\r\n");
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(secs(22.0)));
}

fn into_data(s: &mut Session, now: Duration) {
    for l in [
        "EHLO c.example\r\n",
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<postmaster@example.com>\r\n",
        "DATA\r\n",
    ] {
        s.handle_input(now, l.as_bytes());
        drain(s);
    }
}

#[test]
fn data_below_the_minimum_rate_is_cut_after_the_grace() {
    let mut s = start(Bugs::NONE);
    into_data(&mut s, secs(1.0));
    let body = vec![b'x'; 100];
    // 30 s of grace, then 500 octets/s: a byte every 3 s earns 2 ms each.
    let (at, text) = trickle(&mut s, secs(2.0), secs(3.0), &body).expect("cut off");
    assert!(at > secs(31.0) && at < secs(31.1), "{at:?}");
    assert!(text.starts_with("421 4.4.2 "), "{text}");
}

#[test]
fn data_below_the_minimum_rate_with_idle_timer_rearms_is_cut_only_at_the_lifetime() {
    let mut s = start(Bugs::NONE.with(Bug::IdleTimerRearms));
    into_data(&mut s, secs(1.0));
    let (at, _) = trickle(&mut s, secs(2.0), secs(3.0), &[b'x'; 100]).expect("cut off");
    assert_eq!(at, secs(60.0));
}

#[test]
fn data_above_the_minimum_rate_goes_on_past_the_grace() {
    let cfg = CONFIG.replace("session_timeout_secs = 60", "session_timeout_secs = 3600");
    let p = Arc::new(Policy::new(Config::from_toml(&cfg).unwrap()).unwrap());
    let mut s = Session::new(p, Peer::direct("203.0.113.7".parse().unwrap()), Duration::ZERO);
    drain(&mut s);
    into_data(&mut s, Duration::ZERO);
    // 600 octets a second for 100 s: more than the minimum, never cut.
    let line = [b'y'; 598];
    for t in 1..=100u64 {
        s.handle_input(secs(t as f64), &line);
        s.handle_input(secs(t as f64), b"\r\n");
        assert!(s.poll_timeout().unwrap() > secs(t as f64 + 1.0), "at {t} s");
    }
    s.handle_input(secs(101.0), b".\r\n");
    let (text, closed) = drain(&mut s);
    assert!(text.starts_with("250 "), "{text}");
    assert!(!closed);
}

#[test]
fn a_session_ends_at_its_lifetime_however_busy() {
    let mut s = start(Bugs::NONE);
    let mut now = secs(0.0);
    let cut = loop {
        now += secs(5.0);
        if let Some(d) = s.poll_timeout().filter(|&d| d <= now) {
            s.handle_timeout(d);
            let (text, closed) = drain(&mut s);
            assert!(closed && text.starts_with("421 4.4.2 "), "{text}");
            break d;
        }
        s.handle_input(now, b"NOOP\r\n");
        drain(&mut s);
        assert!(now < secs(120.0), "never cut");
    };
    assert_eq!(cut, secs(60.0));
}

#[test]
fn a_client_that_does_not_read_is_served_no_more_than_the_bound() {
    let mut s = start(Bugs::NONE);
    // EHLO, which the junk-command limit does not count: the flood must be
    // bounded by backpressure alone.
    s.handle_input(secs(0.5), b"EHLO c.example\r\n");
    let (one, _) = drain(&mut s);
    let flood = b"EHLO c.example\r\n".repeat(10_000);
    s.handle_input(secs(1.0), &flood);
    // Complete commands are held: the driver must not read more.
    assert!(!s.wants_input());
    let Some(Output::Send(first)) = s.poll_output() else {
        panic!("no reply")
    };
    // At most one reply past the bound: the check comes before each command.
    assert!(first.len() <= MAX_PENDING_OUTPUT + one.len(), "{}", first.len());
    // Taking the replies serves the rest, in order, all of them.
    let (rest, closed) = drain(&mut s);
    assert!(!closed);
    assert_eq!(first.len() + rest.len(), 10_000 * one.len());
    assert!(s.wants_input());
}

fn plain(user: &str, pw: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pw}"))
}

#[test]
fn a_failed_auth_stops_the_session_until_the_driver_goes_on() {
    let mut s = start(Bugs::NONE);
    s.handle_input(secs(1.0), b"EHLO c.example\r\n");
    drain(&mut s);
    let tries = format!(
        "AUTH PLAIN {}\r\nAUTH PLAIN {}\r\nNOOP\r\n",
        plain("carol", "guess1"),
        plain("carol", "guess2")
    );
    s.handle_input(secs(2.0), tries.as_bytes());
    assert_eq!(s.take_auth_failures(), 1);
    assert!(!s.wants_input());
    let Some(Output::Send(r)) = s.poll_output() else {
        panic!("no reply")
    };
    assert_eq!(
        String::from_utf8_lossy(&r),
        "535 5.7.8 Error: authentication credentials invalid\r\n"
    );
    // The next attempt is served only when asked for.
    assert_eq!(s.take_auth_failures(), 0);
    let Some(Output::Send(r)) = s.poll_output() else {
        panic!("no reply")
    };
    assert!(String::from_utf8_lossy(&r).starts_with("535 "));
    assert_eq!(s.take_auth_failures(), 1);
    assert_eq!(s.auth_failures(), 2);
    let (rest, _) = drain(&mut s);
    assert_eq!(rest, "250 2.0.0 Ok\r\n");
    // Refused by the driver: AUTH hears 454, even with the right password.
    s.refuse_auth();
    s.handle_input(
        secs(3.0),
        format!("AUTH PLAIN {}\r\n", plain("carol", "secret")).as_bytes(),
    );
    let (text, _) = drain(&mut s);
    assert!(text.starts_with("454 4.7.0 "), "{text}");
    assert_eq!(s.user(), None);
}

/// Past `soft_error_limit`, each error reply stops the session until the
/// driver has taken the pause it reports (Postfix's smtpd_error_sleep_time);
/// before it, errors cost nothing.
#[test]
fn errors_beyond_the_soft_limit_each_ask_for_a_pause() {
    let mut s = start(Bugs::NONE);
    let soft = relayguard_core::Limits::default().soft_error_limit;
    s.handle_input(secs(1.0), b"EHLO c.example\r\n");
    drain(&mut s);
    let bad = b"BOGUS\r\n".repeat(soft + 3);
    s.handle_input(secs(2.0), &bad);
    // The first `soft` errors and one more are answered, then it stops.
    let Some(Output::Send(first)) = s.poll_output() else {
        panic!("no reply")
    };
    let answered = String::from_utf8_lossy(&first).matches("\r\n").count();
    assert_eq!(answered, soft + 1, "{}", String::from_utf8_lossy(&first));
    assert_eq!(s.take_slow_errors(), 1);
    // Each further error, one at a time, one pause each.
    for _ in 0..2 {
        let Some(Output::Send(next)) = s.poll_output() else {
            panic!("no reply")
        };
        assert_eq!(String::from_utf8_lossy(&next).matches("\r\n").count(), 1);
        assert_eq!(s.take_slow_errors(), 1);
    }
    assert!(s.poll_output().is_none());
    // Taken means forgotten.
    assert_eq!(s.take_slow_errors(), 0);
}

/// A line too long to serve still ends where its LF is: a command begun
/// after it in the same read has its own deadline, from that read.
#[test]
fn a_command_after_a_discarded_line_has_its_own_deadline() {
    let mut s = start(Bugs::NONE);
    s.handle_input(secs(1.0), &[b'a'; 600]);
    assert_eq!(s.poll_timeout(), Some(secs(11.0)));
    s.handle_input(secs(5.0), b"\r\nNO");
    let (text, _) = drain(&mut s);
    assert!(text.starts_with("500 5.5.2"), "{text}");
    assert_eq!(s.poll_timeout(), Some(secs(15.0)));
}

/// No octets are no input: an empty read neither moves the deadline nor
/// counts as the client's activity.
#[test]
fn empty_input_changes_nothing() {
    let mut s = start(Bugs::NONE);
    s.handle_input(secs(1.0), b"EHLO c.example\r\n");
    drain(&mut s);
    let before = s.poll_timeout();
    assert_eq!(before, Some(secs(11.0)));
    s.handle_input(secs(5.0), b"");
    assert_eq!(s.poll_timeout(), before);
    assert!(s.poll_output().is_none());
}
