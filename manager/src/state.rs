//! The manager's view of the federation, derived entirely from the stores (nothing here is
//! the source of truth, so a restarted manager rebuilds it by listing).
//!
//! Addons sit at stable positions of one [`PlacementIndex`]; each cluster keeps its row and
//! the set of positions placed on it. A change to one cluster re-places that cluster; a
//! change to one addon re-evaluates that addon's column. Only when an addon brings label
//! keys or values the index has never seen are rows rebuilt (a cluster may carry them).
//! Each addon's standing across the fleet (how many clusters selected, ready, with a
//! problem, and which are not fine) is a [`Tally`] kept up to date wherever a placement or a
//! pair changes, so a Federated* status costs what it lists, not the size of the fleet.
//! No I/O: the runtime ([`crate::manager`]) asks this state what to do and reports back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use compact_str::CompactString;
use flotilla_core::catalog::{AddonId, CatalogAddon, CatalogObject};
use flotilla_core::explain::SelectionTally;
use flotilla_core::label_set::{Interner, LabelSet};
use flotilla_core::labels::CLUSTER_TYPE;
use flotilla_core::placement::{AddonSet, ClusterRow, PlacementIndex};
use flotilla_core::render::{DesiredAddon, RenderError, render_for, render_template};
use flotilla_core::types::{
    ClusterPropagation, ConditionStatus, FederatedStatus, PropagationCondition, Stage,
};
use rustc_hash::FxHashMap;

/// Most clusters listed one by one in a Federated* status (the summary counts them all).
pub const STATUS_CLUSTER_LIMIT: usize = 100;

/// A member's health, as the probes judged it (KubeFed's thresholds applied).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    #[default]
    Unknown,
    /// `/healthz` said ok.
    Ready,
    /// `/healthz` answered something else.
    NotReady,
    /// The member could not be reached.
    Offline,
}

/// One (cluster, addon) pair as the manager last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairState {
    /// KubeFed's propagation reason when not fine (ClusterNotReady, CreationFailed, ...).
    pub reason: Option<String>,
    /// What the agent reported.
    pub ready: bool,
    /// Stage the agent reported.
    pub stage: Option<Stage>,
    /// Revision the agent reported (inline: it is short, and a large fleet holds millions).
    pub revision: Option<CompactString>,
    /// Message from the agent or the manager.
    pub message: Option<String>,
}

/// One addon position's standing across the fleet. Every change to a cluster's placement or
/// pairs takes the cluster's old contribution out and puts the new one in.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    selected: usize,
    ready: usize,
    /// Selected clusters with a reason (a failure, or no pair yet: pending).
    problems: usize,
    /// Selected clusters not ready or with a reason, in name order: listed first.
    not_fine: BTreeSet<Arc<str>>,
    /// Every selected cluster, while there are few enough to list them all; dropped beyond
    /// twice the limit and rebuilt when the selection falls back under it.
    few: Option<BTreeSet<Arc<str>>>,
    /// Why each cluster of the fleet is selected or not (counted over every cluster, not
    /// only the selected ones): the status's selection summary.
    selection: SelectionTally,
}

/// How one pair stands: (ready, has a reason). No pair yet is pending.
fn standing(c: &ClusterEntry, id: &AddonId) -> (bool, bool) {
    let p = c.pairs.get(id);
    (
        p.is_some_and(|p| p.ready),
        p.is_none_or(|p| p.reason.is_some()),
    )
}

impl Tally {
    /// Adds (`add`) or takes out a selected cluster's contribution.
    fn count(&mut self, name: &Arc<str>, (ready, has_reason): (bool, bool), add: bool) {
        let step = |n: &mut usize, on: bool| {
            if on {
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        };
        step(&mut self.selected, true);
        step(&mut self.ready, ready);
        step(&mut self.problems, has_reason);
        let set = |s: &mut BTreeSet<Arc<str>>| {
            if add {
                s.insert(name.clone());
            } else {
                s.remove(name);
            }
        };
        if !ready || has_reason {
            set(&mut self.not_fine);
        }
        if self.selected > 2 * STATUS_CLUSTER_LIMIT {
            self.few = None;
        } else if let Some(few) = &mut self.few {
            set(few);
        }
    }
}

/// Takes a cluster's contribution to the tally of position `at` out (`add` false) or puts
/// it in; positions without a valid addon are not tallied.
fn tally(
    tallies: &mut [Tally],
    positions: &[Option<AddonId>],
    name: &Arc<str>,
    c: &ClusterEntry,
    at: usize,
    add: bool,
) {
    if let (Some(t), Some(Some(id))) = (tallies.get_mut(at), positions.get(at)) {
        t.count(name, standing(c, id), add);
    }
}

struct AddonEntry {
    generation: i64,
    compiled: Result<Arc<CatalogAddon>, String>,
    shared: Option<DesiredAddon>,
    position: Option<usize>,
}

/// What the manager knows of one attached cluster.
pub struct ClusterEntry {
    /// Namespace of its KubeFedCluster.
    pub namespace: String,
    /// Its labels, as on the KubeFedCluster (strings shared across the fleet).
    pub labels: LabelSet,
    row: ClusterRow,
    placed: AddonSet,
    /// Health by the probes (the probe keeps its own copy: it is the only writer).
    pub health: Health,
    /// Its KubeFedCluster is being deleted. `signals` holds the same for the probe; this copy
    /// stays because placement reads it for every decision, and should not follow a pointer.
    pub deleting: bool,
    /// Per addon: placed pairs, and pairs still being removed.
    pub pairs: BTreeMap<AddonId, PairState>,
    /// Since when the probes have judged it not Ready.
    pub unhealthy_since: Option<tokio::time::Instant>,
    /// What its probe reads every period without taking the state's lock.
    pub signals: Arc<ClusterSignals>,
}

/// The part of a cluster's entry its probe reads every period: kept apart so that a steady
/// probe touches one small object instead of looking its cluster up in the fleet's map (at
/// 10,000 clusters, several cold cache lines a probe). Written under the state's lock.
#[derive(Debug, Default)]
pub struct ClusterSignals {
    labels_generation: AtomicU64,
    deleting: AtomicBool,
}

impl ClusterSignals {
    /// Bumped whenever the cluster's labels change: the probe derives them again.
    pub fn labels_generation(&self) -> u64 {
        self.labels_generation.load(Ordering::Acquire)
    }

    /// Its KubeFedCluster is being deleted: every probe asks for a sync.
    pub fn deleting(&self) -> bool {
        self.deleting.load(Ordering::Acquire)
    }
}

impl ClusterEntry {
    /// Placement needs the derived labels: a cluster gets nothing before its type is known.
    fn eligible(&self) -> bool {
        !self.deleting && self.labels.contains_key(CLUSTER_TYPE)
    }
}

/// What a cluster's sync should make true.
pub struct Plan {
    /// The objects the member should hold.
    pub desired: Vec<DesiredAddon>,
    /// Addons placed but not renderable for this cluster (bad overrides).
    pub render_errors: Vec<(AddonId, RenderError)>,
    /// The member may be written to.
    pub writable: bool,
    /// The cluster is being detached.
    pub deleting: bool,
}

/// The whole federation state.
#[derive(Default)]
pub struct Fed {
    addons: BTreeMap<AddonId, AddonEntry>,
    positions: Vec<Option<AddonId>>,
    index: Option<PlacementIndex>,
    /// Hashed, not ordered: every probe and sync finds its cluster here, and in a fleet of
    /// 10,000 a tree walk compares a dozen names in a dozen cold cache lines. Listings
    /// sort by name.
    clusters: FxHashMap<Arc<str>, ClusterEntry>,
    /// Per position: the addon's standing across the fleet.
    tallies: Vec<Tally>,
    dirty: BTreeSet<AddonId>,
    /// Shares the label strings of every cluster.
    interner: Interner,
}

impl Fed {
    fn index(&mut self) -> &mut PlacementIndex {
        self.index.get_or_insert_with(PlacementIndex::empty)
    }

    fn is_placed(&self, c: &ClusterEntry, name: &str, at: usize) -> bool {
        c.eligible()
            && self
                .index
                .as_ref()
                .is_some_and(|ix| ix.is_placed(&c.row, name, at))
    }

    /// Takes in a Federated* object as the host holds it; returns the clusters to sync.
    pub fn upsert_addon(&mut self, obj: &CatalogObject) -> Vec<String> {
        let id = obj.id();
        if self
            .addons
            .get(&id)
            .is_some_and(|e| e.generation == obj.generation())
        {
            return Vec::new();
        }
        let compiled = CatalogAddon::compile(obj)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        // An invalid generation gives its position up (another addon may take it).
        let old_position = self.addons.get(&id).and_then(|e| e.position);
        let position = old_position.filter(|_| compiled.is_ok()).or_else(|| {
            compiled.is_ok().then(|| {
                self.positions
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or_else(|| {
                        self.positions.push(None);
                        self.tallies.push(Tally::default());
                        self.positions.len() - 1
                    })
            })
        });
        let shared = compiled.as_ref().ok().map(|a| render_template(a));
        let entry = AddonEntry {
            generation: obj.generation(),
            compiled: compiled.clone(),
            shared,
            position,
        };
        self.addons.insert(id.clone(), entry);
        self.dirty.insert(id.clone());
        let Some(at) = position else {
            return match old_position {
                Some(at) => self.free_position(at),
                None => Vec::new(),
            };
        };
        self.positions[at] = Some(id.clone());
        let stale_rows = {
            let a = compiled.as_ref().ok().map(Arc::as_ref);
            self.index().set(at, a)
        };
        if stale_rows {
            self.rebuild_rows();
        }
        if let (Ok(a), Some(t)) = (&compiled, self.tallies.get_mut(at)) {
            t.selection = SelectionTally::default();
            for (name, c) in &self.clusters {
                t.selection.count(a, name, &c.labels, true);
            }
        }
        // Every cluster that has or should have it: a new template must reach them too.
        self.reevaluate(at, true)
    }

    /// Forgets a deleted Federated* object; returns the clusters to sync.
    pub fn remove_addon(&mut self, id: &AddonId) -> Vec<String> {
        let Some(entry) = self.addons.remove(id) else {
            return Vec::new();
        };
        self.dirty.remove(id);
        match entry.position {
            Some(at) => self.free_position(at),
            None => Vec::new(),
        }
    }

    /// Takes the addon at `at` off every cluster and frees the position; returns the
    /// clusters to sync.
    fn free_position(&mut self, at: usize) -> Vec<String> {
        self.positions[at] = None;
        self.index().set(at, None);
        self.reevaluate(at, false)
    }

    fn rebuild_rows(&mut self) {
        let Some(ix) = &self.index else { return };
        for c in self.clusters.values_mut() {
            c.row = ix.row(c.labels.iter());
        }
    }

    /// Re-decides one addon position on every cluster; returns the clusters whose
    /// placement of it changed (or that hold it, when `template_changed`).
    fn reevaluate(&mut self, at: usize, template_changed: bool) -> Vec<String> {
        let mut affected = Vec::new();
        let decisions: Vec<(Arc<str>, bool)> = self
            .clusters
            .iter()
            .map(|(n, c)| (n.clone(), self.is_placed(c, n, at)))
            .collect();
        for (name, now) in decisions {
            let Some(c) = self.clusters.get_mut(&name) else {
                continue;
            };
            let before = c.placed.contains(at);
            if now != before {
                if now {
                    c.placed.insert(at);
                } else {
                    c.placed.remove(at);
                }
                tally(&mut self.tallies, &self.positions, &name, c, at, now);
            }
            if now != before || (now && template_changed) {
                affected.push(name.to_string());
            }
        }
        // A position left without a valid addon starts its next one from nothing.
        if self.positions.get(at).is_some_and(Option::is_none)
            && let Some(t) = self.tallies.get_mut(at)
        {
            *t = Tally::default();
        }
        affected
    }

    /// Takes in a cluster's labels and deletion state; returns whether it must be synced
    /// (always for a cluster seen for the first time).
    pub fn upsert_cluster(
        &mut self,
        name: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        deleting: bool,
    ) -> bool {
        let row = self.index().row_of(labels);
        let existed = self.clusters.contains_key(name);
        let c = self
            .clusters
            .entry(name.into())
            .or_insert_with(|| ClusterEntry {
                namespace: namespace.to_owned(),
                labels: LabelSet::default(),
                row: row.clone(),
                placed: AddonSet::default(),
                health: Health::Unknown,
                deleting,
                pairs: BTreeMap::new(),
                unhealthy_since: None,
                signals: Arc::default(),
            });
        let same = c.labels.same_as(labels);
        if existed && same && c.deleting == deleting {
            return false;
        }
        let relabelled = !same || !existed;
        if relabelled {
            c.signals.labels_generation.fetch_add(1, Ordering::AcqRel);
            let old = std::mem::replace(&mut c.labels, LabelSet::new(labels, &mut self.interner));
            for (id, t) in self.positions.iter().zip(self.tallies.iter_mut()) {
                let Some(Ok(a)) = id
                    .as_ref()
                    .and_then(|id| self.addons.get(id))
                    .map(|e| &e.compiled)
                else {
                    continue;
                };
                if existed {
                    t.selection.count(a, name, &old, false);
                }
                t.selection.count(a, name, labels, true);
            }
        }
        c.row = row;
        c.deleting = deleting;
        c.signals.deleting.store(deleting, Ordering::Release);
        if relabelled {
            self.fleet_changed();
        }
        self.replace(name) || !existed
    }

    /// Re-places one cluster; returns whether its placement changed.
    fn replace(&mut self, name: &str) -> bool {
        let Some((key, c)) = self.clusters.get_key_value(name) else {
            return false;
        };
        let mut placed = AddonSet::default();
        for (at, id) in self.positions.iter().enumerate() {
            if id.is_some() && self.is_placed(c, name, at) {
                placed.insert(at);
            }
        }
        let diff: Vec<usize> = (0..self.positions.len())
            .filter(|&i| placed.contains(i) != c.placed.contains(i))
            .collect();
        for &at in &diff {
            tally(
                &mut self.tallies,
                &self.positions,
                key,
                c,
                at,
                placed.contains(at),
            );
            if let Some(Some(id)) = self.positions.get(at) {
                self.dirty.insert(id.clone());
            }
        }
        if let Some(c) = self.clusters.get_mut(name) {
            c.placed = placed;
        }
        !diff.is_empty()
    }

    /// Forgets a detached cluster.
    pub fn remove_cluster(&mut self, name: &str) {
        if let Some((key, c)) = self.clusters.remove_entry(name) {
            for at in c.placed.iter() {
                tally(&mut self.tallies, &self.positions, &key, &c, at, false);
            }
            for (id, t) in self.positions.iter().zip(self.tallies.iter_mut()) {
                if let Some(Ok(a)) = id
                    .as_ref()
                    .and_then(|id| self.addons.get(id))
                    .map(|e| &e.compiled)
                {
                    t.selection.count(a, name, &c.labels, false);
                }
            }
            self.fleet_changed();
        }
    }

    /// The fleet's clusters or labels changed: every addon's selection summary may read
    /// differently now ("2/3 clusters selected"), placed on the cluster or not.
    fn fleet_changed(&mut self) {
        self.dirty.extend(self.addons.keys().cloned());
    }

    /// Records a probe verdict at `now` (the probe calls it when the verdict changes).
    pub fn set_health(&mut self, name: &str, health: Health, now: tokio::time::Instant) {
        let Some(c) = self.clusters.get_mut(name) else {
            return;
        };
        if health == Health::Ready {
            c.unhealthy_since = None;
        } else {
            c.unhealthy_since.get_or_insert(now);
        }
        if c.health != health {
            c.health = health;
            self.dirty.extend(c.pairs.keys().cloned());
        }
    }

    /// Each federate key the valid addons read, with its default (see
    /// [`flotilla_core::catalog::Catalog::federate_defaults`]).
    pub fn federate_defaults(&self) -> BTreeMap<String, bool> {
        flotilla_core::catalog::federate_defaults(
            self.addons
                .values()
                .filter_map(|e| e.compiled.as_deref().ok()),
        )
    }

    /// A cluster, if attached.
    pub fn cluster(&self, name: &str) -> Option<&ClusterEntry> {
        self.clusters.get(name)
    }

    /// The addons placed on `name`.
    pub fn placed_on(&self, name: &str) -> Vec<AddonId> {
        let Some(c) = self.clusters.get(name) else {
            return Vec::new();
        };
        c.placed
            .iter()
            .filter_map(|i| self.positions.get(i).cloned().flatten())
            .collect()
    }

    /// What a cluster's sync should make true.
    pub fn plan(&self, name: &str) -> Option<Plan> {
        let c = self.clusters.get(name)?;
        let mut desired = Vec::new();
        let mut render_errors = Vec::new();
        if !c.deleting {
            for at in c.placed.iter() {
                let Some(Some(id)) = self.positions.get(at) else {
                    continue;
                };
                let Some(e) = self.addons.get(id) else {
                    continue;
                };
                let (Ok(a), Some(shared)) = (&e.compiled, &e.shared) else {
                    continue;
                };
                match render_for(a, name, shared) {
                    Ok(d) => desired.push(d),
                    Err(err) => render_errors.push((id.clone(), err)),
                }
            }
        }
        Some(Plan {
            desired,
            render_errors,
            writable: c.health == Health::Ready,
            deleting: c.deleting,
        })
    }

    /// Records what a sync saw or did for each pair; marks addons whose status must change.
    pub fn record(&mut self, name: &str, pairs: BTreeMap<AddonId, PairState>) {
        let Some((key, c)) = self.clusters.get_key_value(name) else {
            return;
        };
        let key = key.clone();
        for at in c.placed.iter() {
            tally(&mut self.tallies, &self.positions, &key, c, at, false);
        }
        for (id, old) in &c.pairs {
            if pairs.get(id) != Some(old) {
                self.dirty.insert(id.clone());
            }
        }
        for id in pairs.keys() {
            if !c.pairs.contains_key(id) {
                self.dirty.insert(id.clone());
            }
        }
        let Some(c) = self.clusters.get_mut(name) else {
            return;
        };
        c.pairs = pairs;
        for at in c.placed.iter() {
            tally(&mut self.tallies, &self.positions, &key, c, at, true);
        }
    }

    /// Takes the addons whose status needs writing.
    pub fn take_dirty(&mut self) -> Vec<AddonId> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// The status a Federated* object should carry now.
    pub fn addon_status(&mut self, id: &AddonId) -> Option<FederatedStatus> {
        let e = self.addons.get(id)?;
        let a = match &e.compiled {
            Ok(a) => a,
            Err(msg) => {
                return Some(FederatedStatus {
                    observed_generation: Some(e.generation),
                    conditions: vec![PropagationCondition {
                        type_: "Propagation".into(),
                        status: ConditionStatus::False,
                        reason: Some("InvalidSpec".into()),
                        message: Some(msg.clone()),
                        last_transition_time: None,
                    }],
                    ..Default::default()
                });
            }
        };
        let (at, generation) = (e.position?, e.generation);
        // Every selected cluster is counted, but at most STATUS_CLUSTER_LIMIT are listed:
        // all of them when they fit, else the ones that are not fine.
        let t = self.tallies.get(at)?;
        if t.selected <= STATUS_CLUSTER_LIMIT && t.few.is_none() {
            let few = self
                .clusters
                .iter()
                .filter(|(_, c)| c.placed.contains(at))
                .map(|(n, _)| n.clone())
                .collect();
            self.tallies[at].few = Some(few);
        }
        let t = &self.tallies[at];
        let (selected, ready, problems) = (t.selected, t.ready, t.problems);
        let listed: Vec<&Arc<str>> = match &t.few {
            Some(few) if selected <= STATUS_CLUSTER_LIMIT => few.iter().collect(),
            _ => t.not_fine.iter().take(STATUS_CLUSTER_LIMIT).collect(),
        };
        let entries: Vec<ClusterPropagation> = listed
            .into_iter()
            .map(|name| (name, self.clusters.get(name).and_then(|c| c.pairs.get(id))))
            .map(|(name, p)| match p {
                Some(p) => ClusterPropagation {
                    name: name.to_string(),
                    status: p.reason.clone(),
                    ready: p.ready,
                    stage: p.stage,
                    revision: p.revision.as_deref().map(str::to_owned),
                    message: p.message.clone(),
                },
                None => ClusterPropagation {
                    name: name.to_string(),
                    status: Some("Pending".into()),
                    ..Default::default()
                },
            })
            .collect();
        let summary = self.tallies[at].selection.text(a);
        let ok = problems == 0;
        Some(FederatedStatus {
            observed_generation: Some(generation),
            conditions: vec![PropagationCondition {
                type_: "Propagation".into(),
                status: if ok {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                reason: (!ok).then(|| "CheckClusters".into()),
                message: Some(format!("{ready}/{selected} selected clusters ready")),
                last_transition_time: None,
            }],
            clusters: entries,
            selection: Some(summary),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, selector: serde_json::Value, generation: i64) -> CatalogObject {
        let v = serde_json::json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedClusterAddon",
            "metadata": {"name": name, "generation": generation},
            "spec": {"template": {"spec": {}}, "placement": {"clusterSelector": selector}}});
        CatalogObject::ClusterAddon(serde_json::from_value(v).expect("object"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut l: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.entry(CLUSTER_TYPE.into())
            .or_insert_with(|| "Generic".into());
        l
    }

    #[test]
    fn incremental_placement() {
        let mut f = Fed::default();
        assert!(f.upsert_cluster("a", "kommander", &labels(&[("env", "prod")]), false));
        f.upsert_cluster("b", "kommander", &labels(&[("env", "dev")]), false);
        assert!(
            !f.upsert_cluster("a", "kommander", &labels(&[("env", "prod")]), false),
            "no change, no sync"
        );
        // A new addon reads a key the index had never seen: rows are rebuilt, and it lands.
        let affected = f.upsert_addon(&obj(
            "x",
            serde_json::json!({"matchLabels": {"env": "prod"}}),
            1,
        ));
        assert_eq!(affected, ["a"]);
        assert_eq!(
            f.upsert_addon(&obj(
                "x",
                serde_json::json!({"matchLabels": {"env": "prod"}}),
                1
            )),
            Vec::<String>::new()
        );
        // A label change re-places one cluster.
        assert!(f.upsert_cluster("b", "kommander", &labels(&[("env", "prod")]), false));
        assert_eq!(f.placed_on("b").len(), 1);
        // A new generation reaches every cluster holding it; a narrower selector drops one.
        let affected = f.upsert_addon(&obj(
            "x",
            serde_json::json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
            2,
        ));
        assert_eq!(affected, ["a", "b"]);
        assert!(f.placed_on("a").is_empty());
        // Clusters without derived labels get nothing; deleting clusters get nothing.
        let everywhere = f.upsert_addon(&obj("y", serde_json::json!({}), 1));
        assert_eq!(everywhere, ["a", "b"]);
        f.upsert_cluster("c", "kommander", &BTreeMap::new(), false);
        assert!(f.placed_on("c").is_empty());
        f.upsert_cluster("a", "kommander", &labels(&[("env", "prod")]), true);
        assert!(f.placed_on("a").is_empty());
        assert_eq!(
            f.remove_addon(&obj("y", serde_json::json!({}), 1).id()),
            ["b"]
        );
    }

    #[test]
    fn invalid_addons_report_on_their_own_status() {
        let mut f = Fed::default();
        f.upsert_cluster("a", "kommander", &labels(&[]), false);
        let bad = obj(
            "bad",
            serde_json::json!({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}),
            1,
        );
        assert!(f.upsert_addon(&bad).is_empty());
        let good = f.upsert_addon(&obj("good", serde_json::json!({}), 1));
        assert_eq!(good, ["a"]);
        let s = f.addon_status(&bad.id()).expect("status");
        assert_eq!(s.conditions[0].reason.as_deref(), Some("InvalidSpec"));
        assert!(
            s.conditions[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("not a valid selector operator"))
        );
        let g = f
            .addon_status(&obj("good", serde_json::json!({}), 1).id())
            .expect("status");
        assert_eq!(g.selection.as_deref(), Some("1/1 clusters selected"));
        assert_eq!(g.clusters[0].status.as_deref(), Some("Pending"));
    }

    /// Found on real clusters: a detached cluster on which an addon was no longer placed
    /// left "3/3 clusters selected" on its status.
    #[test]
    fn a_cluster_leaving_rewrites_every_selection_summary() {
        let mut f = Fed::default();
        f.upsert_cluster("a", "kommander", &labels(&[("env", "prod")]), false);
        f.upsert_cluster("b", "kommander", &labels(&[("env", "dev")]), false);
        let prod = obj(
            "prod",
            serde_json::json!({"matchLabels": {"env": "prod"}}),
            1,
        );
        f.upsert_addon(&prod);
        let _ = f.take_dirty();
        let _ = f.addon_status(&prod.id());
        f.remove_cluster("b");
        assert_eq!(f.take_dirty(), [prod.id()], "prod was never on b");
        let s = f.addon_status(&prod.id()).expect("status");
        assert_eq!(s.selection.as_deref(), Some("1/1 clusters selected"));
    }

    /// A status lists every selected cluster while they fit, else only those not fine,
    /// and counts them all either way.
    #[test]
    fn status_lists_clusters_up_to_the_limit() {
        let everywhere = obj("all", serde_json::json!({}), 1);
        let ready = PairState {
            ready: true,
            stage: Some(Stage::Deployed),
            ..Default::default()
        };
        let status_with = |n: usize| {
            let mut f = Fed::default();
            for i in 0..n {
                f.upsert_cluster(&format!("c{i:04}"), "kommander", &labels(&[]), false);
            }
            f.upsert_addon(&everywhere);
            // All ready but three: one failing, one not ready yet, one never synced.
            for i in 0..n - 1 {
                let p = match i {
                    7 => PairState {
                        reason: Some("CreationFailed".into()),
                        ..Default::default()
                    },
                    42 => PairState::default(),
                    _ => ready.clone(),
                };
                f.record(&format!("c{i:04}"), BTreeMap::from([(everywhere.id(), p)]));
            }
            f.addon_status(&everywhere.id()).expect("status")
        };
        let small = status_with(STATUS_CLUSTER_LIMIT);
        assert_eq!(small.clusters.len(), STATUS_CLUSTER_LIMIT, "all fit");
        assert_eq!(small.clusters[7].status.as_deref(), Some("CreationFailed"));
        let large = status_with(STATUS_CLUSTER_LIMIT * 3);
        let listed: Vec<(&str, Option<&str>)> = large
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.status.as_deref()))
            .collect();
        assert_eq!(
            listed,
            [
                ("c0007", Some("CreationFailed")),
                ("c0042", None),
                ("c0299", Some("Pending"))
            ]
        );
        assert_eq!(
            large.selection.as_deref(),
            Some("300/300 clusters selected")
        );
        // Back under the limit (250 detached), every selected cluster is listed again.
        let mut f = Fed::default();
        for i in 0..300 {
            f.upsert_cluster(&format!("c{i:04}"), "kommander", &labels(&[]), false);
        }
        f.upsert_addon(&everywhere);
        for i in 50..300 {
            f.remove_cluster(&format!("c{i:04}"));
        }
        let s = f.addon_status(&everywhere.id()).expect("status");
        assert_eq!(s.clusters.len(), 50);
        assert_eq!(s.selection.as_deref(), Some("50/50 clusters selected"));
    }

    /// Found by `tallies_match_a_scan`: an addon whose new generation was invalid kept its
    /// position while freeing it, so another addon took it and was displaced when the first
    /// turned valid again.
    #[test]
    fn an_invalid_generation_gives_its_position_up() {
        let mut f = Fed::default();
        f.upsert_cluster("a", "kommander", &labels(&[]), false);
        let bad = serde_json::json!({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]});
        f.upsert_addon(&obj("x", serde_json::json!({}), 1));
        f.upsert_addon(&obj("x", bad, 2));
        f.upsert_addon(&obj("y", serde_json::json!({}), 1));
        f.upsert_addon(&obj("x", serde_json::json!({}), 3));
        let mut placed = f.placed_on("a");
        placed.sort();
        let mut want = vec![
            obj("x", serde_json::json!({}), 3).id(),
            obj("y", serde_json::json!({}), 1).id(),
        ];
        want.sort();
        assert_eq!(placed, want);
    }

    /// What the tally of position `at` should hold, counted from scratch.
    fn tally_by_scan(f: &Fed, at: usize) -> Tally {
        let mut t = Tally::default();
        let Some(Some(id)) = f.positions.get(at) else {
            return t;
        };
        for (name, c) in &f.clusters {
            if c.placed.contains(at) {
                t.count(name, standing(c, id), true);
            }
        }
        t.few = None;
        t
    }

    #[derive(Clone, Debug)]
    enum Op {
        Cluster(usize, usize, bool),
        Detach(usize),
        Addon(usize, usize, i64),
        Delete(usize),
        Record(usize, Vec<usize>),
        Status(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6usize, 0..3usize, any::<bool>()).prop_map(|(c, e, d)| Op::Cluster(c, e, d)),
            (0..6usize).prop_map(Op::Detach),
            (0..3usize, 0..3usize, 1..4i64).prop_map(|(a, s, g)| Op::Addon(a, s, g)),
            (0..3usize).prop_map(Op::Delete),
            (0..6usize, proptest::collection::vec(0..4usize, 3))
                .prop_map(|(c, p)| Op::Record(c, p)),
            (0..3usize).prop_map(Op::Status),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        /// However placements and pairs change, each addon's tally is what counting the
        /// fleet from scratch gives, and its status lists what a scan would.
        #[test]
        fn tallies_match_a_scan(ops in proptest::collection::vec(op(), 1..40)) {
            let mut f = Fed::default();
            let selector = |s: usize| match s {
                0 => serde_json::json!({}),
                1 => serde_json::json!({"matchLabels": {"env": "e0"}}),
                _ => serde_json::json!({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}),
            };
            let mut generations = [0i64; 3];
            for op in ops {
                match op {
                    Op::Cluster(c, e, deleting) => {
                        f.upsert_cluster(&format!("c{c}"), "kommander", &labels(&[("env", &format!("e{e}"))]), deleting);
                    }
                    Op::Detach(c) => f.remove_cluster(&format!("c{c}")),
                    Op::Addon(a, s, g) => {
                        generations[a] += g;
                        f.upsert_addon(&obj(&format!("a{a}"), selector(s), generations[a]));
                    }
                    Op::Delete(a) => {
                        f.remove_addon(&obj(&format!("a{a}"), serde_json::json!({}), 1).id());
                    }
                    Op::Record(c, kinds) => {
                        let pairs = kinds.iter().enumerate().filter_map(|(a, k)| {
                            let p = match k {
                                0 => return None,
                                1 => PairState { ready: true, ..Default::default() },
                                2 => PairState { reason: Some("CreationFailed".into()), ..Default::default() },
                                _ => PairState::default(),
                            };
                            Some((obj(&format!("a{a}"), serde_json::json!({}), 1).id(), p))
                        }).collect();
                        f.record(&format!("c{c}"), pairs);
                    }
                    Op::Status(a) => {
                        let _ = f.addon_status(&obj(&format!("a{a}"), serde_json::json!({}), 1).id());
                    }
                }
                for at in 0..f.positions.len() {
                    let want = tally_by_scan(&f, at);
                    let got = &f.tallies[at];
                    prop_assert_eq!((got.selected, got.ready, got.problems, &got.not_fine),
                        (want.selected, want.ready, want.problems, &want.not_fine), "position {}", at);
                    if let Some(few) = &got.few {
                        let placed: BTreeSet<Arc<str>> = f.clusters.iter()
                            .filter(|(_, c)| c.placed.contains(at)).map(|(n, _)| n.clone()).collect();
                        prop_assert_eq!(few, &placed);
                    }
                }
            }
        }
    }
}
