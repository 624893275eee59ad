//! Why an addon is, or is not, on a cluster.
//!
//! KubeFed's users most wanted this (kubefed#951: resources silently not propagated). For a
//! (cluster, addon) pair, [`explain_pair`] lists every placement requirement with the
//! cluster's actual value; then, for a placed pair, what would still keep the addon from
//! becoming ready: a Kubernetes version outside the addon's supported range, or a `requires`
//! that nothing placed on the cluster satisfies (followed down the chain).
//! [`selection_summary`] condenses one addon over a fleet in the style of Karmada's
//! scheduler: `1/4 clusters selected: 3 failed <requirement>`.
//!
//! This is the slow, wordy path, used on demand; decisions come from the same rules as
//! [`crate::placement`], and tests hold the two together.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};

use crate::catalog::{Catalog, CatalogAddon, Target};
use crate::labels::{FEDERATION_ENABLED, KUBERNETES_VERSION, PREFIX};
use crate::placement::is_placed_plain;
use crate::selector::{Labels, Operator, Requirement, Selector};
use crate::version::KubeVersion;

/// What explain needs to know about a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// The cluster's name.
    pub name: String,
    /// Its KubeFedCluster labels (derived).
    pub labels: BTreeMap<String, String>,
    /// Its full version, when known; else read from the version label.
    pub version: Option<KubeVersion>,
}

impl ClusterView {
    fn version(&self) -> Option<KubeVersion> {
        self.version.or_else(|| {
            let l = self.labels.get(KUBERNETES_VERSION)?;
            format!("{l}.0").parse().ok()
        })
    }
}

/// One line of an explanation: a requirement and how the cluster fares against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Whether it holds.
    pub ok: bool,
    /// The requirement, e.g. `kommander.mesosphere.io/cluster-type NotIn [Konvoy]`.
    pub requirement: String,
    /// The cluster's value, e.g. `Konvoy`, `absent`, or the cluster name for a list.
    pub actual: String,
    /// A short form of a failure, e.g. `cluster-type=Konvoy`.
    pub short: String,
}

/// Why a pair is or is not placed, and what would keep it from becoming ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairExplanation {
    /// The cluster.
    pub cluster: String,
    /// The addon, as kubectl names it (`kubeaddons/reloader`).
    pub addon: String,
    /// The placement decision.
    pub placed: bool,
    /// Requirement by requirement.
    pub checks: Vec<Check>,
    /// For a placed pair: what will keep it pending or failed.
    pub blocked: Vec<String>,
}

impl PairExplanation {
    /// The requirements that do not hold.
    pub fn unmet(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.requirement.clone())
            .collect()
    }
}

impl fmt::Display for PairExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.placed, self.blocked.is_empty()) {
            (false, _) => "not placed",
            (true, true) => "placed",
            (true, false) => "placed, blocked",
        };
        writeln!(f, "{} -> {}: {verdict}", self.addon, self.cluster)?;
        let width = self
            .checks
            .iter()
            .map(|c| c.requirement.len())
            .max()
            .unwrap_or(0);
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            writeln!(f, "  {mark}  {:<width$}  ({})", c.requirement, c.actual)?;
        }
        for b in &self.blocked {
            writeln!(f, "  blocked: {b}")?;
        }
        Ok(())
    }
}

fn shown(v: Option<&str>) -> String {
    match v {
        None => "absent".into(),
        Some("") => "\"\"".into(),
        Some(v) => v.into(),
    }
}

fn short_key(key: &str) -> &str {
    key.strip_prefix(PREFIX).unwrap_or(key)
}

fn requirement_check<L: Labels + ?Sized>(r: &Requirement, labels: &L) -> Check {
    let actual = labels.get(&r.key);
    Check {
        ok: r.matches_value(actual),
        requirement: r.to_string(),
        actual: shown(actual),
        short: match actual {
            Some(v) => format!("{}={v}", short_key(&r.key)),
            None => format!("{} absent", short_key(&r.key)),
        },
    }
}

/// The placement checks of one pair, gate first.
fn checks(addon: &CatalogAddon, cluster: &ClusterView) -> Vec<Check> {
    checks_on(addon, &cluster.name, &cluster.labels)
}

fn checks_on<L: Labels + ?Sized>(addon: &CatalogAddon, name: &str, labels: &L) -> Vec<Check> {
    let cluster = Named { name, labels };
    let mut out = Vec::new();
    let enabled = cluster.labels.get(FEDERATION_ENABLED);
    if enabled == Some("false") {
        out.push(requirement_check(&federation_gate(), cluster.labels));
    }
    match &addon.target {
        Target::Clusters(names) => {
            let ok = names.iter().any(|n| n == cluster.name);
            out.push(Check {
                ok,
                requirement: listed_text(names),
                actual: cluster.name.to_owned(),
                short: format!("{} is not in spec.placement.clusters", cluster.name),
            });
        }
        Target::Selector(Selector::Nothing) => out.push(Check {
            ok: false,
            requirement: NO_PLACEMENT.into(),
            actual: "selects no cluster".into(),
            short: "it has no placement".into(),
        }),
        Target::Selector(Selector::All(reqs)) if reqs.is_empty() => out.push(Check {
            ok: true,
            requirement: "clusterSelector {} selects every cluster".into(),
            actual: cluster.name.to_owned(),
            short: String::new(),
        }),
        Target::Selector(Selector::All(reqs)) => {
            out.extend(reqs.iter().map(|r| requirement_check(r, cluster.labels)));
        }
    }
    out
}

/// Why a placed addon would fail on this cluster's version, if it would.
fn version_problem(addon: &CatalogAddon, cluster: &ClusterView) -> Option<String> {
    let v = cluster.version()?;
    if let Some(min) = addon.min_version.filter(|b| !b.allows_min(&v)) {
        return Some(format!(
            "cluster {} runs {v}, below minSupportedVersion {min}",
            cluster.name
        ));
    }
    if let Some(max) = addon.max_version.filter(|b| !b.allows_max(&v)) {
        return Some(format!(
            "cluster {} runs {v}, above maxSupportedVersion {max}",
            cluster.name
        ));
    }
    None
}

fn selector_text(s: &Selector) -> String {
    match s {
        Selector::Nothing => "nothing".into(),
        Selector::All(reqs) if reqs.is_empty() => "any addon".into(),
        Selector::All(reqs) => reqs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

struct Named<'a, L: ?Sized> {
    name: &'a str,
    labels: &'a L,
}

/// What keeps a placed addon from becoming ready on `cluster`; empty when nothing does.
fn blockers(
    catalog: &Catalog,
    cluster: &ClusterView,
    addon: usize,
    visiting: &mut HashSet<usize>,
) -> Vec<String> {
    let a = &catalog.addons()[addon];
    let mut out = Vec::new();
    if let Some(p) = version_problem(a, cluster) {
        out.push(format!("{p}: the agent will fail {}", a.id.name));
    }
    if !visiting.insert(addon) {
        return vec![format!("{} is part of a requires cycle", a.id.name)];
    }
    for req in &a.requires {
        let candidates: Vec<usize> = (0..catalog.addons().len())
            .filter(|&j| j != addon && req.matches(&catalog.addons()[j].labels))
            .collect();
        let Some(&first) = candidates.first() else {
            out.push(format!(
                "{} requires {}, which no addon in the catalog provides",
                a.id.name,
                selector_text(req)
            ));
            continue;
        };
        let placed: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&j| is_placed_plain(catalog, j, &cluster.name, &cluster.labels))
            .collect();
        if placed.is_empty() {
            let why = checks(&catalog.addons()[first], cluster)
                .into_iter()
                .find(|c| !c.ok)
                .map(|c| c.short)
                .unwrap_or_default();
            out.push(format!(
                "{} requires {}, which is not placed on {}: {why}",
                a.id.name,
                catalog.addons()[first].id.name,
                cluster.name
            ));
            continue;
        }
        // Satisfied if any placed candidate is itself unblocked.
        let mut inner = Vec::new();
        for &j in &placed {
            let b = blockers(catalog, cluster, j, visiting);
            if b.is_empty() {
                inner.clear();
                break;
            }
            inner.push((j, b));
        }
        if let Some((j, b)) = inner.first() {
            out.push(format!(
                "{} requires {}, which is blocked on {}: {}",
                a.id.name,
                catalog.addons()[*j].id.name,
                cluster.name,
                b.join("; ")
            ));
        }
    }
    visiting.remove(&addon);
    out
}

/// Explains one (cluster, addon) pair.
pub fn explain_pair(catalog: &Catalog, cluster: &ClusterView, addon: usize) -> PairExplanation {
    let a = &catalog.addons()[addon];
    let checks = checks(a, cluster);
    let placed = checks.iter().all(|c| c.ok);
    debug_assert_eq!(
        placed,
        is_placed_plain(catalog, addon, &cluster.name, &cluster.labels)
    );
    let blocked = if placed {
        blockers(catalog, cluster, addon, &mut HashSet::new())
    } else {
        Vec::new()
    };
    PairExplanation {
        cluster: cluster.name.clone(),
        addon: a.id.to_string(),
        placed,
        checks,
        blocked,
    }
}

/// One addon over a fleet: `N/M clusters selected: K failed <requirement>; ...`, reasons
/// counted by the first requirement each unselected cluster fails, most common first.
pub fn selection_summary(catalog: &Catalog, clusters: &[ClusterView], addon: usize) -> String {
    summarize(
        &catalog.addons()[addon],
        clusters.iter().map(|c| (c.name.as_str(), &c.labels)),
    )
}

/// The first placement check a cluster fails, named by position: what [`checks_on`] finds,
/// without building its text. The manager keeps a [`SelectionTally`] per addon and counts
/// a cluster in and out whenever its labels change, so this runs twice per addon then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    /// `federation-enabled=false`.
    Gate,
    /// Not in `spec.placement.clusters`.
    NotListed,
    /// Neither clusters nor a selector.
    NoPlacement,
    /// The selector's requirement at this index.
    Requirement(usize),
}

fn first_failure<L: Labels + ?Sized>(
    addon: &CatalogAddon,
    name: &str,
    labels: &L,
) -> Option<Failure> {
    if labels.get(FEDERATION_ENABLED) == Some("false") {
        return Some(Failure::Gate);
    }
    match &addon.target {
        Target::Clusters(names) => (!names.iter().any(|n| n == name)).then_some(Failure::NotListed),
        Target::Selector(Selector::Nothing) => Some(Failure::NoPlacement),
        Target::Selector(Selector::All(reqs)) => reqs
            .iter()
            .position(|r| !r.matches_value(labels.get(&r.key)))
            .map(Failure::Requirement),
    }
}

/// The requirement text [`checks_on`] gives the check `f` names.
fn failure_text(addon: &CatalogAddon, f: Failure) -> String {
    match (f, &addon.target) {
        (Failure::Gate, _) => federation_gate().to_string(),
        (Failure::NotListed, Target::Clusters(names)) => listed_text(names),
        (Failure::Requirement(i), Target::Selector(Selector::All(reqs))) => {
            reqs.get(i).map(ToString::to_string).unwrap_or_default()
        }
        _ => NO_PLACEMENT.into(),
    }
}

/// The gate every placement passes first.
fn federation_gate() -> Requirement {
    Requirement {
        key: FEDERATION_ENABLED.into(),
        operator: Operator::NotIn,
        values: vec!["false".into()],
    }
}

/// The requirement a `spec.placement.clusters` list sets.
fn listed_text(names: &[String]) -> String {
    format!("listed in spec.placement.clusters [{}]", names.join(" "))
}

/// The requirement a placement with neither clusters nor a selector fails.
const NO_PLACEMENT: &str = "spec.placement has neither clusters nor clusterSelector";

/// [`selection_summary`] for one addon over `(name, labels)` pairs.
pub fn summarize<'a, L: Labels + ?Sized + 'a>(
    addon: &CatalogAddon,
    clusters: impl IntoIterator<Item = (&'a str, &'a L)>,
) -> String {
    let mut tally = SelectionTally::default();
    for (name, labels) in clusters {
        tally.count(addon, name, labels, true);
    }
    tally.text(addon)
}

/// One addon's selection across a fleet, kept a cluster at a time: the manager's status
/// says "N/M clusters selected: K failed <requirement>" without reading the whole fleet
/// each time one cluster's labels move.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectionTally {
    selected: usize,
    total: usize,
    failures: BTreeMap<Failure, usize>,
}

impl SelectionTally {
    /// Counts a cluster in (`add`), or takes it out with the labels it was counted with.
    pub fn count<L: Labels + ?Sized>(
        &mut self,
        addon: &CatalogAddon,
        name: &str,
        labels: &L,
        add: bool,
    ) {
        let step = |n: &mut usize| *n = if add { *n + 1 } else { n.saturating_sub(1) };
        step(&mut self.total);
        match first_failure(addon, name, labels) {
            None => step(&mut self.selected),
            Some(f) => {
                let n = self.failures.entry(f).or_default();
                step(n);
                if *n == 0 {
                    self.failures.remove(&f);
                }
            }
        }
    }

    /// `N/M clusters selected: K failed <requirement>; ...`.
    pub fn text(&self, addon: &CatalogAddon) -> String {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (&f, &n) in &self.failures {
            *reasons.entry(failure_text(addon, f)).or_default() += n;
        }
        summary_text(self.selected, self.total, reasons)
    }
}

/// `N/M clusters selected: K failed <requirement>; ...`, most common reason first.
fn summary_text(selected: usize, total: usize, reasons: BTreeMap<String, usize>) -> String {
    let mut out = format!("{selected}/{total} clusters selected");
    let mut sorted: Vec<(String, usize)> = reasons.into_iter().collect();
    sorted.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    for (i, (req, n)) in sorted.iter().enumerate() {
        let sep = if i == 0 { ": " } else { "; " };
        let _ = write!(out, "{sep}{n} failed {req}");
    }
    out
}

/// A name `explain` was asked about that is not there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// No such addon in the catalog.
    #[error("no addon {name:?} in the catalog; it has: {}", known.join(", "))]
    UnknownAddon {
        /// What was asked for.
        name: String,
        /// What the catalog holds.
        known: Vec<String>,
    },
    /// No such cluster in the fleet.
    #[error("no cluster {name:?} in the fleet; it has: {}", known.join(", "))]
    UnknownCluster {
        /// What was asked for.
        name: String,
        /// What the fleet holds.
        known: Vec<String>,
    },
}

/// Why addons are (not) placed: for one pair, one cluster, one addon, or the whole fleet.
///
/// The one text both the simulator and `flotilla-manager explain` print.
pub fn report(
    catalog: &Catalog,
    views: &[ClusterView],
    cluster: Option<&str>,
    addon: Option<&str>,
) -> Result<String, ExplainError> {
    let addons: Vec<usize> = match addon {
        Some(a) => vec![catalog.find(a).ok_or_else(|| ExplainError::UnknownAddon {
            name: a.to_owned(),
            known: catalog.addons().iter().map(|x| x.id.to_string()).collect(),
        })?],
        None => (0..catalog.addons().len()).collect(),
    };
    let selected: Vec<&ClusterView> = match cluster {
        Some(name) => vec![views.iter().find(|v| v.name == name).ok_or_else(|| {
            ExplainError::UnknownCluster {
                name: name.to_owned(),
                known: views.iter().map(|v| v.name.clone()).collect(),
            }
        })?],
        None => views.iter().collect(),
    };
    let mut out = String::new();
    if cluster.is_none() && addon.is_none() {
        // Fleet overview: one summary line per addon.
        for &a in &addons {
            let _ = writeln!(
                out,
                "{}: {}",
                catalog.addons()[a].id,
                selection_summary(catalog, views, a)
            );
        }
        return Ok(out);
    }
    for &a in &addons {
        if cluster.is_none() {
            let _ = writeln!(
                out,
                "{}: {}",
                catalog.addons()[a].id,
                selection_summary(catalog, views, a)
            );
        }
        for v in &selected {
            let _ = write!(out, "{}", explain_pair(catalog, v, a));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogAddon, CatalogObject};
    use proptest::prelude::*;

    fn addon(name: &str, spec: serde_json::Value) -> CatalogAddon {
        let v = serde_json::json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedAddon",
            "metadata": {"name": name, "namespace": "kubeaddons"}, "spec": spec});
        CatalogAddon::compile(&CatalogObject::Addon(
            serde_json::from_value(v).expect("object"),
        ))
        .expect("valid")
    }

    fn cluster(name: &str, labels: &[(&str, &str)]) -> ClusterView {
        ClusterView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            version: None,
        }
    }

    fn federate(key: &str) -> serde_json::Value {
        serde_json::json!({"key": format!("kommander.mesosphere.io/federate-{key}"), "operator": "In", "values": ["true", "default-true"]})
    }

    fn fixture() -> Catalog {
        let non_konvoy = serde_json::json!({"clusterSelector": {"matchExpressions": [
            {"key": "kommander.mesosphere.io/cluster-type", "operator": "Exists"},
            {"key": "kommander.mesosphere.io/cluster-type", "operator": "NotIn", "values": ["Konvoy"]}]}});
        Catalog::new(vec![
            addon("reloader", serde_json::json!({"template": {"spec": {}}, "placement": non_konvoy})),
            addon("elasticsearch", serde_json::json!({"template": {"spec": {}},
                "placement": {"clusterSelector": {"matchExpressions": [federate("elasticsearch")]}}})),
            addon("kibana", serde_json::json!({
                "template": {"spec": {"requires": [{"matchLabels": {"kubeaddons.mesosphere.io/name": "elasticsearch"}}],
                                      "kubernetes": {"maxSupportedVersion": "v1.20"}}},
                "placement": {"clusterSelector": {"matchExpressions": [federate("kibana")]}}})),
        ])
        .expect("unique")
    }

    #[test]
    fn explains_requirement_by_requirement() {
        let c = fixture();
        let alpha = cluster(
            "alpha",
            &[("kommander.mesosphere.io/cluster-type", "Konvoy")],
        );
        let i = c.find("kubeaddons/reloader").expect("present");
        let e = explain_pair(&c, &alpha, i);
        assert!(!e.placed);
        assert_eq!(
            e.to_string(),
            "kubeaddons/reloader -> alpha: not placed\n\
             \x20 ok    kommander.mesosphere.io/cluster-type Exists          (Konvoy)\n\
             \x20 FAIL  kommander.mesosphere.io/cluster-type NotIn [Konvoy]  (Konvoy)\n"
        );
        assert_eq!(
            e.unmet(),
            ["kommander.mesosphere.io/cluster-type NotIn [Konvoy]"]
        );
    }

    #[test]
    fn requires_chain_and_versions() {
        let c = fixture();
        let kibana = c.find("kibana").expect("present");
        let alpha = cluster(
            "alpha",
            &[
                ("kommander.mesosphere.io/federate-kibana", "true"),
                (
                    "kommander.mesosphere.io/federate-elasticsearch",
                    "default-false",
                ),
                ("kommander.mesosphere.io/kubernetes-version", "v1.20"),
            ],
        );
        let e = explain_pair(&c, &alpha, kibana);
        assert!(e.placed);
        assert_eq!(
            e.blocked,
            [
                "kibana requires elasticsearch, which is not placed on alpha: federate-elasticsearch=default-false"
            ]
        );

        let mut beta = alpha.clone();
        beta.name = "beta".into();
        beta.labels.insert(
            "kommander.mesosphere.io/federate-elasticsearch".into(),
            "true".into(),
        );
        beta.version = Some("v1.21.3".parse().expect("version"));
        let e = explain_pair(&c, &beta, kibana);
        assert_eq!(
            e.blocked,
            [
                "cluster beta runs v1.21.3, above maxSupportedVersion v1.20: the agent will fail kibana"
            ]
        );
        assert!(
            e.to_string()
                .starts_with("kubeaddons/kibana -> beta: placed, blocked\n")
        );

        let mut gamma = beta.clone();
        gamma.version = Some("v1.20.1".parse().expect("version"));
        assert!(explain_pair(&c, &gamma, kibana).blocked.is_empty());
    }

    /// What `summarize` did before it named failures by position: every check built, the
    /// first failing one's text counted.
    fn summarize_by_checks(
        addon: &CatalogAddon,
        clusters: &[(String, BTreeMap<String, String>)],
    ) -> String {
        let (mut selected, mut reasons) = (0usize, BTreeMap::<String, usize>::new());
        for (name, labels) in clusters {
            match checks_on(addon, name, labels).into_iter().find(|c| !c.ok) {
                None => selected += 1,
                Some(f) => *reasons.entry(f.requirement).or_default() += 1,
            }
        }
        summary_text(selected, clusters.len(), reasons)
    }

    /// A cluster's labels, drawn from the keys and values the placement fixtures use.
    fn arb_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(
            proptest::sample::select(crate::placement::tests::KEYS).prop_map(String::from),
            proptest::sample::select(crate::placement::tests::VALUES).prop_map(String::from),
            0..5,
        )
    }

    proptest! {
        /// Naming failures by position says exactly what building every check said.
        #[test]
        fn summary_equals_the_checks_it_summarises(
            placements in proptest::collection::vec(crate::placement::tests::arb_placement(), 1..5),
            clusters in proptest::collection::vec(arb_labels(), 0..8),
        ) {
            let c = crate::placement::tests::catalog(&placements);
            let fleet: Vec<(String, BTreeMap<String, String>)> = clusters
                .into_iter()
                .enumerate()
                .map(|(i, l)| (format!("c{i}"), l))
                .collect();
            for a in c.addons() {
                let fast = summarize(a, fleet.iter().map(|(n, l)| (n.as_str(), l)));
                prop_assert_eq!(fast, summarize_by_checks(a, &fleet));
            }
        }

        /// Counting clusters in and out (a relabel is one of each) leaves the tally a fresh
        /// count of the fleet that is left would give.
        #[test]
        fn a_tally_kept_cluster_by_cluster_equals_a_fresh_one(
            placements in proptest::collection::vec(crate::placement::tests::arb_placement(), 1..4),
            before in proptest::collection::vec(arb_labels(), 1..8),
            after in proptest::collection::vec(proptest::option::of(arb_labels()), 1..8),
        ) {
            let c = crate::placement::tests::catalog(&placements);
            let name = |i: usize| format!("c{i}");
            for a in c.addons() {
                let mut kept = SelectionTally::default();
                for (i, l) in before.iter().enumerate() {
                    kept.count(a, &name(i), l, true);
                }
                // Each cluster is relabelled (Some) or leaves (None).
                let mut left = Vec::new();
                for (i, l) in before.iter().enumerate() {
                    match after.get(i) {
                        Some(Some(new)) => {
                            kept.count(a, &name(i), l, false);
                            kept.count(a, &name(i), new, true);
                            left.push((name(i), new.clone()));
                        }
                        Some(None) => kept.count(a, &name(i), l, false),
                        None => left.push((name(i), l.clone())),
                    }
                }
                prop_assert_eq!(kept.text(a), summarize_by_checks(a, &left));
            }
        }
    }

    #[test]
    fn summary_counts_first_failures() {
        let c = fixture();
        let reloader = c.find("reloader").expect("present");
        let fleet = [
            cluster("a", &[("kommander.mesosphere.io/cluster-type", "Konvoy")]),
            cluster("b", &[("kommander.mesosphere.io/cluster-type", "Konvoy")]),
            cluster("c", &[]),
            cluster("d", &[("kommander.mesosphere.io/cluster-type", "EKS")]),
        ];
        assert_eq!(
            selection_summary(&c, &fleet, reloader),
            "1/4 clusters selected: 2 failed kommander.mesosphere.io/cluster-type NotIn [Konvoy]; \
             1 failed kommander.mesosphere.io/cluster-type Exists"
        );
        let off = cluster(
            "e",
            &[
                ("kommander.mesosphere.io/cluster-type", "EKS"),
                (FEDERATION_ENABLED, "false"),
            ],
        );
        let e = explain_pair(&c, &off, reloader);
        assert!(!e.placed);
        assert_eq!(
            e.unmet(),
            ["kommander.mesosphere.io/federation-enabled NotIn [false]"]
        );
    }
}
