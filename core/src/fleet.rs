//! FLEET.yaml: the clusters to attach, as facts (nodes, reported version) plus the labels a
//! user set. The same file drives `place`/`explain`, the simulator and the real-mode tests.
//!
//! ```yaml
//! clusters:
//!   - name: alpha
//!     kubernetesVersion: v1.20.11          # what the cluster's /version reports
//!     nodes:
//!       - name: alpha-cp-0
//!         labels: {konvoy.mesosphere.com/inventory_hostname: alpha-cp-0}
//!     labels:                               # optional: labels a user set on the KubeFedCluster
//!       kommander.mesosphere.io/federate-kibana: "true"
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::explain::ClusterView;
use crate::field::{FieldError, FieldPath};
use crate::labels::{ClusterFacts, LabelError, LabelPolicy, TypeConflict, TypeRule, derive_labels};
use crate::syntax::label_map_errors;
use crate::version::KubeVersion;

/// Namespace KubeFedClusters live in unless told otherwise (Kommander's).
pub const DEFAULT_NAMESPACE: &str = "kommander";

/// A fleet of clusters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fleet {
    /// Ordered rules for `cluster-type`; Kommander's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_type_rules: Option<Vec<TypeRule>>,
    /// The clusters.
    pub clusters: Vec<FleetCluster>,
}

/// One cluster of a fleet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetCluster {
    /// The KubeFedCluster's name.
    pub name: String,
    /// The KubeFedCluster's namespace (`kommander` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What the cluster's `/version` reports as `gitVersion`.
    pub kubernetes_version: String,
    /// Its nodes (only their labels matter for placement).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<FleetNode>,
    /// Labels a user set on the KubeFedCluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Workspace name (the `workspace-ref` label is derived from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
}

/// A node of a fleet cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetNode {
    /// The node's name.
    pub name: String,
    /// The node's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A fleet cluster with its derived labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCluster {
    /// What explain and placement see.
    pub view: ClusterView,
    /// The nodes disagree with a cluster type set earlier.
    pub type_conflict: Option<TypeConflict>,
}

impl FleetCluster {
    /// The namespace, defaulted.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

impl Fleet {
    /// The label policy this fleet asks for.
    pub fn policy(&self) -> LabelPolicy {
        let mut p = LabelPolicy::default();
        if let Some(rules) = &self.cluster_type_rules {
            p.type_rules = rules.clone();
        }
        p
    }

    /// Checks what serde cannot: unique names, label syntax, versions. Paths are kubectl's.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let p = FieldPath::new("clusters").index(i);
            if c.name.is_empty() {
                errs.push(FieldError::required(
                    p.child("name"),
                    "every cluster needs a name",
                ));
            } else if !seen.insert((c.namespace(), c.name.as_str())) {
                errs.push(FieldError::invalid(
                    p.child("name"),
                    &c.name,
                    "duplicate cluster name",
                ));
            }
            if let Err(e) = c.kubernetes_version.parse::<KubeVersion>() {
                errs.push(FieldError::invalid(
                    p.child("kubernetesVersion"),
                    &c.kubernetes_version,
                    e.reason,
                ));
            }
            errs.extend(label_map_errors(&c.labels, &p.child("labels")));
            for (j, n) in c.nodes.iter().enumerate() {
                errs.extend(label_map_errors(
                    &n.labels,
                    &p.child("nodes").index(j).child("labels"),
                ));
            }
        }
        errs
    }

    /// Derives every cluster's labels against `catalog`, as the manager would at attach.
    pub fn resolve(&self, catalog: &Catalog) -> Result<Vec<ResolvedCluster>, LabelError> {
        let policy = self.policy();
        let defaults = catalog.federate_defaults();
        self.clusters
            .iter()
            .map(|c| {
                let node_labels: Vec<BTreeMap<String, String>> =
                    c.nodes.iter().map(|n| n.labels.clone()).collect();
                let facts = ClusterFacts {
                    namespace: c.namespace(),
                    name: &c.name,
                    node_labels: &node_labels,
                    git_version: &c.kubernetes_version,
                    uid: None,
                    workspace: c.workspace.as_deref(),
                };
                let d = derive_labels(&facts, &c.labels, &policy, &defaults)?;
                Ok(ResolvedCluster {
                    view: ClusterView {
                        name: c.name.clone(),
                        labels: d.labels,
                        version: c.kubernetes_version.parse().ok(),
                    },
                    type_conflict: d.type_conflict,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_with_paths() {
        let f = Fleet {
            cluster_type_rules: None,
            clusters: vec![
                FleetCluster {
                    name: "a".into(),
                    kubernetes_version: "v1.20.1".into(),
                    ..Default::default()
                },
                FleetCluster {
                    name: "a".into(),
                    kubernetes_version: "1.20".into(),
                    labels: [("env".to_string(), "-x".to_string())].into(),
                    ..Default::default()
                },
            ],
        };
        let errs: Vec<String> = f.validate().iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(
            errs[0],
            "clusters[1].name: Invalid value: \"a\": duplicate cluster name"
        );
        assert_eq!(
            errs[1],
            "clusters[1].kubernetesVersion: Invalid value: \"1.20\": must start with 'v'"
        );
        assert!(errs[2].starts_with("clusters[1].labels[env]: Invalid value: \"-x\""));
    }
}
