//! The hostile actors: clients that are slow on purpose. A trickler sends
//! one octet every few seconds (in a command line, or inside DATA), a
//! non-reader pipelines NOOPs and never reads a reply, a guesser tries
//! passwords and reconnects when cut off. None of them sends mail; the
//! checkers (`checkers/hostile.rs`) judge how long the relay let them stay
//! and how many passwords it let them try, while the legitimate senders
//! go on.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::actors::{await_reply, connect};
use crate::options::{
    CHUNK_REPLY_WAIT, GIVE_UP_AT, GREETING_WAIT, NON_READER_RECONNECT_UNTIL, NON_READER_UNTIL, TRICKLE_BYTE,
    TRICKLE_UNTIL,
};
use crate::starttls::read_reply;
use crate::world::elapsed;

/// `connections` trickling sessions at once to `to` (the relay, or the
/// proxy in front of it), each reconnecting when the
/// relay cuts it, until [`TRICKLE_UNTIL`].
pub(crate) async fn trickler(to: IpAddr, connections: usize, in_data: bool, rcpt: String) {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let rcpt = rcpt.clone();
        tasks.push(tokio::task::spawn_local(async move {
            while elapsed() < TRICKLE_UNTIL {
                trickle_once(to, in_data, &rcpt).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// One session: the commands up to DATA if `in_data`, then one octet per
/// [`TRICKLE_BYTE`] of a line (or a body) that never ends.
async fn trickle_once(to: IpAddr, in_data: bool, rcpt: &str) {
    let Some(mut s) = connect(to).await else {
        return;
    };
    if !await_reply(&mut s, GREETING_WAIT).await {
        return;
    }
    if in_data {
        let lines = [
            "EHLO trickle.example\r\n".to_string(),
            "MAIL FROM:<trickle@partner.example>\r\n".to_string(),
            format!("RCPT TO:<{rcpt}>\r\n"),
            "DATA\r\n".to_string(),
        ];
        for l in lines {
            if s.write_all(l.as_bytes()).await.is_err() || !await_reply(&mut s, CHUNK_REPLY_WAIT).await {
                return;
            }
        }
    }
    let octets: &[u8] = if in_data {
        b"Subject: slow\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
    } else {
        b"EHLO "
    };
    let (mut rd, mut wr) = s.into_split();
    let mut buf = [0u8; 512];
    let mut i = 0;
    while elapsed() < TRICKLE_UNTIL {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = tokio::time::sleep(TRICKLE_BYTE) => {
                // Past the header, a command line goes on with 'a's; a body
                // with lines that never make the end of data.
                let b = octets.get(i).copied().unwrap_or(if in_data { b'y' } else { b'a' });
                i = if in_data && i + 1 >= octets.len() { 15 } else { i + 1 };
                if wr.write_all(&[b]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Pipelines NOOPs and never reads, holding each connection until
/// [`NON_READER_UNTIL`]; when the relay drops one (or crashes) before
/// [`NON_READER_RECONNECT_UNTIL`], opens another.
pub(crate) async fn non_reader(to: IpAddr) {
    while elapsed() < NON_READER_RECONNECT_UNTIL {
        if let Some(mut s) = connect(to).await {
            if await_reply(&mut s, GREETING_WAIT).await {
                flood_unread(&mut s).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// EHLOs in bursts, never reading; returns when a write fails (the relay
/// dropped the connection) or at [`NON_READER_UNTIL`]. EHLO, not NOOP: the
/// junk-command limit would end a NOOP flood and hide a relay that has no
/// write deadline.
async fn flood_unread(s: &mut turmoil::net::TcpStream) {
    let burst = b"EHLO nonreader.example\r\n".repeat(1000);
    if s.write_all(b"EHLO nonreader.example\r\n").await.is_err() {
        return;
    }
    while elapsed() < NON_READER_UNTIL {
        // A write the relay does not take within a second (it stopped
        // reading) is tried again; one that fails means it is gone.
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), s.write_all(&burst)).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tries `tries` wrong passwords for `carol`, reconnecting whenever the
/// relay closes or refuses AUTH, until they are used up or [`GIVE_UP_AT`].
pub(crate) async fn guesser(to: IpAddr, tries: u32, tls: Arc<rustls::ClientConfig>) {
    let mut left = tries;
    while left > 0 && elapsed() < GIVE_UP_AT {
        if let Some(mut s) = connect(to).await {
            let ehlo = match await_reply(&mut s, GREETING_WAIT).await
                && s.write_all(b"EHLO guesser.example\r\n").await.is_ok()
            {
                true => read_reply(&mut s, CHUNK_REPLY_WAIT).await,
                false => None,
            };
            // Where the relay offers STARTTLS the guesser takes it: AUTH may
            // be offered only over TLS, and the throttle must hold there.
            let upgraded = match ehlo {
                Some(ehlo) => crate::starttls::upgrade(&tls, s, &ehlo).await,
                None => None,
            };
            if let Some(mut s) = upgraded {
                let ready = !s.is_tls()
                    || (s.write_all(b"EHLO guesser.example\r\n").await.is_ok()
                        && read_reply(&mut s, CHUNK_REPLY_WAIT).await.is_some());
                while ready && left > 0 {
                    left -= 1;
                    let b64 =
                        base64::engine::general_purpose::STANDARD.encode(format!("\0carol\0guess{left}"));
                    if s.write_all(format!("AUTH PLAIN {b64}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    match read_reply(&mut s, Duration::from_secs(10)).await {
                        Some(r) if r.starts_with(b"535") => {}
                        _ => break,
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
