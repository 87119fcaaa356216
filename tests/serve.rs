//! `relayguard serve` as a process: SIGHUP does not stop it, a second
//! server on the same spool is refused with a message that says why, and
//! short local mail is in its Maildir by the `250`.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::Running;

mod common;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relayguard-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn serve(spool: &Path, listen: SocketAddr) -> Command {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/configs/default.toml");
    let mut c = Command::new(env!("CARGO_BIN_EXE_relayguard"));
    c.args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &listen.to_string(), "--spool"])
        .arg(spool)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    c
}

/// A loopback port nobody listens on (the kernel picks it).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The child's stderr, line by line, on a channel.
fn lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for a stderr line containing `what`; false if the
/// process ended (its stderr closed) or 20 s passed first.
fn wait_line(rx: &Receiver<String>, what: &str) -> bool {
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        if line.contains(what) {
            return true;
        }
    }
    false
}

/// The server's greeting, trying to connect a bounded number of times
/// (the listener is bound just after the "serving" line).
fn greeting(addr: SocketAddr) -> String {
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    String::new()
}

/// Starts a server on `spool` at `addr` and waits until it greets; returns
/// it with its log lines.
fn start(spool: &Path, addr: SocketAddr) -> (Running, Receiver<String>) {
    let mut child = Running(serve(spool, addr).stderr(Stdio::piped()).spawn().unwrap());
    let rx = lines(&mut child);
    assert!(wait_line(&rx, "serving"), "the server did not start");
    assert!(greeting(addr).starts_with("220"));
    (child, rx)
}

#[test]
fn sighup_does_not_stop_the_server_and_a_second_one_is_refused() {
    let spool = scratch("hup");
    let addr = free_port();
    let (mut child, rx) = start(&spool, addr);

    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    assert!(wait_line(&rx, "SIGHUP: ignored"), "SIGHUP was not handled");
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP ended the server");
    assert!(greeting(addr).starts_with("220"), "no greeting after SIGHUP");

    let second = serve(&spool, free_port()).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "spool {} is in use: another relayguard serve",
            spool.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", child.id())), "{err}");

    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&spool);
}

/// Sends one message to `rcpt` in one session; returns the reply to its
/// data.
fn send(addr: SocketAddr, rcpt: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    use std::io::Write;
    assert!(reply().starts_with("220"));
    for cmd in [
        "EHLO client.example.org\r\n".to_string(),
        "MAIL FROM:<someone@example.org>\r\n".to_string(),
        format!("RCPT TO:<{rcpt}>\r\n"),
        "DATA\r\n".to_string(),
    ] {
        s.write_all(cmd.as_bytes()).unwrap();
        let r = reply();
        assert!(r.starts_with('2') || r.starts_with("354"), "{cmd}: {r}");
    }
    s.write_all(body).unwrap();
    s.write_all(b".\r\n").unwrap();
    let r = reply();
    s.write_all(b"QUIT\r\n").unwrap();
    r
}

/// The files in a folder (none if it is missing).
fn files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A short message to a local mailbox is in its Maildir when the client
/// hears `250`, and no queue file was written for it; a long one (past
/// the 64 KiB held in memory) is queued and delivered after the reply.
#[test]
fn short_local_mail_is_in_the_maildir_at_the_250_with_no_queue_file() {
    let spool = scratch("early");
    let addr = free_port();
    let (mut child, rx) = start(&spool, addr);
    let new = spool.join("maildir/example.com/alice/new");
    let queue = spool.join("queue");

    let short = b"Subject: short\r\n\r\nheld in memory\r\n";
    let r = send(addr, "alice@example.com", short);
    assert!(r.starts_with("250"), "{r}");
    let delivered = files(&new);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(std::fs::read(&delivered[0]).unwrap(), short);
    assert!(wait_line(&rx, "delivered before the reply"));
    assert_eq!(files(&queue), Vec::<PathBuf>::new());

    let mut long = b"Subject: long\r\n\r\n".to_vec();
    while long.len() <= 64 * 1024 {
        long.extend_from_slice(b"a line of a body too long to be held in memory\r\n");
    }
    let r = send(addr, "bob@example.com", &long);
    assert!(r.starts_with("250"), "{r}");
    assert!(wait_line(&rx, "queue: stored"), "the long message was not queued");
    assert!(
        wait_line(&rx, "queue: done"),
        "the long message was not delivered"
    );
    let delivered = files(&spool.join("maildir/example.com/bob/new"));
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(std::fs::read(&delivered[0]).unwrap(), long);

    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&spool);
}
