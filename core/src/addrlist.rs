//! Address patterns of the black and white lists and of `always_from`:
//! `user@domain`, `*@domain`, `user@*`, or any pattern with `*` wildcards,
//! matched without regard to case.
//!
//! The two common shapes (a whole address, a whole domain) are kept in hash
//! sets looked up by the address's pieces ([`crate::foldkey`]), and other patterns are filed under the text before their first `*`,
//! so that ten thousand entries cost a few lookups, not a scan. Only patterns
//! that start with `*` are tried one by one.

use std::collections::BTreeSet;

use crate::foldkey::{FoldMap, FoldSet, Key};

#[derive(Clone, Debug, Default)]
pub struct AddrList {
    exact: FoldSet,
    domains: FoldSet,
    /// Literal prefix → the patterns that start with it.
    by_prefix: FoldMap<Vec<String>>,
    /// The lengths of those prefixes, so a lookup tries only these.
    prefix_lengths: BTreeSet<usize>,
    /// Patterns that start with `*`.
    patterns: Vec<String>,
}

impl AddrList {
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> AddrList {
        let mut l = AddrList::default();
        for e in entries {
            let e = e.trim().to_ascii_lowercase();
            match e.strip_prefix("*@") {
                Some(d) if !d.contains('*') => l.domains.insert(d.trim_end_matches('.')),
                _ if !e.contains('*') => l.exact.insert(&e),
                _ if e.starts_with('*') => l.patterns.push(e),
                _ => {
                    let prefix = &e[..e.find('*').expect("has a star")];
                    l.prefix_lengths.insert(prefix.len());
                    l.by_prefix.get_or_insert_with(prefix, Vec::new).push(e.clone());
                }
            }
        }
        l.patterns.sort();
        l.patterns.dedup();
        l
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.domains.is_empty()
            && self.patterns.is_empty()
            && self.by_prefix.is_empty()
    }

    /// Whether `address` (`local@domain`, canonical) matches an entry.
    pub fn matches(&self, address: &str) -> bool {
        self.matches_key(Key::whole(address))
    }

    /// Whether the mailbox `local@domain` (the local part dequoted, in any
    /// case; the domain canonical) matches an entry, as [`AddrList::matches`]
    /// of its key would, without building the key.
    pub fn matches_mailbox(&self, local: &str, domain: Option<&str>) -> bool {
        self.matches_key(Key::mailbox(local, domain))
    }

    fn matches_key(&self, a: Key) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.exact.contains(&a) {
            return true;
        }
        if a.domain().is_some_and(|d| self.domains.contains(&d)) {
            return true;
        }
        // The wildcard patterns need the whole text: folded on the stack,
        // and only when a pattern is to be tried.
        let len = a.len();
        let mut filed = self
            .prefix_lengths
            .iter()
            .copied()
            .filter(|&k| k <= len && a.is_char_boundary(k))
            .filter_map(|k| self.by_prefix.get(&a.prefix(k)))
            .peekable();
        if filed.peek().is_none() && self.patterns.is_empty() {
            return false;
        }
        let (mut buf, mut spill) = ([0u8; 256], String::new());
        let t = a.folded(&mut buf, &mut spill);
        filed.any(|ps| ps.iter().any(|p| wildcard(p, t))) || self.patterns.iter().any(|p| wildcard(p, t))
    }
}

/// `*` matches any run of characters, including none.
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_case() {
        let l = AddrList::new(["*@spam.example", "Bad@Example.org", "news*@*.example.net", "x@*"]);
        assert!(l.matches("anyone@SPAM.example"));
        assert!(!l.matches("anyone@spam.example.org"));
        assert!(l.matches("bad@example.org"));
        assert!(l.matches("newsletter@mail.example.net"));
        assert!(!l.matches("news@example.net"));
        assert!(l.matches("x@whatever.example"));
        assert!(!l.matches("y@whatever.example"));
    }

    #[test]
    fn unprefixed_and_prefixed_patterns_alone_and_parts_in_order() {
        // Only a pattern with no literal prefix: nothing is filed by
        // prefix, and the pattern must still be tried.
        let l = AddrList::new(["*spam*@example.org"]);
        assert!(l.matches("myspam1@example.org"));
        assert!(!l.matches("ham@example.org"));
        // Only a prefixed pattern: none without a prefix to fall back on.
        let l = AddrList::new(["news*@*.example.net"]);
        assert!(l.matches("newsletter@mail.example.net"));
        // Each part between stars is found after the one before it, never
        // overlapping it.
        assert!(!wildcard("*b*b*", "abc"));
        assert!(wildcard("*b*b*", "abbc"));
    }

    proptest::proptest! {
        /// Looking a mailbox up by its pieces is looking its key up.
        #[test]
        fn pieces_match_as_the_key(
            local in "[a-cA-C@%*\"]{0,4}",
            domain in proptest::option::of("[a-cA-C.]{0,4}"),
            entries in proptest::collection::vec("[a-c*@.]{1,6}", 0..6),
        ) {
            let l = AddrList::new(entries.iter().map(String::as_str));
            let key = match &domain {
                Some(d) => format!("{}@{d}", local.to_ascii_lowercase()),
                None => local.to_ascii_lowercase(),
            };
            proptest::prop_assert_eq!(l.matches_mailbox(&local, domain.as_deref()), l.matches(&key));
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*c", "abcd"));
        assert!(wildcard("abc", "abc"));
        assert!(!wildcard("abc", "abcd"));
    }
}
