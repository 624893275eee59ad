//! Fixtures shared by the benchmarks: the article's catalog grown to 20 addons, and a fleet
//! of clusters with varied types, versions and user labels, labels derived as the manager
//! would derive them.

use std::collections::BTreeMap;

use flotilla_core::catalog::{Catalog, CatalogAddon, CatalogObject};
use flotilla_core::labels::{ClusterFacts, LabelPolicy, derive_labels};
use flotilla_core::yaml::parse_catalog;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ARTICLE_CATALOG: &str = include_str!("../../docs/examples/catalog.yaml");

/// The article's 16 addons plus 4 that select on user labels (env, region, team), 20 in all.
pub fn catalog20() -> Catalog {
    let (parsed, errors) = parse_catalog(ARTICLE_CATALOG, "catalog.yaml");
    assert!(errors.is_empty(), "the example catalog parses: {errors:?}");
    let mut objects: Vec<CatalogObject> = parsed.into_iter().map(|s| s.value).collect();
    let extra = [
        (
            "team-dashboards",
            serde_json::json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "team", "operator": "Exists"}]}),
        ),
        (
            "eu-gdpr-audit",
            serde_json::json!({"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu-west-1", "eu-central-1"]}]}),
        ),
        (
            "canary-agent",
            serde_json::json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}, {"key": "kommander.mesosphere.io/federate-canary-agent", "operator": "In", "values": ["true", "default-true"]}]}),
        ),
        (
            "legacy-shim",
            serde_json::json!({"matchExpressions": [{"key": "kommander.mesosphere.io/kubernetes-version", "operator": "In", "values": ["v1.16", "v1.17", "v1.18"]}, {"key": "legacy", "operator": "DoesNotExist"}]}),
        ),
    ];
    for (name, sel) in extra {
        let v = serde_json::json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedAddon",
            "metadata": {"name": name, "namespace": "kubeaddons"},
            "spec": {"template": {"spec": {}}, "placement": {"clusterSelector": sel}}});
        objects.push(CatalogObject::Addon(
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{name}: {e}")),
        ));
    }
    let addons = objects
        .iter()
        .map(|o| CatalogAddon::compile(o).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    Catalog::new(addons).unwrap_or_else(|e| panic!("{e}"))
}

/// `n` clusters (name, derived labels), deterministic for a seed.
pub fn fleet(n: usize, seed: u64, catalog: &Catalog) -> Vec<(String, BTreeMap<String, String>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let policy = LabelPolicy::default();
    let defaults = catalog.federate_defaults();
    let node_keys = [
        "konvoy.mesosphere.com/inventory_hostname",
        "eks.amazonaws.com/nodegroup",
        "cloud.google.com/gke-nodepool",
        "kubernetes.azure.com/cluster",
        "kubernetes.io/os",
    ];
    let envs = ["prod", "staging", "dev"];
    let regions = [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-south-1",
    ];
    (0..n)
        .map(|i| {
            let name = format!("cluster-{i:05}");
            let node = BTreeMap::from([(
                node_keys[rng.random_range(0..node_keys.len())].to_string(),
                "n".to_string(),
            )]);
            let version = format!(
                "v1.{}.{}",
                rng.random_range(16..=33),
                rng.random_range(0..12)
            );
            let mut user = BTreeMap::from([
                (
                    "env".to_string(),
                    envs[rng.random_range(0..envs.len())].to_string(),
                ),
                (
                    "region".to_string(),
                    regions[rng.random_range(0..regions.len())].to_string(),
                ),
            ]);
            if rng.random_bool(0.5) {
                user.insert("team".into(), format!("team-{}", rng.random_range(0..20)));
            }
            if rng.random_bool(0.2) {
                user.insert(
                    "kommander.mesosphere.io/federate-kibana".into(),
                    "true".into(),
                );
            }
            if rng.random_bool(0.05) {
                user.insert(
                    "kommander.mesosphere.io/federation-enabled".into(),
                    "false".into(),
                );
            }
            let facts = ClusterFacts {
                namespace: "kommander",
                name: &name,
                node_labels: std::slice::from_ref(&node),
                git_version: &version,
                uid: None,
                workspace: None,
            };
            let labels = derive_labels(&facts, &user, &policy, &defaults)
                .unwrap_or_else(|e| panic!("{e}"))
                .labels;
            (name, labels)
        })
        .collect()
}
