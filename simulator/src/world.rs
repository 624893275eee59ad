//! An embedded world: an in-memory host, simulated member clusters with their agents, and
//! the manager, all in one process, driven through the same code as the real mode.
//!
//! The world can crash and restart the manager or any agent, cut members off, change their
//! facts, and judge whether the fleet has converged: every placed pair present and settled
//! (deployed and ready, or held back exactly where explain predicts), every unplaced pair
//! absent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use flotilla_agent::member::find_addon;
use flotilla_agent::memory::{Behavior, ChangeLog, MemoryMember};
use flotilla_agent::reconcile::{Agent, AgentConfig};
use flotilla_core::catalog::{Catalog, CatalogAddon, CatalogObject};
use flotilla_core::explain::{ClusterView, explain_pair};
use flotilla_core::fleet::FleetCluster;
use flotilla_core::label_set::LabelSet;
use flotilla_core::labels::{ClusterFacts, derive_labels};
use flotilla_core::placement::PlacementIndex;
use flotilla_core::render::{render_for, render_template};
use flotilla_core::types::{
    KubeFedCluster, KubeFedClusterSpec, LocalSecretReference, MANAGED_LABEL, Stage,
};
use flotilla_manager::host::{HostError, HostEvent, HostStore, MemoryHost, ObjectKey};
use flotilla_manager::manager::{Connector, ManagerConfig, ManagerHandle, Stats, start};
use rustc_hash::FxHashMap;
use tokio::task::AbortHandle;

/// Resolves KubeFedClusters to simulated members by name (hashed: the checks look up
/// every member of a large fleet, and a tree walk over cold names costs more than the check).
#[derive(Default)]
pub struct Registry {
    members: Mutex<FxHashMap<String, Arc<MemoryMember>>>,
}

impl Registry {
    /// The member named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<MemoryMember>> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn insert(&self, m: Arc<MemoryMember>) {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(m.name().to_owned(), m);
    }

    /// Every member, by name.
    pub fn all(&self) -> BTreeMap<String, Arc<MemoryMember>> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, m)| (name.clone(), m.clone()))
            .collect()
    }
}

impl Connector for Registry {
    type Member = MemoryMember;
    async fn connect(&self, cluster: &KubeFedCluster) -> Result<Arc<MemoryMember>, String> {
        let name = cluster.metadata.name.as_deref().unwrap_or_default();
        self.get(name)
            .ok_or_else(|| format!("no simulated member behind {}", cluster.spec.api_endpoint))
    }
}

/// Settings of a world.
#[derive(Clone, Debug, Default)]
pub struct WorldConfig {
    /// The manager's settings.
    pub manager: ManagerConfig,
    /// Every agent's settings.
    pub agent: AgentConfig,
}

/// Host, members, agents and manager in one process.
pub struct World {
    /// The host cluster.
    pub host: Arc<MemoryHost>,
    /// The members.
    pub registry: Arc<Registry>,
    config: WorldConfig,
    manager: Option<ManagerHandle<MemoryHost, Registry>>,
    agents: BTreeMap<String, AbortHandle>,
    seeds: u64,
    /// Where members log their changes, once someone watches them ([`World::watch_moves`]).
    member_log: Option<Arc<ChangeLog>>,
    /// What every manager this world started did, across restarts.
    pub stats: Arc<Stats>,
}

/// Which clusters moved (their KubeFedCluster other than its status, or their member's
/// addons) since the last look: a check over a large fleet reads only those.
pub struct Moves {
    host: tokio::sync::mpsc::UnboundedReceiver<HostEvent>,
    members: Arc<ChangeLog>,
    /// Each cluster's namespace, as its KubeFedCluster's events told it.
    namespaces: FxHashMap<String, String>,
}

impl Moves {
    /// Names of the clusters that moved since the last call.
    pub fn take(&mut self) -> BTreeSet<String> {
        let mut moved: BTreeSet<String> = self.members.take().into_iter().collect();
        while let Ok(event) = self.host.try_recv() {
            if let ObjectKey::Cluster { namespace, name } = event.key {
                self.remember(&name, namespace);
                moved.insert(name);
            }
        }
        moved
    }

    /// The namespace of a cluster seen in [`Moves::take`].
    pub fn namespace(&self, name: &str) -> Option<&str> {
        self.namespaces.get(name).map(String::as_str)
    }

    /// Notes where a cluster is (a check that reads every cluster found it there).
    pub fn remember(&mut self, name: &str, namespace: String) {
        if !self.namespaces.contains_key(name) {
            self.namespaces.insert(name.to_owned(), namespace);
        }
    }

    /// Forgets a cluster that has left the host.
    pub fn forget(&mut self, name: &str) {
        self.namespaces.remove(name);
    }
}

/// Why a world has not converged: one line per offending pair or cluster.
pub type Mismatches = Vec<String>;

impl World {
    /// An empty world; start the manager with [`World::start_manager`].
    pub fn new(config: WorldConfig) -> Self {
        Self {
            host: Arc::new(MemoryHost::new()),
            registry: Arc::new(Registry::default()),
            config,
            manager: None,
            agents: BTreeMap::new(),
            seeds: 0,
            member_log: None,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Starts telling which clusters move from now on. Call it before attaching any: only
    /// changes after this call are told.
    pub fn watch_moves(&mut self) -> Moves {
        let members = self.member_log.get_or_insert_default().clone();
        for m in self.registry.all().values() {
            m.log_changes_to(members.clone());
        }
        Moves {
            host: self.host.watch(false),
            members,
            namespaces: FxHashMap::default(),
        }
    }

    /// Creates a simulated member for `cluster` (its facts) and starts its agent.
    pub fn add_member(
        &mut self,
        cluster: &FleetCluster,
        behavior: impl Into<Arc<Behavior>>,
    ) -> Arc<MemoryMember> {
        self.seeds += 1;
        let nodes = cluster.nodes.iter().map(|n| n.labels.clone()).collect();
        let m = MemoryMember::new(
            &cluster.name,
            &cluster.kubernetes_version,
            nodes,
            behavior,
            self.config.manager.seed ^ self.seeds,
        );
        if let Some(log) = &self.member_log {
            m.log_changes_to(log.clone());
        }
        self.registry.insert(m.clone());
        self.start_agent(&cluster.name);
        m
    }

    /// Starts (or restarts) the agent of one member.
    pub fn start_agent(&mut self, name: &str) {
        if let Some(old) = self.agents.remove(name) {
            old.abort();
        }
        let Some(m) = self.registry.get(name) else {
            return;
        };
        self.seeds += 1;
        let agent = Agent::new(
            name,
            m,
            self.config.agent,
            self.config.manager.seed ^ (self.seeds << 20),
        );
        self.agents
            .insert(name.to_owned(), tokio::spawn(agent.run()).abort_handle());
    }

    /// Kills an agent at once, wherever it is.
    pub fn kill_agent(&mut self, name: &str) {
        if let Some(a) = self.agents.remove(name) {
            a.abort();
        }
    }

    /// Writes the KubeFedCluster for `cluster` (its user labels), as `kubefedctl join` would.
    pub fn attach(&self, cluster: &FleetCluster) -> Result<(), HostError> {
        let spec = KubeFedClusterSpec {
            api_endpoint: format!("https://{}.sim.invalid:6443", cluster.name),
            ca_bundle: None,
            secret_ref: LocalSecretReference {
                name: format!("{}-token", cluster.name),
            },
            disabled_tls_validations: Vec::new(),
        };
        let mut k = KubeFedCluster::new(&cluster.name, spec);
        k.metadata.namespace = Some(cluster.namespace().to_owned());
        k.metadata.labels = Some(cluster.labels.clone());
        self.host.apply_cluster(k)
    }

    /// `kubectl delete kubefedcluster`: the manager cleans the member up, then lets it go.
    pub fn detach(&self, namespace: &str, name: &str) -> Result<(), HostError> {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        self.host.delete_cluster(namespace, name, now)
    }

    /// `kubectl apply` of catalog objects.
    pub fn apply(&self, objects: impl IntoIterator<Item = CatalogObject>) -> Result<(), HostError> {
        objects
            .into_iter()
            .try_for_each(|o| self.host.apply_addon(o))
    }

    /// Starts the manager (again, after a kill: it rebuilds from the stores).
    pub fn start_manager(&mut self) {
        self.manager = Some(start(
            self.host.clone(),
            self.registry.clone(),
            self.config.manager.clone(),
            self.stats.clone(),
        ));
    }

    /// Kills the manager at once, wherever it is.
    pub fn kill_manager(&mut self) {
        if let Some(mut m) = self.manager.take() {
            m.kill();
        }
    }

    /// The running manager.
    pub fn manager(&self) -> Option<&ManagerHandle<MemoryHost, Registry>> {
        self.manager.as_ref()
    }

    /// The catalog as the host holds it now (invalid objects left out).
    pub fn catalog(&self) -> Catalog {
        let objects: Vec<CatalogObject> = {
            let ids: BTreeSet<_> = self.host_addon_ids();
            ids.iter().filter_map(|id| self.host.addon(id)).collect()
        };
        let addons: Vec<CatalogAddon> = objects
            .iter()
            .filter_map(|o| CatalogAddon::compile(o).ok())
            .collect();
        Catalog::new(addons).unwrap_or_default()
    }

    /// Each attached cluster (its namespace, and the cluster as explain sees it), read one
    /// at a time: the checks of a 100,000-cluster fleet never copy every label at once.
    pub fn views(&self) -> impl Iterator<Item = (String, ClusterView)> + '_ {
        self.host
            .cluster_keys()
            .into_iter()
            .filter_map(move |(namespace, name)| {
                let labels =
                    self.host
                        .with_live_cluster_labels(&namespace, &name, LabelSet::to_map)?;
                let version = self
                    .registry
                    .get(&name)
                    .and_then(|m| m.version_now().parse().ok());
                Some((
                    namespace,
                    ClusterView {
                        name,
                        labels,
                        version,
                    },
                ))
            })
    }

    fn host_addon_ids(&self) -> BTreeSet<flotilla_core::catalog::AddonId> {
        self.host.addon_ids().into_iter().collect()
    }

    /// Whether the fleet has converged; if not, why (at most `limit` lines).
    ///
    /// The oracle works from ground truth, not from what the manager wrote: each cluster's
    /// labels are derived afresh from its member's facts, placement is computed from those,
    /// and each member object must equal the rendered template.
    pub fn check_converged(&self, limit: usize) -> Result<Summary, Mismatches> {
        let catalog = self.catalog();
        let index = PlacementIndex::new(&catalog);
        let defaults = catalog.federate_defaults();
        // Most clusters render each addon's template unchanged: render it once.
        let shared: Vec<_> = catalog.addons().iter().map(render_template).collect();
        let mut bad = Vec::new();
        let mut summary = Summary::default();
        let mut clusters = 0;
        for (namespace, view) in self.views() {
            // Only `limit` reasons are reported: a fleet far from converged is judged
            // without reading the rest of it.
            if bad.len() >= limit {
                break;
            }
            clusters += 1;
            let view = &view;
            let Some(member) = self.registry.get(&view.name) else {
                continue;
            };
            let (version, nodes) = (member.version_now(), member.nodes_now());
            let facts = ClusterFacts {
                namespace: &namespace,
                name: &view.name,
                node_labels: &nodes,
                git_version: &version,
                uid: None,
                workspace: None,
            };
            match derive_labels(&facts, &view.labels, &self.config.manager.policy, &defaults) {
                Ok(d) if d.labels == view.labels => {}
                Ok(_) => {
                    bad.push(format!(
                        "{}: labels not derived from its facts yet",
                        view.name
                    ));
                    continue;
                }
                Err(e) => {
                    bad.push(format!("{}: {e}", view.name));
                    continue;
                }
            }
            let row = index.row_of(&view.labels);
            // Read in place, under the member's lock: the check copies nothing per pair.
            member.with_addons(|present| {
                for (i, a) in catalog.addons().iter().enumerate() {
                    let placed = index.is_placed(&row, &view.name, i);
                    let managed = find_addon(present, &a.id).filter(|m| {
                        m.labels.get(MANAGED_LABEL).map(String::as_str) == Some("true")
                    });
                    let m = match (placed, managed) {
                        (false, None) => continue,
                        (false, Some(_)) => {
                            bad.push(format!("{}: {} is present but not placed", view.name, a.id));
                            continue;
                        }
                        (true, None) => {
                            bad.push(format!("{}: {} is placed but missing", view.name, a.id));
                            continue;
                        }
                        (true, Some(m)) => m,
                    };
                    summary.placements += 1;
                    let up_to_date = render_for(a, &view.name, &shared[i]).is_ok_and(|d| {
                        *d.spec == *m.spec && d.labels == m.labels && d.annotations == m.annotations
                    });
                    if !up_to_date || m.deleting {
                        bad.push(format!(
                            "{}: {} does not hold the current template yet",
                            view.name, a.id
                        ));
                        continue;
                    }
                    let deployed = m.status.ready && m.status.stage == Some(Stage::Deployed);
                    if deployed && m.status.observed_generation == Some(m.generation) {
                        summary.ready += 1;
                        continue;
                    }
                    let blocked = explain_pair(&catalog, view, i).blocked;
                    let held = matches!(m.status.stage, Some(Stage::Pending | Stage::Failed))
                        && m.status.observed_generation == Some(m.generation);
                    if !blocked.is_empty() && held {
                        summary.blocked += 1;
                    } else {
                        bad.push(format!(
                            "{}: {} is {} (ready {})",
                            view.name,
                            a.id,
                            m.status.stage.map_or("new", Stage::as_str),
                            m.status.ready
                        ));
                    }
                }
            });
        }
        summary.clusters = clusters;
        if bad.is_empty() {
            Ok(summary)
        } else {
            bad.truncate(limit);
            Err(bad)
        }
    }
}

/// What a converged fleet holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Attached clusters.
    pub clusters: usize,
    /// Placed (cluster, addon) pairs.
    pub placements: usize,
    /// Pairs deployed and ready.
    pub ready: usize,
    /// Pairs held back where explain predicts (version out of range, requires unmet).
    pub blocked: usize,
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_manager();
        for (_, a) in std::mem::take(&mut self.agents) {
            a.abort();
        }
    }
}
