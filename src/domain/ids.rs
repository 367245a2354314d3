//! Entity ids: short opaque strings such as `c001` (demo data) or `t0193a8f2c4d1e5b7a9` (new).

use std::fmt;

/// An id that has been checked at the edge: 1 to 64 ASCII letters, digits, `-` or `_`.
///
/// Anything else cannot name a stored entity, so it is rejected as bad input before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Option<Id> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Id(text.to_owned()))
    }

    /// Wraps an id read back from the store, which only ever holds ids that were parsed or made here.
    pub fn from_stored(text: String) -> Id {
        Id(text)
    }

    /// `id` in a namespace of its own, `namespace:id`. No parsed id holds a `:`, so a scoped id
    /// never equals one a client chose (an idempotency key of the PC customer-service system's
    /// message ids cannot collide with a provider's client keys).
    pub fn scoped(namespace: &str, id: &Id) -> Id {
        Id(format!("{namespace}:{}", id.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new id: `prefix`, then the time in milliseconds and 40 random bits, in hex.
///
/// Ids made later sort later, which keeps store indexes append-mostly and makes ids readable in logs.
pub fn new_id(prefix: &str) -> Id {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut random = [0u8; 5];
    getrandom::fill(&mut random).expect("the operating system's random source is available");
    let random = random.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Id(format!("{prefix}{millis:011x}{random:010x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_spec_examples_and_refuse_anything_else() {
        assert!(Id::parse("c001").is_some());
        assert!(Id::parse("sp-001_x").is_some());
        assert!(Id::parse("").is_none());
        assert!(Id::parse("c001'; DROP TABLE customers").is_none());
        assert!(Id::parse("客户").is_none());
        assert!(Id::parse(&"a".repeat(65)).is_none());
    }

    #[test]
    fn new_ids_are_unique_valid_and_carry_their_prefix() {
        let a = new_id("t");
        let b = new_id("t");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with('t'));
        assert_eq!(Id::parse(a.as_str()), Some(a));
    }
}
