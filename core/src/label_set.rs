//! Label maps as a fleet holds them. A cluster carries ~25 labels; across 100,000 clusters
//! nearly every key and most values are the same strings (`federate-kibana`,
//! `default-true`, `v1.35`). A [`LabelSet`] is a sorted slice of strings shared through an
//! [`Interner`]: about 0.8 KiB per cluster where a `BTreeMap<String, String>` takes 3.5.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::selector::Labels;

/// Hands out one shared copy of each string. Strings nobody holds any more are dropped
/// whenever the set has doubled since the last sweep, so unique values (cluster ids) of
/// detached clusters do not pile up.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
    swept_at: usize,
}

impl Interner {
    /// The shared copy of `s`.
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        if self.strings.len() >= 2 * self.swept_at.max(1024) {
            self.strings.retain(|a| Arc::strong_count(a) > 1);
            self.swept_at = self.strings.len();
        }
        let a: Arc<str> = s.into();
        self.strings.insert(a.clone());
        a
    }

    /// Strings held now.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// A label map in sorted, shared form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSet(Box<[(Arc<str>, Arc<str>)]>);

impl LabelSet {
    /// `map` with its strings shared through `interner`.
    pub fn new(map: &BTreeMap<String, String>, interner: &mut Interner) -> Self {
        Self(
            map.iter()
                .map(|(k, v)| (interner.intern(k), interner.intern(v)))
                .collect(),
        )
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Whether it holds exactly `map`.
    pub fn same_as(&self, map: &BTreeMap<String, String>) -> bool {
        self.0.len() == map.len()
            && self
                .iter()
                .zip(map)
                .all(|((k, v), (mk, mv))| k == mk && v == mv)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// As an owned map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl Labels for LabelSet {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A LabelSet answers exactly as the map it was made from.
        #[test]
        fn a_label_set_is_its_map(
            map in proptest::collection::btree_map("[a-c]{0,3}", "[x-z]{0,2}", 0..8),
            probe in "[a-c]{0,3}",
            other in proptest::collection::btree_map("[a-c]{0,3}", "[x-z]{0,2}", 0..8),
        ) {
            let mut interner = Interner::default();
            let set = LabelSet::new(&map, &mut interner);
            prop_assert_eq!(set.get(&probe), map.get(&probe).map(String::as_str));
            prop_assert!(set.same_as(&map));
            prop_assert_eq!(set.same_as(&other), map == other);
            prop_assert_eq!(set.to_map(), map);
        }
    }

    #[test]
    fn strings_are_shared_and_unused_ones_swept() {
        let mut interner = Interner::default();
        let a = interner.intern("kommander.mesosphere.io/federate-kibana");
        let b = interner.intern("kommander.mesosphere.io/federate-kibana");
        assert!(Arc::ptr_eq(&a, &b));
        for i in 0..3000 {
            let _ = interner.intern(&format!("cluster-id-{i}"));
        }
        assert!(
            interner.len() < 2100,
            "unheld strings were swept: {}",
            interner.len()
        );
        assert!(Arc::ptr_eq(
            &a,
            &interner.intern("kommander.mesosphere.io/federate-kibana")
        ));
    }
}
