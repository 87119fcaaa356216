//! The on-disk spool of the real server: a message is durable before the
//! client hears `250`.
//!
//! Each message is one file, written without a name (or under a temporary
//! one), fsynced, linked into place, and the directory fsynced — the order
//! Postfix and Maildir use, so that a crash at any point leaves either no
//! message or a whole one. The file starts with a header line that carries
//! the length and the CRC32C of the rest (a small text envelope and the
//! body), so that a torn, truncated or damaged file is recognised at
//! recovery instead of being delivered damaged. A file that cannot be read
//! back is reported on its own ([`Unreadable`]) beside the good ones, and
//! [`FsSpool::quarantine`] moves it to `SPOOL/corrupt/`.
//!
//! Layout: `SPOOL/lock` (held by the running server, [`SpoolLock`]),
//! `SPOOL/queue/` (one file per queued message), `SPOOL/queue/tmp/` (files
//! being written, where they cannot be unnamed), `SPOOL/corrupt/` (files
//! moved out of the queue).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use relayguard_core::Destination;
use relayguard_core::{Mailbox, parse_path};
use relayguard_core::{Message, Recipient};
use relayguard_node::{Entry, StoreError, Unreadable};

use crate::unnamed;

/// The magic of the message envelope (inside the file, after the queue line).
const MAGIC: &str = "relayguard-spool 1";
/// The first line of a file of the current format:
/// `relayguard-spool 2 <length of the rest> <crc32c of the rest, 8 hex>`.
const MAGIC2: &str = "relayguard-spool 2";
/// The first line of a file of the current format (see [`encode_file`]).
const MAGIC3: &str = "relayguard-spool 3";
/// The width of the v3 header line, newline included.
const HEADER_WIDTH: usize = MAGIC3.len() + 1 + 20 + 1 + 8 + 1 + 20 + 1 + 8 + 1;

/// A spool directory.
#[derive(Clone, Debug)]
pub struct FsSpool {
    root: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    /// Whether to try unnamed files first (tests turn it off, to take the
    /// way of a file system that has none).
    unnamed: bool,
}

/// Adds the path to an I/O error's text, keeping its kind.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// fsyncs a directory, so that the names linked into it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl FsSpool {
    /// Opens (creating it if needed) the spool under `root`. Take the
    /// [`SpoolLock`] first: opening clears `queue/tmp/`, which would pull
    /// the files from under another running instance.
    pub fn open(root: &Path) -> io::Result<FsSpool> {
        let dir = root.join("queue");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| at(&tmp, e))?;
        let spool = FsSpool {
            root: root.to_path_buf(),
            dir,
            tmp,
            unnamed: true,
        };
        // Half-written files of a crashed run were never acknowledged. A
        // directory or anything else that is not ours is moved aside rather
        // than stopping the start.
        for entry in fs::read_dir(&spool.tmp).map_err(|e| at(&spool.tmp, e))? {
            let entry = entry.map_err(|e| at(&spool.tmp, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| at(&path, e))?.is_dir();
            if is_dir {
                let name = format!("tmp-{}", entry.file_name().to_string_lossy());
                let moved = spool.move_aside(&path, &name).map_err(|e| at(&path, e))?;
                tracing::warn!(
                    "spool: {} is a directory; moved to {}",
                    path.display(),
                    moved.display()
                );
            } else {
                fs::remove_file(&path).map_err(|e| at(&path, e))?;
            }
        }
        Ok(spool)
    }

    /// Where [`FsSpool::quarantine`] puts unreadable files.
    pub fn corrupt_dir(&self) -> PathBuf {
        self.root.join("corrupt")
    }

    /// Stores a queue entry durably under `id` (a name the caller makes
    /// unique, [`Ids`]). An id already queued is an error (`AlreadyExists`),
    /// never a silent success or a replacement.
    pub fn store(&self, id: &str, entry: &Entry) -> io::Result<()> {
        self.store_with(id, entry, &sync_dir)
    }

    /// [`FsSpool::store`] with the directory fsync given, so that tests can
    /// make it fail.
    fn store_with(&self, id: &str, entry: &Entry, sync: &dyn Fn(&Path) -> io::Result<()>) -> io::Result<()> {
        let mut file = self.begin(id)?;
        file.append(&entry.message.body)?;
        self.commit_with(file, entry, sync)
    }

    /// Starts the queue file of a message whose body arrives in pieces
    /// ([`BodyFile::append`]); [`FsSpool::commit`] queues it. It has no
    /// name until then ([`unnamed`]), or `queue/tmp/<id>` where the file
    /// system cannot do that. Dropped uncommitted, it leaves nothing.
    pub fn begin(&self, id: &str) -> io::Result<BodyFile> {
        check_id(id)?;
        if self.unnamed {
            if let Some(file) = unnamed::create(&self.dir)? {
                return BodyFile::start(id, None, file);
            }
        }
        self.begin_named(id)
    }

    /// [`FsSpool::begin`] with the name `queue/tmp/<id>` (what
    /// [`FsSpool::update`] renames over the old file); `id` is checked by
    /// the caller.
    fn begin_named(&self, id: &str) -> io::Result<BodyFile> {
        let path = self.tmp.join(id);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        BodyFile::start(id, Some(path), file)
    }

    /// Adds the envelope to a file made by [`FsSpool::begin`], fsyncs it,
    /// links it into the queue and fsyncs the queue: durable when this
    /// returns `Ok`, and nothing queued when it returns an error.
    pub fn commit(&self, file: BodyFile, entry: &Entry) -> io::Result<()> {
        self.commit_with(file, entry, &sync_dir)
    }

    fn commit_with(
        &self,
        mut file: BodyFile,
        entry: &Entry,
        sync: &dyn Fn(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        file.finish(entry)?;
        // A link, not a rename: it refuses to replace a message already
        // queued under the same id. A tmp name goes either way (the
        // BodyFile's drop removes it).
        let path = self.dir.join(&file.id);
        let linked = match (&file.path, &file.file) {
            (Some(tmp), _) => fs::hard_link(tmp, &path),
            (None, Some(unnamed)) => unnamed::link(unnamed, &path),
            (None, None) => Err(io::Error::other("spool file closed")),
        };
        drop(file);
        linked?;
        // Without the directory fsync the link may not survive a crash, so
        // the message may not be acknowledged. The client will hear 451 and
        // keep the message; the file must go first, or the message would be
        // queued (delivered) although its sender was told it was not. If it
        // cannot be removed either, the worst left is a duplicate, never a
        // loss: say so.
        if let Err(e) = sync(&self.dir) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    let _ = sync(&self.dir);
                }
                Err(r) => tracing::error!(
                    "spool: {} could not be made durable ({e}) nor removed ({r}); \
                     the client hears 451, so the message may arrive twice",
                    path.display()
                ),
            }
            return Err(e);
        }
        Ok(())
    }

    /// Replaces a stored entry's queue state (after a delivery round),
    /// atomically. The body is the file's: `entry`'s is ignored. It is
    /// copied into the new file a piece at a time and its checksum checked
    /// on the way, so that the body is never held whole.
    pub fn update(&self, id: &str, entry: &Entry) -> io::Result<()> {
        check_id(id)?;
        let path = self.dir.join(id);
        let mut new = self.begin_named(id)?;
        match open_queue_file(&path)? {
            (QueueFile::V3(head), mut old) => {
                old.seek(SeekFrom::Start(HEADER_WIDTH as u64))?;
                copy_checked(
                    &mut (&mut old).take(head.body_len),
                    head.body_len,
                    head.body_crc,
                    &mut |piece| new.append(piece),
                )?;
            }
            (QueueFile::Older, _) => {
                let old = decode_file(&fs::read(&path)?).map_err(io::Error::other)?;
                new.append(&old.message.body)?;
            }
        }
        new.finish(entry)?;
        fs::rename(self.tmp.join(id), &path)?;
        sync_dir(&self.dir)
    }

    /// The body of queue file `id`, its checksum checked: what a delivery
    /// round reads back.
    pub fn body(&self, id: &str) -> io::Result<Vec<u8>> {
        check_id(id)?;
        let path = self.dir.join(id);
        match open_queue_file(&path)? {
            (QueueFile::V3(head), mut old) => {
                old.seek(SeekFrom::Start(HEADER_WIDTH as u64))?;
                let mut body = Vec::with_capacity(head.body_len.min(1 << 30) as usize);
                copy_checked(
                    &mut old.take(head.body_len),
                    head.body_len,
                    head.body_crc,
                    &mut |piece| {
                        body.extend_from_slice(piece);
                        Ok(())
                    },
                )?;
                Ok(body)
            }
            (QueueFile::Older, _) => {
                let old = decode_file(&fs::read(&path)?).map_err(io::Error::other)?;
                Ok(old.message.body)
            }
        }
    }

    /// Forgets a message that was delivered or bounced.
    ///
    /// The queue directory is not fsynced after: a removal that a crash
    /// undoes only makes the message go out again (at least once, as SMTP
    /// asks; Postfix does not fsync after removing a queue file either),
    /// and a Maildir delivery recognises its own earlier copy
    /// ([`crate::maildir::deliver`]). The fsync was one of five per message.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        check_id(id)?;
        match fs::remove_file(self.dir.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every file in the queue, in name order: the entries a restart must
    /// deliver (envelopes: their bodies are checked, a piece at a time, and
    /// left on disk for [`FsSpool::body`]), and beside them each file that cannot be read back (a bad
    /// name, not a regular file, empty, truncated, garbled, a checksum
    /// mismatch, another program's file). Only a failure to read the queue
    /// directory itself is an error.
    pub fn list(&self) -> io::Result<Vec<Result<(String, Entry), Unreadable>>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| at(&self.dir, e))? {
            let entry = entry.map_err(|e| at(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "tmp" {
                continue;
            }
            names.push((name, entry.file_type().map_err(|e| at(&entry.path(), e))?));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(names.len());
        for (name, kind) in names {
            let bad = |reason: String| {
                Err(Unreadable {
                    name: name.clone(),
                    reason,
                })
            };
            if let Err(e) = check_id(&name) {
                out.push(bad(e.to_string()));
            } else if !kind.is_file() {
                out.push(bad(format!("not a regular file ({kind:?})")));
            } else {
                out.push(match self.read(&name) {
                    Ok(entry) => Ok((name, entry)),
                    Err(reason) => bad(reason),
                });
            }
        }
        Ok(out)
    }

    /// Reads one queue file's envelope, its body checked but not kept,
    /// retrying (bounded) an error that may pass, such as a full
    /// descriptor table at recovery.
    fn read(&self, id: &str) -> Result<Entry, String> {
        let path = self.dir.join(id);
        let mut tries = 0;
        loop {
            match read_envelope(&path) {
                Ok(entry) => return entry,
                Err(e) if is_transient(&e) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20 << tries));
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Moves the queue file `name` to `SPOOL/corrupt/` (under a new name if
    /// that one is taken) and returns where it went. A file that reads
    /// fine now, or that cannot be read for a reason that may pass (the
    /// descriptors ran out), stays in the queue: only a file whose content
    /// or kind is bad is moved.
    pub fn quarantine(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name == "tmp" || name.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad queue file name {name:?}"),
            ));
        }
        let path = self.dir.join(name);
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_file() && check_id(name).is_ok() {
            match fs::read(&path) {
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("read again: {e}; left in the queue"),
                    ));
                }
                Ok(bytes) if decode_file(&bytes).is_ok() => {
                    return Err(io::Error::other("readable on a second look; left in the queue"));
                }
                Ok(_) => {}
            }
        }
        let moved = self.move_aside(&path, name)?;
        sync_dir(&self.dir)?;
        Ok(moved)
    }

    /// Renames `path` into `corrupt/` as `name`, or `name.1`, `name.2`, ...
    /// if taken (bounded), and fsyncs `corrupt/`.
    fn move_aside(&self, path: &Path, name: &str) -> io::Result<PathBuf> {
        let corrupt = self.corrupt_dir();
        fs::create_dir_all(&corrupt)?;
        for n in 0..1000 {
            let to = if n == 0 {
                corrupt.join(name)
            } else {
                corrupt.join(format!("{name}.{n}"))
            };
            if fs::symlink_metadata(&to).is_ok() {
                continue;
            }
            fs::rename(path, &to)?;
            sync_dir(&corrupt)?;
            return Ok(to);
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: 1000 names taken", corrupt.join(name).display()),
        ))
    }
}

/// The lock that keeps a second server off a spool: `flock` on
/// `SPOOL/lock`, held as long as this value lives (the kernel drops it
/// when the process dies, however it dies). Two servers on one spool would
/// each deliver every queued message, and the second would clear the
/// first's `queue/tmp/`.
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

impl SpoolLock {
    /// Takes the lock without waiting; if another process holds it, the
    /// error says so and names the spool.
    pub fn acquire(root: &Path) -> io::Result<SpoolLock> {
        fs::create_dir_all(root).map_err(|e| at(root, e))?;
        let path = root.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "spool {} is in use: another relayguard serve{} holds {}; \
                         two servers on one spool would each deliver every message",
                        root.display(),
                        if holder.is_empty() {
                            String::new()
                        } else {
                            format!(" (pid {holder})")
                        },
                        path.display()
                    ),
                ));
            }
            return Err(at(&path, e));
        }
        // For whoever looks: which process holds it.
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))?;
        Ok(SpoolLock { _file: file })
    }
}

/// Queue ids that do not repeat across restarts, PIDs (every container's
/// server is PID 1) or clock steps: the start time (for a rough order),
/// 64 random bits from the OS drawn once per run, and a counter.
#[derive(Debug)]
pub struct Ids {
    run: String,
    next: AtomicU64,
}

impl Ids {
    pub fn new() -> io::Result<Ids> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(format!("getrandom: {e}")))?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Ids {
            run: format!("{secs:09x}-{:016x}", u64::from_be_bytes(random)),
            next: AtomicU64::new(0),
        })
    }

    /// This run's prefix (also names `--record` transcripts).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The next id: `<run>-<counter>`.
    pub fn next(&self) -> String {
        format!("{}-{:06}", self.run, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// Whether an I/O error may go away by itself: a full disk or quota, a full
/// descriptor table (EMFILE, ENFILE), a device error (EIO), a call that
/// would block, was interrupted or timed out, memory that ran short.
/// Anything else (permissions, a bad name, an id already queued) fails the
/// same way the next time. Local delivery ([`crate::maildir`]) uses it too.
pub fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | QuotaExceeded | WouldBlock | Interrupted | TimedOut | OutOfMemory
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EMFILE
                | libc::ENFILE
                | libc::EIO
                | libc::EAGAIN
                | libc::EINTR
                | libc::ENOMEM
        )
    )
}

/// A failed [`FsSpool::store`] as the node sees it.
pub fn store_error(e: io::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Transient(e.to_string())
    } else {
        StoreError::Permanent(e.to_string())
    }
}

/// A whole queue file of the current format (v3): the header line, the
/// body, then [`encode_entry`] of the envelope (its body empty). The header
/// has a fixed width and comes first, written last: a body that streams in
/// is written once, as it arrives, and its length and CRC32C are known
/// only at the end.
///
/// `relayguard-spool 3 <body length> <body crc32c> <envelope length> <envelope crc32c>`
pub fn encode_file(e: &Entry) -> Vec<u8> {
    let envelope = encode_envelope(e);
    let head = header(
        e.message.body.len() as u64,
        crc32c::crc32c(&e.message.body),
        envelope.len() as u64,
        crc32c::crc32c(&envelope),
    );
    let mut out = Vec::with_capacity(head.len() + e.message.body.len() + envelope.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&e.message.body);
    out.extend_from_slice(&envelope);
    out
}

/// The v3 header line; always [`HEADER_WIDTH`] octets.
fn header(body_len: u64, body_crc: u32, env_len: u64, env_crc: u32) -> String {
    format!("{MAGIC3} {body_len:020} {body_crc:08x} {env_len:020} {env_crc:08x}\n")
}

/// The queue line and the envelope of `e`, without its body.
fn encode_envelope(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    encode_entry_head_into(e, &mut out);
    out
}

/// Reads a queue file back, checking its lengths and checksums. Files of
/// the earlier formats are still read: v2 (a header with the length and
/// CRC32C of the envelope and body after it) and the first (no header:
/// it starts with the queue line, read without a check), so that a queue
/// left by an older version is delivered after an upgrade.
pub fn decode_file(bytes: &[u8]) -> Result<Entry, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if bytes.starts_with(b"queue ") {
        return decode_entry(bytes);
    }
    let nl = bytes
        .iter()
        .take(HEADER_WIDTH + 1)
        .position(|&b| b == b'\n')
        .ok_or("not a relayguard spool file")?;
    let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| "not a relayguard spool file")?;
    let rest = &bytes[nl + 1..];
    if let Some(fields) = head.strip_prefix(MAGIC3) {
        let h = parse_v3(fields)?;
        check_len(rest.len() as u64, h.body_len.saturating_add(h.env_len))?;
        let (body, envelope) = rest.split_at(h.body_len as usize);
        check_crc(crc32c::crc32c(body), h.body_crc)?;
        check_crc(crc32c::crc32c(envelope), h.env_crc)?;
        let mut entry = decode_entry(envelope)?;
        entry.message.body = body.to_vec();
        return Ok(entry);
    }
    let fields = head
        .strip_prefix(MAGIC2)
        .and_then(|h| h.strip_prefix(' '))
        .ok_or("not a relayguard spool file")?;
    let (len, crc) = fields.split_once(' ').ok_or("bad header")?;
    let len: u64 = len.parse().map_err(|_| "bad length in header")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum in header")?;
    check_len(rest.len() as u64, len)?;
    check_crc(crc32c::crc32c(rest), crc)?;
    decode_entry(rest)
}

fn check_len(actual: u64, declared: u64) -> Result<(), String> {
    if actual == declared {
        return Ok(());
    }
    Err(format!(
        "length {actual} instead of {declared}: {}",
        if actual < declared {
            "truncated"
        } else {
            "trailing bytes"
        }
    ))
}

fn check_crc(actual: u32, declared: u32) -> Result<(), String> {
    if actual == declared {
        Ok(())
    } else {
        Err(format!(
            "checksum {actual:08x} instead of {declared:08x}: damaged"
        ))
    }
}

/// The fields of a v3 header, after its magic.
#[derive(Clone, Copy, Debug)]
struct Head {
    body_len: u64,
    body_crc: u32,
    env_len: u64,
    env_crc: u32,
}

fn parse_v3(fields: &str) -> Result<Head, String> {
    let f: Vec<&str> = fields.trim_start_matches(' ').split(' ').collect();
    let [body_len, body_crc, env_len, env_crc] = f[..] else {
        return Err("bad header".into());
    };
    let len = |s: &str| s.parse::<u64>().map_err(|_| "bad length in header".to_string());
    let crc = |s: &str| u32::from_str_radix(s, 16).map_err(|_| "bad checksum in header".to_string());
    Ok(Head {
        body_len: len(body_len)?,
        body_crc: crc(body_crc)?,
        env_len: len(env_len)?,
        env_crc: crc(env_crc)?,
    })
}

/// What the first line of a queue file says it is.
enum QueueFile {
    V3(Head),
    /// v2 or the first format: read whole.
    Older,
}

/// Opens a queue file and reads its header. Only an I/O error is an
/// `Err`; a v3 header that does not parse is `InvalidData`.
fn open_queue_file(path: &Path) -> io::Result<(QueueFile, File)> {
    let mut file = File::open(path)?;
    let mut head = [0u8; HEADER_WIDTH];
    let n = read_up_to(&mut file, &mut head)?;
    let head = &head[..n];
    if n == HEADER_WIDTH && head.starts_with(MAGIC3.as_bytes()) && head.ends_with(b"\n") {
        let text = std::str::from_utf8(&head[MAGIC3.len()..HEADER_WIDTH - 1])
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad header"))?;
        let h = parse_v3(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        return Ok((QueueFile::V3(h), file));
    }
    Ok((QueueFile::Older, file))
}

/// Reads until `buf` is full or the file ends; returns how much it read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copies `len` octets from `from` to `to` a piece at a time, checking
/// their CRC32C against `crc`; a short or damaged body is `InvalidData`.
fn copy_checked(
    from: &mut dyn Read,
    len: u64,
    crc: u32,
    to: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut sum) = (0u64, 0u32);
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        sum = crc32c::crc32c_append(sum, &buf[..n]);
        to(&buf[..n])?;
    }
    check_len(got, len)
        .and_then(|()| check_crc(sum, crc))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("body: {e}")))
}

/// A queue file's envelope, its lengths and checksums checked without
/// keeping the body: `Ok(Err(why))` for a file that is not a good queue
/// file, `Err` for an I/O error.
fn read_envelope(path: &Path) -> io::Result<Result<Entry, String>> {
    let (kind, mut file) = open_queue_file(path)?;
    let h = match kind {
        QueueFile::V3(h) => h,
        QueueFile::Older => {
            return Ok(decode_file(&fs::read(path)?).map(|mut e| {
                e.message.body = Vec::new();
                e
            }));
        }
    };
    let size = file.metadata()?.len();
    if let Err(e) = check_len(
        size,
        (HEADER_WIDTH as u64)
            .saturating_add(h.body_len)
            .saturating_add(h.env_len),
    ) {
        return Ok(Err(e));
    }
    match copy_checked(
        &mut (&mut file).take(h.body_len),
        h.body_len,
        h.body_crc,
        &mut |_| Ok(()),
    ) {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(Err(e.to_string())),
        r => r?,
    }
    let mut envelope = Vec::with_capacity(h.env_len.min(1 << 20) as usize);
    file.take(h.env_len).read_to_end(&mut envelope)?;
    if let Err(e) = check_crc(crc32c::crc32c(&envelope), h.env_crc) {
        return Ok(Err(e));
    }
    Ok(decode_entry(&envelope))
}

/// A queue file being written as its message's body arrives, unnamed or
/// in `queue/tmp/`: [`FsSpool::begin`], [`BodyFile::append`],
/// [`FsSpool::commit`]. Its length and CRC32C are kept as it goes, so
/// that the body is never held whole. Dropped without a commit, the file
/// is removed: a message that was not acknowledged leaves nothing.
#[derive(Debug)]
pub struct BodyFile {
    id: String,
    /// The name in `queue/tmp/`; none for an unnamed file.
    path: Option<PathBuf>,
    file: Option<File>,
    len: u64,
    crc: u32,
}

impl BodyFile {
    fn start(id: &str, path: Option<PathBuf>, mut file: File) -> io::Result<BodyFile> {
        // The header's place: it is written at the commit, when the
        // lengths and checksums are known.
        file.write_all(&[b' '; HEADER_WIDTH])?;
        Ok(BodyFile {
            id: id.to_string(),
            path,
            file: Some(file),
            len: 0,
            crc: 0,
        })
    }

    /// The queue id the file will have.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes the next piece of the body.
    pub fn append(&mut self, piece: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool file closed"))?;
        file.write_all(piece)?;
        self.len += piece.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, piece);
        Ok(())
    }

    /// Writes the envelope and the header, and fsyncs.
    fn finish(&mut self, entry: &Entry) -> io::Result<()> {
        let envelope = encode_envelope(entry);
        let head = header(
            self.len,
            self.crc,
            envelope.len() as u64,
            crc32c::crc32c(&envelope),
        );
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool file closed"))?;
        file.write_all(&envelope)?;
        file.write_all_at(head.as_bytes(), 0)?;
        file.sync_all()
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        self.file = None;
        let Some(path) = &self.path else { return };
        if let Err(e) = fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                // Only a leftover: the next start clears queue/tmp.
                tracing::warn!("spool: removing {}: {e}", path.display());
            }
        }
    }
}

fn check_id(id: &str) -> io::Result<()> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || id.starts_with('.')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad spool id {id:?}"),
        ));
    }
    Ok(())
}

/// An entry: the queue state (attempts, the recipients still pending, by
/// their place in the message) on its first line, then the message.
pub fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.message.body.len() + 512);
    encode_entry_into(e, &mut out);
    out
}

fn encode_entry_into(e: &Entry, out: &mut Vec<u8>) {
    encode_entry_head_into(e, out);
    out.extend_from_slice(&e.message.body);
}

/// [`encode_entry_into`] without the body.
fn encode_entry_head_into(e: &Entry, out: &mut Vec<u8>) {
    let pending = e
        .message
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| e.pending.contains(r))
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    out.extend_from_slice(format!("queue {} {pending}\n", e.attempts).as_bytes());
    encode_head_into(&e.message, out);
}

pub fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or("no queue line")?;
    let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| "queue line is not UTF-8")?;
    let mut words = head.split(' ');
    if words.next() != Some("queue") {
        return Err("no queue line".into());
    }
    let attempts = words.next().and_then(|a| a.parse().ok()).ok_or("bad attempts")?;
    let message = decode(&bytes[nl + 1..])?;
    let mut pending = Vec::new();
    for i in words.next().unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        let i: usize = i.parse().map_err(|_| format!("bad pending index {i:?}"))?;
        pending.push(
            message
                .recipients
                .get(i)
                .ok_or("pending index out of range")?
                .clone(),
        );
    }
    Ok(Entry {
        message,
        pending,
        attempts,
    })
}

/// The envelope as text lines, a blank line, then the body. Recipient
/// lines are `rcpt KIND<TAB>TARGET<TAB>PATH`.
pub fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.body.len() + 512);
    encode_into(m, &mut out);
    out
}

/// [`encode`], appended to `bytes` (no copy of the body but this one).
fn encode_into(m: &Message, bytes: &mut Vec<u8>) {
    encode_head_into(m, bytes);
    bytes.extend_from_slice(&m.body);
}

/// The envelope lines and the blank line, without the body.
fn encode_head_into(m: &Message, bytes: &mut Vec<u8>) {
    let mut out = format!("{MAGIC}\nclient {}\nhelo {}\n", m.client, m.helo);
    if let Some(u) = &m.user {
        out.push_str(&format!("user {u}\n"));
    }
    out.push_str(&format!("from {}\n", m.from));
    for r in &m.recipients {
        let (kind, target) = match &r.destination {
            Destination::Local { mailbox } => ("local", mailbox.clone()),
            Destination::RelayTo { mailbox } => ("relay-to", mailbox.to_string()),
            Destination::Remote { mailbox } => ("remote", mailbox.to_string()),
        };
        // Tabs: a quoted local part may hold spaces, never a tab.
        out.push_str(&format!("rcpt {kind}\t{target}\t{}\n", r.path));
    }
    out.push('\n');
    bytes.extend_from_slice(out.as_bytes());
}

pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("no end of envelope")?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "envelope is not UTF-8")?;
    let body = bytes[split + 2..].to_vec();
    let mut lines = head.lines();
    if lines.next() != Some(MAGIC) {
        return Err("not a relayguard spool file".into());
    }
    let mut client: Option<IpAddr> = None;
    let mut helo = String::new();
    let mut user = None;
    let mut from = None;
    let mut recipients = Vec::new();
    for line in lines {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "client" => client = Some(value.parse().map_err(|_| format!("bad client {value:?}"))?),
            "helo" => helo = value.to_string(),
            "user" => user = Some(value.to_string()),
            "from" => from = Some(parse_path(value).map_err(|e| format!("bad sender {value:?}: {e}"))?),
            "rcpt" => {
                let mut parts = value.splitn(3, '\t');
                let (Some(kind), Some(target), Some(path)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!("bad recipient line {line:?}"));
                };
                let mailbox = || Mailbox::parse(target).map_err(|e| format!("bad recipient {target:?}: {e}"));
                let destination = match kind {
                    "local" => Destination::Local {
                        mailbox: target.to_string(),
                    },
                    "relay-to" => Destination::RelayTo { mailbox: mailbox()? },
                    "remote" => Destination::Remote { mailbox: mailbox()? },
                    _ => return Err(format!("bad recipient kind {kind:?}")),
                };
                let path = parse_path(path).map_err(|e| format!("bad recipient path {path:?}: {e}"))?;
                recipients.push(Recipient { path, destination });
            }
            _ => return Err(format!("unknown envelope line {line:?}")),
        }
    }
    Ok(Message {
        client: client.ok_or("no client")?,
        helo,
        user,
        from: from.ok_or("no sender")?,
        recipients,
        body,
    })
}

#[cfg(test)]
mod tests;
