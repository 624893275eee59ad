//! `flotilla-sim run`: attach a fleet, federate a catalog, run manager and agents until the
//! fleet converges or the deadline passes.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_agent::memory::Behavior;
use flotilla_core::catalog::CatalogObject;
use flotilla_core::fleet::Fleet;
use flotilla_core::types::{ClusterCondition, Stage};
use serde::Serialize;
use tokio::time::Instant;

use crate::world::{Summary, World, WorldConfig};

/// How a run went.
#[derive(Debug)]
pub struct Outcome {
    /// Converged before the deadline.
    pub converged: bool,
    /// Time from start to convergence (or to the deadline), on the run's clock.
    pub elapsed: Duration,
    /// What the fleet held at the end (when converged).
    pub summary: Option<Summary>,
    /// Why it had not converged (when it had not).
    pub mismatches: Vec<String>,
    /// The final state, for `--state-out`.
    pub state: State,
}

/// The final state of a run, one entry per cluster.
#[derive(Debug, Default, Serialize)]
pub struct State {
    /// Clusters, by name.
    pub clusters: Vec<ClusterState>,
}

/// One cluster at the end of a run.
#[derive(Debug, Serialize)]
pub struct ClusterState {
    /// Name.
    pub name: String,
    /// Labels of its KubeFedCluster.
    pub labels: BTreeMap<String, String>,
    /// Conditions of its KubeFedCluster.
    pub conditions: Vec<ClusterCondition>,
    /// Every Addon / ClusterAddon present in the member.
    pub addons: Vec<AddonState>,
}

/// One Addon or ClusterAddon in a member at the end of a run.
#[derive(Debug, Serialize)]
pub struct AddonState {
    /// `Addon` or `ClusterAddon`.
    pub kind: &'static str,
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
                    kind: a.id.kind.member_kind(),
                    namespace: a.id.namespace.clone(),
                    name: a.id.name.clone(),
                    ready: a.status.ready,
                    stage: a.status.stage,
                    revision: a.status.revision.clone(),
                })
                .collect();
            ClusterState {
                name,
                labels: c.metadata.labels.unwrap_or_default(),
                conditions: c.status.map(|s| s.conditions).unwrap_or_default(),
                addons,
            }
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    State { clusters }
}

/// Attaches every cluster of `fleet` (simulated members with `behavior`), applies the
/// catalog, runs until convergence or `deadline`, checking every `tick`.
pub async fn run_fleet(
    fleet: &Fleet,
    objects: Vec<CatalogObject>,
    config: WorldConfig,
    behavior: &Behavior,
    deadline: Duration,
    mut on_tick: impl FnMut(&World, Duration),
) -> Outcome {
    let mut world = World::new(config);
    for c in &fleet.clusters {
        world.add_member(c, behavior.clone());
    }
    let start = Instant::now();
    for c in &fleet.clusters {
        if let Err(e) = world.attach(c) {
            tracing::warn!(cluster = %c.name, error = %e, "attach failed");
        }
    }
    if let Err(e) = world.apply(objects) {
        tracing::warn!(error = %e, "applying the catalog failed");
    }
    world.start_manager();
    let tick = Duration::from_millis(100);
    let (converged, summary, mismatches) = loop {
        // Judged by when the check started: a world seen converged after the deadline is late.
        let late = start.elapsed() > deadline;
        match world.check_converged(20) {
            Ok(s) if !late => break (true, Some(s), Vec::new()),
            Ok(_) => {
                break (
                    false,
                    None,
                    vec!["converged only after the deadline".into()],
                );
            }
            Err(why) if late => break (false, None, why),
            Err(_) => {}
        }
        on_tick(&world, start.elapsed());
        tokio::time::sleep(tick).await;
    };
    let elapsed = start.elapsed();
    let state = final_state(&world);
    Outcome {
        converged,
        elapsed,
        summary,
        mismatches,
        state,
    }
}
