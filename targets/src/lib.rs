//! The bodies of relayguard's fuzz targets, as plain functions.
//!
//! `fuzz/fuzz_targets/*.rs` call these under libFuzzer; `cargo test` calls
//! them over `corpus/fuzz/<target>/` and the regression inputs, so every
//! input the fuzzers ever kept is checked on every test run, without
//! libFuzzer. Each function panics on a finding (that is what libFuzzer
//! reports as a crash) and returns normally otherwise.
//!
//! Runtime bugs ([`relayguard_core::buggify`]) are switched on for the
//! session, script and policy targets by the environment variable
//! `RELAYGUARD_BUGGIFY` (comma-separated names, e.g. `lf-ends-data`), read
//! once per process: that is how `scripts/fuzz.sh` proves a target bites.

pub mod finding;
pub mod input;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use relayguard_core::Config;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_core::check::drive::Driver;
use relayguard_core::check::oracle::{self, ConfigView, Verdict};
use relayguard_core::check::transcript;
use relayguard_core::client::{self, Client, Job};
use relayguard_core::{Context, Decision, Policy};
use relayguard_core::{MAX_LINE, Mailbox, canonical_domain, parse_command, parse_path};
use relayguard_core::{MAX_PIPELINED, Now};

pub use input::{FuzzConfig, Script, SessionInput};

/// The names of the targets, as `fuzz/fuzz_targets/<name>.rs` and
/// `corpus/fuzz/<name>/`.
pub const TARGETS: [&str; 9] = [
    "command",
    "address",
    "session",
    "session_script",
    "policy",
    "client",
    "config",
    "transcript",
    "proxy",
];

/// Runs the body of the target `name` on one input.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "command" => command(data),
        "address" => address(data),
        "session" => session(data),
        "session_script" => session_script(data),
        "policy" => policy(data),
        "client" => client(data),
        "config" => config(data),
        "transcript" => transcript(data),
        "proxy" => proxy(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// The bugs switched on by `RELAYGUARD_BUGGIFY`.
pub fn bugs() -> Bugs {
    static BUGS: OnceLock<Bugs> = OnceLock::new();
    *BUGS.get_or_init(|| {
        let mut bugs = Bugs::NONE;
        if let Ok(names) = std::env::var("RELAYGUARD_BUGGIFY") {
            for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let bug =
                    Bug::from_name(n).unwrap_or_else(|| panic!("RELAYGUARD_BUGGIFY: no bug named {n:?}"));
                bugs = bugs.with(bug);
            }
        }
        bugs
    })
}

// ---------------------------------------------------------------- command

/// The parser never panics; what parses re-serializes and parses the same.
pub fn command(data: &[u8]) {
    let Ok(cmd) = parse_command(data) else {
        return;
    };
    let text = cmd.to_string();
    let again = parse_command(text.as_bytes());
    assert_eq!(again, Ok(cmd), "{text:?} does not parse back to what it shows");
}

// ---------------------------------------------------------------- address

/// Local domains of the address target's configuration, with the spellings
/// a client may use for them.
const LOCAL_DOMAINS: [&str; 3] = ["example.com", "bücher.example", "mail.example.com"];
const OWN_LITERAL: &str = "198.51.100.25";

fn address_config() -> &'static (Config, Arc<Policy>) {
    static C: OnceLock<(Config, Arc<Policy>)> = OnceLock::new();
    C.get_or_init(|| {
        let config = Config {
            hostname: "mail.example.com".into(),
            own_addresses: vec![OWN_LITERAL.parse().unwrap()],
            domains: relayguard_core::Domains {
                local: vec!["example.com".into(), "bücher.example".into()],
                ..Default::default()
            },
            ..Config::default()
        };
        let policy = Arc::new(Policy::new(config.clone()).expect("address config"));
        (config, policy)
    })
}

const OUTSIDE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

fn untrusted_decision(policy: &Policy, rcpt: &str) -> Option<Decision> {
    let path = parse_path(rcpt).ok()?;
    let ctx = Context {
        client: OUTSIDE,
        helo: None,
        user: None,
        sender: None,
        accepted: 0,
    };
    Some(policy.rcpt(&ctx, &path))
}

/// Parsing and canonicalization are idempotent; a local domain in any
/// spelling stays local, a foreign one stays foreign.
pub fn address(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(sel) = u8::arbitrary(&mut u) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(u.take_rest()) else {
        return;
    };

    // Idempotence of each layer.
    if let Ok(d) = canonical_domain(text) {
        let shown = d.to_string();
        assert_eq!(
            canonical_domain(&shown),
            Ok(d.clone()),
            "domain {text:?} -> {shown:?}"
        );
    }
    if let Ok(m) = Mailbox::parse(text) {
        let shown = m.to_string();
        let again = Mailbox::parse(&shown);
        assert_eq!(again.as_ref(), Ok(&m), "mailbox {text:?} -> {shown:?}");
        assert_eq!(m.is_routed(), m.routing().is_some(), "routing of {text:?}");
    }
    for written in [text.to_string(), format!("<{text}>")] {
        if let Ok(p) = parse_path(&written) {
            let shown = p.to_string();
            assert_eq!(parse_path(&shown), Ok(p.clone()), "path {written:?} -> {shown:?}");
        }
    }

    // A local domain in any spelling stays local ...
    let (config, policy) = address_config();
    let base = LOCAL_DOMAINS[sel as usize % LOCAL_DOMAINS.len()];
    let spelled = input::spell(base, sel >> 2, text.len() as u8);
    let local_part = if (sel >> 6) & 1 == 0 {
        "alice"
    } else {
        "Postmaster"
    };
    let rcpt = format!("<{local_part}@{spelled}>");
    if let Some(decision) = untrusted_decision(policy, &rcpt) {
        assert!(
            matches!(decision, Decision::Accept { ref destination, .. } if destination.is_local()),
            "local {rcpt:?} (spelling of {base}) refused or not local: {decision:?}"
        );
        assert!(
            !oracle::is_foreign(config, &rcpt),
            "oracle calls local {rcpt:?} foreign"
        );
    } else {
        panic!("a spelling of a local domain does not parse: {rcpt:?}");
    }

    // ... and a foreign one stays foreign: the input as a domain, if it is
    // a domain and not one of ours.
    if let Ok(d) = canonical_domain(text) {
        let ours = LOCAL_DOMAINS
            .iter()
            .map(|l| canonical_domain(l).unwrap())
            .chain([canonical_domain(&format!("[{OWN_LITERAL}]")).unwrap()])
            .any(|l| l == d);
        let rcpt = format!("<alice@{text}>");
        if let Some(decision) = untrusted_decision(policy, &rcpt) {
            if ours {
                assert!(
                    matches!(decision, Decision::Accept { .. }),
                    "{rcpt:?}: {decision:?}"
                );
            } else {
                assert!(
                    matches!(decision, Decision::Refuse(_)),
                    "foreign {rcpt:?} accepted from an untrusted client: {decision:?}"
                );
                assert!(
                    oracle::is_foreign(config, &rcpt),
                    "oracle calls foreign {rcpt:?} local"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- session

/// Runs one session over chunks and checks memory and the oracle.
/// Returns the verdict; panics on a violation.
fn drive(
    (policy, view): (Arc<Policy>, Arc<ConfigView>),
    peer: IpAddr,
    auth: Option<&str>,
    chunks: &[&[u8]],
) -> Verdict {
    let bound = MAX_PIPELINED + policy.config().limits.max_message_size + 2 * MAX_LINE;
    let offer_tls = policy.config().tls.cert.is_some();
    let mut d = Driver::with_view(policy, peer, view);
    if offer_tls {
        d.offer_tls();
    }
    if let Some(user) = auth {
        d.authenticate(user);
    }
    for c in chunks {
        d.feed(c);
        // The handshake a 220 to STARTTLS asked for, before the next chunk.
        d.handshake();
        let held = d.session.buffered();
        assert!(
            held <= bound + c.len(),
            "session holds {held} octets, more than its bound {bound} (+ chunk {})",
            c.len()
        );
    }
    d.expire();
    let (_, verdict) = d.finish();
    verdict
}

fn check(verdict: &Verdict, what: &dyn Fn() -> String) {
    if !verdict.violations.is_empty() {
        let list: Vec<String> = verdict.violations.iter().map(|v| v.to_string()).collect();
        panic!(
            "oracle violation:\n  {}\n--- as a transcript:\n{}",
            list.join("\n  "),
            what()
        );
    }
}

/// Raw bytes, in arbitrary splits, into a session of an arbitrary
/// configuration: no panic, bounded memory, no oracle violation.
pub fn session(data: &[u8]) {
    session_with(data, bugs())
}

/// [`session`] with these bugs switched on.
pub fn session_with(data: &[u8], bugs: Bugs) {
    let Some(input) = SessionInput::decode(data) else {
        return;
    };
    let Some(built) = input.config.build_with_view(bugs) else {
        return;
    };
    let chunks = input.chunks();
    let verdict = drive(built, input.peer(), input.auth(), &chunks);
    check(&verdict, &|| {
        finding::transcript_text(&input.config, input.peer(), input.auth(), &chunks, "session")
    });
}

/// A structured session from the relay-trick grammar: same checks.
pub fn session_script(data: &[u8]) {
    session_script_with(data, bugs())
}

/// [`session_script`] with these bugs switched on.
pub fn session_script_with(data: &[u8], bugs: Bugs) {
    let Ok(script) = Script::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(built) = script.config.build_with_view(bugs) else {
        return;
    };
    let chunks = script.chunks(&script.render(built.0.config()));
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let verdict = drive(built, script.peer(), script.auth(), &chunks);
    check(&verdict, &|| {
        finding::transcript_text(
            &script.config,
            script.peer(),
            script.auth(),
            &chunks,
            "session_script",
        )
    });
}

// ---------------------------------------------------------------- policy

/// The policy against the reference model: an accepted RCPT is never
/// foreign-and-untrusted. The model is the oracle's own reading of
/// docs/design.md "Local, foreign and trusted" for now.
pub fn policy(data: &[u8]) {
    policy_with(data, bugs())
}

/// [`policy`] with these bugs switched on.
pub fn policy_with(data: &[u8], bugs: Bugs) {
    let Ok(input) = input::PolicyInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(policy) = input.config.build(bugs) else {
        return;
    };
    let config = policy.config();
    let sender_text = input.sender.render(config);
    let rcpt_text = input.rcpt.render(config);
    let Ok(sender) = parse_path(&format!("<{sender_text}>")) else {
        return;
    };
    let Ok(rcpt) = parse_path(&format!("<{rcpt_text}>")) else {
        return;
    };
    let peer = input.peer.ip();
    let user = input.config.user_name(input.auth);
    let ctx = Context {
        client: peer,
        helo: None,
        user,
        sender: Some(&sender),
        accepted: input.accepted as usize,
    };
    if let Decision::Accept { destination, reason } = policy.rcpt(&ctx, &rcpt) {
        let foreign = oracle::is_foreign(config, &rcpt_text);
        let trusted = oracle::is_trusted(config, peer, user, &sender_text);
        assert!(
            !foreign || trusted,
            "policy accepted foreign <{rcpt_text}> from untrusted {peer} (user {user:?}, sender <{sender_text}>): \
             {destination:?} because {reason:?}"
        );
    }
}

// ---------------------------------------------------------------- client

/// Arbitrary server replies into the client session: no panic, commands in
/// order, no bare CR or LF on the wire (so none in DATA).
pub fn client(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(job) = input::ClientJob::arbitrary(&mut u) else {
        return;
    };
    let Ok(splits) = <[u8; 4]>::arbitrary(&mut u) else {
        return;
    };
    let replies = u.take_rest();
    let tls = job.tls;
    let job = job.job();
    let mut c = Client::new(job.clone(), Now::ZERO);
    if tls {
        c.enable_tls();
    }
    let mut wire = Wire::default();
    let mut rest = replies;
    let mut i = 0;
    loop {
        wire.drain(&mut c);
        if rest.is_empty() || c.is_done() {
            break;
        }
        let n = (splits[i % 4] as usize % 64).max(1).min(rest.len());
        i += 1;
        c.handle_input(Now::ZERO, &rest[..n]);
        rest = &rest[n..];
    }
    if !c.is_done() {
        if splits[0] & 1 == 0 {
            c.handle_close(Now::ZERO);
        } else if let Some(t) = c.poll_timeout() {
            c.handle_timeout(t);
        }
        wire.drain(&mut c);
    }
    wire.check(&job);
}

/// What the client wrote, and whether it said it was done.
#[derive(Default)]
struct Wire {
    sent: Vec<u8>,
    done: bool,
}

impl Wire {
    fn drain(&mut self, c: &mut Client) {
        while let Some(o) = c.poll_output() {
            assert!(!self.done, "client output after Done");
            match o {
                client::Output::Send(b) => self.sent.extend_from_slice(&b),
                client::Output::Done(_) => self.done = true,
                // The handshake, in memory: the client says EHLO again.
                client::Output::StartTls => c.tls_established(Now::ZERO),
            }
        }
    }

    fn check(&self, job: &Job) {
        let s = &self.sent;
        for (i, &b) in s.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && s[i - 1] == b'\r',
                    "bare LF at {i} in {:?}",
                    String::from_utf8_lossy(s)
                );
            }
            if b == b'\r' {
                assert!(
                    s.get(i + 1) == Some(&b'\n'),
                    "bare CR at {i} in {:?}",
                    String::from_utf8_lossy(s)
                );
            }
        }
        // The order of the dialogue: greeting name, (AUTH), MAIL, RCPT..., DATA, body, (QUIT).
        #[derive(PartialEq, Debug, Clone, Copy)]
        enum St {
            Start,
            Hello,
            Mail,
            Rcpt,
            Body,
            Sent,
            Quit,
        }
        let mut st = St::Start;
        let mut rcpts = 0;
        for line in s.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if st == St::Body {
                if line == b"." {
                    st = St::Sent;
                }
                continue;
            }
            let upper = String::from_utf8_lossy(line).to_ascii_uppercase();
            let verb = upper.split([' ', ':']).next().unwrap_or("");
            st = match (st, verb) {
                (St::Start | St::Hello, "EHLO" | "HELO") => St::Hello,
                (St::Hello, "AUTH" | "STARTTLS") => St::Hello,
                (St::Hello | St::Sent, "MAIL") => St::Mail,
                (St::Mail | St::Rcpt, "RCPT") => {
                    rcpts += 1;
                    St::Rcpt
                }
                (St::Rcpt, "DATA") => St::Body,
                (s, "RSET") if s != St::Start && s != St::Quit => St::Hello,
                (s, "QUIT") if s != St::Quit => St::Quit,
                (s, v)
                    if s == St::Hello && !v.starts_with("EHLO") && !line.is_empty() && job.auth.is_some() =>
                {
                    // A SASL response line after AUTH.
                    St::Hello
                }
                (s, _) => panic!(
                    "client sent {:?} in state {s:?}; whole stream {:?}",
                    String::from_utf8_lossy(line),
                    String::from_utf8_lossy(&self.sent)
                ),
            };
        }
        assert!(
            rcpts <= job.rcpt_to.len(),
            "more RCPTs than the job has recipients"
        );
    }
}

// ---------------------------------------------------------------- config, transcript

/// The TOML configuration parser (and policy compilation) never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Config::from_toml(text) {
        let _ = Policy::new(c);
    }
    // line_col takes byte offsets of the parser's spans: char boundaries.
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let _ = relayguard_core::line_col(text, mid);
}

/// The transcript parser never panics, and what parses round-trips.
pub fn transcript(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t1) = transcript::parse(text) else {
        return;
    };
    let text2 = t1.to_text();
    let t2 =
        transcript::parse(&text2).unwrap_or_else(|e| panic!("to_text output does not parse: {e}\n{text2}"));
    let text3 = t2.to_text();
    assert_eq!(text2, text3, "to_text is not stable");
    let t3 = transcript::parse(&text3).unwrap();
    assert_eq!(t2, t3, "parse(to_text) is not stable");
    assert_eq!(
        strip_lines(&t1),
        strip_lines(&t2),
        "round trip changed the transcript"
    );
    if let Ok(bytes) = transcript::unescape(&transcript::escape(data)) {
        assert_eq!(bytes, data, "escape/unescape");
    }
}

/// The PROXY header parser never panics, never claims more octets than it
/// was given, gives the same answer on exactly the header's octets as on
/// the header followed by anything, asks for more on every shorter prefix
/// of a header, and reads back what it encodes.
pub fn proxy(data: &[u8]) {
    use relayguard_core::proxy::{self, ProxyHeader};
    let Ok(Some((header, len))) = proxy::parse(data) else {
        return;
    };
    assert!(len <= data.len(), "header of {len} octets in {}", data.len());
    assert_eq!(proxy::parse(&data[..len]), Ok(Some((header, len))));
    for n in 1..len {
        assert_eq!(proxy::parse(&data[..n]), Ok(None), "prefix of {n} octets");
    }
    if let ProxyHeader::Proxied {
        version,
        source,
        destination,
    } = header
    {
        let again = match version {
            1 => proxy::encode_v1(source, destination),
            _ => proxy::encode_v2(source, destination, false),
        };
        let (h, n) = proxy::parse(&again).unwrap().unwrap();
        assert_eq!((h, n), (header, again.len()));
    }
}

fn strip_lines(t: &transcript::Transcript) -> transcript::Transcript {
    let mut t = t.clone();
    for s in &mut t.steps {
        match s {
            transcript::Step::Send { line, .. }
            | transcript::Step::Reply { line, .. }
            | transcript::Step::Tls { line } => *line = 0,
        }
    }
    t
}

/// A job's body as it goes on the wire, for the client checks.
pub fn data_bytes(body: &[u8]) -> Vec<u8> {
    client::data_bytes(body)
}
