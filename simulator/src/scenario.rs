//! Scenarios: a fleet to generate, how its members behave, and a timeline of churn.
//!
//! A scenario is YAML (built-in ones live in `simulator/scenarios/` and are compiled in), read
//! with the same strict loader as every other input, so a typo is an error with its line.
//! [`Scenario::generate`] turns it into a [`Fleet`] deterministically from a seed; the fleet
//! can be written out (`generate`) and read back (`run --fleet`), so any run can be
//! reproduced and inspected with `place` and `explain`.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_agent::memory::{Behavior, Stage};
use flotilla_core::fleet::{Fleet, FleetCluster, FleetNode};
use flotilla_core::yaml::{LoadError, parse_single};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The built-in scenarios: name, one-line description, YAML.
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "default",
        "1,000 mixed clusters, the article's catalog, no faults: the demo",
        include_str!("../scenarios/default.yaml"),
    ),
    (
        "konvoy-mix",
        "half Konvoy, opt-ins and opt-outs, label flips",
        include_str!("../scenarios/konvoy-mix.yaml"),
    ),
    (
        "upgrade-wave",
        "waves of Kubernetes upgrades moving addons in and out",
        include_str!("../scenarios/upgrade-wave.yaml"),
    ),
    (
        "chaos",
        "a day of faults: latency, errors, partitions, restarts, churn",
        include_str!("../scenarios/chaos.yaml"),
    ),
];

/// A duration written as `90s`, `5m`, `24h`, `250ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} (expected e.g. 90s, 5m, 250ms): {e}"
            ))
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it exercises.
    #[serde(default)]
    pub description: String,
    /// Fleet size (overridable with `--clusters`).
    pub clusters: usize,
    /// Seed (overridable with `--seed`).
    #[serde(default = "one")]
    pub seed: u64,
    /// How long the run lasts at least (the timeline plays within it).
    #[serde(default)]
    pub duration: Dur,
    /// After the last fault heals, the fleet must converge within this.
    pub deadline: Dur,
    /// How often each member is probed (KubeFed: 10s).
    #[serde(default = "ten_seconds")]
    pub probe_period: Dur,
    /// How the fleet is generated.
    pub fleet: FleetShape,
    /// How members behave.
    #[serde(default)]
    pub members: MemberShape,
    /// Churn, in time order.
    #[serde(default)]
    pub timeline: Vec<Event>,
}

fn one() -> u64 {
    1
}

fn ten_seconds() -> Dur {
    Dur(Duration::from_secs(10))
}

/// Weighted choices: value → weight.
pub type Weights = BTreeMap<String, f64>;

/// How the fleet is generated.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetShape {
    /// Cluster types (Konvoy, EKS, GKE, AKS, Generic), expressed as node labels.
    pub types: Weights,
    /// Kubernetes minor versions (`v1.16` to `v1.33`); patches are random.
    pub versions: Weights,
    /// Nodes per cluster.
    #[serde(default = "one_to_three")]
    pub nodes: (usize, usize),
    /// User labels: key → value → weight (a missing share leaves the label off).
    #[serde(default)]
    pub labels: BTreeMap<String, Weights>,
    /// `federate-<key>` choices: key → `"true"`/`"false"` → share of clusters.
    #[serde(default)]
    pub federate: BTreeMap<String, Weights>,
    /// Share of clusters labelled `federation-enabled=false`.
    #[serde(default)]
    pub federation_disabled: f64,
}

fn one_to_three() -> (usize, usize) {
    (1, 3)
}

/// How members behave.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberShape {
    /// Latency of every API call.
    #[serde(default)]
    pub latency: Dur,
    /// Uniform jitter on latency.
    #[serde(default)]
    pub latency_jitter: Dur,
    /// Share of calls answered 500.
    #[serde(default)]
    pub error_rate: f64,
    /// Share of calls answered 429.
    #[serde(default)]
    pub throttle_rate: f64,
    /// Share of writes answered 409.
    #[serde(default)]
    pub conflict_rate: f64,
    /// Share of members unreachable at the start, for `unreachable_for`.
    #[serde(default)]
    pub unreachable: f64,
    /// How long the initially unreachable members stay so.
    #[serde(default)]
    pub unreachable_for: Dur,
    /// Share of members whose `/healthz` flaps (not ok every other probe period).
    #[serde(default)]
    pub flapping: f64,
    /// How long flapping lasts.
    #[serde(default)]
    pub flapping_for: Dur,
    /// Apply latency and failure share per manifest kind.
    #[serde(default)]
    pub stages: BTreeMap<String, StageShape>,
}

/// One kind's stage.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageShape {
    /// Delay before ready.
    #[serde(default)]
    pub delay: Dur,
    /// Uniform jitter on the delay.
    #[serde(default)]
    pub jitter: Dur,
    /// Share of applies that fail (retried by the agent).
    #[serde(default)]
    pub fail_share: f64,
}

/// One timeline entry: at a time, one action.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When, from the start.
    pub at: Dur,
    /// What.
    #[serde(flatten)]
    pub action: Action,
}

/// What happens at a timeline entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Upgrade a share of the clusters on `from` (any, if absent) to `to`.
    UpgradeWave {
        /// Share of eligible clusters.
        share: f64,
        /// Only clusters on this minor version.
        #[serde(default)]
        from: Option<String>,
        /// The new minor version.
        to: String,
    },
    /// Bump an addon's revision across the fleet (a new template).
    Rollout {
        /// `[namespace/]name`.
        addon: String,
        /// The new revision.
        revision: String,
    },
    /// Set (or remove, with `value: null`) a label on a share of the clusters.
    LabelFlip {
        /// Share of clusters.
        share: f64,
        /// Label key.
        key: String,
        /// New value; absent removes the label.
        #[serde(default)]
        value: Option<String>,
    },
    /// Attach this many new clusters (generated like the rest).
    Attach {
        /// How many.
        count: usize,
    },
    /// Detach a share of the clusters.
    Detach {
        /// Share of clusters.
        share: f64,
    },
    /// Remove an addon from the catalog.
    CatalogRemove {
        /// `[namespace/]name`.
        addon: String,
    },
    /// Put an addon back (from the scenario's catalog).
    CatalogAdd {
        /// `[namespace/]name`.
        addon: String,
    },
    /// Kill the manager and start a new one.
    RestartManager {},
    /// Kill and restart a share of the agents.
    RestartAgents {
        /// Share of agents.
        share: f64,
    },
    /// Cut a share of the members off for a while.
    Partition {
        /// Share of members.
        share: f64,
        /// For how long.
        #[serde(rename = "for")]
        duration: Dur,
    },
}

/// Why a scenario could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// No built-in scenario has that name.
    #[error("no built-in scenario {0:?}; built in: {list}", list = BUILT_IN.iter().map(|b| b.0).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    /// The YAML is wrong.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The values are wrong.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where.
        origin: String,
        /// What.
        message: String,
    },
}

impl Scenario {
    /// A built-in scenario by name.
    pub fn built_in(name: &str) -> Result<Self, ScenarioError> {
        let (_, _, yaml) = BUILT_IN
            .iter()
            .find(|b| b.0 == name)
            .ok_or_else(|| ScenarioError::Unknown(name.into()))?;
        Self::parse(yaml, &format!("<built-in scenario {name}>"))
    }

    /// Parses and checks a scenario.
    pub fn parse(yaml: &str, origin: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = parse_single(yaml, origin)?;
        let bad = |message: String| ScenarioError::Invalid {
            origin: origin.into(),
            message,
        };
        if s.fleet.types.is_empty() || s.fleet.versions.is_empty() {
            return Err(bad(
                "fleet.types and fleet.versions need at least one entry each".into(),
            ));
        }
        if let Some(k) = s
            .fleet
            .types
            .keys()
            .find(|k| type_label(k).is_none() && k.as_str() != "Generic")
        {
            return Err(bad(format!(
                "fleet.types: unknown type {k:?} (expected Konvoy, EKS, GKE, AKS or Generic)"
            )));
        }
        for v in s.fleet.versions.keys() {
            if format!("{v}.0")
                .parse::<flotilla_core::version::KubeVersion>()
                .is_err()
            {
                return Err(bad(format!(
                    "fleet.versions: {v:?} is not a minor version like v1.20"
                )));
            }
        }
        if s.fleet.nodes.0 == 0 || s.fleet.nodes.0 > s.fleet.nodes.1 {
            return Err(bad(
                "fleet.nodes: expected [min, max] with 1 <= min <= max".into()
            ));
        }
        for (i, e) in s.timeline.iter().enumerate() {
            if let Action::UpgradeWave { to, .. } = &e.action
                && format!("{to}.0")
                    .parse::<flotilla_core::version::KubeVersion>()
                    .is_err()
            {
                return Err(bad(format!(
                    "timeline[{i}].upgradeWave.to: {to:?} is not a minor version like v1.21"
                )));
            }
        }
        Ok(s)
    }

    /// No timeline, no faults: for running a fleet file as it is.
    pub fn plain(deadline: Duration) -> Self {
        Self {
            name: "fleet".into(),
            description: "a fleet file, as it is".into(),
            clusters: 0,
            seed: 1,
            duration: Dur::default(),
            deadline: Dur(deadline),
            probe_period: ten_seconds(),
            fleet: FleetShape::default(),
            members: MemberShape::default(),
            timeline: Vec::new(),
        }
    }

    /// The member behavior this scenario asks for.
    pub fn behavior(&self) -> Behavior {
        let m = &self.members;
        Behavior {
            latency: m.latency.0,
            latency_jitter: m.latency_jitter.0,
            error_rate: m.error_rate,
            throttle_rate: m.throttle_rate,
            conflict_rate: m.conflict_rate,
            stages: m
                .stages
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        Stage {
                            delay: s.delay.0,
                            jitter: s.jitter.0,
                            fail_share: s.fail_share,
                        },
                    )
                })
                .collect(),
            default_stage: Stage::INSTANT,
        }
    }

    /// `n` clusters, deterministic for `seed`; names start at `cluster-{first:05}`.
    pub fn generate(&self, n: usize, first: usize, seed: u64) -> Fleet {
        let mut rng = StdRng::seed_from_u64(seed ^ ((first as u64) << 32));
        let clusters = (first..first + n)
            .map(|i| self.generate_one(i, &mut rng))
            .collect();
        Fleet {
            cluster_type_rules: None,
            clusters,
        }
    }

    fn generate_one(&self, i: usize, rng: &mut StdRng) -> FleetCluster {
        let f = &self.fleet;
        let name = format!("cluster-{i:05}");
        let cluster_type = pick(&f.types, rng).unwrap_or_else(|| "Generic".into());
        let minor = pick(&f.versions, rng).unwrap_or_else(|| "v1.20".into());
        let patch: u32 = rng.random_range(0..15);
        let version = match cluster_type.as_str() {
            "EKS" => format!(
                "{minor}.{patch}-eks-{:06x}",
                rng.random_range(0..0xff_ffffu32)
            ),
            "GKE" => format!("{minor}.{patch}-gke.{}", rng.random_range(100..2000)),
            _ => format!("{minor}.{patch}"),
        };
        let region = [
            "us-east-1",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-south-1",
        ][rng.random_range(0..5)];
        let count = rng.random_range(f.nodes.0..=f.nodes.1);
        let nodes = (0..count)
            .map(|n| {
                let mut labels = BTreeMap::from([
                    (
                        "topology.kubernetes.io/region".to_string(),
                        region.to_string(),
                    ),
                    (
                        "topology.kubernetes.io/zone".to_string(),
                        format!("{region}{}", ["a", "b", "c"][n % 3]),
                    ),
                ]);
                if let Some(key) = type_label(&cluster_type) {
                    labels.insert(key.into(), format!("{name}-{n}"));
                }
                FleetNode {
                    name: format!("{name}-node-{n}"),
                    labels,
                }
            })
            .collect();
        let mut labels = BTreeMap::new();
        for (key, weights) in &f.labels {
            if let Some(v) = pick_share(weights, rng) {
                labels.insert(key.clone(), v);
            }
        }
        for (key, weights) in &f.federate {
            if let Some(v) = pick_share(weights, rng) {
                labels.insert(format!("kommander.mesosphere.io/federate-{key}"), v);
            }
        }
        if f.federation_disabled > 0.0 && rng.random_bool(f.federation_disabled.min(1.0)) {
            labels.insert(
                "kommander.mesosphere.io/federation-enabled".into(),
                "false".into(),
            );
        }
        FleetCluster {
            name,
            namespace: None,
            kubernetes_version: version,
            nodes,
            labels,
            workspace: None,
        }
    }
}

/// The node label that makes a cluster of `t`, by Kommander's default rules.
fn type_label(t: &str) -> Option<&'static str> {
    match t {
        "Konvoy" => Some("konvoy.mesosphere.com/inventory_hostname"),
        "EKS" => Some("eks.amazonaws.com/nodegroup"),
        "GKE" => Some("cloud.google.com/gke-nodepool"),
        "AKS" => Some("kubernetes.azure.com/cluster"),
        _ => None,
    }
}

/// A weighted choice (weights need not sum to 1).
fn pick(w: &Weights, rng: &mut StdRng) -> Option<String> {
    let total: f64 = w.values().filter(|x| **x > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.random::<f64>() * total;
    for (k, v) in w.iter().filter(|(_, v)| **v > 0.0) {
        if x < *v {
            return Some(k.clone());
        }
        x -= v;
    }
    w.keys().last().cloned()
}

/// Each value with its share of clusters (shares sum to at most 1; the rest gets nothing).
fn pick_share(w: &Weights, rng: &mut StdRng) -> Option<String> {
    let mut x = rng.random::<f64>();
    for (k, v) in w {
        if x < *v {
            return Some(k.clone());
        }
        x -= v;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse_and_generate_deterministically() {
        for (name, _, _) in BUILT_IN {
            let s = Scenario::built_in(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let a = s.generate(50, 0, 7);
            assert_eq!(a, s.generate(50, 0, 7), "{name}: same seed, same fleet");
            assert_ne!(
                a,
                s.generate(50, 0, 8),
                "{name}: another seed, another fleet"
            );
            assert!(a.validate().is_empty(), "{name}: {:?}", a.validate());
        }
    }

    #[test]
    fn errors_carry_lines() {
        let yaml = "name: x\nclusters: 10\ndeadline: 60s\nfleet:\n  types: {Konvoy: 1}\n  versions: {v1.20: 1}\n  colour: red\n";
        let e = Scenario::parse(yaml, "s.yaml")
            .expect_err("unknown field")
            .to_string();
        assert!(
            e.starts_with("s.yaml:7:3: fleet.colour: unknown field `colour`"),
            "{e}"
        );
        let bad_duration = "name: x\nclusters: 10\ndeadline: soon\nfleet:\n  types: {Konvoy: 1}\n  versions: {v1.20: 1}\n";
        let e = Scenario::parse(bad_duration, "s.yaml")
            .expect_err("bad duration")
            .to_string();
        assert!(
            e.contains("s.yaml:3") && e.contains("invalid duration \"soon\""),
            "{e}"
        );
        let bad_type = "name: x\nclusters: 10\ndeadline: 60s\nfleet:\n  types: {Rancher: 1}\n  versions: {v1.20: 1}\n";
        assert!(
            Scenario::parse(bad_type, "s.yaml")
                .expect_err("type")
                .to_string()
                .contains("unknown type \"Rancher\"")
        );
        assert!(
            Scenario::built_in("nope")
                .expect_err("unknown")
                .to_string()
                .contains("built in: default, konvoy-mix")
        );
    }
}
