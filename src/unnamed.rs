//! Files written without a name and linked into place when whole
//! (Linux's `O_TMPFILE`): the spool and the Maildir delivery make one per
//! message, and a named temporary file costs a directory entry made and
//! removed again, under the directory's lock, for every message. An
//! unnamed file that is never linked leaves nothing, even after a crash.
//!
//! Where the file system has no `O_TMPFILE`, or `/proc/self/fd` is not
//! there to link through, [`create`] says so and the caller writes a named
//! temporary file as before.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// An unnamed file for writing in `dir`'s file system, or `None` where
/// there cannot be one (then write a named file instead).
pub fn create(dir: &Path) -> io::Result<Option<File>> {
    static PROC_FD: OnceLock<bool> = OnceLock::new();
    if !*PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return Ok(None);
    }
    match OpenOptions::new()
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(file) => Ok(Some(file)),
        // The kernel or the file system has no O_TMPFILE.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Gives `file` (from [`create`]) the name `to`. Like a hard link, it never
/// replaces a name that exists: that is `AlreadyExists`.
pub fn link(file: &File, to: &Path) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io::Error::other)?;
    let to = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    #[test]
    fn a_file_has_no_name_until_it_is_linked_and_never_replaces_one() {
        let dir = std::env::temp_dir().join(format!("relayguard-unnamed-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let Some(mut file) = create(&dir).unwrap() else {
            // Nothing to test where the file system has no O_TMPFILE.
            eprintln!("no O_TMPFILE here");
            return;
        };
        file.write_all(b"whole").unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        link(&file, &dir.join("a")).unwrap();
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"whole");
        fs::write(dir.join("b"), b"other").unwrap();
        let e = link(&file, &dir.join("b")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"other");
        // One never linked leaves nothing.
        drop(create(&dir).unwrap());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
