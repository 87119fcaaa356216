//! Address patterns of the black and white lists and of `always_from`:
//! `user@domain`, `*@domain`, `user@*`, or any pattern with `*` wildcards,
//! matched without regard to case.
//!
//! The two common shapes (a whole address, a whole domain) are kept in sorted
//! sets, and other patterns are filed under the text before their first `*`,
//! so that ten thousand entries cost a few lookups, not a scan. Only patterns
//! that start with `*` are tried one by one.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher};

/// Hashing with fixed keys: the sets are only looked up, never iterated, and
/// nothing here draws on randomness that a seed does not control.
type Fixed = BuildHasherDefault<DefaultHasher>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrList {
    exact: HashSet<String, Fixed>,
    domains: HashSet<String, Fixed>,
    /// Literal prefix → the patterns that start with it.
    by_prefix: HashMap<String, Vec<String>, Fixed>,
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
                Some(d) if !d.contains('*') => {
                    l.domains.insert(d.trim_end_matches('.').to_string());
                }
                _ if !e.contains('*') => {
                    l.exact.insert(e);
                }
                _ if e.starts_with('*') => l.patterns.push(e),
                _ => {
                    let prefix = e[..e.find('*').expect("has a star")].to_string();
                    l.prefix_lengths.insert(prefix.len());
                    l.by_prefix.entry(prefix).or_default().push(e);
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
        if self.is_empty() {
            return false;
        }
        let a: Cow<str> = if address.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(address.to_ascii_lowercase())
        } else {
            Cow::Borrowed(address)
        };
        let a = a.as_ref();
        if self.exact.contains(a) {
            return true;
        }
        if let Some((_, d)) = a.rsplit_once('@') {
            if self.domains.contains(d) {
                return true;
            }
        }
        let filed = self
            .prefix_lengths
            .iter()
            .copied()
            .filter(|&k| k <= a.len() && a.is_char_boundary(k))
            .filter_map(|k| self.by_prefix.get(&a[..k]))
            .any(|ps| ps.iter().any(|p| wildcard(p, a)));
        filed || self.patterns.iter().any(|p| wildcard(p, a))
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
    fn wildcards() {
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*c", "abcd"));
        assert!(wildcard("abc", "abc"));
        assert!(!wildcard("abc", "abcd"));
    }
}
