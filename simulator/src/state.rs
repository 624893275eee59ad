//! The final state of a run (`run --state-out`), which `get`, `describe` and
//! `explain --state` read back.

use std::collections::BTreeMap;

use flotilla_core::catalog::CatalogObject;
use flotilla_core::types::{ClusterCondition, Stage};
use serde::{Deserialize, Serialize};

use crate::world::World;

/// The final state of a run, one entry per cluster, and the catalog as the host held it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Clusters, by name.
    pub clusters: Vec<ClusterState>,
    /// The Federated* objects, with their status.
    #[serde(default)]
    pub catalog: Vec<serde_json::Value>,
}

/// One cluster at the end of a run.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterState {
    /// Name.
    pub name: String,
    /// Namespace of its KubeFedCluster.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels of its KubeFedCluster.
    pub labels: BTreeMap<String, String>,
    /// Conditions of its KubeFedCluster.
    pub conditions: Vec<ClusterCondition>,
    /// What its `/version` reports.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// Every Addon / ClusterAddon present in the member.
    pub addons: Vec<AddonState>,
}

/// One Addon or ClusterAddon in a member at the end of a run.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddonState {
    /// `Addon` or `ClusterAddon`.
    pub kind: String,
    /// Namespace (null for ClusterAddons).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Ready, as the agent reported.
    pub ready: bool,
    /// Stage, as the agent reported.
    pub stage: Option<Stage>,
    /// Revision, as the agent reported.
    pub revision: Option<String>,
}

/// Reads the world's final state.
pub fn final_state(world: &World) -> State {
    let mut clusters: Vec<ClusterState> = world
        .host
        .clusters()
        .into_iter()
        .map(|c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let addons = world
                .registry
                .get(&name)
                .map(|m| m.snapshot())
                .unwrap_or_default()
                .into_iter()
                .map(|a| AddonState {
                    kind: a.id.kind.member_kind().to_owned(),
                    namespace: a.id.namespace.as_deref().map(str::to_owned),
                    name: a.id.name.to_string(),
                    ready: a.status.ready,
                    stage: a.status.stage,
                    revision: a.status.revision.map(String::from),
                })
                .collect();
            ClusterState {
                namespace: c.metadata.namespace.clone(),
                kubernetes_version: world.registry.get(&name).map(|m| m.version_now()),
                name,
                labels: c.metadata.labels.unwrap_or_default(),
                conditions: c.status.map(|s| s.conditions).unwrap_or_default(),
                addons,
            }
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let catalog = world
        .host
        .addon_ids()
        .iter()
        .filter_map(|id| world.host.addon(id))
        .filter_map(|o| match o {
            CatalogObject::Addon(a) => serde_json::to_value(a).ok(),
            CatalogObject::ClusterAddon(a) => serde_json::to_value(a).ok(),
        })
        .collect();
    State { clusters, catalog }
}
