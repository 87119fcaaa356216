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

/// What the listing gives back: the entry without its body, which stays
/// on disk for `FsSpool::body`.
fn envelope(e: &Entry) -> Entry {
    let mut e = e.clone();
    e.message.body = Vec::new();
    e
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
    assert_eq!(good(listed), vec![("0001".to_string(), envelope(&entry))]);
    assert_eq!(spool.body("0001").unwrap(), entry.message.body);
    // The node updates with the envelope only: the body stays the file's.
    let mut next = envelope(&entry);
    next.attempts = 3;
    next.pending.remove(0);
    spool.update("0001", &next).unwrap();
    assert_eq!(good(spool.list().unwrap()), vec![("0001".to_string(), next)]);
    assert_eq!(spool.body("0001").unwrap(), entry.message.body);
    entry.attempts = 3;
    entry.pending.remove(0);
    let file = fs::read(dir.join("queue/0001")).unwrap();
    assert_eq!(decode_file(&file).unwrap(), entry);
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
    assert_eq!(
        good(spool.list().unwrap()),
        vec![("0001".to_string(), envelope(&first))]
    );
    assert_eq!(spool.body("0001").unwrap(), first.message.body);
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
fn a_body_streamed_in_pieces_is_stored_and_read_back() {
    let dir = scratch("stream");
    // The named way (a file system without unnamed files) first, on its
    // own spool; the unnamed way below.
    let mut named = FsSpool::open(&dir.join("named")).unwrap();
    named.unnamed = false;
    let spool = FsSpool::open(&dir).unwrap();
    let entry = long_entry(7);
    for (spool, root) in [(&named, dir.join("named")), (&spool, dir.clone())] {
        let mut file = spool.begin("s1").unwrap();
        for piece in entry.message.body.chunks(100) {
            file.append(piece).unwrap();
        }
        spool.commit(file, &envelope(&entry)).unwrap();
        assert_eq!(
            good(spool.list().unwrap()),
            vec![("s1".to_string(), envelope(&entry))]
        );
        assert_eq!(spool.body("s1").unwrap(), entry.message.body);
        assert_eq!(
            decode_file(&fs::read(root.join("queue/s1")).unwrap()).unwrap(),
            entry
        );
        // One dropped before its commit leaves nothing, in the queue or tmp/.
        let mut file = spool.begin("s2").unwrap();
        file.append(b"half a message").unwrap();
        drop(file);
        assert_eq!(spool.list().unwrap().len(), 1);
        assert_eq!(fs::read_dir(root.join("queue/tmp")).unwrap().count(), 0);
        // A second message under a queued id is refused, the first kept.
        let mut file = spool.begin("s1").unwrap();
        file.append(b"another").unwrap();
        let e = spool.commit(file, &envelope(&entry)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(spool.body("s1").unwrap(), entry.message.body);
        assert_eq!(fs::read_dir(root.join("queue/tmp")).unwrap().count(), 0);
    }
    // A damaged body is found by the listing, though it keeps no body.
    let path = dir.join("queue/s1");
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_WIDTH + 5] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let listed = spool.list().unwrap();
    assert!(
        listed[0].as_ref().unwrap_err().reason.contains("checksum"),
        "{listed:?}"
    );
    assert!(spool.body("s1").is_err());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_format_file_is_still_read_and_updated() {
    let dir = scratch("v2");
    let spool = FsSpool::open(&dir).unwrap();
    let entry = long_entry(3);
    let rest = encode_entry(&entry);
    let mut v2 = format!(
        "relayguard-spool 2 {:020} {:08x}\n",
        rest.len(),
        crc32c::crc32c(&rest)
    )
    .into_bytes();
    v2.extend_from_slice(&rest);
    fs::write(dir.join("queue/old1"), &v2).unwrap();
    assert_eq!(
        good(spool.list().unwrap()),
        vec![("old1".to_string(), envelope(&entry))]
    );
    assert_eq!(spool.body("old1").unwrap(), entry.message.body);
    let mut next = envelope(&entry);
    next.attempts = 1;
    spool.update("old1", &next).unwrap();
    assert_eq!(spool.body("old1").unwrap(), entry.message.body);
    assert_eq!(good(spool.list().unwrap()), vec![("old1".to_string(), next)]);
    fs::remove_dir_all(&dir).unwrap();
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
    let e = spool.store_with("a1", &long_entry(1), &eio).unwrap_err();
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
        unnamed: true,
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
        decode(b"relayguard-spool 1\nclient 1.2.3.4\nfrom <>\nrcpt odd\tx\t<y@z.example>\n\nbody").is_err()
    );
    // Lengths whose sum wraps around must not pass the length check.
    let rest = b"0123456789";
    let wrapping = format!(
        "relayguard-spool 3 {:020} 00000000 {:020} 00000000\n",
        u64::MAX,
        rest.len() + 1
    );
    let mut file = wrapping.into_bytes();
    file.extend_from_slice(rest);
    assert!(decode_file(&file).is_err());
    let dir = scratch("wrapping");
    let spool = FsSpool::open(&dir).unwrap();
    fs::write(dir.join("queue/w1"), &file).unwrap();
    assert!(spool.list().unwrap()[0].is_err());
    assert!(spool.body("w1").is_err());
    fs::remove_dir_all(&dir).unwrap();
}
