//! Address patterns of the black and white lists and of `always_from`:
//! `user@domain`, `*@domain`, `user@*`, or any pattern with `*` wildcards,
//! matched without regard to case.
//!
//! The two common shapes (a whole address, a whole domain) are kept in sorted
//! sets, so that ten thousand entries cost a lookup, not a scan; only other
//! wildcard patterns are tried one by one.

use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrList {
    exact: BTreeSet<String>,
    domains: BTreeSet<String>,
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
                _ => l.patterns.push(e),
            }
        }
        l.patterns.sort();
        l.patterns.dedup();
        l
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.domains.is_empty() && self.patterns.is_empty()
    }

    /// Whether `address` (`local@domain`, canonical) matches an entry.
    pub fn matches(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        if self.exact.contains(&a) {
            return true;
        }
        if let Some((_, d)) = a.rsplit_once('@') {
            if self.domains.contains(d) {
                return true;
            }
        }
        self.patterns.iter().any(|p| wildcard(p, &a))
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
