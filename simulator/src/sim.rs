//! The simulation: a scenario's fleet driven through the real manager and agents, its
//! timeline of churn and faults played out, invariants checked while running and at the
//! end, and a report.
//!
//! Time comes from tokio: on a paused clock (`--virtual-time`, current-thread runtime) every
//! simulated delay is free and a seed replays a run byte for byte; on a real clock
//! (multi-threaded runtime) the same code measures throughput. Every figure that depends on
//! the machine goes under the report's `wall` key.
//!
//! Invariants:
//! 1. an addon is never created on a cluster whose type excludes it (immutable: flagged at
//!    once), nor left on a cluster its placement excludes beyond a grace period;
//! 2. after convergence the addons on each cluster are exactly its placement, each holding
//!    the current template and settled (the world's oracle);
//! 3. member and hub statuses agree;
//! 4. once every fault has healed, the fleet converges within the deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flotilla_agent::member::find_addon;
use flotilla_agent::memory::Behavior;
use flotilla_agent::reconcile::AgentConfig;
use flotilla_core::catalog::{AddonId, Catalog, CatalogAddon, CatalogObject};
use flotilla_core::fleet::{Fleet, FleetCluster};
use flotilla_core::labels::CLUSTER_TYPE;
use flotilla_core::placement::PlacementIndex;
use flotilla_core::selector::Labels;
use flotilla_core::types::{MANAGED_LABEL, REVISION_ANNOTATION};
use flotilla_manager::manager::ManagerConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use crate::scenario::{Action, Scenario};
use crate::world::{Moves, World, WorldConfig};

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// The fleet (generated from the scenario when absent).
    pub fleet: Option<Fleet>,
    /// Fleet size, when generating.
    pub clusters: usize,
    /// Seed.
    pub seed: u64,
    /// Deterministic virtual time.
    pub virtual_time: bool,
    /// Build the final state (for `--state-out`); it costs memory at the run's peak.
    pub keep_state: bool,
}

/// What a progress display shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Time on the run's clock.
    pub elapsed: Duration,
    /// The scenario's planned length (timeline and duration).
    pub planned: Duration,
    /// Clusters attached.
    pub attached: usize,
    /// Clusters whose addons are all deployed and ready (as last sampled).
    pub ready_clusters: usize,
    /// The fleet was seen converged at least once.
    pub converged_once: bool,
}

/// An invariant violation, with what replays it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// The cluster, when one is concerned.
    pub cluster: Option<String>,
    /// The addon, when one is concerned.
    pub addon: Option<String>,
    /// When, on the run's clock, in milliseconds.
    pub at_ms: u64,
    /// What happened.
    pub detail: String,
    /// The seed that replays it.
    pub seed: u64,
}

/// p50 / p90 / p99 / max, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Percentiles {
    fn of(mut v: Vec<Duration>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            (v[i].as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
        };
        Self {
            count: v.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Member API writes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Writes {
    /// Addon creates, updates and deletes by the manager.
    pub manager: u64,
    /// Manager writes per placement at the end.
    pub manager_per_placement: f64,
    /// Status, finalizer and manifest writes by the agents.
    pub agent: u64,
    /// Calls answered with an injected error.
    pub faults_injected: u64,
    /// Writes to the host (labels, statuses, finalizers, events).
    pub host: u64,
}

/// Probes by result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Probes {
    /// `/healthz` said ok.
    pub ok: u64,
    /// Answered, but not ok.
    pub not_ok: u64,
    /// Could not reach the member.
    pub offline: u64,
}

/// Machine-dependent figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Wall {
    /// Wall time of the whole run.
    pub elapsed_ms: u64,
    /// Wall time until the first convergence.
    pub time_to_converge_ms: Option<u64>,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: Option<u64>,
}

/// The report (`--report FILE.json`). Everything outside `wall` is deterministic in
/// virtual time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// `virtual` or `wall`: the clock every `*_ms` outside `wall` is on.
    pub clock: &'static str,
    /// Clusters attached at the end.
    pub clusters: usize,
    /// Addons in the catalog at the end.
    pub addons: usize,
    /// Placed pairs at the end.
    pub placements: usize,
    /// Pairs deployed and ready at the end.
    pub ready: usize,
    /// Pairs held back where explain predicts.
    pub blocked: usize,
    /// Converged at the end, within the deadline after every fault healed.
    pub converged: bool,
    /// From start to the first convergence.
    pub time_to_converge_ms: Option<u64>,
    /// From the last fault healing (or timeline event) to the final convergence.
    pub time_to_final_converge_ms: Option<u64>,
    /// Member object written → agent reports it deployed and ready, per generation.
    pub propagation_latency: Percentiles,
    /// Attach → first deployed and ready, for the pairs placed at attach.
    pub attach_to_ready_latency: Percentiles,
    /// Member API writes.
    pub writes: Writes,
    /// Member API reads (`/healthz`, `/version`, nodes, lists, readiness) by manager and
    /// agents.
    pub member_reads: u64,
    /// Cluster syncs by the manager.
    pub reconciles: u64,
    /// Probes by result.
    pub probes: Probes,
    /// Invariant violations.
    pub violations: Vec<Violation>,
    /// Machine-dependent figures.
    pub wall: Wall,
}

/// Fixed epoch of virtual runs (condition timestamps), so they replay exactly.
fn virtual_epoch() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(1_767_225_600)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Peak resident set size (Linux `VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Driver {
    world: World,
    catalog: Vec<CatalogObject>,
    removed: BTreeMap<String, CatalogObject>,
    rng: StdRng,
    seed: u64,
    start: Instant,
    attach_times: BTreeMap<String, Instant>,
    next_index: usize,
    heals: Vec<(Instant, Heal)>,
    suspects: BTreeMap<(String, AddonId), Instant>,
    /// Which clusters moved since the exclusion check last ran, and the catalog it used.
    moves: Moves,
    exclusions_catalog: Catalog,
    grace: Duration,
    violations: Vec<Violation>,
    scenario: Scenario,
    /// Every member's behavior, shared.
    behavior: Arc<Behavior>,
}

enum Heal {
    Reachable(Vec<String>),
    Healthy(Vec<String>),
    Flap(Vec<String>, Instant),
}

impl Driver {
    fn now_ms(&self) -> u64 {
        ms(self.start.elapsed())
    }

    fn names(&self) -> Vec<String> {
        self.world.registry.all().into_keys().collect()
    }

    fn namespaces(&self) -> BTreeMap<String, String> {
        self.world
            .host
            .cluster_keys()
            .into_iter()
            .map(|(ns, n)| (n, ns))
            .collect()
    }

    fn choose(&mut self, names: Vec<String>, share: f64) -> Vec<String> {
        names
            .into_iter()
            .filter(|_| self.rng.random_bool(share.clamp(0.0, 1.0)))
            .collect()
    }

    /// A world for `scenario` with no clusters yet and the manager not started.
    fn new(
        scenario: &Scenario,
        seed: u64,
        virtual_time: bool,
        catalog: Vec<CatalogObject>,
    ) -> Self {
        let manager = ManagerConfig {
            probe_period: scenario.probe_period.0,
            seed,
            epoch: if virtual_time {
                virtual_epoch()
            } else {
                k8s_openapi::jiff::Timestamp::now()
            },
            ..ManagerConfig::default()
        };
        let agent = AgentConfig {
            resync: Duration::from_secs(600),
            ..AgentConfig::default()
        };
        let mut world = World::new(WorldConfig { manager, agent });
        let moves = world.watch_moves();
        Self {
            world,
            catalog,
            removed: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            seed,
            start: Instant::now(),
            attach_times: BTreeMap::new(),
            next_index: 0,
            heals: Vec::new(),
            suspects: BTreeMap::new(),
            moves,
            exclusions_catalog: Catalog::default(),
            grace: scenario.probe_period.0 * 3 + Duration::from_secs(30),
            violations: Vec::new(),
            scenario: scenario.clone(),
            behavior: Arc::new(scenario.behavior()),
        }
    }

    fn attach(&mut self, c: &FleetCluster) {
        self.world.add_member(c, self.behavior.clone());
        if let Err(e) = self.world.attach(c) {
            tracing::warn!(cluster = %c.name, error = %e, "attach failed");
        }
        self.attach_times.insert(c.name.clone(), Instant::now());
    }

    fn find(&self, addon: &str) -> Option<CatalogObject> {
        let (ns, name) = match addon.split_once('/') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, addon),
        };
        self.catalog
            .iter()
            .find(|o| {
                let id = o.id();
                *id.name == *name && (ns.is_none() || id.namespace.as_deref() == ns)
            })
            .cloned()
    }

    fn apply(&mut self, action: &Action) {
        let t = self.now_ms();
        let bad = |d: &mut Self, detail: String| {
            d.violations.push(Violation {
                invariant: "timeline",
                cluster: None,
                addon: None,
                at_ms: t,
                detail,
                seed: d.seed,
            });
        };
        match action {
            Action::UpgradeWave { share, from, to } => {
                let eligible: Vec<String> = self
                    .world
                    .registry
                    .all()
                    .into_iter()
                    .filter(|(_, m)| {
                        from.as_ref()
                            .is_none_or(|f| m.version_now().starts_with(&format!("{f}.")))
                    })
                    .map(|(n, _)| n)
                    .collect();
                for n in self.choose(eligible, *share) {
                    let patch: u32 = self.rng.random_range(0..10);
                    if let Some(m) = self.world.registry.get(&n) {
                        m.set_version(format!("{to}.{patch}"));
                    }
                }
            }
            Action::Rollout { addon, revision } => match self.find(addon) {
                Some(mut o) => {
                    let meta = match &mut o {
                        CatalogObject::Addon(a) => &mut a.spec.template.metadata,
                        CatalogObject::ClusterAddon(a) => &mut a.spec.0.template.metadata,
                    };
                    meta.get_or_insert_with(Default::default)
                        .annotations
                        .insert(REVISION_ANNOTATION.into(), revision.clone());
                    let id = o.id();
                    self.catalog.retain(|x| x.id() != id);
                    self.catalog.push(o.clone());
                    if !self.removed.contains_key(addon) {
                        let _ = self.world.host.apply_addon(o);
                    }
                }
                None => bad(self, format!("rollout: no addon {addon:?} in the catalog")),
            },
            Action::LabelFlip { share, key, value } => {
                let namespaces = self.namespaces();
                for n in self.choose(self.names(), *share) {
                    if let Some(ns) = namespaces.get(&n) {
                        let _ = self.world.host.label_cluster(ns, &n, key, value.as_deref());
                    }
                }
            }
            Action::Attach { count } => {
                let fleet = self.scenario.generate(*count, self.next_index, self.seed);
                self.next_index += count;
                for c in &fleet.clusters {
                    self.attach(c);
                }
            }
            Action::Detach { share } => {
                let namespaces = self.namespaces();
                for n in self.choose(self.names(), *share) {
                    if let Some(ns) = namespaces.get(&n) {
                        let _ = self.world.detach(ns, &n);
                    }
                }
            }
            Action::CatalogRemove { addon } => match self.find(addon) {
                Some(o) => {
                    let _ = self.world.host.delete_addon(&o.id());
                    self.removed.insert(addon.clone(), o);
                }
                None => bad(
                    self,
                    format!("catalogRemove: no addon {addon:?} in the catalog"),
                ),
            },
            Action::CatalogAdd { addon } => {
                self.removed.remove(addon);
                match self.find(addon) {
                    Some(o) => {
                        let _ = self.world.host.apply_addon(o);
                    }
                    None => bad(
                        self,
                        format!("catalogAdd: no addon {addon:?} in the catalog"),
                    ),
                }
            }
            Action::RestartManager {} => {
                self.world.kill_manager();
                self.world.start_manager();
            }
            Action::RestartAgents { share } => {
                for n in self.choose(self.names(), *share) {
                    self.world.kill_agent(&n);
                    self.world.start_agent(&n);
                }
            }
            Action::Partition { share, duration } => {
                let cut = self.choose(self.names(), *share);
                for n in &cut {
                    if let Some(m) = self.world.registry.get(n) {
                        m.set_reachable(false);
                    }
                }
                self.heals
                    .push((Instant::now() + duration.0, Heal::Reachable(cut)));
            }
        }
    }

    fn heal_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Heal> = {
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heals)
                .into_iter()
                .partition(|(t, _)| *t <= now);
            self.heals = rest;
            due.into_iter().map(|(_, h)| h).collect()
        };
        for h in due {
            match h {
                Heal::Reachable(names) => names
                    .iter()
                    .filter_map(|n| self.world.registry.get(n))
                    .for_each(|m| m.set_reachable(true)),
                Heal::Healthy(names) => names
                    .iter()
                    .filter_map(|n| self.world.registry.get(n))
                    .for_each(|m| m.set_healthy(true)),
                Heal::Flap(names, until) => {
                    let period = self.scenario.probe_period.0 * 2;
                    let next = now + period;
                    for m in names.iter().filter_map(|n| self.world.registry.get(n)) {
                        m.set_healthy(next >= until || self.rng.random_bool(0.5));
                    }
                    if next < until {
                        self.heals.push((next, Heal::Flap(names, until)));
                    } else {
                        self.heals.push((next, Heal::Healthy(names)));
                    }
                }
            }
        }
    }

    /// Invariant 1: nothing on a cluster its placement excludes (by type: at once; by other
    /// labels: beyond the grace period the manager needs to notice and remove it).
    fn check_exclusions(&mut self) {
        // Runs every half grace period over the clusters whose labels or addons moved since
        // the last run, and those that hold a suspect (the whole fleet when the catalog
        // changed); reads labels and addons in place and copies only what is out of place.
        let catalog = self.world.catalog();
        let mut names = self.moves.take();
        if catalog != self.exclusions_catalog {
            for (namespace, name) in self.world.host.cluster_keys() {
                self.moves.remember(&name, namespace);
                names.insert(name);
            }
            self.exclusions_catalog = catalog.clone();
        }
        names.extend(self.suspects.keys().map(|(c, _)| c.clone()));
        let index = PlacementIndex::new(&catalog);
        let now = Instant::now();
        let mut seen = BTreeSet::new();
        for name in names {
            let Some(member) = self.world.registry.get(&name) else {
                continue;
            };
            let Some(namespace) = self.moves.namespace(&name) else {
                continue;
            };
            let Some((row, cluster_type)) =
                self.world
                    .host
                    .with_live_cluster_labels(namespace, &name, |l| {
                        (index.row(l.iter()), l.get(CLUSTER_TYPE).map(str::to_owned))
                    })
            else {
                // Being deleted or gone: its next event (if it comes back) says where it is.
                self.moves.forget(&name);
                continue;
            };
            let misplaced: Vec<usize> = member.with_addons(|addons| {
                addons
                    .iter()
                    .filter(|a| {
                        !a.deleting
                            && a.labels.get(MANAGED_LABEL).map(String::as_str) == Some("true")
                    })
                    .filter_map(|a| catalog.addons().iter().position(|c| c.id == a.id))
                    .filter(|&i| !index.is_placed(&row, &name, i))
                    .collect()
            });
            for i in misplaced {
                let a: &CatalogAddon = &catalog.addons()[i];
                let id = a.id.clone();
                let type_excluded = a_type_excludes(a, cluster_type.as_deref());
                let key = (name.clone(), id.clone());
                seen.insert(key.clone());
                let since = *self.suspects.entry(key).or_insert(now);
                if type_excluded || now - since > self.grace {
                    let detail = if type_excluded {
                        format!(
                            "{id} reached cluster {} whose cluster-type excludes it",
                            name
                        )
                    } else {
                        format!(
                            "{id} stayed on cluster {} for {:?} after its placement excluded it",
                            name,
                            now - since
                        )
                    };
                    let v = Violation {
                        invariant: "placement-excludes",
                        cluster: Some(name.clone()),
                        addon: Some(id.to_string()),
                        at_ms: self.now_ms(),
                        detail,
                        seed: self.seed,
                    };
                    if !self.violations.iter().any(|x| {
                        x.cluster == v.cluster && x.addon == v.addon && x.invariant == v.invariant
                    }) {
                        self.violations.push(v);
                    }
                }
            }
        }
        self.suspects.retain(|k, _| seen.contains(k));
    }

    /// Invariant 3: what the hub says per cluster is what the members say.
    fn check_statuses_agree(&mut self) {
        for id in self.world.host.addon_ids() {
            let Some(status) = self.world.host.addon(&id).and_then(|o| o.status().cloned()) else {
                continue;
            };
            for entry in &status.clusters {
                let Some(m) = self.world.registry.get(&entry.name) else {
                    continue;
                };
                let member = m.with_addons(|a| {
                    find_addon(a, &id).map(|a| {
                        let s = &a.status;
                        (s.ready, s.stage, s.revision.as_deref().map(str::to_owned))
                    })
                });
                let hub = (entry.ready, entry.stage, entry.revision.clone());
                if member.as_ref() != Some(&hub) {
                    self.violations.push(Violation {
                        invariant: "statuses-agree",
                        cluster: Some(entry.name.clone()),
                        addon: Some(id.to_string()),
                        at_ms: self.now_ms(),
                        detail: format!("hub says {hub:?}, member says {member:?}"),
                        seed: self.seed,
                    });
                }
            }
        }
    }

    fn ready_clusters(&self) -> usize {
        self.world
            .registry
            .all()
            .values()
            .filter(|m| {
                m.with_addons(|a| {
                    !a.is_empty()
                        && a.iter().all(|x| {
                            x.status.ready
                                || x.status
                                    .stage
                                    .is_some_and(|s| s != flotilla_core::types::Stage::Deploying)
                        })
                })
            })
            .count()
    }
}

/// Whether `a` names `cluster_type` in a `cluster-type NotIn` requirement (immutable ground).
fn a_type_excludes(a: &CatalogAddon, cluster_type: Option<&str>) -> bool {
    let Some(t) = cluster_type else { return false };
    match &a.target {
        flotilla_core::catalog::Target::Selector(s) => s
            .requirements()
            .iter()
            .any(|r| r.key == CLUSTER_TYPE && !r.matches_value(Some(t))),
        flotilla_core::catalog::Target::Clusters(_) => false,
    }
}

/// Runs a scenario to its end; `progress` is called about every tick.
pub async fn simulate(
    mut opts: SimOptions,
    catalog: Vec<CatalogObject>,
    mut progress: impl FnMut(&Progress),
) -> (Report, Option<crate::state::State>) {
    let wall_start = std::time::Instant::now();
    let scenario = opts.scenario.clone();
    let fleet = opts
        .fleet
        .take()
        .unwrap_or_else(|| scenario.generate(opts.clusters, 0, opts.seed));
    let mut d = Driver::new(&scenario, opts.seed, opts.virtual_time, catalog.clone());
    d.next_index = fleet.clusters.len();
    for c in &fleet.clusters {
        d.attach(c);
    }
    // The members hold the facts now; the file's copy is not needed again.
    drop(fleet);
    // Initial faults.
    let names = d.names();
    let m = scenario.members.clone();
    if m.unreachable > 0.0 {
        let cut = d.choose(names.clone(), m.unreachable);
        cut.iter()
            .filter_map(|n| d.world.registry.get(n))
            .for_each(|x| x.set_reachable(false));
        d.heals
            .push((Instant::now() + m.unreachable_for.0, Heal::Reachable(cut)));
    }
    if m.flapping > 0.0 {
        let flap = d.choose(names, m.flapping);
        d.heals.push((
            Instant::now(),
            Heal::Flap(flap, Instant::now() + m.flapping_for.0),
        ));
    }
    let _ = d.world.apply(catalog);
    d.world.start_manager();

    let mut timeline = scenario.timeline.clone();
    timeline.sort_by_key(|e| e.at);
    let planned = timeline
        .last()
        .map_or(Duration::ZERO, |e| e.at.0)
        .max(scenario.duration.0);
    let tick = if opts.virtual_time {
        Duration::from_millis(250)
    } else {
        Duration::from_millis(50)
    };
    let mut check_every = if opts.virtual_time {
        tick
    } else {
        Duration::from_millis(100)
    };
    let mut next_event = 0;
    let mut first_converged: Option<(Duration, Duration)> = None;
    let mut last_check = Instant::now() - Duration::from_secs(3600);
    let mut progress_state = Progress {
        planned,
        ..Progress::default()
    };
    let mut settled_at: Option<Instant> = None;
    let mut settled_converged: Option<Instant> = None;
    let mut final_summary = None;
    let mut converged = false;
    let mut final_mismatches = Vec::new();
    let mut last_exclusion_check = Instant::now();
    let mut last_ready_count = wall_start;
    // The exclusion invariant catches an excluded addon within 1.5 grace periods.
    let exclusion_every = if opts.virtual_time {
        d.grace / 2
    } else {
        Duration::from_secs(5)
    };
    loop {
        let elapsed = d.start.elapsed();
        while next_event < timeline.len() && timeline[next_event].at.0 <= elapsed {
            let action = timeline[next_event].action.clone();
            tracing::info!(at = ?timeline[next_event].at.0, ?action, "timeline");
            d.apply(&action);
            next_event += 1;
            settled_at = None;
            settled_converged = None;
        }
        d.heal_due();
        let quiet = next_event >= timeline.len() && d.heals.is_empty();
        if quiet && settled_at.is_none() {
            settled_at = Some(Instant::now());
        }
        if !quiet {
            settled_at = None;
            settled_converged = None;
        }
        if Instant::now() - last_exclusion_check >= exclusion_every {
            d.check_exclusions();
            last_exclusion_check = Instant::now();
        }
        // The oracle is needed until the first convergence, then after everything has
        // settled until it converges again, then once at the end to confirm. In virtual time
        // it runs every tick at first, then every 5% of the time waited (deterministic); on
        // a wall clock every 100 ms or twice its own cost.
        let waiting_since = match (first_converged, settled_at) {
            (None, _) => Some(d.start),
            (Some(_), Some(t)) if settled_converged.is_none() => Some(t),
            _ => None,
        };
        let at_end = quiet && settled_converged.is_some() && elapsed >= scenario.duration.0;
        if opts.virtual_time {
            let waited = waiting_since.map_or(Duration::ZERO, |t| Instant::now() - t);
            check_every = tick.max(waited / 20).min(Duration::from_secs(10));
        }
        let want_check =
            (waiting_since.is_some() || at_end) && Instant::now() - last_check >= check_every;
        if want_check {
            last_check = Instant::now();
            let cost = std::time::Instant::now();
            let verdict = d.world.check_converged(20);
            if !opts.virtual_time {
                check_every = Duration::from_millis(100).max(cost.elapsed() * 2);
            }
            match verdict {
                Ok(s) => {
                    if first_converged.is_none() {
                        first_converged = Some((d.start.elapsed(), wall_start.elapsed()));
                        progress_state.converged_once = true;
                    }
                    if quiet && settled_converged.is_none() {
                        settled_converged = Some(Instant::now());
                    }
                    if at_end || (quiet && elapsed >= scenario.duration.0) {
                        final_summary = Some(s);
                        converged = true;
                        break;
                    }
                }
                Err(why) => {
                    final_mismatches = why;
                    if at_end {
                        settled_converged = None;
                    }
                }
            }
        }
        if let Some(t) = settled_at
            && settled_converged.is_none()
            && Instant::now() - t > scenario.deadline.0
        {
            break;
        }
        progress_state.elapsed = d.start.elapsed();
        progress_state.attached = d.world.host.cluster_count();
        // Only the progress line shows this count, and reading every member for it is a
        // scan of the fleet: a few times a second of wall time is enough.
        if want_check && last_ready_count.elapsed() >= Duration::from_millis(250) {
            progress_state.ready_clusters = d.ready_clusters();
            last_ready_count = std::time::Instant::now();
        }
        progress(&progress_state);
        tokio::time::sleep(tick).await;
    }
    let end = Instant::now();
    // Let the status writer catch up, then compare hub and members.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if converged {
        d.check_statuses_agree();
        d.check_exclusions();
    } else {
        d.violations.push(Violation {
            invariant: "converges",
            cluster: None,
            addon: None,
            at_ms: ms(end - d.start),
            detail: format!(
                "not converged within {} after the last fault healed: {}",
                humantime::format_duration(scenario.deadline.0),
                final_mismatches.join("; ")
            ),
            seed: d.seed,
        });
    }

    // Figures.
    let members = d.world.registry.all();
    let mut latencies = Vec::new();
    let mut attach_to_ready = Vec::new();
    let mut writes = Writes::default();
    let mut member_reads = 0;
    for (name, m) in &members {
        latencies.extend(m.take_latencies());
        if let Some(at) = d.attach_times.get(name) {
            attach_to_ready.extend(
                m.first_ready()
                    .values()
                    .filter(|t| **t >= *at)
                    .map(|t| *t - *at),
            );
        }
        writes.manager += m.calls.manager();
        writes.agent += m.calls.agent();
        writes.faults_injected += m.calls.faults_injected.load(Ordering::Relaxed);
        member_reads += m.calls.reads.load(Ordering::Relaxed);
    }
    writes.host = d.world.host.writes.load(Ordering::Relaxed);
    let summary = final_summary.unwrap_or_default();
    writes.manager_per_placement = if summary.placements == 0 {
        0.0
    } else {
        (writes.manager as f64 / summary.placements as f64 * 1000.0).round() / 1000.0
    };
    let stats = &d.world.stats;
    let reconciles = stats.syncs.load(Ordering::Relaxed);
    let probes = Probes {
        ok: stats.probes_ok.load(Ordering::Relaxed),
        not_ok: stats.probes_not_ok.load(Ordering::Relaxed),
        offline: stats.probes_offline.load(Ordering::Relaxed),
    };
    let catalog_now = d.world.catalog();
    let state = opts.keep_state.then(|| crate::state::final_state(&d.world));
    let report = Report {
        scenario: scenario.name.clone(),
        seed: opts.seed,
        clock: if opts.virtual_time { "virtual" } else { "wall" },
        clusters: summary.clusters,
        addons: catalog_now.addons().len(),
        placements: summary.placements,
        ready: summary.ready,
        blocked: summary.blocked,
        converged: converged && d.violations.is_empty(),
        time_to_converge_ms: first_converged.map(|(t, _)| ms(t)),
        time_to_final_converge_ms: settled_at
            .zip(settled_converged)
            .filter(|_| converged)
            .map(|(s, c)| ms(c.saturating_duration_since(s))),
        propagation_latency: Percentiles::of(latencies),
        attach_to_ready_latency: Percentiles::of(attach_to_ready),
        writes,
        member_reads,
        reconciles,
        probes,
        violations: d.violations,
        wall: Wall {
            elapsed_ms: ms(wall_start.elapsed()),
            time_to_converge_ms: first_converged.map(|(_, w)| ms(w)),
            peak_rss_bytes: peak_rss(),
        },
    };
    (report, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_agent::member::MemberCluster;
    use flotilla_core::render::DesiredAddon;

    const KONVOY_NODE_LABEL: &str = "konvoy.mesosphere.com/inventory_hostname";

    /// The exclusion check finds an addon its cluster type excludes, also on a cluster it
    /// had already found clean (the member's change is what makes it look again).
    #[tokio::test(start_paused = true)]
    async fn an_addon_on_a_cluster_its_type_excludes_is_a_violation() {
        let scenario = Scenario::built_in("default").expect("built in");
        let catalog = crate::input::catalog_objects_from_str(
            include_str!("../../docs/examples/catalog.yaml"),
            "catalog.yaml",
        )
        .expect("catalog");
        let fleet = scenario.generate(12, 0, 3);
        let is_konvoy = |c: &FleetCluster| {
            c.nodes
                .iter()
                .any(|n| n.labels.contains_key(KONVOY_NODE_LABEL))
        };
        let konvoy = fleet
            .clusters
            .iter()
            .find(|c| is_konvoy(c))
            .expect("a Konvoy cluster");
        let other = fleet
            .clusters
            .iter()
            .find(|c| !is_konvoy(c))
            .expect("another");

        let mut d = Driver::new(&scenario, 3, true, catalog.clone());
        for c in &fleet.clusters {
            d.attach(c);
        }
        let _ = d.world.apply(catalog);
        d.world.start_manager();
        tokio::time::sleep(Duration::from_secs(120)).await;
        d.check_exclusions();
        assert!(d.violations.is_empty(), "{:?}", d.violations);

        let cert_manager = d
            .world
            .registry
            .get(&other.name)
            .expect("member")
            .snapshot()
            .into_iter()
            .find(|a| &*a.id.name == "cert-manager")
            .expect("cert-manager placed on a cluster that is not Konvoy");
        let stray = DesiredAddon {
            id: cert_manager.id,
            labels: cert_manager.labels,
            annotations: cert_manager.annotations,
            spec: cert_manager.spec,
        };
        let member = d.world.registry.get(&konvoy.name).expect("member");
        member.apply_addon(&stray).await.expect("apply");
        d.check_exclusions();
        let v = d.violations.first().expect("a violation");
        assert_eq!(v.invariant, "placement-excludes");
        assert_eq!(v.cluster.as_deref(), Some(konvoy.name.as_str()));
        assert!(
            v.detail.contains("cluster-type excludes it"),
            "{}",
            v.detail
        );
    }
}
