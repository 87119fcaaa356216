//! Lower-case keys looked up by their pieces (`local`, `@`, `domain`),
//! folded to lower case on the fly: a policy decision finds a mailbox or a
//! list entry without building its `local@domain` key string first.
//!
//! The tables are filled from the configuration and only looked up, never
//! iterated, so their order cannot leak into a run. The hash is a plain
//! per-byte one, the same for a key and for its pieces laid end to end; a
//! client can choose what it looks up, never what is stored, so a crafted
//! key can only land among entries the configuration wrote.

use hashbrown::HashTable;

/// A key as up to three pieces, read as their concatenation folded to
/// ASCII lower case.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pieces: [&'a str; 3],
}

impl<'a> Key<'a> {
    /// One string.
    pub fn whole(s: &'a str) -> Key<'a> {
        Key { pieces: [s, "", ""] }
    }

    /// `local@domain`, or `local` alone for an unqualified mailbox.
    pub fn mailbox(local: &'a str, domain: Option<&'a str>) -> Key<'a> {
        match domain {
            Some(d) => Key {
                pieces: [local, "@", d],
            },
            None => Key::whole(local),
        }
    }

    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    /// What follows the last `@`, as `rsplit_once('@')` of the whole.
    pub fn domain(&self) -> Option<Key<'a>> {
        let (i, at) = (0..3)
            .rev()
            .find_map(|i| self.pieces[i].rfind('@').map(|at| (i, at)))?;
        let mut pieces = [""; 3];
        pieces[0] = &self.pieces[i][at + 1..];
        pieces[1..3 - i].copy_from_slice(&self.pieces[i + 1..]);
        Some(Key { pieces })
    }

    /// Whether `k` falls on a character boundary of the whole.
    pub fn is_char_boundary(&self, k: usize) -> bool {
        let mut k = k;
        for p in self.pieces {
            if k <= p.len() {
                return p.is_char_boundary(k);
            }
            k -= p.len();
        }
        false
    }

    /// The first `k` bytes of the whole (`k` at most its length).
    pub fn prefix(&self, k: usize) -> Key<'a> {
        let mut left = k;
        let mut out = [""; 3];
        for (o, p) in out.iter_mut().zip(self.pieces) {
            let n = left.min(p.len());
            *o = p.get(..n).unwrap_or(p);
            left -= n;
        }
        Key { pieces: out }
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.pieces
            .iter()
            .flat_map(|p| p.bytes())
            .map(|b| b.to_ascii_lowercase())
    }

    /// Whether `stored` (lower case already) is this key.
    fn is(&self, stored: &str) -> bool {
        if stored.len() != self.len() {
            return false;
        }
        let mut rest = stored.as_bytes();
        for p in self.pieces {
            let (head, tail) = rest.split_at(p.len());
            if !head.eq_ignore_ascii_case(p.as_bytes()) {
                return false;
            }
            rest = tail;
        }
        true
    }

    /// FNV-1a over the folded bytes, piece after piece, so that pieces
    /// hash as their concatenation.
    fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for p in self.pieces {
            for &b in p.as_bytes() {
                h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// The whole folded to lower case, in `buf` when it fits (no
    /// allocation), in `spill` when not.
    pub fn folded<'b>(&self, buf: &'b mut [u8; 256], spill: &'b mut String) -> &'b str {
        let n = self.len();
        if n <= buf.len() {
            for (o, b) in buf.iter_mut().zip(self.bytes()) {
                *o = b;
            }
            // ASCII folding keeps valid UTF-8 valid, and the pieces are
            // whole strings, so the bytes are valid UTF-8.
            std::str::from_utf8(&buf[..n]).unwrap_or_default()
        } else {
            spill.clear();
            for p in self.pieces {
                spill.push_str(p);
            }
            spill.make_ascii_lowercase();
            spill
        }
    }
}

/// Lower-case keys and their values.
#[derive(Clone, Debug)]
pub struct FoldMap<V> {
    table: HashTable<(Box<str>, V)>,
}

impl<V> Default for FoldMap<V> {
    fn default() -> Self {
        FoldMap {
            table: HashTable::new(),
        }
    }
}

impl<V> FoldMap<V> {
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The value under `key` (folded to lower case), inserted with
    /// `make` when there is none.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let key = key.to_ascii_lowercase();
        let k = Key::whole(&key);
        let hash = k.hash();
        let entry = self
            .table
            .entry(hash, |(s, _)| k.is(s), |(s, _)| Key::whole(s).hash());
        &mut entry
            .or_insert_with(|| (key.clone().into_boxed_str(), make()))
            .into_mut()
            .1
    }

    pub fn get(&self, key: &Key) -> Option<&V> {
        self.table.find(key.hash(), |(s, _)| key.is(s)).map(|(_, v)| v)
    }
}

/// Lower-case keys.
#[derive(Clone, Debug, Default)]
pub struct FoldSet(FoldMap<()>);

impl FoldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, key: &str) {
        self.0.get_or_insert_with(key, || ());
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.0.get(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_and_compare_as_the_folded_whole() {
        let whole = "Bob.Smith@example.COM";
        let parts = Key::mailbox("Bob.Smith", Some("example.COM"));
        assert_eq!(parts.hash(), Key::whole("bob.smith@example.com").hash());
        assert!(parts.is("bob.smith@example.com"));
        assert!(!parts.is("bob.smith@example.co"));
        for k in 0..=whole.len() {
            let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
            let (mut s1, mut s2) = (String::new(), String::new());
            assert_eq!(
                parts.prefix(k).folded(&mut a, &mut s1),
                Key::whole(whole).prefix(k).folded(&mut b, &mut s2)
            );
            assert_eq!(
                parts.prefix(k).hash(),
                Key::whole(&whole.to_ascii_lowercase()[..k]).hash()
            );
        }
        let domain = |k: Key| {
            let (mut buf, mut spill) = ([0u8; 256], String::new());
            k.domain().map(|d| d.folded(&mut buf, &mut spill).to_string())
        };
        assert_eq!(domain(parts).as_deref(), Some("example.com"));
        assert_eq!(domain(Key::whole("a@b@c")).as_deref(), Some("c"));
        assert_eq!(domain(Key::mailbox("\"a@b\"", None)).as_deref(), Some("b\""));
        assert_eq!(domain(Key::mailbox("a", Some("x@y"))).as_deref(), Some("y"));
        assert_eq!(domain(Key::whole("nobody")), None);
    }

    #[test]
    fn long_keys_spill_to_the_heap() {
        let local = "X".repeat(300);
        let k = Key::mailbox(&local, Some("d.example"));
        let (mut buf, mut spill) = ([0u8; 256], String::new());
        assert_eq!(
            k.folded(&mut buf, &mut spill),
            format!("{}@d.example", "x".repeat(300))
        );
    }

    #[test]
    fn maps_find_by_pieces_in_any_case() {
        let mut m = FoldMap::default();
        *m.get_or_insert_with("Alice", || 0) += 1;
        *m.get_or_insert_with("alice", || 0) += 1;
        assert_eq!(m.get(&Key::whole("ALICE")), Some(&2));
        assert_eq!(m.get(&Key::whole("alic")), None);
        let mut s = FoldSet::default();
        s.insert("u@d.example");
        assert!(s.contains(&Key::mailbox("U", Some("D.example"))));
        assert!(!s.contains(&Key::mailbox("U", None)));
    }
}
