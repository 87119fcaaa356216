//! The relay's disk in the simulation: the spool and the local mailboxes,
//! kept in the world (so that they survive the relay's crash), behaving as
//! a file system does, and failing when the fault plan says so.
//!
//! The model is symbolic (a file holds an [`Entry`], not bytes) but follows
//! what a POSIX file system does to a careful writer:
//!
//! - a spool write goes to `tmp/`, is fsynced, then renamed into `queue/`;
//!   only a renamed file is durable (the rename and the directory fsync are
//!   one step here). A file still in `tmp/` at a crash is torn: a prefix of
//!   it stays, which recovery deletes;
//! - a failed write, fsync or rename leaves its `tmp/` file behind until
//!   the writer deletes it, and never counts as stored: after a failed
//!   fsync the page cache is not durable;
//! - a mailbox delivery writes `tmp/NAME`, fsyncs, then links it to
//!   `new/NAME`; a name already there is `EEXIST`, which is success only if
//!   the file there holds the same message (a redelivery after a crash);
//! - each operation can fail with `ENOSPC`, `EMFILE`, `EIO` or `EAGAIN`
//!   when the plan has armed a failure for it ([`Fault::Disk`]).
//!
//! Every fault that fires is counted in [`World::fired`], so that a test can
//! see each kind fire in the fixed seeds.
//!
//! [`Fault::Disk`]: crate::faults::Fault::Disk

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use relayguard_core::Message;
use relayguard_core::check::buggify::{Bug, Bugs};
use relayguard_node::{DeliverError, Entry, Listing, Mailboxes, Spool, StoreError, Unreadable};

use crate::rng::{FNV0, fnv};
use crate::world::{Shared, World, sim_id};

/// A file-system call that can be made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Creating and writing a spool file (`open` fails with `EMFILE`,
    /// `write` with `ENOSPC`…).
    SpoolWrite,
    /// The fsync of a spool file, after its data was written.
    SpoolFsync,
    /// Renaming a spool file from `tmp/` into `queue/`.
    SpoolRename,
    /// Listing and reading the queue at recovery.
    SpoolRead,
    /// Unlinking a delivered entry.
    SpoolUnlink,
    /// Creating and writing a mailbox's `tmp/` file.
    MailWrite,
    /// The fsync of a mailbox file.
    MailFsync,
    /// Linking `tmp/NAME` to `new/NAME`.
    MailLink,
    /// The directory fsync after the link: the message is in `new/`, and
    /// yet the call fails.
    MailDirSync,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::SpoolWrite,
        Op::SpoolFsync,
        Op::SpoolRename,
        Op::SpoolRead,
        Op::SpoolUnlink,
        Op::MailWrite,
        Op::MailFsync,
        Op::MailLink,
        Op::MailDirSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::SpoolWrite => "spool write",
            Op::SpoolFsync => "spool fsync",
            Op::SpoolRename => "spool rename",
            Op::SpoolRead => "spool read",
            Op::SpoolUnlink => "spool unlink",
            Op::MailWrite => "mailbox write",
            Op::MailFsync => "mailbox fsync",
            Op::MailLink => "mailbox link",
            Op::MailDirSync => "mailbox dir fsync",
        }
    }
}

/// The error a failing call returns: each is a passing condition, which a
/// correct node defers on and never bounces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Errno {
    Enospc,
    Emfile,
    Eio,
    Eagain,
}

impl Errno {
    pub const ALL: [Errno; 4] = [Errno::Enospc, Errno::Emfile, Errno::Eio, Errno::Eagain];

    pub fn name(self) -> &'static str {
        match self {
            Errno::Enospc => "ENOSPC",
            Errno::Emfile => "EMFILE",
            Errno::Eio => "EIO",
            Errno::Eagain => "EAGAIN",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a file planted in the queue before a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Junk {
    /// A copy of a queued entry whose checksum does not match.
    Corrupt,
    /// A copy of a queued entry cut short of its declared length.
    Truncated,
    /// Not a spool file at all (an editor's swap file, a core dump).
    Foreign,
}

impl Junk {
    pub fn name(self) -> &'static str {
        match self {
            Junk::Corrupt => "corrupt file at recovery",
            Junk::Truncated => "truncated file at recovery",
            Junk::Foreign => "foreign file at recovery",
        }
    }
}

/// A file in the spool's `queue/`.
#[derive(Clone, Debug)]
pub(crate) struct QueueFile {
    /// What it holds; `None` for a foreign file.
    pub(crate) entry: Option<Entry>,
    /// `None` for a good file; else what reading it back finds.
    pub(crate) junk: Option<Junk>,
}

/// The spool, in the world.
#[derive(Default)]
pub(crate) struct SpoolState {
    /// Starts of the relay so far: the first part of every queue id.
    pub(crate) boots: u64,
    /// The next queue id's counter, kept on disk with the boot count.
    pub(crate) next: u64,
    pub(crate) queue: BTreeMap<String, QueueFile>,
    /// `tmp/`: a file being written, and whether its fsync completed.
    pub(crate) tmp: BTreeMap<String, bool>,
    /// Files moved out of the queue, with the reason.
    pub(crate) corrupt: BTreeMap<String, String>,
    /// Writes under way: the crash fault waits for one.
    pub(crate) writing: usize,
    /// Removals under way.
    pub(crate) removing: usize,
    /// The instance holding the spool's lock.
    pub(crate) lock: Option<u64>,
    /// Instances of the relay started so far.
    pub(crate) instances: u64,
    /// The relay's wall clock at the start of the last instance, in
    /// seconds; a clock-behind restart starts at it again.
    pub(crate) last_start_wall: u64,
    /// Whether the next instance starts with its clock behind.
    pub(crate) clock_behind: bool,
}

impl SpoolState {
    /// Whether an entry waits for a retry (the queued crash waits for one).
    pub(crate) fn deferred(&self) -> bool {
        self.queue
            .values()
            .any(|f| f.entry.as_ref().is_some_and(|e| e.attempts > 0))
    }
}

/// The local mailboxes, in the world.
#[derive(Default)]
pub(crate) struct MailState {
    /// `new/`: (mailbox, name) → hash of the message's body.
    pub(crate) new: BTreeMap<(String, String), u64>,
    /// `tmp/` files left behind (the deliverer deletes its own after a
    /// failure; a crash leaves one).
    pub(crate) tmp: BTreeMap<(String, String), bool>,
    /// Deliveries under way: the crash-while-delivering fault waits for one.
    pub(crate) writing: usize,
}

/// The armed disk faults: for each call, the errors its next calls return.
#[derive(Default)]
pub(crate) struct DiskFaults {
    pub(crate) armed: BTreeMap<Op, Vec<Errno>>,
}

impl World {
    /// Counts a fault that fired.
    pub(crate) fn fired(&mut self, kind: &str) {
        *self.fired.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// The error armed for `op`'s next call, if any, counted and traced.
    fn fail(&mut self, op: Op) -> Result<(), String> {
        let Some(errno) = self.disk.armed.get_mut(&op).and_then(|v| v.pop()) else {
            return Ok(());
        };
        self.fired(op.name());
        self.fired(errno.name());
        self.event(&format!("disk fault {}: {errno}", op.name()));
        Err(format!("{}: {errno}", op.name()))
    }

    /// What a crash does to the disk: unsynced `tmp/` files are torn (a
    /// prefix stays), writes in flight end, and every delivered message
    /// whose spool file is still there may be delivered once more.
    pub(crate) fn crash_disk(&mut self) {
        let torn = self.spool.tmp.values().filter(|synced| !**synced).count()
            + self.mail.tmp.values().filter(|synced| !**synced).count();
        for _ in 0..torn {
            self.fired("torn write");
        }
        for f in self.spool.queue.values() {
            if let Some(id) = f.entry.as_ref().and_then(|e| sim_id(&e.message.body)) {
                if self.arrivals.iter().any(|a| a.id.as_deref() == Some(id.as_str())) {
                    *self.excused.entry(id).or_insert(0) += 1;
                } else {
                    // Its last bytes may be on the wire: the exchanger can
                    // take it while the relay is down.
                    self.in_flight_at_crash.insert(id);
                }
            }
        }
        self.unrecorded.clear();
    }
}

/// The spool of one relay instance. Its lock is released when it is
/// dropped, as a crash releases a process's `flock`.
pub(crate) struct SimSpool {
    pub(crate) world: Shared,
    pub(crate) write: Duration,
    pub(crate) bugs: Bugs,
    pub(crate) instance: u64,
    /// The instance's wall clock at its start, in seconds.
    pub(crate) wall_start: u64,
    /// For `reuse-queue-id`: the counter that restarts with the process.
    pub(crate) local_next: Cell<u64>,
}

impl SimSpool {
    /// A new instance's view of the spool; a clock-behind fault armed for
    /// this start sets its wall clock back to the last instance's start.
    pub(crate) fn open(world: Shared, write: Duration, bugs: Bugs, wall_now: u64) -> SimSpool {
        let mut w = world.borrow_mut();
        w.spool.instances += 1;
        let instance = w.spool.instances;
        let wall_start = if std::mem::take(&mut w.spool.clock_behind) && instance > 1 {
            let back = w.spool.last_start_wall;
            w.fired("clock behind at restart");
            w.event(&format!(
                "relay clock behind: starts at {back} s, not {wall_now} s"
            ));
            back
        } else {
            wall_now
        };
        w.spool.last_start_wall = wall_start;
        drop(w);
        SimSpool {
            world,
            write,
            bugs,
            instance,
            wall_start,
            local_next: Cell::new(0),
        }
    }

    fn new_id(&self, w: &mut World) -> String {
        if self.bugs.has(Bug::ReuseQueueId) {
            // BUG reuse-queue-id: the start time and a counter that
            // restarts with the process, as `<seconds>-<pid>-<n>` is for
            // PID 1 in a container whose clock went back
            let n = self.local_next.get() + 1;
            self.local_next.set(n);
            return format!("Q{}-{n:06}", self.wall_start);
        }
        w.spool.next += 1;
        format!("Q{:03}-{:06}", w.spool.boots, w.spool.next)
    }

    /// A new queue id. A correct spool creates the name exclusively; only
    /// the injected bug can draw one that is taken.
    fn fresh_id(&self) -> Result<String, StoreError> {
        let mut w = self.world.borrow_mut();
        let id = self.new_id(&mut w);
        if w.spool.queue.contains_key(&id) && !self.bugs.has(Bug::ReuseQueueId) {
            return Err(StoreError::Transient(format!("queue id {id} taken")));
        }
        Ok(id)
    }

    /// Writes `entry` as queue file `id`: tmp, fsync, rename. On failure
    /// the tmp file is deleted and nothing in the queue changed.
    async fn write_file(&self, id: &str, entry: &Entry) -> Result<(), StoreError> {
        let tmp = format!("{id}.{}", self.instance);
        self.world.borrow_mut().spool.writing += 1;
        let _w = Writing(&self.world);
        self.world
            .borrow_mut()
            .fail(Op::SpoolWrite)
            .map_err(StoreError::Transient)?;
        self.world.borrow_mut().spool.tmp.insert(tmp.clone(), false);
        tokio::time::sleep(self.write).await;
        let mut w = self.world.borrow_mut();
        let synced = w.fail(Op::SpoolFsync).and_then(|()| {
            w.spool.tmp.insert(tmp.clone(), true);
            w.fail(Op::SpoolRename)
        });
        w.spool.tmp.remove(&tmp);
        synced.map_err(StoreError::Transient)?;
        w.spool.queue.insert(
            id.to_string(),
            QueueFile {
                entry: Some(entry.clone()),
                junk: None,
            },
        );
        Ok(())
    }
}

impl Drop for SimSpool {
    fn drop(&mut self) {
        let mut w = self.world.borrow_mut();
        if w.spool.lock == Some(self.instance) {
            w.spool.lock = None;
        }
    }
}

/// A spool file being written while its message's body arrives: in
/// `tmp/` until it is committed (fsync and rename) or aborted.
pub(crate) struct SimWriter {
    id: String,
    tmp: String,
    body: Vec<u8>,
}

/// Counts a write under way for as long as its future lives, so that a
/// crash that drops the future mid-write is seen as one.
struct Writing<'a>(&'a Shared);
impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().spool.writing -= 1;
    }
}

struct Removing<'a>(&'a Shared);
impl Drop for Removing<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().spool.removing -= 1;
    }
}

struct Delivering<'a>(&'a Shared);
impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().mail.writing -= 1;
    }
}

impl Spool for SimSpool {
    async fn lock(&self) -> Result<(), StoreError> {
        let mut w = self.world.borrow_mut();
        match w.spool.lock {
            Some(other) if other != self.instance => {
                Err(StoreError::Permanent(format!("spool locked by instance {other}")))
            }
            _ => {
                w.spool.lock = Some(self.instance);
                w.spool.boots += 1;
                Ok(())
            }
        }
    }

    async fn store(&self, entry: &Entry) -> Result<String, StoreError> {
        let id = self.fresh_id()?;
        self.write_file(&id, entry).await?;
        let mut w = self.world.borrow_mut();
        if let Some(sid) = sim_id(&entry.message.body) {
            *w.stored.entry(sid).or_insert(0) += 1;
        }
        Ok(id)
    }

    fn fresh_id(&self) -> Option<String> {
        let mut w = self.world.borrow_mut();
        Some(self.new_id(&mut w))
    }

    type Writer = SimWriter;

    async fn begin(&self) -> Result<SimWriter, StoreError> {
        let id = self.fresh_id()?;
        let tmp = format!("{id}.{}", self.instance);
        self.world.borrow_mut().spool.tmp.insert(tmp.clone(), false);
        Ok(SimWriter {
            id,
            tmp,
            body: Vec::new(),
        })
    }

    async fn append(&self, writer: &mut SimWriter, piece: Vec<u8>) -> Result<(), StoreError> {
        // A failed write leaves the tmp file until the writer aborts.
        self.world
            .borrow_mut()
            .fail(Op::SpoolWrite)
            .map_err(StoreError::Transient)?;
        writer.body.extend_from_slice(&piece);
        Ok(())
    }

    async fn commit(&self, writer: SimWriter, entry: &Entry) -> Result<String, StoreError> {
        let mut entry = entry.clone();
        entry.message.body = writer.body;
        // The envelope's write, the fsync and the rename, as a whole store.
        self.world.borrow_mut().spool.tmp.remove(&writer.tmp);
        self.write_file(&writer.id, &entry).await?;
        let mut w = self.world.borrow_mut();
        if let Some(sid) = sim_id(&entry.message.body) {
            *w.stored.entry(sid).or_insert(0) += 1;
        }
        Ok(writer.id)
    }

    async fn abort(&self, writer: SimWriter) {
        self.world.borrow_mut().spool.tmp.remove(&writer.tmp);
    }

    async fn body(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let mut w = self.world.borrow_mut();
        w.fail(Op::SpoolRead).map_err(StoreError::Transient)?;
        match w.spool.queue.get(id).map(|f| (f.junk, &f.entry)) {
            Some((None, Some(e))) => Ok(e.message.body.clone()),
            _ => Err(StoreError::Transient(format!("{id}: no readable queue file"))),
        }
    }

    async fn update(&self, id: &str, entry: &Entry) -> Result<(), StoreError> {
        // Like the real spool: a new file renamed over the old, so that a
        // crash leaves one or the other, never half of each. The node
        // holds the envelope only; the body is the file's.
        let body = {
            let w = self.world.borrow();
            let old = w.spool.queue.get(id).and_then(|f| f.entry.as_ref());
            match old {
                Some(e) => e.message.body.clone(),
                None => return Err(StoreError::Transient(format!("{id}: no queue file"))),
            }
        };
        let mut entry = entry.clone();
        entry.message.body = body;
        self.write_file(id, &entry).await?;
        self.world.borrow_mut().unrecorded.remove(id);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.world.borrow_mut().spool.removing += 1;
        let _r = Removing(&self.world);
        tokio::time::sleep(self.write / 2).await;
        let mut w = self.world.borrow_mut();
        w.fail(Op::SpoolUnlink).map_err(StoreError::Transient)?;
        w.spool.queue.remove(id);
        w.unrecorded.remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Listing, StoreError> {
        let mut w = self.world.borrow_mut();
        w.fail(Op::SpoolRead).map_err(StoreError::Transient)?;
        // What a crash left in tmp/ is never an entry: it goes.
        let torn = std::mem::take(&mut w.spool.tmp);
        if !torn.is_empty() {
            w.event(&format!("recovery deletes {} tmp files", torn.len()));
        }
        Ok(w.spool
            .queue
            .iter()
            .map(|(name, f)| match (f.junk, &f.entry) {
                // The envelope: the node reads the body when it delivers.
                (None, Some(e)) => {
                    let mut e = e.clone();
                    e.message.body = Vec::new();
                    Ok((name.clone(), e))
                }
                (junk, _) => Err(Unreadable {
                    name: name.clone(),
                    reason: match junk {
                        Some(Junk::Corrupt) => "checksum mismatch".into(),
                        Some(Junk::Truncated) => "shorter than its declared length".into(),
                        _ => "not a spool file".into(),
                    },
                }),
            })
            .collect())
    }

    async fn quarantine(&self, bad: &Unreadable) {
        let mut w = self.world.borrow_mut();
        if w.spool.queue.remove(&bad.name).is_some() {
            w.spool.corrupt.insert(bad.name.clone(), bad.reason.clone());
        }
    }
}

/// Local delivery into simulated Maildir folders: an arrival like any
/// other, judged the same way, once the link into `new/` is made.
pub(crate) struct SimMailboxes {
    pub(crate) world: Shared,
    pub(crate) write: Duration,
}

impl SimMailboxes {
    /// Delivers into one mailbox. `early` is `Some` for a delivery before
    /// the reply; while it holds `true`, the next link made counts the
    /// message as stored once more (before the arrival is judged against
    /// that count) and sets it `false`.
    async fn put(
        &self,
        mailbox: &str,
        id: &str,
        m: &Message,
        mut early: Option<&mut bool>,
    ) -> Result<(), DeliverError> {
        let name = format!("{id}.{mailbox}");
        let key = (mailbox.to_string(), name.clone());
        let hash = fnv(FNV0, &m.body);
        self.world.borrow_mut().mail.writing += 1;
        let _d = Delivering(&self.world);
        self.world
            .borrow_mut()
            .fail(Op::MailWrite)
            .map_err(DeliverError::Transient)?;
        self.world.borrow_mut().mail.tmp.insert(key.clone(), false);
        tokio::time::sleep(self.write).await;
        let mut w = self.world.borrow_mut();
        let synced = w.fail(Op::MailFsync);
        if synced.is_ok() {
            w.mail.tmp.insert(key.clone(), true);
        }
        let linked = synced.and_then(|()| match w.mail.new.get(&key) {
            // A redelivery after a crash: the same message is there.
            Some(&h) if h == hash => Ok(false),
            Some(_) => Err(format!("{name} exists and holds another message")),
            None => w.fail(Op::MailLink).map(|()| true),
        });
        w.mail.tmp.remove(&key);
        let linked = linked.map_err(DeliverError::Transient)?;
        if linked {
            if early.as_deref_mut().is_some_and(std::mem::take) {
                if let Some(sid) = sim_id(&m.body) {
                    *w.stored.entry(sid).or_insert(0) += 1;
                }
            }
            w.mail.new.insert(key.clone(), hash);
            w.arrive(
                format!("mailbox {mailbox}"),
                vec![mailbox.to_string()],
                m.from.is_null(),
                &m.body,
            );
        } else {
            w.event(&format!("mailbox {mailbox} already holds {name}"));
        }
        let synced = w.fail(Op::MailDirSync).map_err(DeliverError::Transient);
        if synced.is_err() && linked && early.is_some() {
            // Before the reply, as serve's: the file is taken away again.
            w.mail.new.remove(&key);
        }
        synced
    }
}

impl Mailboxes for SimMailboxes {
    /// After the reply the message is in new/ whatever the directory fsync
    /// says next.
    async fn deliver(&self, mailbox: &str, id: &str, m: &Message) -> Result<(), DeliverError> {
        self.put(mailbox, id, m, None).await
    }

    /// One after the other, as serve's: a failed folder fsync fails the
    /// delivery and takes the linked file away again (the node queues that
    /// recipient). A message linked into a mailbox this way counts as
    /// stored once more: its client may not hear the `250` and send it
    /// again, and a reader may have seen the copy taken away; each is the
    /// relay's to deliver.
    async fn deliver_before_reply(
        &self,
        mailboxes: &[String],
        id: &str,
        m: &Message,
    ) -> Vec<Result<(), DeliverError>> {
        let mut results = Vec::with_capacity(mailboxes.len());
        let mut early = true;
        for mailbox in mailboxes {
            let result = self.put(mailbox, id, m, Some(&mut early)).await;
            let mut w = self.world.borrow_mut();
            w.fired(match result {
                Ok(()) => "delivered before the reply",
                Err(_) => "delivery before the reply failed",
            });
            results.push(result);
        }
        results
    }
}
