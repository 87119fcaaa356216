//! Local delivery into Maildir folders: `ROOT/maildir/<domain>/<local>/new/`.
//!
//! The file is written in `tmp/`, fsynced, linked into `new/`, and the
//! folder fsynced, as the Maildir convention asks, so a reader never sees a
//! partial message. Names come from the caller (unique per message and
//! recipient), not from a clock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use relayguard_node::DeliverError;

use crate::spool::is_transient;

/// The folder of a mailbox key `local@domain`. Bytes that could escape the
/// tree or confuse a shell are written as `%XX`.
pub fn folder(root: &Path, mailbox: &str) -> PathBuf {
    let (local, domain) = mailbox.rsplit_once('@').unwrap_or((mailbox, "localhost"));
    root.join("maildir").join(safe(domain)).join(safe(local))
}

fn safe(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b"-_+=".contains(&b) || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%".into() } else { out }
}

/// Delivers `body` to `mailbox` under the file name `name`. Returns the path
/// in `new/`. Delivering the same name twice is not an error (a redelivery
/// after a crash writes the same message again).
pub fn deliver(root: &Path, mailbox: &str, name: &str, body: &[u8]) -> io::Result<PathBuf> {
    let dir = folder(root, mailbox);
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let name = safe(name);
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    match fs::hard_link(&tmp, &new) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        _ => {}
    }
    fs::remove_file(&tmp)?;
    File::open(dir.join("new"))?.sync_all()?;
    Ok(new)
}

/// A failed [`deliver`] as the node sees it: a full disk is worth another
/// round, a folder the server may not write is not.
pub fn deliver_error(e: io::Error) -> DeliverError {
    if is_transient(&e) {
        DeliverError::Transient(e.to_string())
    } else {
        DeliverError::Permanent(e.to_string())
    }
}

/// The mailbox folders of a Maildir tree, counted, so that `deliver` into
/// a mailbox that has no folder yet can be refused beyond
/// `domains.max_mailboxes`: without a `mailboxes` list any local part is
/// accepted, and each would otherwise become a folder.
#[derive(Debug)]
pub struct FolderLimit {
    max: usize,
    /// Folders under `maildir/<domain>/`, counted on first use.
    count: std::sync::Mutex<Option<usize>>,
}

impl FolderLimit {
    pub fn new(max: usize) -> FolderLimit {
        FolderLimit {
            max,
            count: std::sync::Mutex::new(None),
        }
    }

    /// Ok when `mailbox` has its folder, or there is room for one more (it
    /// is then made, under the lock, so two deliveries count it once).
    pub fn admit(&self, root: &Path, mailbox: &str) -> io::Result<()> {
        let dir = folder(root, mailbox);
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        if dir.is_dir() {
            return Ok(());
        }
        let n = match *count {
            Some(n) => n,
            None => count_folders(&root.join("maildir"))?,
        };
        if n >= self.max {
            *count = Some(n);
            return Err(io::Error::other(format!(
                "no folder for mailbox {mailbox}, and domains.max_mailboxes ({}) are made already",
                self.max
            )));
        }
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        *count = Some(n + 1);
        Ok(())
    }
}

/// Folders two levels down (`<domain>/<local>`); none when there is no tree.
fn count_folders(maildir: &Path) -> io::Result<usize> {
    let domains = match fs::read_dir(maildir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for d in domains {
        let d = d?;
        if d.file_type()?.is_dir() {
            for m in fs::read_dir(d.path())? {
                if m?.file_type()?.is_dir() {
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// [`deliver`], but a mailbox without a folder gets one only within
/// `limit`; beyond it the delivery fails for good ([`deliver_error`] says
/// permanent).
pub fn deliver_limited(
    root: &Path,
    mailbox: &str,
    name: &str,
    body: &[u8],
    limit: &FolderLimit,
) -> io::Result<PathBuf> {
    limit.admit(root, mailbox)?;
    deliver(root, mailbox, name, body)
}

#[cfg(test)]
mod folder_limit_tests {
    use super::*;

    #[test]
    fn new_folders_stop_at_the_limit_and_existing_ones_still_receive() {
        let root = std::env::temp_dir().join(format!("relayguard-maildir-limit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        deliver(&root, "old@example.com", "m0.old", b"hi\r\n").unwrap();
        let limit = FolderLimit::new(3);
        for i in 0..2 {
            deliver_limited(&root, &format!("u{i}@example.com"), "m1", b"hi\r\n", &limit).unwrap();
        }
        let e = deliver_limited(&root, "u9@example.com", "m1", b"hi\r\n", &limit).unwrap_err();
        assert!(!deliver_error(e).is_transient());
        assert!(!folder(&root, "u9@example.com").exists());
        deliver_limited(&root, "u0@example.com", "m2", b"hi\r\n", &limit).unwrap();
        deliver_limited(&root, "old@example.com", "m3", b"hi\r\n", &limit).unwrap();
        assert_eq!(count_folders(&root.join("maildir")).unwrap(), 3);
        // 0: only the folders that exist.
        let none = FolderLimit::new(0);
        assert!(deliver_limited(&root, "new@example.com", "m4", b"hi\r\n", &none).is_err());
        deliver_limited(&root, "old@example.com", "m4", b"hi\r\n", &none).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_cannot_escape_the_tree() {
        let root = Path::new("/r");
        assert_eq!(
            folder(root, "alice@example.com"),
            Path::new("/r/maildir/example.com/alice")
        );
        let odd = folder(root, "../../etc@example.com");
        assert_eq!(odd.parent(), Some(Path::new("/r/maildir/example.com")), "{odd:?}");
        assert!(
            odd.components()
                .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::RootDir))
        );
        assert_eq!(
            folder(root, "\"a/b\"@x.example"),
            Path::new("/r/maildir/x.example/%22a%2Fb%22")
        );
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_permanent() {
        let root = std::env::temp_dir().join(format!("relayguard-maildir-file-{}", std::process::id()));
        fs::write(&root, b"not a folder").unwrap();
        let e = deliver(&root, "bob@example.com", "m1.bob", b"hi\r\n").unwrap_err();
        assert!(!deliver_error(e).is_transient());
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(deliver_error(full).is_transient());
        fs::remove_file(&root).unwrap();
    }

    #[test]
    fn delivers_into_new() {
        let root = std::env::temp_dir().join(format!("relayguard-maildir-{}", std::process::id()));
        let p = deliver(&root, "bob@example.com", "m1.bob", b"hi\r\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hi\r\n");
        assert!(p.starts_with(root.join("maildir/example.com/bob/new")));
        deliver(&root, "bob@example.com", "m1.bob", b"hi\r\n").unwrap();
        assert_eq!(
            fs::read_dir(root.join("maildir/example.com/bob/tmp"))
                .unwrap()
                .count(),
            0
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
