//! The manager's runtime: the tasks that connect the stores to [`Fed`].
//!
//! - **Host watch**: KubeFedCluster and Federated* changes update [`Fed`] and queue the
//!   clusters whose placement or desired objects changed (status-only events are skipped).
//! - **Probe, one task per cluster**: `/healthz` every period with KubeFed's thresholds, the
//!   Ready/Offline conditions, and, while Ready, the facts (version, nodes) turned into
//!   labels on the KubeFedCluster. Labels reach placement through the host, like a user's.
//! - **Member watch, one task per cluster**: an Addon changed in the member (the agent
//!   reported) → queue the cluster, so readiness flows back.
//! - **Sync workers**: for a queued cluster, make the member hold exactly the desired
//!   Addons (apply what is missing or different, delete what is no longer placed, write
//!   nothing when they agree), record per-pair state, finish a detach.
//! - **Status writer**: every interval, the Federated* statuses that changed.
//!
//! Every task can be killed at any point: state is rebuilt from the stores on start.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use compact_str::CompactString;
use flotilla_agent::member::{MemberCluster, MemberError};
use flotilla_core::backoff::Backoff;
use flotilla_core::catalog::AddonId;
use flotilla_core::labels::{ClusterFacts, LabelPolicy, derive_labels};
use flotilla_core::types::{
    ClusterCondition, ClusterConditionType, ConditionStatus, KubeFedCluster, KubeFedClusterStatus,
    MANAGED_LABEL,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smallvec::SmallVec;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::host::{EventRecord, HostError, HostStore, ObjectKey};
use crate::queue::WorkQueue;
use crate::state::{ClusterSignals, Fed, Health, PairState};

/// How the manager probes, syncs and paces itself. Defaults are KubeFed's.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Time between health probes of a cluster (KubeFed: 10 s).
    pub probe_period: Duration,
    /// How long a probe may take (KubeFed: 3 s).
    pub probe_timeout: Duration,
    /// How often a Ready cluster's `/version` is read again for its kubernetes-version
    /// label. A version moves on upgrades only, and an upgrade that restarts the API server
    /// is read at once: a cluster coming back Ready is read on its first good probe.
    pub facts_period: Duration,
    /// Consecutive failures before a Ready cluster is judged not Ready (KubeFed: 3).
    pub failure_threshold: u32,
    /// Consecutive successes before a cluster is judged Ready again (KubeFed: 1).
    pub success_threshold: u32,
    /// Clusters synced at once.
    pub sync_workers: usize,
    /// How often changed Federated* statuses are written.
    pub status_interval: Duration,
    /// A cluster being detached that stays unreachable this long is detached anyway.
    pub detach_timeout: Duration,
    /// Retries of failed syncs.
    pub backoff: Backoff,
    /// How cluster labels are derived.
    pub policy: LabelPolicy,
    /// Seeds retry jitter.
    pub seed: u64,
    /// Wall-clock time when [`start`] is called, for condition timestamps: time elapsed on
    /// the runtime's clock (virtual or not) is added to it. The default is "now", so build
    /// the config right before starting.
    pub epoch: Timestamp,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            probe_period: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
            facts_period: Duration::from_secs(300),
            failure_threshold: 3,
            success_threshold: 1,
            sync_workers: 4,
            status_interval: Duration::from_secs(1),
            detach_timeout: Duration::from_secs(300),
            backoff: Backoff::default(),
            policy: LabelPolicy::default(),
            seed: 0,
            epoch: Timestamp::now(),
        }
    }
}

/// What a probe task remembers between cycles (nothing the stores do not also hold). In
/// this order: what every probe reads first, the node facts it reads once last.
#[derive(Default)]
#[repr(C)]
struct FactsCache {
    /// Region and zones were read and are not yet in a written status.
    facts_unwritten: bool,
    /// When the version was read; forgotten when the cluster stops being Ready (read it
    /// again first).
    version_read_at: Option<Instant>,
    /// Bumped when a read finds a version other than the last one: labels compare this
    /// number, not the string, at every probe.
    version_epoch: u64,
    /// The version epoch, label generation and defaults count the labels were last derived
    /// for.
    derived_for: Option<(u64, u64, u64)>,
    /// The version last read.
    version: Option<String>,
    /// What the cluster type is detected from (the type-rule keys the nodes carry), read
    /// once: the cluster type is detected once.
    nodes: Option<Vec<BTreeMap<String, String>>>,
    region: Option<String>,
    zones: Vec<String>,
}

/// What a probe loop carries from one probe to the next. In this order: what every probe
/// touches first, together (the loop's memory is cold after a probe period).
#[derive(Default)]
#[repr(C)]
struct ProbeState {
    /// Consecutive probes that found the cluster healthy.
    successes: u32,
    /// Consecutive probes that did not.
    failures: u32,
    /// The health this loop last gave the cluster (it is the only one that does).
    health: Health,
    cache: FactsCache,
    /// What this loop last wrote of the conditions (saves reading them back).
    last_conditions: Option<Written>,
}

/// What a probe keeps of the conditions it wrote, inline: each one's type, status and
/// transition time (the rest is written anew by every probe).
type Written = SmallVec<[(ClusterConditionType, ConditionStatus, Option<Time>); 2]>;

/// Opens a client to the member a KubeFedCluster describes.
pub trait Connector: Send + Sync + 'static {
    /// The member client type.
    type Member: MemberCluster;
    /// A client for `cluster` (its endpoint and credentials).
    fn connect(
        &self,
        cluster: &KubeFedCluster,
    ) -> impl std::future::Future<Output = Result<Arc<Self::Member>, String>> + Send;
}

/// What the manager did, for reports.
#[derive(Debug, Default)]
pub struct Stats {
    /// Cluster syncs run.
    pub syncs: AtomicU64,
    /// Probes that found `/healthz` ok.
    pub probes_ok: AtomicU64,
    /// Probes that got an answer other than ok.
    pub probes_not_ok: AtomicU64,
    /// Probes that could not reach the member.
    pub probes_offline: AtomicU64,
}

struct Shared<H, C: Connector> {
    host: Arc<H>,
    connector: Arc<C>,
    config: ManagerConfig,
    fed: Mutex<Fed>,
    members: Mutex<HashMap<String, Arc<C::Member>>>,
    cluster_tasks: Mutex<BTreeMap<String, Vec<AbortHandle>>>,
    queue: WorkQueue,
    retries: Mutex<HashMap<String, u32>>,
    type_warned: Mutex<HashSet<String>>,
    /// The catalog's federate keys and defaults, as last seen.
    defaults: Mutex<BTreeMap<String, bool>>,
    /// Bumped when they change: labels derived at an older count are stale.
    relabels: AtomicU64,
    /// Wakes every probe when `relabels` moves, to relabel now, not a period later.
    relabel: tokio::sync::Notify,
    rng: Mutex<StdRng>,
    start: Instant,
    stats: Arc<Stats>,
}

/// A running manager; dropping it (or [`ManagerHandle::kill`]) stops every task at once.
pub struct ManagerHandle<H, C: Connector> {
    shared: Arc<Shared<H, C>>,
    tasks: Vec<AbortHandle>,
}

impl<H, C: Connector> ManagerHandle<H, C> {
    /// Stops everything now, wherever it is (a crash, for tests).
    pub fn kill(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let mut per_cluster = lock(&self.shared.cluster_tasks);
        for (_, ts) in std::mem::take(&mut *per_cluster) {
            for t in ts {
                t.abort();
            }
        }
    }
}

impl<H, C: Connector> Drop for ManagerHandle<H, C> {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts a manager over `host`, reaching members through `connector`, counting into
/// `stats` (shared across restarts when the caller keeps it).
pub fn start<H: HostStore, C: Connector>(
    host: Arc<H>,
    connector: Arc<C>,
    config: ManagerConfig,
    stats: Arc<Stats>,
) -> ManagerHandle<H, C> {
    let shared = Arc::new(Shared {
        rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
        host,
        connector,
        config,
        fed: Mutex::new(Fed::default()),
        members: Mutex::new(HashMap::new()),
        cluster_tasks: Mutex::new(BTreeMap::new()),
        queue: WorkQueue::default(),
        retries: Mutex::new(HashMap::new()),
        type_warned: Mutex::new(HashSet::new()),
        defaults: Mutex::new(BTreeMap::new()),
        relabels: AtomicU64::new(0),
        relabel: tokio::sync::Notify::new(),
        start: Instant::now(),
        stats,
    });
    let mut tasks = vec![tokio::spawn(shared.clone().watch_host()).abort_handle()];
    for _ in 0..shared.config.sync_workers.max(1) {
        tasks.push(tokio::spawn(shared.clone().sync_worker()).abort_handle());
    }
    tasks.push(tokio::spawn(shared.clone().status_writer()).abort_handle());
    ManagerHandle { shared, tasks }
}

const READY_MESSAGE: &str = "/healthz responded with ok";
const NOT_READY_MESSAGE: &str = "/healthz responded without ok";
const OFFLINE_MESSAGE: &str = "cluster is not reachable";

impl<H: HostStore, C: Connector> Shared<H, C> {
    fn fed(&self) -> MutexGuard<'_, Fed> {
        lock(&self.fed)
    }

    /// Condition timestamps: the epoch plus time elapsed on the runtime's clock, so a
    /// virtual-time run stamps virtual times.
    fn time_at(&self, now: Instant) -> Time {
        let elapsed = SignedDuration::try_from(now.saturating_duration_since(self.start))
            .unwrap_or(SignedDuration::ZERO);
        Time(
            self.config
                .epoch
                .checked_add(elapsed)
                .unwrap_or(self.config.epoch),
        )
    }

    /// The first probe round after `done`. Rounds are fleet-wide, one every probe period
    /// from the manager's start, as in KubeFed, whose health check probes every cluster at
    /// each tick. A cluster's first probe (at attach) and a relabel's come at once; the
    /// next ones join the round. It also spares a large fleet's clock: 10,000 clusters
    /// probed each on its own phase wake the runtime 10,000 times a period, not once.
    fn next_round(&self, done: Instant) -> Instant {
        let period = self.config.probe_period.as_nanos().max(1);
        let since = done.saturating_duration_since(self.start).as_nanos();
        let round = (since / period + 1) * period;
        self.start + Duration::from_nanos(u64::try_from(round).unwrap_or(u64::MAX))
    }

    fn jitter(&self) -> f64 {
        lock(&self.rng).random()
    }

    async fn retry_later(self: &Arc<Self>, name: &str) {
        let attempt = {
            let mut r = lock(&self.retries);
            let a = r.entry(name.to_owned()).or_insert(0);
            *a = a.saturating_add(1);
            *a - 1
        };
        let delay = self.config.backoff.delay(attempt, self.jitter());
        let me = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.queue.add(&name);
        });
    }

    // -----------------------------------------------------------------------------------
    // Host watch
    // -----------------------------------------------------------------------------------

    async fn watch_host(self: Arc<Self>) {
        let mut rx = self.host.watch(false);
        // Initial state, listed after subscribing so nothing in between is lost.
        loop {
            match self.initial_list().await {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, "listing the host failed; retrying");
                    tokio::time::sleep(self.config.backoff.delay(3, self.jitter())).await;
                }
            }
        }
        while let Some(ev) = rx.recv().await {
            if ev.status_only {
                continue;
            }
            let r = match &ev.key {
                ObjectKey::Addon(id) => self.on_addon(id).await,
                ObjectKey::Cluster { namespace, name } => {
                    match self.host.get_cluster(namespace, name).await {
                        Ok(c) => {
                            self.on_cluster(namespace, name, c).await;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = r {
                warn!(key = ?ev.key, error = %e, "handling a host change failed");
            }
        }
    }

    async fn initial_list(self: &Arc<Self>) -> Result<(), HostError> {
        for obj in self.host.list_addons().await? {
            let affected = self.fed().upsert_addon(&obj);
            affected.iter().for_each(|c| self.queue.add(c));
        }
        let defaults = self.fed().federate_defaults();
        self.defaults_now(defaults);
        for c in self.host.list_clusters().await? {
            let ns = c.metadata.namespace.clone().unwrap_or_default();
            let name = c.metadata.name.clone().unwrap_or_default();
            self.on_cluster(&ns, &name, Some(c)).await;
        }
        Ok(())
    }

    async fn on_addon(self: &Arc<Self>, id: &AddonId) -> Result<(), HostError> {
        let obj = self.host.get_addon(id).await?;
        let (affected, defaults) = {
            let mut fed = self.fed();
            let affected = match &obj {
                Some(o) => fed.upsert_addon(o),
                None => fed.remove_addon(id),
            };
            (affected, fed.federate_defaults())
        };
        self.defaults_now(defaults);
        debug!(addon = %id, clusters = affected.len(), "addon changed");
        affected.iter().for_each(|c| self.queue.add(c));
        Ok(())
    }

    /// Takes in the catalog's federate defaults; when they moved, every probe relabels.
    fn defaults_now(&self, defaults: BTreeMap<String, bool>) {
        let mut d = lock(&self.defaults);
        if *d != defaults {
            *d = defaults;
            self.relabels.fetch_add(1, Ordering::Relaxed);
            self.relabel.notify_waiters();
        }
    }

    async fn on_cluster(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        cluster: Option<KubeFedCluster>,
    ) {
        let Some(c) = cluster else {
            info!(cluster = name, "detached");
            self.fed().remove_cluster(name);
            lock(&self.members).remove(name);
            if let Some(ts) = lock(&self.cluster_tasks).remove(name) {
                ts.iter().for_each(AbortHandle::abort);
            }
            return;
        };
        let deleting = c.metadata.deletion_timestamp.is_some();
        // Into the state first: the tasks spawned below read it at once.
        let labels = c.metadata.labels.clone().unwrap_or_default();
        if self
            .fed()
            .upsert_cluster(name, namespace, &labels, deleting)
            || deleting
        {
            self.queue.add(name);
        }
        let known = lock(&self.members).contains_key(name);
        if !known {
            let member = match self.connector.connect(&c).await {
                Ok(m) => m,
                Err(e) => {
                    warn!(cluster = name, error = %e, "cannot connect to member");
                    return;
                }
            };
            lock(&self.members).insert(name.to_owned(), member.clone());
            // Subscribe before spawning, so no change between now and the task's first poll
            // is missed.
            let changes = member.changes();
            let probe = tokio::spawn(self.clone().probe_loop(
                namespace.to_owned(),
                name.to_owned(),
                member,
            ));
            let watch = tokio::spawn(self.clone().member_watch(name.to_owned(), changes));
            lock(&self.cluster_tasks).insert(
                name.to_owned(),
                vec![probe.abort_handle(), watch.abort_handle()],
            );
            info!(cluster = name, "attached");
        }
        let has_finalizer = c
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == crate::host::DETACH_FINALIZER);
        if !deleting
            && !has_finalizer
            && let Err(e) = self.host.set_cluster_finalizer(namespace, name, true).await
        {
            warn!(cluster = name, error = %e, "adding the detach finalizer failed");
        }
    }

    async fn member_watch(
        self: Arc<Self>,
        name: String,
        mut rx: tokio::sync::watch::Receiver<u64>,
    ) {
        while rx.changed().await.is_ok() {
            self.queue.add(&name);
        }
    }

    // -----------------------------------------------------------------------------------
    // Probes: health, conditions, facts → labels
    // -----------------------------------------------------------------------------------

    async fn probe_loop(self: Arc<Self>, namespace: String, name: String, member: Arc<C::Member>) {
        // Inline in the loop's own memory: every probe hashes them to write the status, and a
        // heap string would be one more cold cache line a probe period later.
        let (namespace, name) = (CompactString::new(&namespace), CompactString::new(&name));
        let Some(signals) = self.fed().cluster(&name).map(|c| c.signals.clone()) else {
            return;
        };
        let mut p = ProbeState::default();
        // Registered once and kept across probes (10,000 probes joining and leaving one
        // waiter list at every period cost more than the probes' own work on it).
        let mut relabel = std::pin::pin!(self.relabel.notified());
        relabel.as_mut().enable();
        let timeout = self.config.probe_timeout;
        let mut next = Instant::now();
        loop {
            let answer = tokio::select! {
                // The probe first: most wakes are its answer, and then the relabel waiter
                // is not polled at all.
                biased;
                answer = member.healthz_at(next, timeout) => answer,
                () = relabel.as_mut() => {
                    relabel.set(self.relabel.notified());
                    relabel.as_mut().enable();
                    member.healthz(timeout).await
                }
            };
            let span = info_span!("probe", cluster = %name);
            // Boxed: a probe's await points are deep, and the loop spends its life asleep;
            // the sleeping task of each of 100,000 clusters should not carry them.
            let done = Box::pin(
                self.probe_once(&namespace, &name, &*member, &signals, &mut p, answer)
                    .instrument(span),
            )
            .await;
            next = self.next_round(done);
        }
    }

    /// What one probe's `/healthz` answer leads to: health with KubeFed's thresholds, the
    /// facts and labels while Ready, the conditions, and a sync when the health changed.
    /// Returns when it ended (the clock is read as few times as it can: under a simulator's
    /// paused clock every read takes a lock).
    async fn probe_once(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        member: &C::Member,
        signals: &ClusterSignals,
        p: &mut ProbeState,
        answer: Result<String, MemberError>,
    ) -> Instant {
        let verdict = match answer {
            Ok(body) if body.trim().eq_ignore_ascii_case("ok") => Health::Ready,
            Ok(_) => Health::NotReady,
            Err(_) => Health::Offline,
        };
        let counter = match verdict {
            Health::Ready => &self.stats.probes_ok,
            Health::NotReady => &self.stats.probes_not_ok,
            _ => &self.stats.probes_offline,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if verdict == Health::Ready {
            p.successes += 1;
            p.failures = 0;
        } else {
            p.failures += 1;
            p.successes = 0;
        }
        let mut now = Instant::now();
        let current = p.health;
        let next = match verdict {
            Health::Ready
                if current == Health::Unknown || p.successes >= self.config.success_threshold =>
            {
                Health::Ready
            }
            Health::NotReady | Health::Offline
                if current == Health::Unknown || p.failures >= self.config.failure_threshold =>
            {
                verdict
            }
            _ => current,
        };
        if next != Health::Ready {
            p.cache.version_read_at = None;
        }
        if next == Health::Ready {
            let refreshed = self
                .refresh_labels(namespace, name, member, signals, now, &mut p.cache)
                .await;
            if refreshed != Ok(false) {
                // It waited on the member or the host.
                now = Instant::now();
            }
            if let Err(e) = refreshed {
                debug!(error = %e, "reading facts failed");
            }
        }
        let facts = p.cache.facts_unwritten.then_some(&p.cache);
        match self
            .write_conditions(namespace, name, next, facts, now, &mut p.last_conditions)
            .await
        {
            Ok(()) => p.cache.facts_unwritten = false,
            Err(e) => {
                // Read back at the next probe: what the host holds is not known now.
                p.last_conditions = None;
                debug!(error = %e, "writing cluster status failed");
            }
        }
        let changed = next != current;
        if changed {
            self.fed().set_health(name, next, now);
            p.health = next;
            info!(health = ?next, "cluster health changed");
        }
        if changed || signals.deleting() {
            self.queue.add(name);
        }
        now
    }

    /// Reads the facts (nodes once, the version every facts period), derives the labels when the
    /// version or the cluster's labels changed, and writes them if they differ. A write that
    /// loses a resourceVersion race (the manager's own finalizer, a user's label) is retried
    /// at once on the fresh object rather than a probe period later. Says whether it called
    /// the member or the host (time passed).
    async fn refresh_labels(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        member: &C::Member,
        signals: &ClusterSignals,
        now: Instant,
        cache: &mut FactsCache,
    ) -> Result<bool, String> {
        let mut called = false;
        if cache.nodes.is_none() {
            called = true;
            let nodes = member.nodes().await.map_err(|e| e.to_string())?;
            let values = |k: &str| -> Vec<String> {
                let mut v: Vec<String> = nodes.iter().filter_map(|n| n.get(k).cloned()).collect();
                v.sort();
                v.dedup();
                v
            };
            cache.region = values("topology.kubernetes.io/region").into_iter().next();
            cache.zones = values("topology.kubernetes.io/zone");
            cache.facts_unwritten = true;
            // From here on only the cluster type reads the nodes, and only which type-rule
            // keys some node carries: keep that (one small map), not every node's labels.
            let mut rule_keys = BTreeMap::new();
            for rule in &self.config.policy.type_rules {
                if let Some(v) = nodes.iter().find_map(|n| n.get(&rule.node_label)) {
                    rule_keys.insert(rule.node_label.clone(), v.clone());
                }
            }
            cache.nodes = Some(vec![rule_keys]);
        }
        let period = self.config.facts_period;
        if cache
            .version_read_at
            .is_none_or(|at| now.saturating_duration_since(at) >= period)
        {
            called = true;
            let v = member.version().await.map_err(|e| e.to_string())?;
            if cache.version.as_ref() != Some(&v) {
                cache.version = Some(v);
                cache.version_epoch += 1;
            }
            cache.version_read_at = Some(Instant::now());
        }
        let Some(git_version) = &cache.version else {
            return Ok(called);
        };
        let generation = signals.labels_generation();
        // Read before the defaults are: a change after this is seen at the next probe.
        let relabels = self.relabels.load(Ordering::Relaxed);
        let wanted = (cache.version_epoch, generation, relabels);
        if cache.derived_for == Some(wanted) {
            return Ok(called);
        }
        let Some(labels) = self.fed().cluster(name).map(|c| c.labels.to_map()) else {
            return Ok(called);
        };
        called = true;
        let nodes = cache.nodes.as_deref().unwrap_or_default();
        let facts = ClusterFacts {
            namespace,
            name,
            node_labels: nodes,
            git_version,
            uid: None,
            workspace: None,
        };
        let defaults = self.fed().federate_defaults();
        let derived = derive_labels(&facts, &labels, &self.config.policy, &defaults)
            .map_err(|e| e.to_string())?;
        if derived.labels != labels {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match self.write_labels(&facts).await {
                    Err(HostError::Conflict) if attempts < 5 => continue,
                    Err(e) => return Err(e.to_string()),
                    Ok(()) => break,
                }
            }
        } else if let Some(conflict) = &derived.type_conflict {
            self.warn_type_conflict(namespace, name, &conflict.detected, &conflict.kept)
                .await;
        }
        // The generation as it stands: our own write moves it once the host's watch brings
        // it in, and the next probe derives again and finds nothing to write.
        cache.derived_for = Some((cache.version_epoch, signals.labels_generation(), relabels));
        Ok(called)
    }

    async fn write_labels(self: &Arc<Self>, facts: &ClusterFacts<'_>) -> Result<(), HostError> {
        let (namespace, name) = (facts.namespace, facts.name);
        let cluster = self
            .host
            .get_cluster(namespace, name)
            .await?
            .ok_or(HostError::NotFound)?;
        let current = cluster.metadata.labels.clone().unwrap_or_default();
        let defaults = self.fed().federate_defaults();
        let derived = derive_labels(facts, &current, &self.config.policy, &defaults)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        if let Some(conflict) = &derived.type_conflict {
            self.warn_type_conflict(namespace, name, &conflict.detected, &conflict.kept)
                .await;
        }
        if derived.labels == current {
            return Ok(());
        }
        let rv = cluster
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        self.host
            .update_cluster_labels(namespace, name, derived.labels.clone(), &rv)
            .await?;
        // The host will tell us too; take the labels now so that the first sync after a
        // cluster turns Ready already sees them.
        let deleting = cluster.metadata.deletion_timestamp.is_some();
        if self
            .fed()
            .upsert_cluster(name, namespace, &derived.labels, deleting)
        {
            self.queue.add(name);
        }
        Ok(())
    }

    /// Reports, once per cluster, nodes that disagree with the recorded cluster type.
    async fn warn_type_conflict(&self, namespace: &str, name: &str, detected: &str, kept: &str) {
        if !lock(&self.type_warned).insert(name.to_owned()) {
            return;
        }
        let message = format!(
            "nodes now say cluster-type {detected}, but the cluster keeps {kept} (it never changes once set)"
        );
        warn!(cluster = name, %message);
        let regarding = ObjectKey::Cluster {
            namespace: namespace.into(),
            name: name.into(),
        };
        let event = EventRecord {
            regarding,
            warning: true,
            reason: "ClusterTypeChangeRejected".into(),
            message,
        };
        let _ = self.host.record_event(event).await;
    }

    /// Writes the Ready/Offline conditions; lastTransitionTime moves only when a status
    /// changes. `last` is what this task last wrote of them; it is read from the host when
    /// this task has not written them yet (after a restart, the old conditions keep their
    /// transition times).
    async fn write_conditions(
        &self,
        namespace: &str,
        name: &str,
        health: Health,
        facts: Option<&FactsCache>,
        now: Instant,
        last: &mut Option<Written>,
    ) -> Result<(), HostError> {
        type Wanted = (
            ClusterConditionType,
            ConditionStatus,
            &'static str,
            &'static str,
        );
        let wanted: &[Wanted] = match health {
            Health::Ready => &[(
                ClusterConditionType::Ready,
                ConditionStatus::True,
                "ClusterReady",
                READY_MESSAGE,
            )],
            Health::NotReady => &[
                (
                    ClusterConditionType::Ready,
                    ConditionStatus::False,
                    "ClusterNotReady",
                    NOT_READY_MESSAGE,
                ),
                (
                    ClusterConditionType::Offline,
                    ConditionStatus::False,
                    "ClusterReachable",
                    "cluster is reachable",
                ),
            ],
            Health::Offline => &[(
                ClusterConditionType::Offline,
                ConditionStatus::True,
                "ClusterNotReachable",
                OFFLINE_MESSAGE,
            )],
            Health::Unknown => return Ok(()),
        };
        if last.is_none() {
            match self.host.get_cluster(namespace, name).await? {
                Some(c) => {
                    let conditions = c.status.unwrap_or_default().conditions;
                    *last = Some(
                        conditions
                            .into_iter()
                            .map(|c| (c.type_, c.status, c.last_transition_time))
                            .collect(),
                    );
                }
                None => return Ok(()),
            }
        }
        let Some(written) = last.as_mut() else {
            return Ok(());
        };
        let now = self.time_at(now);
        // The conditions health asks for, in order; each keeps the transition time of the
        // old one of its type while its status stays.
        let next: Written = wanted
            .iter()
            .map(|&(type_, status, _, _)| {
                let since = match written.iter().find(|w| w.0 == type_) {
                    Some((_, old, Some(t))) if *old == status => t.clone(),
                    _ => now.clone(),
                };
                (type_, status, Some(since))
            })
            .collect();
        let conditions = wanted
            .iter()
            .zip(&next)
            .map(|(&(type_, status, reason, message), w)| ClusterCondition {
                type_,
                status,
                last_probe_time: now.clone(),
                last_transition_time: w.2.clone(),
                reason: Some(Cow::Borrowed(reason)),
                message: Some(Cow::Borrowed(message)),
            })
            .collect();
        *written = next;
        // The node facts only when they were read anew (the write is a merge patch): a
        // probe of a steady cluster sends its conditions and nothing else.
        let status = KubeFedClusterStatus {
            conditions,
            zones: facts.map(|f| f.zones.clone()).unwrap_or_default(),
            region: facts.and_then(|f| f.region.clone()),
        };
        self.host
            .update_cluster_status(namespace, name, &status)
            .await
    }

    // -----------------------------------------------------------------------------------
    // Sync: make the member hold exactly what is placed
    // -----------------------------------------------------------------------------------

    async fn sync_worker(self: Arc<Self>) {
        loop {
            let name = self.queue.next().await;
            let span = info_span!("sync", cluster = %name);
            let result = self.sync_cluster(&name).instrument(span).await;
            self.queue.done(&name);
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(()) => {
                    lock(&self.retries).remove(&name);
                }
                Err(e) => {
                    debug!(cluster = %name, error = %e, "sync failed; retrying with backoff");
                    self.retry_later(&name).await;
                }
            }
        }
    }

    async fn sync_cluster(self: &Arc<Self>, name: &str) -> Result<(), String> {
        let Some(plan) = self.fed().plan(name) else {
            return Ok(());
        };
        let Some(member) = lock(&self.members).get(name).cloned() else {
            return Ok(());
        };
        let mut pairs: BTreeMap<AddonId, PairState> = BTreeMap::new();
        let previous = self
            .fed()
            .cluster(name)
            .map(|c| c.pairs.clone())
            .unwrap_or_default();

        if !plan.writable {
            if plan.deleting {
                return self.detach_unreachable(name).await;
            }
            // No writes to a cluster that is not Ready; it is caught up when it returns.
            for d in &plan.desired {
                let mut p = previous.get(&d.id).cloned().unwrap_or_default();
                p.reason = Some("ClusterNotReady".into());
                pairs.insert(d.id.clone(), p);
            }
            self.fed().record(name, pairs);
            return Ok(());
        }

        let actual = member.list_addons().await.map_err(|e| e.to_string())?;
        let actual: BTreeMap<&AddonId, _> = actual.iter().map(|a| (&a.id, a)).collect();
        let mut failed = Vec::new();
        let observed = |a: &flotilla_agent::member::MemberAddon| PairState {
            reason: None,
            ready: a.status.ready,
            stage: a.status.stage,
            revision: a.status.revision.clone(),
            message: a.status.message.clone(),
        };
        for d in &plan.desired {
            let state = match actual.get(&d.id) {
                Some(a) if a.deleting => PairState {
                    reason: Some("WaitingForRemoval".into()),
                    ..observed(a)
                },
                Some(a)
                    if (Arc::ptr_eq(&a.spec, &d.spec) || a.spec == d.spec)
                        && a.labels == d.labels
                        && a.annotations == d.annotations =>
                {
                    observed(a)
                }
                existing => match member.apply_addon(d).await {
                    Ok(()) => existing.map_or_else(PairState::default, |a| observed(a)),
                    Err(e) => {
                        failed.push(e.to_string());
                        let reason = if existing.is_some() {
                            "UpdateFailed"
                        } else {
                            "CreationFailed"
                        };
                        PairState {
                            reason: Some(reason.into()),
                            message: Some(e.to_string()),
                            ..Default::default()
                        }
                    }
                },
            };
            pairs.insert(d.id.clone(), state);
        }
        for (id, err) in &plan.render_errors {
            let p = PairState {
                reason: Some("ApplyOverridesFailed".into()),
                message: Some(err.to_string()),
                ..Default::default()
            };
            pairs.insert(id.clone(), p);
        }
        let mut managed_left = 0usize;
        for (id, a) in &actual {
            if a.labels.get(MANAGED_LABEL).map(String::as_str) != Some("true")
                || pairs.contains_key(*id)
            {
                continue;
            }
            managed_left += 1;
            if a.deleting {
                continue;
            }
            match member.delete_addon(id).await {
                Ok(()) | Err(MemberError::NotFound) => {}
                Err(e) => {
                    failed.push(e.to_string());
                    let p = PairState {
                        reason: Some("DeletionFailed".into()),
                        message: Some(e.to_string()),
                        ..Default::default()
                    };
                    pairs.insert((*id).clone(), p);
                }
            }
        }
        self.fed().record(name, pairs);

        if plan.deleting && managed_left == 0 {
            let ns = self
                .fed()
                .cluster(name)
                .map(|c| c.namespace.clone())
                .unwrap_or_default();
            info!(
                cluster = name,
                "member cleaned up; releasing the KubeFedCluster"
            );
            self.host
                .set_cluster_finalizer(&ns, name, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// A cluster being detached that cannot be reached: wait up to the detach timeout, then
    /// let it go, saying what was left behind.
    async fn detach_unreachable(self: &Arc<Self>, name: &str) -> Result<(), String> {
        let (ns, since, left): (String, Option<Instant>, Vec<String>) = {
            let fed = self.fed();
            let Some(c) = fed.cluster(name) else {
                return Ok(());
            };
            (
                c.namespace.clone(),
                c.unhealthy_since,
                c.pairs.keys().map(ToString::to_string).collect(),
            )
        };
        let overdue = since.is_some_and(|s| s.elapsed() >= self.config.detach_timeout);
        if !overdue {
            return Ok(());
        }
        let message = format!(
            "cluster {name} was unreachable for more than {:?} while being detached; detached anyway, leaving behind {} addon(s): {}",
            self.config.detach_timeout,
            left.len(),
            if left.is_empty() {
                "none known".to_string()
            } else {
                left.join(", ")
            }
        );
        warn!(cluster = name, %message);
        let regarding = ObjectKey::Cluster {
            namespace: ns.clone(),
            name: name.into(),
        };
        let event = EventRecord {
            regarding,
            warning: true,
            reason: "DetachedWhileUnreachable".into(),
            message,
        };
        self.host
            .record_event(event)
            .await
            .map_err(|e| e.to_string())?;
        self.host
            .set_cluster_finalizer(&ns, name, false)
            .await
            .map_err(|e| e.to_string())
    }

    // -----------------------------------------------------------------------------------
    // Federated* status
    // -----------------------------------------------------------------------------------

    async fn status_writer(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.config.status_interval).await;
            let dirty = self.fed().take_dirty();
            for id in dirty {
                let Some(status) = self.fed().addon_status(&id) else {
                    continue;
                };
                let current = match self.host.get_addon(&id).await {
                    Ok(Some(o)) => o.status().cloned(),
                    Ok(None) => continue,
                    Err(_) => None,
                };
                if current.as_ref() == Some(&status) {
                    continue;
                }
                if let Err(e) = self.host.update_addon_status(&id, status).await {
                    debug!(addon = %id, error = %e, "writing addon status failed");
                }
            }
        }
    }
}
