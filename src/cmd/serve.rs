//! `relayguard serve`: the relay node on real sockets and a real disk.
//!
//! The same `relayguard_node::Node` the simulation runs, with tokio TCP, the
//! file-system spool, local delivery into Maildir folders and the `[routes]`
//! table as resolver. With `--record DIR` every session is also written as a
//! corpus transcript, so that a honeypot's visitors become replayable attacks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use relayguard::bounded::{LineBudget, RecordBudget};
use relayguard::maildir;
use relayguard::spool::{self, FsSpool};
use relayguard_core::Domain;
use relayguard_core::Message;
use relayguard_core::Policy;
use relayguard_core::check::record::Recorder;
use relayguard_node::tls;
use relayguard_node::{
    DeliverError, Entry, Listing, Mailboxes, Net, Node, NodeConfig, Resolver, Spool, StoreError, Tap,
    Unreadable,
};
use tokio::net::{TcpListener, TcpStream};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Spool folder: `queue/` for messages, `maildir/` for local delivery.
    #[arg(long)]
    spool: PathBuf,
    /// Write every session as a transcript into this folder.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Octets of transcript text kept per recorded session; the rest is
    /// left out and the transcript marked `@truncated`.
    #[arg(long, default_value_t = 1 << 20)]
    record_max_session: u64,
    /// Octets of transcripts written by one run in all; then no more
    /// sessions are recorded.
    #[arg(long, default_value_t = 1 << 30)]
    record_max_total: u64,
    /// Log lines per session (replies and accepted messages); the rest are
    /// counted and summed up in one line at the close.
    #[arg(long, default_value_t = 200)]
    log_lines_per_session: u64,
    /// Seconds to let sessions finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Seconds before the first retry of a deferred delivery (doubles each time).
    #[arg(long, default_value_t = 60)]
    retry_base: u64,
    /// Seconds a message may stay queued before it is bounced.
    #[arg(long, default_value_t = 5 * 24 * 3600)]
    max_queue_age: u64,
    /// Connections served at once, in total.
    #[arg(long, default_value_t = 100)]
    max_connections: usize,
    /// Connections served at once from one client address; the next one
    /// hears `421` and is closed.
    #[arg(long, default_value_t = 10)]
    max_per_ip: usize,
    /// Delivery rounds under way at once. Each holds its message's body
    /// (about three copies of it while it goes to a remote exchanger), so
    /// this bounds the memory that queued messages cost.
    #[arg(long, default_value_t = 4)]
    max_deliveries: usize,
}

/// Tokio TCP.
struct TcpNet;

impl Net for TcpNet {
    type Stream = TcpStream;
    type Listener = TcpListener;

    async fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    /// Errors go to the node's accept loop, which waits out a lack of
    /// descriptors with a growing backoff.
    async fn accept(&self, listener: &TcpListener) -> io::Result<(TcpStream, IpAddr)> {
        let (s, peer) = listener.accept().await?;
        let _ = s.set_nodelay(true);
        Ok((s, peer.ip().to_canonical()))
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await
    }
}

/// The spool on disk; the file work runs on tokio's blocking threads.
struct DiskSpool {
    spool: Arc<FsSpool>,
    /// Unique across restarts, PIDs and clock steps.
    ids: Arc<spool::Ids>,
}

/// A message being written to the spool.
enum Pending {
    /// Named, no file yet: the first piece makes it.
    New(String),
    Open(spool::BodyFile),
}

impl Pending {
    fn id(&self) -> &str {
        match self {
            Pending::New(id) => id,
            Pending::Open(file) => file.id(),
        }
    }

    /// The message's file, made now if no piece has made it yet.
    fn into_file(self, spool: &FsSpool) -> io::Result<spool::BodyFile> {
        match self {
            Pending::New(id) => spool.begin(&id),
            Pending::Open(file) => Ok(file),
        }
    }
}

fn lost() -> StoreError {
    StoreError::Transient("spool file lost".into())
}

/// Runs spool work on tokio's blocking threads; a task that panicked or a
/// runtime that is stopping is a passing failure (nothing was
/// acknowledged, the client may try again).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(spool::store_error(e)),
        Err(e) => Err(StoreError::Transient(e.to_string())),
    }
}

impl Spool for DiskSpool {
    async fn store(&self, entry: &Entry) -> Result<String, StoreError> {
        let id = self.ids.next();
        let (spool, entry, name) = (self.spool.clone(), entry.clone(), id.clone());
        blocking(move || spool.store(&name, &entry))
            .await
            .inspect_err(|e| tracing::warn!("spool store {id}: {e}"))?;
        Ok(id)
    }

    fn fresh_id(&self) -> Option<String> {
        Some(self.ids.next())
    }

    /// `None` while a blocking thread has the file (and after that thread
    /// failed to give it back).
    type Writer = Option<Pending>;

    /// Names the message only: its file is made by the first piece, on the
    /// same trip to a blocking thread that writes the piece (each trip is
    /// two thread switches, and serve is bound by its CPU).
    async fn begin(&self) -> Result<Self::Writer, StoreError> {
        Ok(Some(Pending::New(self.ids.next())))
    }

    async fn append(&self, writer: &mut Self::Writer, piece: Vec<u8>) -> Result<(), StoreError> {
        let (spool, pending) = (self.spool.clone(), writer.take().ok_or_else(lost)?);
        let (file, written) = blocking(move || {
            let mut file = pending.into_file(&spool)?;
            let r = file.append(&piece);
            Ok((file, r))
        })
        .await?;
        *writer = Some(Pending::Open(file));
        written.map_err(spool::store_error)
    }

    async fn commit(&self, writer: Self::Writer, entry: &Entry) -> Result<String, StoreError> {
        let pending = writer.ok_or_else(lost)?;
        let id = pending.id().to_string();
        let (spool, entry) = (self.spool.clone(), entry.clone());
        blocking(move || spool.commit(pending.into_file(&spool)?, &entry))
            .await
            .inspect_err(|e| tracing::warn!("spool store {id}: {e}"))?;
        Ok(id)
    }

    async fn abort(&self, writer: Self::Writer) {
        // Dropping the file removes it (a name in queue/tmp: a blocking
        // call).
        if let Some(Pending::Open(file)) = writer {
            let _ = blocking(move || {
                drop(file);
                Ok(())
            })
            .await;
        }
    }

    async fn body(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let (spool, id) = (self.spool.clone(), id.to_string());
        blocking(move || spool.body(&id)).await
    }

    async fn update(&self, id: &str, entry: &Entry) -> Result<(), StoreError> {
        let (spool, entry, id) = (self.spool.clone(), entry.clone(), id.to_string());
        blocking(move || spool.update(&id, &entry)).await
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let (spool, id) = (self.spool.clone(), id.to_string());
        match tokio::task::spawn_blocking(move || spool.remove(&id)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(spool::store_error(e)),
            Err(e) => Err(StoreError::Transient(e.to_string())),
        }
    }

    async fn list(&self) -> Result<Listing, StoreError> {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || spool.list()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(spool::store_error(e)),
            Err(e) => Err(StoreError::Transient(e.to_string())),
        }
    }

    async fn quarantine(&self, bad: &Unreadable) {
        let (spool, name) = (self.spool.clone(), bad.name.clone());
        match tokio::task::spawn_blocking(move || spool.quarantine(&name)).await {
            Ok(Ok(to)) => tracing::error!(
                "spool: queue file {} unreadable ({}); moved to {}",
                bad.name,
                bad.reason,
                to.display()
            ),
            Ok(Err(e)) => tracing::error!(
                "spool: queue file {} unreadable ({}); not moved: {e}",
                bad.name,
                bad.reason
            ),
            Err(e) => tracing::error!("spool: quarantine {}: {e}", bad.name),
        }
    }
}

/// Caps glibc's malloc arenas at two. The spool's file work runs on
/// tokio's blocking threads, and each thread that allocates a body piece or
/// reads a body back would otherwise get an arena of its own (up to eight
/// per core), each keeping freed megabytes: with 100 clients sending 10 MB
/// messages that doubled the peak RSS (BENCHMARKS.md, issue 11).
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// SIGHUP (what logrotate sends) is ignored: the log goes to stderr, which
/// whoever started the server redirects, so there is nothing to reopen.
/// Without a handler the signal would end the process.
fn ignore_sighup() -> io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::task::spawn_local(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: ignored (the log is stderr; nothing to reopen)");
        }
    });
    Ok(())
}

/// Takes the spool's lock and opens it; a second server on the same spool
/// is refused here, before it touches anything.
fn open_spool(root: &Path) -> Result<(spool::SpoolLock, FsSpool), String> {
    let lock = spool::SpoolLock::acquire(root).map_err(|e| e.to_string())?;
    let spool = FsSpool::open(root).map_err(|e| format!("spool {}: {e}", root.display()))?;
    Ok((lock, spool))
}

/// `[routes]`: a domain's own entry, else `*`.
struct Routes(BTreeMap<String, SocketAddr>);

impl Resolver for Routes {
    async fn resolve(&self, domain: &Domain) -> Vec<SocketAddr> {
        let key = domain.to_string();
        self.0
            .get(&key)
            .or_else(|| self.0.get("*"))
            .copied()
            .into_iter()
            .collect()
    }
}

/// The Maildir tree, and how many mailbox folders it may grow to.
struct Maildirs(PathBuf, Arc<maildir::FolderLimit>);

impl Mailboxes for Maildirs {
    async fn deliver(&self, mailbox: &str, id: &str, message: &Message) -> Result<(), DeliverError> {
        let (root, mailbox, name, body, limit) = (
            self.0.clone(),
            mailbox.to_string(),
            format!("{id}.{mailbox}"),
            message.body.clone(),
            self.1.clone(),
        );
        tokio::task::spawn_blocking(move || maildir::deliver_limited(&root, &mailbox, &name, &body, &limit))
            .await
            .map_err(|e| DeliverError::Transient(e.to_string()))?
            .map(|_| ())
            .map_err(maildir::deliver_error)
    }

    /// Every mailbox in one trip to a blocking thread, each file and its
    /// folder fsynced before the result says `Ok` (the reply follows).
    async fn deliver_before_reply(
        &self,
        mailboxes: &[String],
        id: &str,
        message: &Message,
    ) -> Vec<Result<(), DeliverError>> {
        let (root, boxes, id, body, limit) = (
            self.0.clone(),
            mailboxes.to_vec(),
            id.to_string(),
            message.body.clone(),
            self.1.clone(),
        );
        let n = boxes.len();
        tokio::task::spawn_blocking(move || {
            boxes
                .iter()
                .map(|mailbox| {
                    maildir::deliver_durably(&root, mailbox, &format!("{id}.{mailbox}"), &body, &limit)
                        .map(|_| ())
                        .map_err(maildir::deliver_error)
                })
                .collect()
        })
        .await
        .unwrap_or_else(|e| vec![Err(DeliverError::Transient(e.to_string())); n])
    }
}

/// Logs every queue event, and records sessions when asked.
struct Log {
    record: Option<PathBuf>,
    config: PathBuf,
    run: String,
    next: RefCell<u64>,
    open: RefCell<BTreeMap<u64, Recorder>>,
    record_budget: RefCell<RecordBudget>,
    log_lines: u64,
    budgets: RefCell<BTreeMap<u64, LineBudget>>,
}

impl Log {
    /// Whether the session may log one more line (see `--log-lines-per-session`).
    fn may_log(&self, conn: u64) -> bool {
        self.budgets
            .borrow_mut()
            .get_mut(&conn)
            .is_none_or(LineBudget::take)
    }

    /// A recorder for a new session, capped; none once the total is spent.
    fn recorder(&self, peer: IpAddr, conn: u64) -> Option<Recorder> {
        self.record.as_ref()?;
        let mut budget = self.record_budget.borrow_mut();
        let Some(cap) = budget.open() else {
            if budget.tell_exhausted() {
                tracing::warn!("record: --record-max-total reached, no more sessions are recorded");
            }
            return None;
        };
        let mut r = Recorder::new(peer, Some(self.config.clone())).with_cap(cap);
        r.comment(&format!(
            "recorded by relayguard serve, session {}-{conn}",
            self.run
        ));
        r.source("relayguard serve --record");
        Some(r)
    }
}

impl Tap for Log {
    fn connected(&self, peer: IpAddr) -> u64 {
        let mut n = self.next.borrow_mut();
        *n += 1;
        tracing::info!(conn = *n, %peer, "connected");
        self.budgets
            .borrow_mut()
            .insert(*n, LineBudget::new(self.log_lines));
        if let Some(r) = self.recorder(peer, *n) {
            self.open.borrow_mut().insert(*n, r);
        }
        *n
    }

    fn proxied(&self, conn: u64, client: IpAddr) {
        tracing::info!(conn, %client, "proxied: the trusted proxy names the client");
        if let Some(r) = self.open.borrow_mut().get_mut(&conn) {
            if let Some(proxy) = r.peer() {
                r.proxied(client, proxy);
            }
        }
    }

    fn client_bytes(&self, conn: u64, bytes: &[u8]) {
        if let Some(r) = self.open.borrow_mut().get_mut(&conn) {
            r.client(bytes);
        }
    }

    fn server_bytes(&self, conn: u64, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            if self.may_log(conn) {
                tracing::info!(conn, "reply {line}");
            }
        }
        if let Some(r) = self.open.borrow_mut().get_mut(&conn) {
            r.server(bytes);
        }
    }

    fn handed_on(&self, conn: u64, message: &Message) {
        for r in &message.recipients {
            if !self.may_log(conn) {
                continue;
            }
            tracing::info!(conn, from = %message.from, to = %r.path, "accepted for {}", r.destination);
        }
    }

    fn tls_established(&self, conn: u64, injected: u64) {
        tracing::info!(
            conn,
            injected,
            "TLS established; {injected} octets pipelined after STARTTLS thrown away unread"
        );
        if let Some(r) = self.open.borrow_mut().get_mut(&conn) {
            r.tls_established();
        }
    }

    fn closed(&self, conn: u64) {
        match self.budgets.borrow_mut().remove(&conn).and_then(|b| b.summary()) {
            Some(summary) => tracing::info!(conn, "closed; {summary}"),
            None => tracing::info!(conn, "closed"),
        }
        let (Some(dir), Some(r)) = (&self.record, self.open.borrow_mut().remove(&conn)) else {
            return;
        };
        let text = r.finish().to_text();
        if !self.record_budget.borrow_mut().write(text.len() as u64) {
            tracing::warn!(conn, "record: --record-max-total reached, session not recorded");
            return;
        }
        let path = dir.join(format!("{}-{conn:06}.smtp", self.run));
        if let Err(e) = std::fs::write(&path, text) {
            tracing::error!("recording {}: {e}", path.display());
        }
    }

    fn event(&self, what: &str) {
        if what.starts_with("accept:") {
            tracing::warn!("{what}");
        } else {
            tracing::info!("queue: {what}");
        }
    }
}

/// The STARTTLS server configuration from `[tls]` (paths relative to the
/// configuration file), with the ring provider; `None` without `[tls]`.
fn tls_server(policy: &Policy, config: &Path) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let Some((cert, key)) = policy.config().tls.resolve(dir) else {
        return Ok(None);
    };
    tls::load_server_config(tls::ring(), &cert, &key)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

pub fn main(args: Args) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a pipe that a
        // script greps gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let policy = match relayguard_corpus::load_config(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|c| Policy::new(c).map_err(|e| e.to_string()))
    {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::from(2);
        }
    };
    let tls_server = match tls_server(&policy, &args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::from(2);
        }
    };
    let (_lock, spool) = match open_spool(&args.spool) {
        Ok((lock, s)) => (lock, Arc::new(s)),
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::from(2);
        }
    };
    let ids = match spool::Ids::new() {
        Ok(ids) => Arc::new(ids),
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &args.record {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("relayguard serve: record {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let folders = Arc::new(maildir::FolderLimit::new(policy.config().domains.max_mailboxes));
    let routes = policy
        .config()
        .routes
        .iter()
        .filter_map(|(d, t)| Some((d.to_ascii_lowercase(), t.parse().ok()?)))
        .collect();
    // Names that stay unique across restarts; they name files, they decide nothing.
    let run = ids.run().to_string();
    let mut node_config = NodeConfig::new(args.listen);
    node_config.retry_base = Duration::from_secs(args.retry_base.max(1));
    node_config.retry_max = node_config.retry_max.max(node_config.retry_base);
    node_config.max_queue_age = Duration::from_secs(args.max_queue_age);
    node_config.max_connections = args.max_connections;
    node_config.max_per_ip = args.max_per_ip;
    node_config.max_deliveries = args.max_deliveries;
    node_config.tls_server = tls_server;
    // Outbound STARTTLS whenever an exchanger offers it, unverified
    // (opportunistic, as MTAs do): with or without a certificate of our own.
    node_config.tls_client = match tls::client_config(tls::ring()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tap = Log {
        record: args.record.clone().map(|d| absolute(&d)),
        config: absolute(&args.config),
        run: run.clone(),
        next: RefCell::new(0),
        open: RefCell::new(BTreeMap::new()),
        record_budget: RefCell::new(RecordBudget::new(args.record_max_session, args.record_max_total)),
        log_lines: args.log_lines_per_session,
        budgets: RefCell::new(BTreeMap::new()),
    };
    few_malloc_arenas();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let grace = Duration::from_secs(args.grace);
    let result = local.block_on(&rt, async move {
        let node: Rc<Node<_, _, _, _, _>> = Node::new(
            policy,
            node_config,
            TcpNet,
            DiskSpool { spool, ids },
            Routes(routes),
            Maildirs(absolute(&args.spool), folders),
            tap,
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        ignore_sighup()?;
        tracing::info!(listen = %args.listen, "serving");
        tokio::select! {
            biased;
            r = node.clone().run() => return r,
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: no new connections"),
            _ = term.recv() => tracing::info!("SIGTERM: no new connections"),
        }
        // The listener is gone with the run future; sessions already open
        // may finish. Delivery retries stay in the spool for the next start.
        let deadline = tokio::time::Instant::now() + grace;
        while node.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(open = node.connections(), "stopped");
        Ok::<(), io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relayguard serve: {e}");
            ExitCode::FAILURE
        }
    }
}
