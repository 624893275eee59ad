//! The host store: where KubeFedClusters and Federated* objects live.
//!
//! [`HostStore`] is every call the manager makes to the host cluster's API. Its watch hands
//! out keys of changed objects (the reconcilers read the current object themselves), each
//! marked when only status changed, so the manager's own status writes do not re-trigger it
//! (kube-rs' generation predicate, in spirit). [`MemoryHost`] is the in-memory
//! implementation: resourceVersions with conflicts on stale writes, finalizers holding
//! deleted objects, an events log, and the rule the real mode enforces with a
//! ValidatingAdmissionPolicy: `cluster-type` never changes once set. It keeps each
//! cluster's labels interned ([`LabelSet`]): a simulated fleet of 100,000 clusters carries
//! millions of labels that are nearly all the same strings.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use compact_str::CompactString;
use flotilla_core::catalog::{AddonId, AddonKind, CatalogObject};
use flotilla_core::label_set::{Interner, LabelSet};
use flotilla_core::labels::check_cluster_type_change;
use flotilla_core::types::{
    ClusterCondition, FederatedStatus, KubeFedCluster, KubeFedClusterStatus, with_finalizer,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tokio::sync::mpsc;

/// Finalizer the manager puts on every KubeFedCluster, to clean the member up on detach.
pub const DETACH_FINALIZER: &str = "flotilla.io/detach";

/// A host object's identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKey {
    /// A KubeFedCluster.
    Cluster {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A FederatedAddon or FederatedClusterAddon.
    Addon(AddonId),
}

impl ObjectKey {
    /// The key of a KubeFedCluster.
    pub fn cluster(namespace: &str, name: &str) -> Self {
        Self::Cluster {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// A change to a host object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEvent {
    /// Which object.
    pub key: ObjectKey,
    /// Only its status changed.
    pub status_only: bool,
}

/// Why a host call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The object does not exist.
    #[error("not found")]
    NotFound,
    /// The write was based on a stale resourceVersion.
    #[error(
        "conflict: the object has been modified; please apply your changes to the latest version"
    )]
    Conflict,
    /// The write was rejected (admission).
    #[error("rejected: {0}")]
    Invalid(String),
    /// The host could not be reached.
    #[error("host unavailable: {0}")]
    Unavailable(String),
}

/// A host event record (`kubectl describe` shows these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// What it is about.
    pub regarding: ObjectKey,
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What happened.
    pub message: String,
}

/// Every call the manager makes to the host cluster.
pub trait HostStore: Send + Sync + 'static {
    /// Every KubeFedCluster.
    fn list_clusters(&self) -> impl Future<Output = Result<Vec<KubeFedCluster>, HostError>> + Send;
    /// One KubeFedCluster.
    fn get_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<KubeFedCluster>, HostError>> + Send;
    /// Replaces a cluster's labels if it still has `resource_version`.
    fn update_cluster_labels(
        &self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
    /// Writes a cluster's status subresource as a merge patch: the conditions always; the
    /// zones and region only when given (empty zones, no region: the stored ones stay), so
    /// that a probe resends the node facts only when it has read them again.
    fn update_cluster_status(
        &self,
        namespace: &str,
        name: &str,
        status: &KubeFedClusterStatus,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
    /// Adds or removes the manager's detach finalizer.
    fn set_cluster_finalizer(
        &self,
        namespace: &str,
        name: &str,
        present: bool,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
    /// Every Federated* object.
    fn list_addons(&self) -> impl Future<Output = Result<Vec<CatalogObject>, HostError>> + Send;
    /// One Federated* object.
    fn get_addon(
        &self,
        id: &AddonId,
    ) -> impl Future<Output = Result<Option<CatalogObject>, HostError>> + Send;
    /// Writes a Federated* object's status subresource.
    fn update_addon_status(
        &self,
        id: &AddonId,
        status: FederatedStatus,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
    /// Records an event.
    fn record_event(
        &self,
        event: EventRecord,
    ) -> impl Future<Output = Result<(), HostError>> + Send;
    /// Changes from now on (subscribe before listing, so nothing is missed); status-only
    /// changes only with `include_status`.
    fn watch(&self, include_status: bool) -> mpsc::UnboundedReceiver<HostEvent>;
}

/// A cluster as the in-memory host keeps it: the object without its labels, its
/// resourceVersion and its status, which are held apart and put back on every read. Labels
/// are kept in shared form. The version (a number) and the status (its conditions inline:
/// KubeFed writes at most two) come first, next to the key in the table: every probe writes
/// both, and should find them in the cache lines its lookup has just read, not behind more
/// pointers.
#[repr(C)]
struct StoredCluster {
    /// Host revision of its last write.
    revision: u64,
    status: Option<StoredStatus>,
    labels: Option<LabelSet>,
    object: KubeFedCluster,
}

/// A KubeFedCluster's status, conditions inline.
#[derive(Default)]
struct StoredStatus {
    conditions: SmallVec<[ClusterCondition; 2]>,
    zones: Vec<String>,
    region: Option<String>,
}

impl StoredStatus {
    fn new(status: KubeFedClusterStatus) -> Self {
        Self {
            conditions: status.conditions.into(),
            zones: status.zones,
            region: status.region,
        }
    }

    fn to_status(&self) -> KubeFedClusterStatus {
        KubeFedClusterStatus {
            conditions: self.conditions.to_vec(),
            zones: self.zones.clone(),
            region: self.region.clone(),
        }
    }
}

impl StoredCluster {
    fn new(mut object: KubeFedCluster, interner: &mut Interner, revision: u64) -> Self {
        let labels = object
            .metadata
            .labels
            .take()
            .map(|l| LabelSet::new(&l, interner));
        object.metadata.resource_version = None;
        let status = object.status.take().map(StoredStatus::new);
        Self {
            revision,
            status,
            labels,
            object,
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.labels
            .as_ref()
            .map(LabelSet::to_map)
            .unwrap_or_default()
    }

    fn to_object(&self) -> KubeFedCluster {
        let mut c = self.object.clone();
        c.status = self.status.as_ref().map(StoredStatus::to_status);
        c.metadata.labels = self.labels.as_ref().map(LabelSet::to_map);
        c.metadata.resource_version = Some(self.revision.to_string());
        c
    }
}

/// Clusters by namespace, then name: found from borrowed names, without building a key.
/// Names are hashed, not ordered: every probe writes its cluster's status, and in a fleet
/// of 10,000 a tree walk compares a dozen names in a dozen cold cache lines. Names are
/// kept inline (up to 24 bytes) so that finding one does not read a cold heap string too.
#[derive(Default)]
struct Clusters {
    by_namespace: BTreeMap<String, FxHashMap<CompactString, StoredCluster>>,
    len: usize,
}

impl Clusters {
    fn get(&self, namespace: &str, name: &str) -> Option<&StoredCluster> {
        self.by_namespace.get(namespace)?.get(name)
    }

    fn get_mut(&mut self, namespace: &str, name: &str) -> Option<&mut StoredCluster> {
        self.by_namespace.get_mut(namespace)?.get_mut(name)
    }

    fn insert(&mut self, namespace: &str, name: &str, cluster: StoredCluster) {
        let names = self.by_namespace.entry(namespace.to_owned()).or_default();
        if names.insert(name.into(), cluster).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(names) = self.by_namespace.get_mut(namespace) else {
            return;
        };
        if names.remove(name).is_some() {
            self.len -= 1;
        }
        if names.is_empty() {
            self.by_namespace.remove(namespace);
        }
    }

    /// By namespace, then names in an order that repeats from run to run but is not sorted.
    fn iter(&self) -> impl Iterator<Item = (&str, &str, &StoredCluster)> {
        self.by_namespace.iter().flat_map(|(ns, names)| {
            names
                .iter()
                .map(move |(name, c)| (ns.as_str(), name.as_str(), c))
        })
    }
}

#[derive(Default)]
struct Inner {
    clusters: Clusters,
    interner: Interner,
    addons: BTreeMap<AddonId, CatalogObject>,
    events: Vec<EventRecord>,
    watchers: Vec<(mpsc::UnboundedSender<HostEvent>, bool)>,
    revision: u64,
}

/// The host's next revision: every write moves it, as etcd's does.
fn next_revision(revision: &mut u64) -> u64 {
    *revision += 1;
    *revision
}

/// An in-memory host cluster.
#[derive(Default)]
pub struct MemoryHost {
    inner: Mutex<Inner>,
    /// Writes to the host (spec, labels, status, finalizers), for the report.
    pub writes: AtomicU64,
}

fn meta_mut(
    o: &mut CatalogObject,
) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    match o {
        CatalogObject::Addon(a) => &mut a.metadata,
        CatalogObject::ClusterAddon(a) => &mut a.metadata,
    }
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a write and tells the watchers that want it. The key is made only when someone
    /// listens: most writes are probe status writes, which the manager does not watch.
    fn notify(&self, g: &mut Inner, key: impl FnOnce() -> ObjectKey, status_only: bool) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        if status_only && !g.watchers.iter().any(|(_, include_status)| *include_status) {
            return;
        }
        let key = key();
        g.watchers.retain(|(w, include_status)| {
            (status_only && !include_status)
                || w.send(HostEvent {
                    key: key.clone(),
                    status_only,
                })
                .is_ok()
        });
    }

    /// Creates or replaces a KubeFedCluster's labels and spec, as `kubectl apply` would.
    /// Changing the cluster type of an existing cluster is rejected.
    pub fn apply_cluster(&self, mut cluster: KubeFedCluster) -> Result<(), HostError> {
        let ns = cluster
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let mut g = self.lock();
        if let Some(stored) = g.clusters.get(&ns, &name) {
            let empty = BTreeMap::new();
            let new_labels = cluster.metadata.labels.as_ref().unwrap_or(&empty);
            check_cluster_type_change(&name, &stored.labels(), new_labels)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
            let old = &stored.object;
            cluster.status = stored.status.as_ref().map(StoredStatus::to_status);
            cluster.metadata.finalizers = old.metadata.finalizers.clone();
            cluster.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
            cluster.metadata.deletion_timestamp = old.metadata.deletion_timestamp.clone();
        }
        cluster.metadata.namespace = Some(ns.clone());
        let revision = next_revision(&mut g.revision);
        let stored = StoredCluster::new(cluster, &mut g.interner, revision);
        g.clusters.insert(&ns, &name, stored);
        self.notify(
            &mut g,
            || ObjectKey::Cluster {
                namespace: ns,
                name,
            },
            false,
        );
        Ok(())
    }

    /// Sets labels as a user would with `kubectl label --overwrite` (subject to admission).
    pub fn label_cluster(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), HostError> {
        let mut c = self.cluster(namespace, name).ok_or(HostError::NotFound)?;
        let labels = c.metadata.labels.get_or_insert_with(BTreeMap::new);
        match value {
            Some(v) => labels.insert(key.into(), v.into()),
            None => labels.remove(key),
        };
        self.apply_cluster(c)
    }

    /// Requests deletion (`kubectl delete`): the object stays while finalizers remain.
    pub fn delete_cluster(&self, namespace: &str, name: &str, now: Time) -> Result<(), HostError> {
        self.write_cluster(namespace, name, false, |c, _| {
            c.object.metadata.deletion_timestamp.get_or_insert(now);
            Ok(())
        })
    }

    /// The one way a cluster changes after creation: `edit` changes it (or refuses), then it
    /// gets a new resourceVersion and watchers hear of it; an object being deleted whose
    /// finalizers are all gone is removed instead.
    fn write_cluster(
        &self,
        namespace: &str,
        name: &str,
        status_only: bool,
        edit: impl FnOnce(&mut StoredCluster, &mut Interner) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        let mut guard = self.lock();
        let g = &mut *guard;
        let stored = g
            .clusters
            .get_mut(namespace, name)
            .ok_or(HostError::NotFound)?;
        edit(stored, &mut g.interner)?;
        let c = &mut stored.object;
        if c.metadata.deletion_timestamp.is_some()
            && c.metadata.finalizers.as_ref().is_none_or(Vec::is_empty)
        {
            g.clusters.remove(namespace, name);
        } else {
            stored.revision = next_revision(&mut g.revision);
        }
        self.notify(g, || ObjectKey::cluster(namespace, name), status_only);
        Ok(())
    }

    /// Creates or updates a Federated* object (`kubectl apply`); the generation moves when the
    /// spec changes.
    pub fn apply_addon(&self, mut obj: CatalogObject) -> Result<(), HostError> {
        let id = obj.id();
        let mut g = self.lock();
        let generation = match g.addons.get(&id) {
            Some(old) if old.spec() == obj.spec() => old.generation(),
            Some(old) => old.generation() + 1,
            None => 1,
        };
        let rv = next_revision(&mut g.revision).to_string();
        let m = meta_mut(&mut obj);
        m.generation = Some(generation);
        m.resource_version = Some(rv);
        if id.kind == AddonKind::FederatedAddon {
            m.namespace = id.namespace.as_deref().map(str::to_owned);
        }
        if let Some(old) = g.addons.get(&id) {
            obj.set_status(old.status().cloned());
        }
        g.addons.insert(id.clone(), obj);
        self.notify(&mut g, || ObjectKey::Addon(id), false);
        Ok(())
    }

    /// Deletes a Federated* object.
    pub fn delete_addon(&self, id: &AddonId) -> Result<(), HostError> {
        let mut g = self.lock();
        g.addons.remove(id).ok_or(HostError::NotFound)?;
        self.notify(&mut g, || ObjectKey::Addon(id.clone()), false);
        Ok(())
    }

    /// A copy of one cluster (not an API call of the manager's).
    pub fn cluster(&self, namespace: &str, name: &str) -> Option<KubeFedCluster> {
        self.lock()
            .clusters
            .get(namespace, name)
            .map(StoredCluster::to_object)
    }

    /// Calls `f` with one cluster's labels in place, unless it is being deleted (for checks
    /// that read every cluster of a large fleet: nothing else is copied).
    pub fn with_live_cluster_labels<R>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&LabelSet) -> R,
    ) -> Option<R> {
        let g = self.lock();
        let c = g.clusters.get(namespace, name)?;
        if c.object.metadata.deletion_timestamp.is_some() {
            return None;
        }
        Some(f(c.labels.as_ref().unwrap_or(&LabelSet::default())))
    }

    /// How many clusters the host holds.
    pub fn cluster_count(&self) -> usize {
        self.lock().clusters.len
    }

    /// Namespace and name of every cluster, in a repeatable order (not sorted).
    pub fn cluster_keys(&self) -> Vec<(String, String)> {
        self.lock()
            .clusters
            .iter()
            .map(|(ns, name, _)| (ns.to_owned(), name.to_owned()))
            .collect()
    }

    /// Copies of every cluster.
    pub fn clusters(&self) -> Vec<KubeFedCluster> {
        let g = self.lock();
        let mut all: Vec<_> = g.clusters.iter().collect();
        all.sort_unstable_by_key(|&(ns, name, _)| (ns, name));
        all.into_iter()
            .map(|(_, _, c)| StoredCluster::to_object(c))
            .collect()
    }

    /// A copy of one Federated* object.
    pub fn addon(&self, id: &AddonId) -> Option<CatalogObject> {
        self.lock().addons.get(id).cloned()
    }

    /// Identities of every Federated* object.
    pub fn addon_ids(&self) -> Vec<AddonId> {
        self.lock().addons.keys().cloned().collect()
    }

    /// Every event recorded so far.
    pub fn events(&self) -> Vec<EventRecord> {
        self.lock().events.clone()
    }
}

impl HostStore for MemoryHost {
    async fn list_clusters(&self) -> Result<Vec<KubeFedCluster>, HostError> {
        Ok(self.clusters())
    }

    async fn get_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<KubeFedCluster>, HostError> {
        Ok(self.cluster(namespace, name))
    }

    async fn update_cluster_labels(
        &self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        resource_version: &str,
    ) -> Result<(), HostError> {
        self.write_cluster(namespace, name, false, |c, interner| {
            if c.revision.to_string() != resource_version {
                return Err(HostError::Conflict);
            }
            check_cluster_type_change(name, &c.labels(), &labels)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
            c.labels = Some(LabelSet::new(&labels, interner));
            Ok(())
        })
    }

    async fn update_cluster_status(
        &self,
        namespace: &str,
        name: &str,
        status: &KubeFedClusterStatus,
    ) -> Result<(), HostError> {
        self.write_cluster(namespace, name, true, |c, _| {
            // In place: a probe's write reuses the buffers of the last one.
            let s = c.status.get_or_insert_with(Default::default);
            if s.conditions.len() == status.conditions.len() {
                for (to, from) in s.conditions.iter_mut().zip(&status.conditions) {
                    to.clone_from(from);
                }
            } else {
                s.conditions = status.conditions.iter().cloned().collect();
            }
            if !status.zones.is_empty() {
                s.zones.clone_from(&status.zones);
            }
            if status.region.is_some() {
                s.region.clone_from(&status.region);
            }
            Ok(())
        })
    }

    async fn set_cluster_finalizer(
        &self,
        namespace: &str,
        name: &str,
        present: bool,
    ) -> Result<(), HostError> {
        self.write_cluster(namespace, name, false, |c, _| {
            let m = &mut c.object.metadata;
            let current = m.finalizers.as_deref().unwrap_or_default();
            m.finalizers = Some(with_finalizer(current, DETACH_FINALIZER, present));
            Ok(())
        })
    }

    async fn list_addons(&self) -> Result<Vec<CatalogObject>, HostError> {
        Ok(self.lock().addons.values().cloned().collect())
    }

    async fn get_addon(&self, id: &AddonId) -> Result<Option<CatalogObject>, HostError> {
        Ok(self.addon(id))
    }

    async fn update_addon_status(
        &self,
        id: &AddonId,
        status: FederatedStatus,
    ) -> Result<(), HostError> {
        let mut g = self.lock();
        let o = g.addons.get_mut(id).ok_or(HostError::NotFound)?;
        o.set_status(Some(status));
        self.notify(&mut g, || ObjectKey::Addon(id.clone()), true);
        Ok(())
    }

    async fn record_event(&self, event: EventRecord) -> Result<(), HostError> {
        let mut g = self.lock();
        g.events.push(event);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn watch(&self, include_status: bool) -> mpsc::UnboundedReceiver<HostEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().watchers.push((tx, include_status));
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_core::labels::CLUSTER_TYPE;
    use flotilla_core::types::KubeFedClusterSpec;

    fn cluster(labels: &[(&str, &str)]) -> KubeFedCluster {
        let mut c = KubeFedCluster::new("alpha", KubeFedClusterSpec::default());
        c.metadata.namespace = Some("kommander".into());
        c.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        c
    }

    #[tokio::test]
    async fn optimistic_concurrency_and_immutable_type() {
        let h = MemoryHost::new();
        let mut w = h.watch(true);
        h.apply_cluster(cluster(&[(CLUSTER_TYPE, "Konvoy")]))
            .expect("create");
        let rv = h
            .cluster("kommander", "alpha")
            .and_then(|c| c.metadata.resource_version)
            .expect("rv");
        assert_eq!(w.recv().await.map(|e| e.status_only), Some(false));
        h.label_cluster("kommander", "alpha", "env", Some("prod"))
            .expect("label");
        let stale = h
            .update_cluster_labels("kommander", "alpha", BTreeMap::new(), &rv)
            .await;
        assert_eq!(stale, Err(HostError::Conflict));
        let e = h
            .label_cluster("kommander", "alpha", CLUSTER_TYPE, Some("Generic"))
            .expect_err("immutable");
        assert!(e.to_string().contains("immutable once set"), "{e}");
        h.update_cluster_status("kommander", "alpha", &KubeFedClusterStatus::default())
            .await
            .expect("status");
        let events: Vec<bool> = std::iter::from_fn(|| w.try_recv().ok())
            .map(|e| e.status_only)
            .collect();
        assert_eq!(
            events,
            [false, true],
            "a label change, then a status-only change"
        );
    }

    #[tokio::test]
    async fn finalizers_hold_deleted_clusters() {
        let h = MemoryHost::new();
        h.apply_cluster(cluster(&[])).expect("create");
        h.set_cluster_finalizer("kommander", "alpha", true)
            .await
            .expect("finalizer");
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        h.delete_cluster("kommander", "alpha", now).expect("delete");
        assert!(
            h.cluster("kommander", "alpha")
                .is_some_and(|c| c.metadata.deletion_timestamp.is_some())
        );
        h.set_cluster_finalizer("kommander", "alpha", false)
            .await
            .expect("release");
        assert!(h.cluster("kommander", "alpha").is_none());
    }

    /// A status write is a merge patch: conditions replace the stored ones, and zones and
    /// region stay unless given.
    #[tokio::test]
    async fn status_writes_keep_the_facts_they_leave_out() {
        let h = MemoryHost::new();
        h.apply_cluster(cluster(&[])).expect("create");
        let with_facts = KubeFedClusterStatus {
            conditions: vec![],
            zones: vec!["eu-west-1a".into()],
            region: Some("eu-west-1".into()),
        };
        h.update_cluster_status("kommander", "alpha", &with_facts)
            .await
            .expect("status");
        let condition = flotilla_core::types::ClusterCondition {
            type_: flotilla_core::types::ClusterConditionType::Ready,
            status: flotilla_core::types::ConditionStatus::True,
            last_probe_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            last_transition_time: None,
            reason: None,
            message: None,
        };
        let conditions_only = KubeFedClusterStatus {
            conditions: vec![condition],
            ..KubeFedClusterStatus::default()
        };
        h.update_cluster_status("kommander", "alpha", &conditions_only)
            .await
            .expect("status");
        let status = h
            .cluster("kommander", "alpha")
            .and_then(|c| c.status)
            .expect("status");
        assert_eq!(status.conditions, conditions_only.conditions);
        assert_eq!(status.zones, with_facts.zones);
        assert_eq!(status.region, with_facts.region);
    }
}
