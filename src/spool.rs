//! The on-disk spool of the real server: a message is durable before the
//! client hears `250`.
//!
//! Each message is one file, written under a temporary name, fsynced,
//! renamed into place, and the directory fsynced — the order Postfix and
//! Maildir use, so that a crash at any point leaves either no message or a
//! whole one, never a torn one. The file holds a small text envelope and the
//! body; recovery after a restart reads them back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use relayguard_core::Destination;
use relayguard_core::{Mailbox, parse_path};
use relayguard_core::{Message, Recipient};
use relayguard_node::{Entry, StoreError};

const MAGIC: &str = "relayguard-spool 1";

/// A spool directory.
#[derive(Clone, Debug)]
pub struct FsSpool {
    dir: PathBuf,
    tmp: PathBuf,
}

impl FsSpool {
    pub fn open(dir: &Path) -> io::Result<FsSpool> {
        let dir = dir.join("queue");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Half-written files of a crashed run were never acknowledged.
        for entry in fs::read_dir(&tmp)? {
            fs::remove_file(entry?.path())?;
        }
        Ok(FsSpool { dir, tmp })
    }

    /// Stores a queue entry durably under `id` (a name the caller makes unique).
    pub fn store(&self, id: &str, entry: &Entry) -> io::Result<()> {
        check_id(id)?;
        let tmp = self.write_tmp(id, entry)?;
        // A link, not a rename: it refuses to replace a message already
        // queued under the same id.
        let linked = fs::hard_link(&tmp, self.dir.join(id));
        fs::remove_file(&tmp)?;
        linked?;
        File::open(&self.dir)?.sync_all()
    }

    /// Replaces a stored entry (after a delivery round), atomically.
    pub fn update(&self, id: &str, entry: &Entry) -> io::Result<()> {
        check_id(id)?;
        let tmp = self.write_tmp(id, entry)?;
        fs::rename(&tmp, self.dir.join(id))?;
        File::open(&self.dir)?.sync_all()
    }

    fn write_tmp(&self, id: &str, entry: &Entry) -> io::Result<PathBuf> {
        let tmp = self.tmp.join(id);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&encode_entry(entry))?;
        f.sync_all()?;
        Ok(tmp)
    }

    /// Forgets a message that was delivered or bounced.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        check_id(id)?;
        match fs::remove_file(self.dir.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => File::open(&self.dir)?.sync_all(),
        }
    }

    /// Every stored entry, in id order: what a restart must deliver.
    pub fn list(&self) -> io::Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let id = entry.file_name().to_string_lossy().into_owned();
            let bytes = fs::read(entry.path())?;
            let entry = decode_entry(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("spool file {id}: {e}")))?;
            out.push((id, entry));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
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
    ) || matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::EIO))
}

/// A failed [`FsSpool::store`] as the node sees it.
pub fn store_error(e: io::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Transient(e.to_string())
    } else {
        StoreError::Permanent(e.to_string())
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
    let pending: Vec<String> = e
        .message
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| e.pending.contains(r))
        .map(|(i, _)| i.to_string())
        .collect();
    let mut out = format!("queue {} {}\n", e.attempts, pending.join(",")).into_bytes();
    out.extend_from_slice(&encode(&e.message));
    out
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
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&m.body);
    bytes
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

    #[test]
    fn store_update_list_remove() {
        let dir = std::env::temp_dir().join(format!("relayguard-spool-{}", std::process::id()));
        let spool = FsSpool::open(&dir).unwrap();
        let mut entry = Entry::new(message());
        spool.store("0001", &entry).unwrap();
        assert!(spool.store("0001", &entry).is_err(), "ids are unique");
        assert!(spool.store("../x", &entry).is_err());
        let listed = FsSpool::open(&dir).unwrap().list().unwrap();
        assert_eq!(listed, vec![("0001".to_string(), entry.clone())]);
        entry.attempts = 3;
        entry.pending.remove(0);
        spool.update("0001", &entry).unwrap();
        assert_eq!(spool.list().unwrap(), vec![("0001".to_string(), entry)]);
        spool.remove("0001").unwrap();
        assert!(spool.list().unwrap().is_empty());
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
