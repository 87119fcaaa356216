//! The on-disk spool of the real server: a message is durable before the
//! client hears `250`.
//!
//! Each message is one file, written under a temporary name, fsynced,
//! linked into place, and the directory fsynced — the order Postfix and
//! Maildir use, so that a crash at any point leaves either no message or a
//! whole one. The file starts with a header line that carries the length
//! and the CRC32C of the rest (a small text envelope and the body), so that
//! a torn, truncated or damaged file is recognised at recovery instead of
//! being delivered damaged. A file that cannot be read back is reported on
//! its own ([`Unreadable`]) beside the good ones, and [`FsSpool::quarantine`]
//! moves it to `SPOOL/corrupt/`.
//!
//! Layout: `SPOOL/lock` (held by the running server, [`SpoolLock`]),
//! `SPOOL/queue/` (one file per queued message), `SPOOL/queue/tmp/` (files
//! being written), `SPOOL/corrupt/` (files moved out of the queue).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use relayguard_core::Destination;
use relayguard_core::{Mailbox, parse_path};
use relayguard_core::{Message, Recipient};
use relayguard_node::{Entry, StoreError, Unreadable};

/// The magic of the message envelope (inside the file, after the queue line).
const MAGIC: &str = "relayguard-spool 1";
/// The first line of a file of the current format:
/// `relayguard-spool 2 <length of the rest> <crc32c of the rest, 8 hex>`.
const MAGIC2: &str = "relayguard-spool 2";

/// A spool directory.
#[derive(Clone, Debug)]
pub struct FsSpool {
    root: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
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
        self.store_file(id, &encode_file(entry))
    }

    /// [`FsSpool::store`] of a file already made by [`encode_file`] (the
    /// server encodes on its own thread rather than copy the entry).
    pub fn store_file(&self, id: &str, file: &[u8]) -> io::Result<()> {
        self.store_with(id, file, &sync_dir)
    }

    /// [`FsSpool::store`] with the directory fsync given, so that tests can
    /// make it fail.
    fn store_with(&self, id: &str, file: &[u8], sync: &dyn Fn(&Path) -> io::Result<()>) -> io::Result<()> {
        check_id(id)?;
        let tmp = self.write_tmp(id, file)?;
        // A link, not a rename: it refuses to replace a message already
        // queued under the same id.
        let path = self.dir.join(id);
        let linked = fs::hard_link(&tmp, &path);
        if let Err(e) = fs::remove_file(&tmp) {
            // Only a leftover: the next start clears queue/tmp.
            tracing::warn!("spool: removing {}: {e}", tmp.display());
        }
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

    /// Replaces a stored entry (after a delivery round), atomically.
    pub fn update(&self, id: &str, entry: &Entry) -> io::Result<()> {
        self.update_file(id, &encode_file(entry))
    }

    /// [`FsSpool::update`] of a file already made by [`encode_file`].
    pub fn update_file(&self, id: &str, file: &[u8]) -> io::Result<()> {
        check_id(id)?;
        let tmp = self.write_tmp(id, file)?;
        if let Err(e) = fs::rename(&tmp, self.dir.join(id)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.dir)
    }

    /// Writes and fsyncs `queue/tmp/<id>`; on failure nothing is left.
    fn write_tmp(&self, id: &str, file: &[u8]) -> io::Result<PathBuf> {
        let tmp = self.tmp.join(id);
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(file)?;
                f.sync_all()
            });
        match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                // A full disk must not stay full because of our half file.
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Forgets a message that was delivered or bounced.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        check_id(id)?;
        match fs::remove_file(self.dir.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => sync_dir(&self.dir),
        }
    }

    /// Every file in the queue, in name order: the entries a restart must
    /// deliver, and beside them each file that cannot be read back (a bad
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

    /// Reads one queue file, retrying (bounded) an error that may pass,
    /// such as a full descriptor table at recovery.
    fn read(&self, id: &str) -> Result<Entry, String> {
        let path = self.dir.join(id);
        let mut tries = 0;
        let bytes = loop {
            match fs::read(&path) {
                Ok(b) => break b,
                Err(e) if is_transient(&e) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20 << tries));
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        };
        decode_file(&bytes)
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

/// A whole queue file: the header line with the length and CRC32C of the
/// rest, then [`encode_entry`].
/// The header has a fixed width, so that it is written in place in front
/// of the rest: a 10 MB body is copied once, not three times.
pub fn encode_file(e: &Entry) -> Vec<u8> {
    let header = |len: usize, crc: u32| format!("{MAGIC2} {len:020} {crc:08x}\n");
    let width = header(0, 0).len();
    let mut out = Vec::with_capacity(width + e.message.body.len() + 512);
    out.resize(width, b' ');
    let pending = e
        .message
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| e.pending.contains(r))
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    encode_entry_into(e, &pending, &mut out);
    let rest = &out[width..];
    let head = header(rest.len(), crc32c::crc32c(rest));
    out[..width].copy_from_slice(head.as_bytes());
    out
}

/// Reads a queue file back, checking its length and checksum. A file of
/// the first format (no header: it starts with the queue line) is still
/// read, without a check, so that a queue left by an older version is
/// delivered after an upgrade.
pub fn decode_file(bytes: &[u8]) -> Result<Entry, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if bytes.starts_with(b"queue ") {
        return decode_entry(bytes);
    }
    let nl = bytes
        .iter()
        .take(64)
        .position(|&b| b == b'\n')
        .ok_or("not a relayguard spool file")?;
    let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| "not a relayguard spool file")?;
    let rest = &bytes[nl + 1..];
    let fields = head
        .strip_prefix(MAGIC2)
        .and_then(|h| h.strip_prefix(' '))
        .ok_or("not a relayguard spool file")?;
    let (len, crc) = fields.split_once(' ').ok_or("bad header")?;
    let len: usize = len.parse().map_err(|_| "bad length in header")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum in header")?;
    if rest.len() != len {
        return Err(format!(
            "length {} instead of {len}: {}",
            rest.len(),
            if rest.len() < len {
                "truncated"
            } else {
                "trailing bytes"
            }
        ));
    }
    let actual = crc32c::crc32c(rest);
    if actual != crc {
        return Err(format!("checksum {actual:08x} instead of {crc:08x}: damaged"));
    }
    decode_entry(rest)
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
    let pending: Vec<String> = e
        .message
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| e.pending.contains(r))
        .map(|(i, _)| i.to_string())
        .collect();
    let mut out = Vec::with_capacity(e.message.body.len() + 512);
    encode_entry_into(e, &pending.join(","), &mut out);
    out
}

fn encode_entry_into(e: &Entry, pending: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("queue {} {pending}\n", e.attempts).as_bytes());
    encode_into(&e.message, out);
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
    bytes.extend_from_slice(&m.body);
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
mod tests {
    use super::*;

    fn message() -> Message {
        let rcpt = |s: &str, d: Destination| Recipient {
            path: parse_path(s).unwrap(),
            destination: d,
        };
        Message {
            client: "192.168.1.5".parse().unwrap(),
            helo: "pc.lan".into(),
            user: Some("carol".into()),
            from: parse_path("<>").unwrap(),
            recipients: vec![
                rcpt(
                    "<alice@example.com>",
                    Destination::Local {
                        mailbox: "alice@example.com".into(),
                    },
                ),
                rcpt(
                    "<\"a b\"@nmap.scanme.org>",
                    Destination::Remote {
                        mailbox: Mailbox::parse("\"a b\"@nmap.scanme.org").unwrap(),
                    },
                ),
            ],
            body: b"Subject: x\r\n\r\nline\r\n\n\r\n".to_vec(),
        }
    }

    #[test]
    fn envelope_round_trips() {
        let m = message();
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    /// A fresh folder for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relayguard-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn good(list: Vec<Result<(String, Entry), Unreadable>>) -> Vec<(String, Entry)> {
        list.into_iter().map(|r| r.unwrap()).collect()
    }

    /// An entry with a body long enough to lose 400 bytes.
    fn long_entry(n: u8) -> Entry {
        let mut m = message();
        m.body = format!("Subject: {n}\r\n\r\n{}\r\n", "line of text ".repeat(100)).into_bytes();
        Entry::new(m)
    }

    #[test]
    fn store_update_list_remove() {
        let dir = scratch("basic");
        let spool = FsSpool::open(&dir).unwrap();
        let mut entry = Entry::new(message());
        spool.store("0001", &entry).unwrap();
        assert!(spool.store("../x", &entry).is_err());
        let listed = FsSpool::open(&dir).unwrap().list().unwrap();
        assert_eq!(good(listed), vec![("0001".to_string(), entry.clone())]);
        entry.attempts = 3;
        entry.pending.remove(0);
        spool.update("0001", &entry).unwrap();
        assert_eq!(good(spool.list().unwrap()), vec![("0001".to_string(), entry)]);
        spool.remove("0001").unwrap();
        assert!(spool.list().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_id_is_an_error_and_keeps_the_first_message() {
        let dir = scratch("exists");
        let spool = FsSpool::open(&dir).unwrap();
        let first = long_entry(1);
        spool.store("0001", &first).unwrap();
        let e = spool.store("0001", &long_entry(2)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert!(!store_error(e).is_transient());
        assert_eq!(good(spool.list().unwrap()), vec![("0001".to_string(), first)]);
        assert_eq!(fs::read_dir(dir.join("queue/tmp")).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_are_quarantined_and_the_rest_recovered() {
        let dir = scratch("corrupt");
        let spool = FsSpool::open(&dir).unwrap();
        let q = dir.join("queue");
        for (id, n) in [("a1", 1), ("c1", 2), ("z1", 3)] {
            spool.store(id, &long_entry(n)).unwrap();
        }
        let whole = fs::read(q.join("c1")).unwrap();
        fs::write(q.join("b-empty"), b"").unwrap();
        fs::write(q.join("b-junk"), b"GET / HTTP/1.0\r\n\r\n").unwrap();
        fs::write(q.join("b-truncated"), &whole[..whole.len() - 400]).unwrap();
        let mut garbled = whole.clone();
        let at = garbled.len() - 10;
        garbled[at] ^= 0x20;
        fs::write(q.join("b-garbled"), &garbled).unwrap();
        fs::write(q.join("b-long"), [&whole[..], b"more"].concat()).unwrap();
        fs::write(q.join("b-foreign"), b"relayguard-spool 2 x y\nqueue 0 0\n").unwrap();
        fs::write(q.join("bad id~"), &whole).unwrap();
        fs::create_dir(q.join("b-dir")).unwrap();
        let listed = spool.list().unwrap();
        let (ok, bad): (Vec<_>, Vec<_>) = listed.into_iter().partition(|r| r.is_ok());
        let ok: Vec<String> = ok.into_iter().map(|r| r.unwrap().0).collect();
        assert_eq!(ok, ["a1", "c1", "z1"]);
        let bad: Vec<Unreadable> = bad.into_iter().map(|r| r.unwrap_err()).collect();
        let reason = |name: &str| bad.iter().find(|u| u.name == name).unwrap().reason.clone();
        assert_eq!(bad.len(), 8, "{bad:?}");
        assert!(
            reason("b-truncated").contains("truncated"),
            "{}",
            reason("b-truncated")
        );
        assert!(
            reason("b-garbled").contains("checksum"),
            "{}",
            reason("b-garbled")
        );
        assert!(reason("b-long").contains("trailing"), "{}", reason("b-long"));
        assert!(reason("b-empty").contains("empty"));
        assert!(reason("b-dir").contains("not a regular file"));
        assert!(reason("bad id~").contains("bad spool id"));
        for u in &bad {
            let moved = spool.quarantine(&u.name).unwrap();
            assert_eq!(moved, dir.join("corrupt").join(&u.name));
        }
        // Nothing read again at the next start; every good message still there.
        let again = FsSpool::open(&dir).unwrap().list().unwrap();
        assert_eq!(
            good(again).into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
            ["a1", "c1", "z1"]
        );
        assert_eq!(
            fs::read(dir.join("corrupt/b-truncated")).unwrap().len(),
            whole.len() - 400
        );
        // The same name again goes beside the first, not over it.
        fs::write(q.join("b-junk"), b"again").unwrap();
        assert_eq!(spool.quarantine("b-junk").unwrap(), dir.join("corrupt/b-junk.1"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quarantine_never_moves_a_good_file() {
        let dir = scratch("keep");
        let spool = FsSpool::open(&dir).unwrap();
        spool.store("a1", &long_entry(1)).unwrap();
        assert!(spool.quarantine("a1").is_err());
        assert!(spool.quarantine("../lock").is_err());
        assert_eq!(good(spool.list().unwrap()).len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_body_truncated_by_400_bytes_is_detected() {
        let entry = long_entry(1);
        let file = encode_file(&entry);
        assert_eq!(decode_file(&file).unwrap(), entry);
        let e = decode_file(&file[..file.len() - 400]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // The same length with other bytes is caught by the checksum.
        let mut other = file.clone();
        let at = other.len() - 400;
        other[at] = b'#';
        assert!(decode_file(&other).unwrap_err().contains("checksum"));
    }

    #[test]
    fn the_first_format_is_still_read() {
        let entry = long_entry(1);
        assert_eq!(decode_file(&encode_entry(&entry)).unwrap(), entry);
    }

    #[test]
    fn junk_in_tmp_does_not_stop_the_start() {
        let dir = scratch("tmpjunk");
        let tmp = dir.join("queue/tmp");
        fs::create_dir_all(tmp.join("a-dir/inner")).unwrap();
        fs::write(tmp.join("half"), b"half a message").unwrap();
        fs::write(tmp.join("a-dir/inner/f"), b"x").unwrap();
        FsSpool::open(&dir).unwrap();
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        assert!(dir.join("corrupt/tmp-a-dir/inner/f").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_directory_fsync_leaves_no_queued_message() {
        let dir = scratch("fsync");
        let spool = FsSpool::open(&dir).unwrap();
        let eio = |_: &Path| Err(io::Error::from_raw_os_error(libc::EIO));
        let e = spool
            .store_with("a1", &encode_file(&long_entry(1)), &eio)
            .unwrap_err();
        assert!(store_error(e).is_transient());
        // The client hears 451: nothing may be left to deliver behind it.
        assert!(spool.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.join("queue/tmp")).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_are_unique_across_runs_of_one_process_in_one_second() {
        let (a, b) = (Ids::new().unwrap(), Ids::new().unwrap());
        assert_ne!(a.run(), b.run());
        let mut all = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            assert!(all.insert(a.next()));
            assert!(all.insert(b.next()));
        }
        for id in &all {
            check_id(id).unwrap();
        }
    }

    #[test]
    fn a_second_lock_on_a_spool_is_refused() {
        let dir = scratch("lock");
        let first = SpoolLock::acquire(&dir).unwrap();
        let e = SpoolLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains("in use") && e.contains("another relayguard serve"),
            "{e}"
        );
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        SpoolLock::acquire(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn io_errors_are_transient_or_permanent() {
        let os = |n| store_error(io::Error::from_raw_os_error(n));
        for n in [
            libc::ENOSPC,
            libc::EDQUOT,
            libc::EMFILE,
            libc::ENFILE,
            libc::EIO,
            libc::EAGAIN,
            libc::EINTR,
        ] {
            assert!(os(n).is_transient(), "{}", os(n));
        }
        for n in [
            libc::EACCES,
            libc::EEXIST,
            libc::ENOENT,
            libc::EROFS,
            libc::EINVAL,
        ] {
            assert!(!os(n).is_transient(), "{}", os(n));
        }
        let bad_id = FsSpool {
            root: PathBuf::new(),
            dir: PathBuf::new(),
            tmp: PathBuf::new(),
        }
        .store("../x", &Entry::new(message()))
        .unwrap_err();
        assert_eq!(
            store_error(bad_id),
            StoreError::Permanent("bad spool id \"../x\"".into())
        );
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        assert!(decode(b"garbage").is_err());
        assert!(decode(b"relayguard-spool 1\nclient x\n\n").is_err());
        assert!(
            decode(b"relayguard-spool 1\nclient 1.2.3.4\nfrom <>\nrcpt odd\tx\t<y@z.example>\n\nbody")
                .is_err()
        );
    }
}
