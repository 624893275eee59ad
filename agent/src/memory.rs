//! A simulated member cluster, in memory: the embedded default, and the simulator's fake
//! clusters.
//!
//! It behaves like an API server where it matters to the reconcilers: generations move only
//! on spec changes, deletion waits for finalizers, status is a separate write, and every
//! change ticks a watch. Faults are injected per call (latency with jitter, 500 / 429 / 409
//! at configured rates, the whole member unreachable or unhealthy). Readiness of applied
//! manifests comes from a stage model in the spirit of KWOK: per kind, a delay with jitter
//! and a failure share, drawn from the member's own seeded RNG so runs replay exactly.
//!
//! Writes are counted per actor (manager vs agent) for the simulator's report.
//!
//! A simulator holds 100,000 of these in one process, so each is kept small: node labels
//! are interned in one table all members share, the behavior is shared, and the RNG is a
//! small one (jitter and fault draws need no cryptographic strength).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use flotilla_core::catalog::AddonId;
use flotilla_core::label_set::{Interner, LabelSet};
use flotilla_core::render::DesiredAddon;
use flotilla_core::types::{AddonStatus, with_finalizer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::member::{
    AddonList, MemberAddon, MemberCluster, MemberError, Readiness, UNINSTALL_FINALIZER,
    manifest_identity, manifest_key,
};

/// How long an applied object of one kind takes to become ready, and how often it fails.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// Mean delay before ready (or failed).
    pub delay: Duration,
    /// Uniform jitter added on top: `[0, jitter)`.
    pub jitter: Duration,
    /// Share of applies that fail (0.0 to 1.0).
    pub fail_share: f64,
}

impl Stage {
    /// Ready at once, never failing.
    pub const INSTANT: Stage = Stage {
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        fail_share: 0.0,
    };
}

/// How a simulated member behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    /// Latency of every API call.
    pub latency: Duration,
    /// Uniform jitter on latency.
    pub latency_jitter: Duration,
    /// Share of calls answered 500.
    pub error_rate: f64,
    /// Share of calls answered 429.
    pub throttle_rate: f64,
    /// Share of writes answered 409.
    pub conflict_rate: f64,
    /// Stage per manifest kind; kinds not listed use `default_stage`.
    pub stages: BTreeMap<String, Stage>,
    /// Stage of kinds not listed.
    pub default_stage: Stage,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            conflict_rate: 0.0,
            stages: BTreeMap::new(),
            default_stage: Stage::INSTANT,
        }
    }
}

/// Calls made to a member: writes by who made them, reads, and injected faults.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// Reads (`/healthz`, `/version`, nodes, lists, readiness) by anyone.
    pub reads: AtomicU64,
    /// Addon creates and updates by the manager.
    pub manager_applies: AtomicU64,
    /// Addon deletions by the manager.
    pub manager_deletes: AtomicU64,
    /// Status writes by the agent.
    pub agent_status: AtomicU64,
    /// Finalizer writes by the agent.
    pub agent_finalizers: AtomicU64,
    /// Manifest applies and deletions by the agent.
    pub agent_manifests: AtomicU64,
    /// Calls answered with an injected error (500, 429, 409).
    pub faults_injected: AtomicU64,
}

impl CallCounts {
    /// Writes the manager made.
    pub fn manager(&self) -> u64 {
        self.manager_applies.load(Ordering::Relaxed) + self.manager_deletes.load(Ordering::Relaxed)
    }

    /// Writes the agent made.
    pub fn agent(&self) -> u64 {
        self.agent_status.load(Ordering::Relaxed)
            + self.agent_finalizers.load(Ordering::Relaxed)
            + self.agent_manifests.load(Ordering::Relaxed)
    }
}

/// An applied manifest, as the member remembers it: hashes of its owner, identity
/// (`manifest_key`) and content, and when it settles. A fleet of simulated members holds
/// millions of these, so they are small and kept in a plain list per member.
#[derive(Debug)]
struct Manifest {
    owner: u64,
    key: u64,
    content: u64,
    settles_at: Instant,
    fails: bool,
}

/// The finalizer list nearly every Addon holds, shared by all of them.
static ONLY_UNINSTALL: LazyLock<Arc<[String]>> =
    LazyLock::new(|| Arc::new([UNINSTALL_FINALIZER.to_owned()]));

/// The strings of every simulated member's node labels (`kubernetes.io/os`, zone and
/// instance-type values are the same across a fleet).
static NODE_STRINGS: LazyLock<Mutex<Interner>> = LazyLock::new(Mutex::default);

fn intern_nodes(nodes: &[BTreeMap<String, String>]) -> Box<[LabelSet]> {
    let mut strings = NODE_STRINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    nodes
        .iter()
        .map(|n| LabelSet::new(n, &mut strings))
        .collect()
}

#[derive(Debug)]
struct Inner {
    git_version: String,
    nodes: Box<[LabelSet]>,
    behavior: Arc<Behavior>,
    rng: SmallRng,
    /// Handed out whole by `list_addons`; copied on write while a reader holds it.
    addons: AddonList,
    manifests: Vec<Manifest>,
    timing: Timing,
}

impl Inner {
    fn position(&self, id: &AddonId) -> Result<usize, usize> {
        self.addons.binary_search_by(|a| a.id.cmp(id))
    }

    fn addon_mut(&mut self, id: &AddonId) -> Option<&mut MemberAddon> {
        let i = self.position(id).ok()?;
        Some(&mut Arc::make_mut(&mut self.addons)[i])
    }

    fn remove_addon(&mut self, id: &AddonId) {
        if let Ok(i) = self.position(id) {
            Arc::make_mut(&mut self.addons).remove(i);
        }
    }
}

/// When objects were applied and became ready, for latency figures.
#[derive(Debug, Default)]
struct Timing {
    by_addon: BTreeMap<AddonId, AddonTiming>,
    /// Applied → deployed and ready, once per generation.
    latencies: Vec<Duration>,
}

#[derive(Debug, Default)]
struct AddonTiming {
    /// When the addon's current generation was written, until it is ready.
    applied_at: Option<Instant>,
    /// When the addon first became deployed and ready (any generation).
    first_ready: Option<Instant>,
}

impl Timing {
    fn applied(&mut self, id: &AddonId) {
        self.by_addon.entry(id.clone()).or_default().applied_at = Some(Instant::now());
    }

    fn ready(&mut self, id: &AddonId) {
        let now = Instant::now();
        let t = self.by_addon.entry(id.clone()).or_default();
        if let Some(at) = t.applied_at.take() {
            self.latencies.push(now - at);
        }
        t.first_ready.get_or_insert(now);
    }
}

/// Names of members whose addons changed, each once between two reads, for a reader that
/// checks a large fleet now and then: it reads the members named here instead of asking
/// every member whether it moved.
#[derive(Debug, Default)]
pub struct ChangeLog {
    names: Mutex<Vec<String>>,
    /// Moves at every read; a member logs itself once per round.
    round: AtomicU64,
}

impl ChangeLog {
    /// The names logged since the last call.
    pub fn take(&self) -> Vec<String> {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.round.fetch_add(1, Ordering::AcqRel);
        std::mem::take(&mut *names)
    }

    /// Logs `name` unless it is logged in this round already (`last` is the member's own
    /// record of the round it last logged in, one past it: 0 is never).
    fn push(&self, name: &str, last: &AtomicU64) {
        let round = self.round.load(Ordering::Acquire) + 1;
        if last.swap(round, Ordering::AcqRel) != round {
            self.names
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(name.to_owned());
        }
    }
}

/// What a probe of the member reads, apart from the lock: a day of 10,000 members is
/// 14 million probes, and each would otherwise reach the lock's cache line and the
/// counters' one, both cold after a probe period.
#[derive(Debug)]
struct ProbeView {
    /// `/healthz`'s latency (the behavior's, without jitter), in nanoseconds.
    latency_nanos: AtomicU64,
    reachable: AtomicBool,
    healthy: AtomicBool,
}

impl ProbeView {
    fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A simulated member cluster.
#[derive(Debug)]
// In this order: what a probe reads first, then the counter it moves, in one cache line.
#[repr(C)]
pub struct MemoryMember {
    probe: ProbeView,
    /// Calls made to this member, for the report.
    pub calls: CallCounts,
    name: String,
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
    log: OnceLock<Arc<ChangeLog>>,
    /// The log's round this member last logged itself in (see [`ChangeLog`]).
    logged_round: AtomicU64,
}

impl MemoryMember {
    /// A healthy, reachable member.
    pub fn new(
        name: impl Into<String>,
        git_version: impl Into<String>,
        nodes: Vec<BTreeMap<String, String>>,
        behavior: impl Into<Arc<Behavior>>,
        seed: u64,
    ) -> Arc<Self> {
        let behavior: Arc<Behavior> = behavior.into();
        Arc::new(Self {
            probe: ProbeView {
                latency_nanos: AtomicU64::new(nanos(behavior.latency)),
                reachable: AtomicBool::new(true),
                healthy: AtomicBool::new(true),
            },
            calls: CallCounts::default(),
            name: name.into(),
            inner: Mutex::new(Inner {
                git_version: git_version.into(),
                nodes: intern_nodes(&nodes),
                behavior,
                rng: SmallRng::seed_from_u64(seed),
                addons: AddonList::default(),
                manifests: Vec::new(),
                timing: Timing::default(),
            }),
            changes: watch::channel(0).0,
            log: OnceLock::new(),
            logged_round: AtomicU64::new(0),
        })
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug in this file; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tick(&self) {
        self.changes.send_modify(|n| *n += 1);
        if let Some(log) = self.log.get() {
            log.push(&self.name, &self.logged_round);
        }
    }

    /// Logs every later change of its addons in `log` (once: a second log is ignored).
    pub fn log_changes_to(&self, log: Arc<ChangeLog>) {
        let _ = self.log.set(log);
    }

    /// Cuts the member off (a partition) or brings it back.
    pub fn set_reachable(&self, reachable: bool) {
        self.probe.reachable.store(reachable, Ordering::Relaxed);
    }

    /// Makes `/healthz` answer something other than "ok" (or "ok" again).
    pub fn set_healthy(&self, healthy: bool) {
        self.probe.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Upgrades (or downgrades) the member's Kubernetes.
    pub fn set_version(&self, git_version: impl Into<String>) {
        self.lock().git_version = git_version.into();
    }

    /// Replaces the node list.
    pub fn set_nodes(&self, nodes: Vec<BTreeMap<String, String>>) {
        let nodes = intern_nodes(&nodes);
        self.lock().nodes = nodes;
    }

    /// Replaces the fault and stage behavior.
    pub fn set_behavior(&self, behavior: impl Into<Arc<Behavior>>) {
        let behavior: Arc<Behavior> = behavior.into();
        let latency = nanos(behavior.latency);
        self.lock().behavior = behavior;
        self.probe.latency_nanos.store(latency, Ordering::Relaxed);
    }

    /// A copy of every addon object (for invariants and reports; not an API call).
    pub fn snapshot(&self) -> Vec<MemberAddon> {
        self.lock().addons.to_vec()
    }

    /// The member's `gitVersion` now (not an API call).
    pub fn version_now(&self) -> String {
        self.lock().git_version.clone()
    }

    /// Takes the applied → ready latencies recorded so far.
    pub fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut self.lock().timing.latencies)
    }

    /// When each addon first became deployed and ready.
    pub fn first_ready(&self) -> BTreeMap<AddonId, Instant> {
        let g = self.lock();
        g.timing
            .by_addon
            .iter()
            .filter_map(|(id, t)| Some((id.clone(), t.first_ready?)))
            .collect()
    }

    /// Calls `f` with every addon object, without copying them (not an API call).
    pub fn with_addons<R>(&self, f: impl FnOnce(&[MemberAddon]) -> R) -> R {
        f(&self.lock().addons)
    }

    /// The member's node labels now (not an API call).
    pub fn nodes_now(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().nodes.iter().map(LabelSet::to_map).collect()
    }

    /// How many manifests are applied in the member (not an API call).
    pub fn manifest_count(&self) -> usize {
        self.lock().manifests.len()
    }

    /// Latency, reachability and injected errors for one call; `write` adds conflicts.
    async fn call(&self, write: bool) -> Result<(), MemberError> {
        if !write {
            self.calls.reads.fetch_add(1, Ordering::Relaxed);
        }
        let reachable = self.probe.reachable();
        let (delay, fault) = {
            let mut guard = self.lock();
            let g = &mut *guard;
            (latency(g), injected_fault(&g.behavior, &mut g.rng, write))
        };
        self.answer(delay, reachable).await?;
        self.counted(fault).map_or(Ok(()), Err)
    }

    /// Reads that go out together, `groups[i]` of them for caller `i`: one latency, each
    /// read drawing its own fault, the first one found failing its caller's group.
    async fn reads_at_once(&self, groups: &[usize]) -> Vec<Result<(), MemberError>> {
        let requests: usize = groups.iter().sum();
        self.calls
            .reads
            .fetch_add(requests as u64, Ordering::Relaxed);
        let reachable = self.probe.reachable();
        let (delay, faults) = {
            let mut guard = self.lock();
            let g = &mut *guard;
            let delay = latency(g);
            let b = &*g.behavior;
            let faults: Vec<Option<MemberError>> = groups
                .iter()
                .map(|&n| (0..n).find_map(|_| injected_fault(b, &mut g.rng, false)))
                .collect();
            (delay, faults)
        };
        if let Err(e) = self.answer(delay, reachable).await {
            return groups.iter().map(|_| Err(e.clone())).collect();
        }
        faults
            .into_iter()
            .map(|f| self.counted(f).map_or(Ok(()), Err))
            .collect()
    }

    /// Waits out a round trip's latency; a member cut off answers nothing.
    async fn answer(&self, delay: Duration, reachable: bool) -> Result<(), MemberError> {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if reachable {
            Ok(())
        } else {
            Err(MemberError::Unreachable(format!(
                "{}: connection refused",
                self.name
            )))
        }
    }

    /// Counts an injected fault in the report.
    fn counted(&self, fault: Option<MemberError>) -> Option<MemberError> {
        if fault.is_some() {
            self.calls.faults_injected.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }
}

impl MemberCluster for MemoryMember {
    async fn healthz(&self, timeout: Duration) -> Result<String, MemberError> {
        self.healthz_at(Instant::now(), timeout).await
    }

    /// One wait for both the schedule and the latency, the latency being the member's when
    /// the probe is scheduled; the answer is the member's state when it leaves.
    async fn healthz_at(&self, at: Instant, timeout: Duration) -> Result<String, MemberError> {
        let delay = self.probe.latency();
        tokio::time::sleep_until(at + delay.min(timeout)).await;
        self.calls.reads.fetch_add(1, Ordering::Relaxed);
        if delay > timeout {
            return Err(MemberError::Timeout(timeout));
        }
        let (reachable, healthy) = (self.probe.reachable(), self.probe.healthy());
        if !reachable {
            return Err(MemberError::Unreachable(format!(
                "{}: connection refused",
                self.name
            )));
        }
        Ok(health_body(healthy))
    }

    async fn version(&self) -> Result<String, MemberError> {
        self.call(false).await?;
        Ok(self.lock().git_version.clone())
    }

    async fn nodes(&self) -> Result<Vec<BTreeMap<String, String>>, MemberError> {
        self.call(false).await?;
        Ok(self.nodes_now())
    }

    async fn list_addons(&self) -> Result<AddonList, MemberError> {
        self.call(false).await?;
        Ok(self.lock().addons.clone())
    }

    async fn apply_addon(&self, desired: &DesiredAddon) -> Result<(), MemberError> {
        self.call(true).await?;
        let mut guard = self.lock();
        let g = &mut *guard;
        match g.position(&desired.id) {
            Ok(i) => {
                if g.addons[i].deleting {
                    return Err(MemberError::Api {
                        code: 409,
                        message: "object is being deleted".into(),
                    });
                }
                let a = &mut Arc::make_mut(&mut g.addons)[i];
                if a.spec != desired.spec {
                    a.generation += 1;
                    a.spec = desired.spec.clone();
                    g.timing.applied(&desired.id);
                }
                a.labels = desired.labels.clone();
                a.annotations = desired.annotations.clone();
            }
            Err(i) => {
                g.timing.applied(&desired.id);
                Arc::make_mut(&mut g.addons).insert(
                    i,
                    MemberAddon {
                        id: desired.id.clone(),
                        generation: 1,
                        labels: desired.labels.clone(),
                        annotations: desired.annotations.clone(),
                        spec: desired.spec.clone(),
                        status: AddonStatus::default(),
                        finalizers: Arc::new([]),
                        deleting: false,
                    },
                );
            }
        }
        drop(guard);
        self.calls.manager_applies.fetch_add(1, Ordering::Relaxed);
        self.tick();
        Ok(())
    }

    async fn delete_addon(&self, id: &AddonId) -> Result<(), MemberError> {
        self.call(true).await?;
        let mut g = self.lock();
        let Some(a) = g.addon_mut(id) else {
            return Err(MemberError::NotFound);
        };
        if a.finalizers.is_empty() {
            g.remove_addon(id);
        } else {
            a.deleting = true;
        }
        drop(g);
        self.calls.manager_deletes.fetch_add(1, Ordering::Relaxed);
        self.tick();
        Ok(())
    }

    async fn set_finalizer(&self, id: &AddonId, present: bool) -> Result<(), MemberError> {
        self.call(true).await?;
        let mut g = self.lock();
        let Some(a) = g.addon_mut(id) else {
            return Err(MemberError::NotFound);
        };
        let next = with_finalizer(&a.finalizers, UNINSTALL_FINALIZER, present);
        a.finalizers = if next[..] == ONLY_UNINSTALL[..] {
            ONLY_UNINSTALL.clone()
        } else {
            next.into()
        };
        if a.deleting && a.finalizers.is_empty() {
            g.remove_addon(id);
        }
        drop(g);
        self.calls.agent_finalizers.fetch_add(1, Ordering::Relaxed);
        self.tick();
        Ok(())
    }

    async fn update_status(&self, id: &AddonId, status: &AddonStatus) -> Result<(), MemberError> {
        self.call(true).await?;
        let mut g = self.lock();
        let Some(a) = g.addon_mut(id) else {
            return Err(MemberError::NotFound);
        };
        let was_ready = a.status.ready && a.status.observed_generation == Some(a.generation);
        let now_ready = status.ready && status.observed_generation == Some(a.generation);
        a.status = status.clone();
        if now_ready && !was_ready {
            g.timing.ready(id);
        }
        drop(g);
        self.calls.agent_status.fetch_add(1, Ordering::Relaxed);
        self.tick();
        Ok(())
    }

    async fn apply_manifest(&self, owner: &AddonId, manifest: &Value) -> Result<(), MemberError> {
        self.call(true).await?;
        let (owner, key) = (id_hash(owner), key_hash(manifest));
        let content = content_hash(manifest);
        let mut g = self.lock();
        let at = g
            .manifests
            .iter()
            .position(|m| m.owner == owner && m.key == key);
        let unchanged =
            at.is_some_and(|i| g.manifests[i].content == content && !g.manifests[i].fails);
        if !unchanged {
            let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or("");
            let stage = g
                .behavior
                .stages
                .get(kind)
                .copied()
                .unwrap_or(g.behavior.default_stage);
            let jitter = if stage.jitter.is_zero() {
                Duration::ZERO
            } else {
                stage.jitter.mul_f64(g.rng.random::<f64>())
            };
            let fails = stage.fail_share > 0.0 && g.rng.random_bool(stage.fail_share.min(1.0));
            let m = Manifest {
                owner,
                key,
                content,
                settles_at: Instant::now() + stage.delay + jitter,
                fails,
            };
            match at {
                Some(i) => g.manifests[i] = m,
                None => g.manifests.push(m),
            }
        }
        drop(g);
        self.calls.agent_manifests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn delete_manifests(&self, owner: &AddonId) -> Result<(), MemberError> {
        self.call(true).await?;
        let mut g = self.lock();
        let before = g.manifests.len();
        let owner = id_hash(owner);
        g.manifests.retain(|m| m.owner != owner);
        let removed = (before - g.manifests.len()) as u64;
        drop(g);
        self.calls
            .agent_manifests
            .fetch_add(removed, Ordering::Relaxed);
        Ok(())
    }

    async fn readiness(
        &self,
        addons: &[(&AddonId, &[Value])],
    ) -> Vec<Result<Vec<Readiness>, MemberError>> {
        let groups: Vec<usize> = addons.iter().map(|(_, m)| m.len()).collect();
        if groups.iter().all(|&n| n == 0) {
            return addons.iter().map(|_| Ok(Vec::new())).collect();
        }
        let answers = self.reads_at_once(&groups).await;
        let now = Instant::now();
        let g = self.lock();
        let one = |owner: u64, manifest: &Value| {
            let key = key_hash(manifest);
            let Some(m) = g
                .manifests
                .iter()
                .find(|m| m.owner == owner && m.key == key)
            else {
                return Readiness::Pending { retry_after: None };
            };
            if now < m.settles_at {
                Readiness::Pending {
                    retry_after: Some(m.settles_at - now),
                }
            } else if m.fails {
                Readiness::Failed(format!(
                    "{} failed to become ready (simulated failure)",
                    manifest_key(manifest)
                ))
            } else {
                Readiness::Ready
            }
        };
        addons
            .iter()
            .zip(answers)
            .map(|((owner, manifests), answer)| {
                answer?;
                let owner = id_hash(owner);
                Ok(manifests.iter().map(|m| one(owner, m)).collect())
            })
            .collect()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// What `/healthz` says: "ok", or what a failing API server prints.
fn health_body(healthy: bool) -> String {
    if healthy {
        "ok".into()
    } else {
        "[-]etcd failed: reason withheld".into()
    }
}

/// One round trip's latency: the behavior's, plus its jitter drawn from the member's RNG.
fn latency(g: &mut Inner) -> Duration {
    let b = &*g.behavior;
    if b.latency_jitter.is_zero() {
        b.latency
    } else {
        b.latency + b.latency_jitter.mul_f64(g.rng.random::<f64>())
    }
}

/// The error `b` injects into one request, if any (conflicts only into writes).
fn injected_fault(b: &Behavior, rng: &mut SmallRng, write: bool) -> Option<MemberError> {
    let api = |code, message: &str| {
        Some(MemberError::Api {
            code,
            message: message.into(),
        })
    };
    if b.error_rate > 0.0 && rng.random_bool(b.error_rate.min(1.0)) {
        api(500, "injected internal error")
    } else if b.throttle_rate > 0.0 && rng.random_bool(b.throttle_rate.min(1.0)) {
        api(429, "injected throttling")
    } else if write && b.conflict_rate > 0.0 && rng.random_bool(b.conflict_rate.min(1.0)) {
        api(409, "injected conflict")
    } else {
        None
    }
}

/// A stable hash of a manifest's content (the member remembers this, not the content).
fn content_hash(v: &Value) -> u64 {
    hash(&v.to_string())
}

/// A hash of a manifest's identity (what `manifest_key` spells out), the same in every run.
fn key_hash(m: &Value) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(manifest_identity(m))
}

/// A hash of an addon's identity, the same in every run (Fx, like the key above: both are
/// computed for every manifest of every readiness read).
fn id_hash(id: &AddonId) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// A hash that is the same in every run (`DefaultHasher::new` has fixed keys).
fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
