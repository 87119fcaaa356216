//! relayguard-node: the async relay node.
//!
//! The same code runs in the simulation (turmoil) and, later, the real server
//! (tokio TCP, a file-system spool, the `[routes]` table): everything that
//! touches the world goes through the traits [`Net`], [`Spool`], [`Resolver`]
//! and [`Mailboxes`], and the node watches itself through a [`Tap`].
//!
//! The node is single-threaded (its tasks are `spawn_local`ed on a
//! `LocalSet`, as turmoil runs hosts), reads time only from `tokio::time`,
//! and never iterates a `HashMap`: one seed, one run.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::check::buggify::Bug;
use relayguard_core::client::{self, Client, Job, MessageResult, Outcome, RcptResult};
use relayguard_core::{Destination, Policy};
use relayguard_core::{Domain, Path};
use relayguard_core::{Message, Output, Peer, Recipient, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Time as the node sees it: elapsed since an epoch captured at start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn instant(&self, at: Duration) -> Instant {
        self.epoch + at
    }
}

/// Sockets: listen, accept (with the peer's IP), connect.
pub trait Net: 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    type Listener: 'static;
    fn listen(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>>;
    fn accept(&self, listener: &Self::Listener) -> impl Future<Output = io::Result<(Self::Stream, IpAddr)>>;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// A queued message: the message and the recipients still to be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub message: Message,
    pub pending: Vec<Recipient>,
    /// Delivery rounds that ended with recipients left.
    pub attempts: u32,
}

impl Entry {
    pub fn new(message: Message) -> Entry {
        Entry {
            pending: message.recipients.clone(),
            message,
            attempts: 0,
        }
    }
}

/// Durable storage. `store` is durable once its future completes, and not
/// before: a crash while it runs loses the message (which was never acked).
pub trait Spool: 'static {
    fn store(&self, entry: &Entry) -> impl Future<Output = Result<String, String>>;
    fn update(&self, id: &str, entry: &Entry) -> impl Future<Output = ()>;
    fn remove(&self, id: &str) -> impl Future<Output = ()>;
    /// Every stored entry, in id order, for recovery.
    fn list(&self) -> impl Future<Output = Vec<(String, Entry)>>;
}

/// Where mail for a domain goes: the mail exchangers, in preference order.
pub trait Resolver: 'static {
    fn resolve(&self, domain: &Domain) -> impl Future<Output = Vec<SocketAddr>>;
}

/// Local delivery.
pub trait Mailboxes: 'static {
    fn deliver(&self, mailbox: &str, id: &str, message: &Message)
    -> impl Future<Output = Result<(), String>>;
}

/// What the node does, for oracles, recorders and traces. Every method has
/// a do-nothing default.
pub trait Tap: 'static {
    /// A connection was accepted; returns its id for the calls below.
    fn connected(&self, _peer: IpAddr) -> u64 {
        0
    }
    fn client_bytes(&self, _conn: u64, _bytes: &[u8]) {}
    fn server_bytes(&self, _conn: u64, _bytes: &[u8]) {}
    fn handed_on(&self, _conn: u64, _message: &Message) {}
    fn closed(&self, _conn: u64) {}
    /// Queue events: stored, delivered, deferred, bounced, recovered.
    fn event(&self, _what: &str) {}
}

/// A tap that sees nothing.
pub struct NoTap;
impl Tap for NoTap {}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub connect_timeout: Duration,
    pub reply_timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A message still queued after this long (the sum of its backoffs) is
    /// bounced.
    pub max_queue_age: Duration,
}

impl NodeConfig {
    pub fn new(listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            listen,
            max_connections: 100,
            max_per_ip: 10,
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(300),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_queue_age: Duration::from_secs(5 * 24 * 3600),
        }
    }

    /// The wait after `attempts` failed rounds: base·2^(n-1), capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1 << exp).min(self.retry_max)
    }

    /// How long a message has been queued after `attempts` rounds.
    pub fn age(&self, attempts: u32) -> Duration {
        (1..=attempts).map(|a| self.backoff(a)).sum()
    }
}

pub struct Node<N, S, R, M, T> {
    policy: Arc<Policy>,
    config: NodeConfig,
    net: N,
    spool: S,
    resolver: R,
    mailboxes: M,
    tap: T,
    clock: Clock,
    connections: Cell<usize>,
    per_ip: RefCell<BTreeMap<IpAddr, usize>>,
}

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

/// The result of one delivery attempt for a group of recipients.
enum Attempt {
    Delivered,
    Deferred(String),
    Failed(String),
}

impl<N: Net, S: Spool, R: Resolver, M: Mailboxes, T: Tap> Node<N, S, R, M, T> {
    pub fn new(
        policy: Arc<Policy>,
        config: NodeConfig,
        net: N,
        spool: S,
        resolver: R,
        mailboxes: M,
        tap: T,
    ) -> Rc<Self> {
        Rc::new(Node {
            policy,
            config,
            net,
            spool,
            resolver,
            mailboxes,
            tap,
            clock: Clock::start(),
            connections: Cell::new(0),
            per_ip: RefCell::new(BTreeMap::new()),
        })
    }

    fn bug(&self, bug: Bug) -> bool {
        self.policy.bugs().has(bug)
    }

    pub fn tap(&self) -> &T {
        &self.tap
    }

    /// Connections being served now; a graceful stop waits for zero.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// A queue event, for the tap and the log.
    fn note(&self, what: &str) {
        tracing::debug!(target: "relayguard_node", "{what}");
        self.tap.event(what);
    }

    /// Recovers the spool, then serves until the listener fails.
    pub async fn run(self: Rc<Self>) -> io::Result<()> {
        let listener = self.net.listen(self.config.listen).await?;
        self.recover().await;
        loop {
            let (stream, peer) = self.net.accept(&listener).await?;
            tokio::task::spawn_local(self.clone().serve(stream, peer));
        }
    }

    /// Resumes delivery of everything in the spool.
    pub async fn recover(self: &Rc<Self>) {
        let entries = if self.bug(Bug::ForgetSpoolOnRestart) {
            Vec::new() // BUG forget-spool-on-restart: recovery skips the spool
        } else {
            self.spool.list().await
        };
        for (id, entry) in entries {
            self.note(&format!("recovered {id}"));
            tokio::task::spawn_local(self.clone().deliver(id, entry));
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
                            s.message_stored(self.clock.now(), stored.map_err(relayguard_core::NotStored));
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

    fn is_local(&self, d: &Domain) -> bool {
        self.policy.is_local_domain(d)
    }

    /// Serves one queued entry until every recipient is delivered or bounced.
    async fn deliver(self: Rc<Self>, id: String, mut entry: Entry) {
        loop {
            let mut failed: Vec<(Recipient, String)> = Vec::new();
            let mut kept: Vec<Recipient> = Vec::new();
            let mut groups: BTreeMap<Domain, Vec<Recipient>> = BTreeMap::new();
            for r in std::mem::take(&mut entry.pending) {
                match &r.destination {
                    Destination::Local { mailbox } => {
                        match self.mailboxes.deliver(mailbox, &id, &entry.message).await {
                            Ok(()) => self.note(&format!("delivered {id} local {mailbox}")),
                            Err(e) => failed.push((r.clone(), e)),
                        }
                    }
                    Destination::Remote { mailbox } | Destination::RelayTo { mailbox } => {
                        match &mailbox.domain {
                            Some(d) => groups.entry(d.clone()).or_default().push(r.clone()),
                            None => failed.push((r.clone(), "no domain".into())),
                        }
                    }
                }
            }
            for (domain, rcpts) in groups {
                let results = self.attempt(&domain, &rcpts, &entry.message).await;
                for (r, a) in rcpts.into_iter().zip(results) {
                    let to = r.path.to_string();
                    match a {
                        Attempt::Delivered => self.note(&format!("delivered {id} remote {to}")),
                        Attempt::Deferred(why) => {
                            self.note(&format!("deferred {id} {to}: {why}"));
                            kept.push(r);
                        }
                        Attempt::Failed(why) => failed.push((r, why)),
                    }
                }
            }
            if !kept.is_empty() && self.config.age(entry.attempts + 1) > self.config.max_queue_age {
                failed.extend(kept.drain(..).map(|r| (r, "queued too long".to_string())));
            }
            if !failed.is_empty() {
                self.bounce(&id, &entry.message, &failed).await;
            }
            entry.pending = kept;
            if entry.pending.is_empty() {
                self.spool.remove(&id).await;
                self.note(&format!("done {id}"));
                return;
            }
            entry.attempts += 1;
            self.spool.update(&id, &entry).await;
            tokio::time::sleep(self.config.backoff(entry.attempts)).await;
        }
    }

    /// Sends a bounce to the sender, from `<>`; never for a bounce.
    async fn bounce(self: &Rc<Self>, id: &str, message: &Message, failed: &[(Recipient, String)]) {
        let Some(sender) = message.from.mailbox.clone() else {
            self.note(&format!("bounce of {id} dropped: null sender"));
            return;
        };
        let destination = match &sender.domain {
            Some(d) if self.is_local(d) => Destination::Local {
                mailbox: sender.key(),
            },
            Some(_) => Destination::Remote {
                mailbox: sender.clone(),
            },
            None => {
                self.tap
                    .event(&format!("bounce of {id} dropped: unqualified sender"));
                return;
            }
        };
        let mut body = format!(
            "From: MAILER-DAEMON@{host}\r\nTo: <{sender}>\r\nSubject: Undelivered Mail Returned to Sender\r\nX-Bounce-Of: {id}\r\n\r\nThese recipients failed:\r\n",
            host = self.policy.hostname()
        )
        .into_bytes();
        for (r, why) in failed {
            body.extend_from_slice(format!("{}: {}\r\n", r.path, why.replace(['\r', '\n'], " ")).as_bytes());
        }
        body.extend_from_slice(b"\r\n--- headers of the message ---\r\n");
        let headers_end = find(&message.body, b"\r\n\r\n").map_or(message.body.len(), |i| i + 2);
        body.extend_from_slice(&message.body[..headers_end]);
        let bounce = Message {
            client: message.client,
            helo: self.policy.hostname().to_string(),
            user: None,
            from: Path::NULL,
            recipients: vec![Recipient {
                path: Path {
                    route: Vec::new(),
                    mailbox: Some(sender),
                },
                destination,
            }],
            body,
        };
        let entry = Entry::new(bounce);
        match self.spool.store(&entry).await {
            Ok(bid) => {
                self.note(&format!("bounced {id} as {bid}"));
                tokio::task::spawn_local(self.clone().deliver(bid, entry));
            }
            Err(e) => self.note(&format!("bounce of {id} not stored: {e}")),
        }
    }

    /// One delivery attempt to a domain's exchangers.
    async fn attempt(&self, domain: &Domain, rcpts: &[Recipient], message: &Message) -> Vec<Attempt> {
        let addrs = self.resolver.resolve(domain).await;
        if addrs.is_empty() {
            return rcpts
                .iter()
                .map(|_| Attempt::Failed(format!("no mail exchanger for {domain}")))
                .collect();
        }
        let job = Job {
            helo: self.policy.hostname().to_string(),
            auth: None,
            mail_from: message
                .from
                .mailbox
                .as_ref()
                .map_or(String::new(), |m| m.to_string()),
            rcpt_to: rcpts
                .iter()
                .map(|r| {
                    r.destination
                        .remote_mailbox()
                        .map_or(String::new(), |m| m.to_string())
                })
                .collect(),
            body: message.body.clone(),
            timeout: self.config.reply_timeout,
        };
        let mut last = String::from("no exchanger answered");
        for addr in addrs {
            let stream = match tokio::time::timeout(self.config.connect_timeout, self.net.connect(addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    last = format!("{addr}: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!("{addr}: connect timeout");
                    continue;
                }
            };
            let outcome = run_client(stream, Client::new(job.clone(), self.clock.now()), &self.clock).await;
            return judge(outcome);
        }
        rcpts.iter().map(|_| Attempt::Deferred(last.clone())).collect()
    }
}

/// Per recipient: delivered, deferred (4xx, no answer) or failed (5xx).
fn judge(outcome: Outcome) -> Vec<Attempt> {
    let message = outcome.message;
    outcome
        .recipients
        .into_iter()
        .map(|(_, r)| match (&message, r) {
            (_, RcptResult::Permanent(reply)) => Attempt::Failed(reply.to_string()),
            (MessageResult::Accepted(_), RcptResult::Accepted(_)) => Attempt::Delivered,
            (MessageResult::Permanent(reply), RcptResult::Accepted(_)) => Attempt::Failed(reply.to_string()),
            (MessageResult::NotSent(relayguard_core::client::Failure::MailRefused(reply)), _)
                if reply.is_permanent() =>
            {
                Attempt::Failed(reply.to_string())
            }
            (m, _) => Attempt::Deferred(format!("{m:?}")),
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Drives a core client session over a stream until it is done.
pub async fn run_client<St: AsyncRead + AsyncWrite + Unpin>(
    mut stream: St,
    mut c: Client,
    clock: &Clock,
) -> Outcome {
    let mut buf = vec![0u8; 8192];
    loop {
        while let Some(out) = c.poll_output() {
            match out {
                client::Output::Send(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        c.handle_close(clock.now());
                    }
                }
                client::Output::Done(outcome) => {
                    let _ = stream.shutdown().await;
                    return outcome;
                }
            }
        }
        let deadline = c.poll_timeout();
        tokio::select! {
            biased;
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => c.handle_close(clock.now()),
                Ok(n) => c.handle_input(clock.now(), &buf[..n]),
            },
            _ = sleep_until(deadline.map(|d| clock.instant(d))) => c.handle_timeout(clock.now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut c = NodeConfig::new("127.0.0.1:25".parse().unwrap());
        c.retry_base = Duration::from_secs(1);
        c.retry_max = Duration::from_secs(8);
        let b: Vec<u64> = (1..=6).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 8, 8]);
        assert_eq!(c.age(3), Duration::from_secs(7));
    }
}
