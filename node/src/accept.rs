//! The accept loop: one task per connection, within the total and per-IP
//! connection limits.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::rc::Rc;

use relayguard_core::buggify::Bug;
use relayguard_core::session::{Output, Peer, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clock::sleep_until;
use crate::node::Node;
use crate::ports::{Entry, Mailboxes, Net, Resolver, Spool, Tap};

/// Releases a connection's slot, however its task ends.
struct Slot<'a> {
    total: &'a Cell<usize>,
    per_ip: &'a RefCell<BTreeMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.total.set(self.total.get() - 1);
        let mut m = self.per_ip.borrow_mut();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    /// Recovers the spool, then serves until the listener fails.
    pub async fn run(self: Rc<Self>) -> io::Result<()> {
        let listener = self.net.listen(self.config.listen).await?;
        self.recover().await;
        loop {
            let (stream, peer) = self.net.accept(&listener).await?;
            tokio::task::spawn_local(self.clone().serve(stream, peer));
        }
    }

    async fn serve(self: Rc<Self>, mut stream: N::Stream, peer: IpAddr) {
        let conn = self.tap.connected(peer);
        let total = self.connections.get();
        let mine = self.per_ip.borrow().get(&peer).copied().unwrap_or(0);
        self.connections.set(total + 1);
        *self.per_ip.borrow_mut().entry(peer).or_insert(0) += 1;
        let _slot = Slot {
            total: &self.connections,
            per_ip: &self.per_ip,
            ip: peer,
        };
        if total >= self.config.max_connections || mine >= self.config.max_per_ip {
            let refusal = format!(
                "421 4.7.0 {} Error: too many connections\r\n",
                self.policy.hostname()
            );
            self.tap.server_bytes(conn, refusal.as_bytes());
            let _ = stream.write_all(refusal.as_bytes()).await;
            let _ = stream.shutdown().await;
            self.tap.closed(conn);
            return;
        }
        let mut s = Session::new(self.policy.clone(), Peer { ip: peer }, self.clock.now());
        let mut queue: VecDeque<Output> = VecDeque::new();
        let mut buf = vec![0u8; 8192];
        'conn: loop {
            queue.extend(std::iter::from_fn(|| s.poll_output()));
            while let Some(out) = queue.pop_front() {
                match out {
                    Output::Send(bytes) => {
                        self.tap.server_bytes(conn, &bytes);
                        if stream.write_all(&bytes).await.is_err() {
                            break 'conn;
                        }
                    }
                    Output::Message(m) => {
                        self.tap.handed_on(conn, &m);
                        let entry = Entry::new(*m);
                        let early = self.bug(Bug::AckBeforeStore);
                        if early {
                            // BUG ack-before-store: the 250 leaves before the spool write completes.
                            s.message_stored(self.clock.now(), Ok("unstored".into()));
                            queue.extend(std::iter::from_fn(|| s.poll_output()));
                            while let Some(Output::Send(bytes)) = queue.front() {
                                self.tap.server_bytes(conn, bytes);
                                let _ = stream.write_all(bytes).await;
                                queue.pop_front();
                            }
                        }
                        let stored = self.spool.store(&entry).await;
                        if let Ok(id) = &stored {
                            self.note(&format!("stored {id}"));
                            tokio::task::spawn_local(self.clone().deliver(id.clone(), entry));
                        }
                        if !early {
                            // The session needs only ok or not: it answers 451 to any error.
                            s.message_stored(self.clock.now(), stored.map_err(|e| e.to_string()));
                        }
                        queue.extend(std::iter::from_fn(|| s.poll_output()));
                    }
                    Output::Close => {
                        let _ = stream.shutdown().await;
                        break 'conn;
                    }
                }
            }
            let deadline = s.poll_timeout();
            tokio::select! {
                biased;
                r = stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => {
                        self.tap.client_bytes(conn, &buf[..n]);
                        s.handle_input(self.clock.now(), &buf[..n]);
                    }
                },
                _ = sleep_until(deadline.map(|d| self.clock.instant(d))) => {
                    s.handle_timeout(self.clock.now());
                }
            }
        }
        self.tap.closed(conn);
    }
}
