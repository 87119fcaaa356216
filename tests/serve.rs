//! `relayguard serve` as a process: SIGHUP does not stop it, and a second
//! server on the same spool is refused with a message that says why.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

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

#[test]
fn sighup_does_not_stop_the_server_and_a_second_one_is_refused() {
    let spool = scratch("hup");
    let addr = free_port();
    let mut child = serve(&spool, addr).stderr(Stdio::piped()).spawn().unwrap();
    let rx = lines(&mut child);
    assert!(wait_line(&rx, "serving"), "the server did not start");
    assert!(greeting(addr).starts_with("220"));

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
