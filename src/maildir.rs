//! Local delivery into Maildir folders: `ROOT/maildir/<domain>/<local>/new/`.
//!
//! The file is written without a name (or, where the file system cannot,
//! in `tmp/`), fsynced, linked into `new/`, and the folder fsynced, as the
//! Maildir convention asks, so a reader never sees a partial message.
//! Names come from the caller (unique per message and recipient), not from
//! a clock.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use relayguard_node::DeliverError;

use crate::spool::{is_transient, sync_dir};
use crate::unnamed;

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
/// in `new/`.
///
/// A name already in `new/` is success only if it holds this very message
/// (a redelivery after a crash between the delivery and the spool's
/// update); any other file there is an error (`AlreadyExists`), never
/// overwritten and never taken for a delivery. A failed write leaves
/// nothing in `tmp/`.
///
/// Once the link into `new/` is made the message is delivered: a reader
/// sees it. Errors after that point (removing the `tmp/` name, the fsync of
/// `new/`) are logged and do not fail the delivery: failing it would bounce
/// or redeliver a message that is in the mailbox. The fsync is not retried:
/// after a failed fsync the kernel may have dropped the dirty data and a
/// second call can succeed without writing it, so a retry proves nothing.
/// What is left is the window any Maildir has: a crash of the machine
/// before the kernel writes the folder back.
pub fn deliver(root: &Path, mailbox: &str, name: &str, body: &[u8]) -> io::Result<PathBuf> {
    deliver_with(root, mailbox, name, body, &sync_dir, true, Folder::Logged)
}

/// What a failed fsync of `new/` does to a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Folder {
    /// Logged, the delivery stands (see [`deliver`]).
    Logged,
    /// The delivery fails and the file this call linked is removed: the
    /// client is about to hear whether its message is safe, and it must
    /// not hear `250` for one a crash could still take.
    Required,
}

/// [`deliver_limited`] for a message whose client has not had its reply
/// yet: `Ok` only once the folder fsync succeeded too. On an error nothing
/// this call wrote is left (a reader may have seen it between the link
/// and its removal: a duplicate at worst, never a loss).
pub fn deliver_durably(
    root: &Path,
    mailbox: &str,
    name: &str,
    body: &[u8],
    limit: &FolderLimit,
) -> io::Result<PathBuf> {
    limit.admit(root, mailbox)?;
    deliver_with(root, mailbox, name, body, &sync_dir, true, Folder::Required)
}

/// [`deliver`] with the folder fsync given, so that tests can make it
/// fail, and named files only if `unnamed` is false, so that tests can
/// take the way a file system without unnamed files takes.
fn deliver_with(
    root: &Path,
    mailbox: &str,
    name: &str,
    body: &[u8],
    sync: &dyn Fn(&Path) -> io::Result<()>,
    unnamed: bool,
    durability: Folder,
) -> io::Result<PathBuf> {
    let dir = folder(root, mailbox);
    let name = safe(name);
    let new = dir.join("new").join(&name);
    let tmp = dir.join("tmp");
    let attempt = || {
        if unnamed {
            if let Some(linked) = write_unnamed(&tmp, body, &new)? {
                return Ok(linked);
            }
        }
        write_named(&tmp.join(&name), body, &new)
    };
    // The folders are made only when they are missing: `mkdir` of one that
    // exists still takes its parent's lock, on every delivery.
    let linked = match attempt() {
        Ok(Err(e)) | Err(e) if e.kind() == io::ErrorKind::NotFound => {
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(dir.join(sub))?;
            }
            attempt()?
        }
        other => other?,
    };
    let made = linked.is_ok();
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !holds(&new, body)? {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already holds another message", new.display()),
                ));
            }
        }
        Err(e) => return Err(e),
    }
    if let Err(e) = sync(&dir.join("new")) {
        if durability == Folder::Required {
            if made {
                if let Err(r) = fs::remove_file(&new) {
                    tracing::error!(
                        "maildir: {} could not be made durable ({e}) nor removed ({r}); \
                         it is queued too, so it may arrive twice",
                        new.display()
                    );
                }
            }
            return Err(e);
        }
        tracing::error!(
            "maildir: {} delivered, but the fsync of its folder failed: {e}",
            new.display()
        );
    }
    Ok(new)
}

/// Writes `body` into an unnamed file in `tmp`'s file system, fsyncs
/// it and links it in as `new`: the outer error is the write's (nothing is
/// left), the inner the link's. `None` where files cannot be unnamed.
fn write_unnamed(tmp: &Path, body: &[u8], new: &Path) -> io::Result<Option<io::Result<()>>> {
    let Some(mut file) = unnamed::create(tmp)? else {
        return Ok(None);
    };
    file.write_all(body)?;
    file.sync_all()?;
    Ok(Some(unnamed::link(&file, new)))
}

/// The Maildir convention by name: `body` written and fsynced in `tmp`,
/// linked in as `new`, the `tmp` name removed.
fn write_named(tmp: &Path, body: &[u8], new: &Path) -> io::Result<io::Result<()>> {
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .and_then(|mut f| {
            f.write_all(body)?;
            f.sync_all()
        });
    if let Err(e) = written {
        // A half message must not keep the disk full.
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    let linked = fs::hard_link(tmp, new);
    if let Err(e) = fs::remove_file(tmp) {
        tracing::warn!("maildir: removing {}: {e}", tmp.display());
    }
    Ok(linked)
}

/// Whether the file at `path` holds exactly `body`.
fn holds(path: &Path, body: &[u8]) -> io::Result<bool> {
    if fs::metadata(path)?.len() != body.len() as u64 {
        return Ok(false);
    }
    Ok(fs::read(path)? == body)
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
        // A folder that is there stays there: no lock needed to see it, and
        // every delivery would otherwise wait on this one lock.
        if dir.is_dir() {
            return Ok(());
        }
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relayguard-maildir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn delivers_into_new_unnamed_or_named() {
        for unnamed in [true, false] {
            let root = scratch(&format!("new-{unnamed}"));
            let bob = |name: &str, body: &[u8]| {
                deliver_with(
                    &root,
                    "bob@example.com",
                    name,
                    body,
                    &sync_dir,
                    unnamed,
                    Folder::Logged,
                )
            };
            let p = bob("m1.bob", b"hi\r\n").unwrap();
            assert_eq!(fs::read(&p).unwrap(), b"hi\r\n");
            assert!(p.starts_with(root.join("maildir/example.com/bob/new")));
            // The same message again (a redelivery after a crash): success, one file.
            bob("m1.bob", b"hi\r\n").unwrap();
            // Another under the same name: refused, the first kept.
            let e = bob("m1.bob", b"other\r\n").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
            assert_eq!(fs::read(&p).unwrap(), b"hi\r\n");
            let count = |sub: &str| {
                fs::read_dir(root.join("maildir/example.com/bob").join(sub))
                    .unwrap()
                    .count()
            };
            assert_eq!((count("new"), count("tmp"), count("cur")), (1, 0, 0));
            // A folder removed under a running server is made again.
            fs::remove_dir_all(root.join("maildir/example.com/bob")).unwrap();
            bob("m2.bob", b"again\r\n").unwrap();
            assert_eq!((count("new"), count("tmp"), count("cur")), (1, 0, 0));
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn another_message_under_an_existing_name_is_not_success() {
        let root = scratch("exists");
        let p = deliver(&root, "bob@example.com", "m1.bob", b"first\r\n").unwrap();
        for other in [&b"second\r\n"[..], b"first\r\n\r\n", b"firs\r\n"] {
            let e = deliver(&root, "bob@example.com", "m1.bob", other).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
            assert!(!deliver_error(e).is_transient());
        }
        assert_eq!(fs::read(&p).unwrap(), b"first\r\n");
        assert_eq!(
            fs::read_dir(root.join("maildir/example.com/bob/tmp"))
                .unwrap()
                .count(),
            0
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_nothing_in_tmp() {
        let root = scratch("partial");
        deliver(&root, "bob@example.com", "m0.bob", b"x").unwrap();
        // /dev/full: every write fails with ENOSPC, as on a full disk. (An
        // unnamed file that fails leaves nothing by its nature: the named
        // way is the one to check.)
        let tmp = root.join("maildir/example.com/bob/tmp/m1.bob");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let e = deliver_with(
            &root,
            "bob@example.com",
            "m1.bob",
            b"hello\r\n",
            &sync_dir,
            false,
            Folder::Logged,
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(deliver_error(e).is_transient());
        assert_eq!(
            fs::read_dir(root.join("maildir/example.com/bob/tmp"))
                .unwrap()
                .count(),
            0
        );
        assert!(!root.join("maildir/example.com/bob/new/m1.bob").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_failed_folder_fsync_after_the_link_is_still_a_delivery() {
        let root = scratch("fsync");
        let eio = |_: &Path| Err(io::Error::from_raw_os_error(libc::EIO));
        let p = deliver_with(
            &root,
            "bob@example.com",
            "m1.bob",
            b"hi\r\n",
            &eio,
            true,
            Folder::Logged,
        )
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hi\r\n");
        fs::remove_dir_all(&root).unwrap();
    }

    /// Before the reply a delivery is only one once its folder is durable:
    /// a failed fsync fails it and takes the new file away again (it will
    /// be queued), while a file already there from before is left alone.
    #[test]
    fn before_the_reply_a_failed_folder_fsync_fails_and_removes_the_file() {
        let root = scratch("fsync-required");
        let eio = |_: &Path| Err(io::Error::from_raw_os_error(libc::EIO));
        for unnamed in [true, false] {
            let e = deliver_with(
                &root,
                "bob@example.com",
                "m1.bob",
                b"hi\r\n",
                &eio,
                unnamed,
                Folder::Required,
            )
            .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
            let new = root.join("maildir/example.com/bob/new");
            assert_eq!(fs::read_dir(&new).unwrap().count(), 0, "unnamed: {unnamed}");
        }
        let p = deliver(&root, "bob@example.com", "m2.bob", b"hi\r\n").unwrap();
        assert!(
            deliver_with(
                &root,
                "bob@example.com",
                "m2.bob",
                b"hi\r\n",
                &eio,
                true,
                Folder::Required
            )
            .is_err()
        );
        assert_eq!(fs::read(&p).unwrap(), b"hi\r\n");
        let limit = FolderLimit::new(10);
        let p = deliver_durably(&root, "carol@example.com", "m3.carol", b"yo\r\n", &limit).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"yo\r\n");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn errors_are_classified() {
        for n in [
            libc::ENOSPC,
            libc::EMFILE,
            libc::ENFILE,
            libc::EIO,
            libc::EAGAIN,
            libc::EINTR,
            libc::EDQUOT,
        ] {
            let e = deliver_error(io::Error::from_raw_os_error(n));
            assert!(e.is_transient(), "errno {n}: {e}");
        }
        for n in [
            libc::EACCES,
            libc::EEXIST,
            libc::ENOTDIR,
            libc::EROFS,
            libc::ENAMETOOLONG,
        ] {
            let e = deliver_error(io::Error::from_raw_os_error(n));
            assert!(!e.is_transient(), "errno {n}: {e}");
        }
    }
}
