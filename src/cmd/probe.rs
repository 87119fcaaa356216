//! `relayguard probe TARGET`: audits a live relay with the attack corpus,
//! judged by what arrives at the probe's own sink. See docs/probe.md.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use relayguard::probe::{self, Options, client::Timing, sink::Sink, template};

#[derive(clap::Args)]
pub struct Args {
    /// The relay: a host name or an IP address, with `:port` (default 25);
    /// an IPv6 address with a port is written `[::1]:2525`.
    target: String,
    /// Transcripts or folders of them (default: corpus/attacks of this
    /// checkout).
    paths: Vec<PathBuf>,
    /// Where the probe's sink listens: the target must route mail for
    /// --test-domain here.
    #[arg(long, default_value = "127.0.0.1:2526")]
    sink: SocketAddr,
    /// The foreign domain the target routes to the sink.
    #[arg(long, default_value = "probe.relayguard.test")]
    test_domain: String,
    /// The target's local domain (default: from its greeting's host name).
    #[arg(long)]
    domain: Option<String>,
    /// The target's host name (default: from its greeting or EHLO).
    #[arg(long)]
    hostname: Option<String>,
    /// A local mailbox that accepts mail (default: postmaster@DOMAIN).
    #[arg(long)]
    mailbox: Option<String>,
    /// The mailbox smuggled messages go to (default: --mailbox). Forward
    /// it to the sink to see smuggling into local delivery.
    #[arg(long)]
    mailbox2: Option<String>,
    /// A domain the target is a backup MX for (relaying to it is allowed,
    /// routing through it is not).
    #[arg(long)]
    backup_domain: Option<String>,
    /// The outsider's source address (default: any local address).
    #[arg(long)]
    outside: Option<IpAddr>,
    /// A LAN client's source address; LAN transcripts are skipped without.
    #[arg(long)]
    lan: Option<IpAddr>,
    /// Seconds to wait for an expected reply (and for the connection).
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Milliseconds of quiet after the expected replies before a round
    /// ends (extra replies arriving in it are recorded).
    #[arg(long, default_value_t = 100)]
    quiet_ms: u64,
    /// Seconds to wait for accepted probe messages at the sink.
    #[arg(long, default_value_t = 5)]
    wait: u64,
    /// Transcripts run at the same time.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Non-relay findings (an overlong reply line, extra replies, a LAN
    /// client relaying) fail the audit too.
    #[arg(long)]
    strict: bool,
}

/// `host`, `host:port`, `ip`, `ip:port`, `[v6]:port`, a bare v6 address.
pub fn resolve(target: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = target.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = target.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 25));
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port number"))?,
        ),
        _ => (target, 25),
    };
    if host.is_empty() {
        return Err("no host name".into());
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

pub fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("relayguard probe: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<u8, String> {
    let target = resolve(&args.target)?;
    let paths = if args.paths.is_empty() {
        let here = PathBuf::from("corpus/attacks");
        if here.is_dir() {
            vec![here]
        } else {
            vec![relayguard_corpus::dir().join("attacks")]
        }
    } else {
        args.paths.clone()
    };
    let cases = probe::load(&paths)?;
    let timing = Timing {
        reply: Duration::from_secs(args.timeout.max(1)),
        quiet: Duration::from_millis(args.quiet_ms.max(1)),
    };
    // A target that does not greet, closes or stops answering cannot be
    // audited: an error before anything else, never a pass.
    let (greeting, derived) =
        probe::discover(target, args.outside, timing).map_err(|e| format!("{target}: {e}"))?;
    let hostname = args
        .hostname
        .clone()
        .or(derived)
        .unwrap_or_else(|| target.ip().to_string());
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| template::domain_from_hostname(&hostname));
    let mailbox = args
        .mailbox
        .clone()
        .unwrap_or_else(|| format!("postmaster@{domain}"));
    let site = template::Site {
        local_domain: domain,
        hostname,
        ip: target.ip().to_string(),
        mailbox2: args.mailbox2.clone().unwrap_or_else(|| mailbox.clone()),
        mailbox,
        test_domain: args.test_domain.clone(),
        backup_domain: args.backup_domain.clone(),
    };
    let sink = Sink::start(args.sink).map_err(|e| format!("sink on {}: {e}", args.sink))?;
    let opts = Options {
        target,
        outside: args.outside,
        lan: args.lan,
        site,
        timing,
        wait: Duration::from_secs(args.wait),
        jobs: args.jobs.max(1),
        run_id: run_id(),
    };
    let audit = probe::audit(&opts, &sink, greeting, &cases);
    if args.json {
        println!("{}", probe::report::json(&audit));
    } else {
        print!("{}", probe::report::text(&audit, args.strict));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, probe::report::junit(&audit)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(probe::report::exit_code(&audit, args.strict))
}

/// A prefix unique to this run, so that a message left over from an
/// earlier run never counts.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("rg{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn targets() {
        assert_eq!(resolve("127.0.0.1").unwrap(), "127.0.0.1:25".parse().unwrap());
        assert_eq!(
            resolve("127.0.0.1:2525").unwrap(),
            "127.0.0.1:2525".parse().unwrap()
        );
        assert_eq!(resolve("[::1]:2525").unwrap(), "[::1]:2525".parse().unwrap());
        assert_eq!(resolve("::1").unwrap(), "[::1]:25".parse().unwrap());
        assert_eq!(resolve("localhost:2525").unwrap().port(), 2525);
        assert_eq!(resolve("localhost").unwrap().port(), 25);
        assert!(resolve("localhost:x").is_err());
        assert!(resolve(":25").is_err());
    }
}
