//! Placement: which (cluster, addon) pairs are placed, fast.
//!
//! [`PlacementIndex`] compiles a catalog once: every label key any selector reads gets a slot,
//! every value any selector names gets a symbol. A cluster's labels become a [`ClusterRow`]
//! (one symbol per slot), and a decision is then a handful of integer comparisons, with no
//! string hashing or allocation. A label change re-places one cluster: build its row again
//! and ask each addon. The index answers exactly what [`Selector::matches`] answers; a
//! property test holds the two together.
//!
//! Besides the selector, one gate applies to every addon: a cluster labelled
//! `kommander.mesosphere.io/federation-enabled=false` gets nothing.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::catalog::{Catalog, CatalogAddon, Target};
use crate::labels::FEDERATION_ENABLED;
use crate::selector::{Operator, Selector};

/// Symbol of a label that is absent.
const ABSENT: u32 = u32::MAX;
/// Symbol of a value no selector names (present, but equal to nothing in any list).
const OTHER: u32 = u32::MAX - 1;

#[derive(Clone, Debug)]
enum Test {
    In(Box<[u32]>),
    NotIn(Box<[u32]>),
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug)]
struct Req {
    slot: usize,
    test: Test,
}

#[derive(Clone, Debug)]
enum Compiled {
    Nothing,
    Clusters(Box<[Box<str>]>),
    All(Box<[Req]>),
}

/// A catalog compiled for fast placement decisions.
#[derive(Clone, Debug)]
pub struct PlacementIndex {
    slots: FxHashMap<Box<str>, usize>,
    values: FxHashMap<Box<str>, u32>,
    addons: Vec<Compiled>,
    enabled_slot: usize,
    false_sym: u32,
}

/// A cluster's labels as the index reads them: one value symbol per slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRow {
    values: Box<[u32]>,
}

impl PlacementIndex {
    /// Compiles `catalog`; addon `i` of the index is `catalog.addons()[i]`.
    pub fn new(catalog: &Catalog) -> Self {
        let mut ix = Self::empty();
        for (i, a) in catalog.addons().iter().enumerate() {
            ix.set(i, Some(a));
        }
        ix
    }

    /// An index with no addons.
    pub fn empty() -> Self {
        let mut ix = Self {
            slots: FxHashMap::default(),
            values: FxHashMap::default(),
            addons: Vec::new(),
            enabled_slot: 0,
            false_sym: 0,
        };
        ix.enabled_slot = ix.slot(FEDERATION_ENABLED);
        ix.false_sym = ix.symbol("false");
        ix
    }

    /// Puts `addon` at position `at` (growing the index as needed), or empties that
    /// position. Returns true when the index learnt new label keys or values: rows built
    /// before then must be built again.
    pub fn set(&mut self, at: usize, addon: Option<&CatalogAddon>) -> bool {
        let known = (self.slots.len(), self.values.len());
        let compiled = match addon.map(|a| &a.target) {
            None | Some(Target::Selector(Selector::Nothing)) => Compiled::Nothing,
            Some(Target::Clusters(names)) => {
                Compiled::Clusters(names.iter().map(|n| n.as_str().into()).collect())
            }
            Some(Target::Selector(Selector::All(reqs))) => Compiled::All(
                reqs.iter()
                    .map(|r| {
                        let mut syms: Vec<u32> = r.values.iter().map(|v| self.symbol(v)).collect();
                        syms.sort_unstable();
                        syms.dedup();
                        let test = match r.operator {
                            Operator::Equals | Operator::In => Test::In(syms.into()),
                            Operator::NotIn => Test::NotIn(syms.into()),
                            Operator::Exists => Test::Exists,
                            Operator::DoesNotExist => Test::DoesNotExist,
                        };
                        Req {
                            slot: self.slot(&r.key),
                            test,
                        }
                    })
                    .collect(),
            ),
        };
        if at >= self.addons.len() {
            self.addons.resize(at + 1, Compiled::Nothing);
        }
        self.addons[at] = compiled;
        known != (self.slots.len(), self.values.len())
    }

    fn slot(&mut self, key: &str) -> usize {
        let n = self.slots.len();
        *self.slots.entry(key.into()).or_insert(n)
    }

    fn symbol(&mut self, value: &str) -> u32 {
        let n = u32::try_from(self.values.len())
            .unwrap_or(OTHER - 1)
            .min(OTHER - 1);
        *self.values.entry(value.into()).or_insert(n)
    }

    /// How many addons the index holds.
    pub fn len(&self) -> usize {
        self.addons.len()
    }

    /// Whether the index holds no addon.
    pub fn is_empty(&self) -> bool {
        self.addons.is_empty()
    }

    /// Reads a cluster's labels into a row; labels no selector reads are skipped.
    pub fn row<'a>(&self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> ClusterRow {
        let mut values = vec![ABSENT; self.slots.len()].into_boxed_slice();
        for (k, v) in labels {
            if let Some(&slot) = self.slots.get(k) {
                values[slot] = self.values.get(v).copied().unwrap_or(OTHER);
            }
        }
        ClusterRow { values }
    }

    /// Reads a label map into a row.
    pub fn row_of(&self, labels: &BTreeMap<String, String>) -> ClusterRow {
        self.row(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Whether addon `addon` is placed on the cluster `name` whose row is `row`.
    #[inline]
    pub fn is_placed(&self, row: &ClusterRow, name: &str, addon: usize) -> bool {
        if row.values.get(self.enabled_slot) == Some(&self.false_sym) {
            return false;
        }
        match &self.addons[addon] {
            Compiled::Nothing => false,
            Compiled::Clusters(names) => names.iter().any(|n| &**n == name),
            Compiled::All(reqs) => reqs.iter().all(|r| {
                let v = row.values.get(r.slot).copied().unwrap_or(ABSENT);
                match &r.test {
                    Test::In(set) => v != ABSENT && set.contains(&v),
                    Test::NotIn(set) => v == ABSENT || !set.contains(&v),
                    Test::Exists => v != ABSENT,
                    Test::DoesNotExist => v == ABSENT,
                }
            }),
        }
    }

    /// The addons placed on one cluster, as a bit set over addon indices.
    pub fn place(&self, row: &ClusterRow, name: &str) -> AddonSet {
        let mut set = AddonSet::with_len(self.addons.len());
        for a in 0..self.addons.len() {
            if self.is_placed(row, name, a) {
                set.insert(a);
            }
        }
        set
    }
}

/// A set of addon indices (a bit set: one cluster's placement).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddonSet {
    words: Vec<u64>,
}

impl AddonSet {
    /// An empty set able to hold indices below `n`.
    pub fn with_len(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64)],
        }
    }

    /// Adds `i`.
    pub fn insert(&mut self, i: usize) {
        if i / 64 >= self.words.len() {
            self.words.resize(i / 64 + 1, 0);
        }
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Removes `i`.
    pub fn remove(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// How many indices the set holds.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The indices, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| wi * 64 + b)
        })
    }
}

/// The plain rule, straight from the catalog: what [`PlacementIndex::is_placed`] must equal.
pub fn is_placed_plain(
    catalog: &Catalog,
    addon: usize,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    if labels.get(FEDERATION_ENABLED).map(String::as_str) == Some("false") {
        return false;
    }
    match &catalog.addons()[addon].target {
        Target::Clusters(names) => names.iter().any(|n| n == name),
        Target::Selector(s) => s.matches(labels),
    }
}

/// Generators shared with other modules' property tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{CatalogAddon, CatalogObject};
    use proptest::prelude::*;

    pub(crate) const KEYS: &[&str] = &["t", "v", "kommander.mesosphere.io/federation-enabled", "e"];
    pub(crate) const VALUES: &[&str] = &["", "a", "b", "false", "true"];

    fn arb_expr() -> impl Strategy<Value = serde_json::Value> {
        let key = proptest::sample::select(KEYS);
        let vals = proptest::collection::vec(proptest::sample::select(VALUES), 1..3);
        prop_oneof![
            (key.clone(), vals.clone())
                .prop_map(|(k, v)| serde_json::json!({"key": k, "operator": "In", "values": v})),
            (key.clone(), vals)
                .prop_map(|(k, v)| serde_json::json!({"key": k, "operator": "NotIn", "values": v})),
            key.clone()
                .prop_map(|k| serde_json::json!({"key": k, "operator": "Exists"})),
            key.prop_map(|k| serde_json::json!({"key": k, "operator": "DoesNotExist"})),
        ]
    }

    pub(crate) fn arb_placement() -> impl Strategy<Value = serde_json::Value> {
        let labels = proptest::collection::btree_map(
            proptest::sample::select(KEYS),
            proptest::sample::select(VALUES),
            0..2,
        );
        prop_oneof![
            Just(serde_json::json!({})),
            Just(serde_json::json!({"clusters": [{"name": "c1"}], "clusterSelector": {}})),
            Just(serde_json::json!({"clusters": [], "clusterSelector": {"matchLabels": {"t": "a"}}})),
            (labels, proptest::collection::vec(arb_expr(), 0..4))
                .prop_map(|(ml, ex)| serde_json::json!({"clusterSelector": {"matchLabels": ml, "matchExpressions": ex}})),
        ]
    }

    pub(crate) fn catalog(placements: &[serde_json::Value]) -> Catalog {
        let addons = placements
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = serde_json::json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedClusterAddon",
                    "metadata": {"name": format!("a{i}")}, "spec": {"template": {"spec": {}}, "placement": p}});
                CatalogAddon::compile(&CatalogObject::ClusterAddon(serde_json::from_value(v).expect("object")))
                    .expect("valid")
            })
            .collect();
        Catalog::new(addons).expect("unique")
    }

    proptest! {
        /// The compiled index decides exactly as the plain selector rules do.
        #[test]
        fn index_equals_plain_rules(
            placements in proptest::collection::vec(arb_placement(), 1..6),
            clusters in proptest::collection::vec(
                proptest::collection::btree_map(
                    prop_oneof![proptest::sample::select(KEYS).prop_map(String::from), "[a-z]{1,3}"],
                    prop_oneof![proptest::sample::select(VALUES).prop_map(String::from), "[a-z]{1,3}"], 0..5),
                1..6),
        ) {
            let c = catalog(&placements);
            let ix = PlacementIndex::new(&c);
            for (ci, labels) in clusters.iter().enumerate() {
                let name = format!("c{ci}");
                let row = ix.row_of(labels);
                let set = ix.place(&row, &name);
                for a in 0..c.addons().len() {
                    let plain = is_placed_plain(&c, a, &name, labels);
                    prop_assert_eq!(ix.is_placed(&row, &name, a), plain, "addon {} cluster {:?}", a, labels);
                    prop_assert_eq!(set.contains(a), plain);
                }
            }
        }
    }

    #[test]
    fn federation_disabled_gates_everything() {
        let c = catalog(&[
            serde_json::json!({"clusterSelector": {}}),
            serde_json::json!({"clusters": [{"name": "x"}]}),
        ]);
        let ix = PlacementIndex::new(&c);
        let on = ix.row_of(&BTreeMap::new());
        let off = ix.row_of(&[(FEDERATION_ENABLED.to_string(), "false".to_string())].into());
        assert_eq!(ix.place(&on, "x").iter().collect::<Vec<_>>(), [0, 1]);
        assert!(ix.place(&off, "x").is_empty());
    }

    #[test]
    fn addon_set() {
        let mut s = AddonSet::with_len(3);
        s.insert(2);
        s.insert(130);
        assert!(s.contains(2) && s.contains(130) && !s.contains(1) && !s.contains(1000));
        assert_eq!(s.iter().collect::<Vec<_>>(), [2, 130]);
        assert_eq!(s.len(), 2);
    }
}
