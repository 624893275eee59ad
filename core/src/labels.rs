//! Cluster facts → the `kommander.mesosphere.io/*` labels on a KubeFedCluster.
//!
//! [`derive_labels`] is a pure function from what the manager observed (nodes, `/version`),
//! the labels the object carries now (a user's and the manager's earlier ones), the policy
//! and the catalog's federate defaults, to the labels the object should carry. Placement
//! reads only these labels, so every fact reaches placement through here.
//!
//! Rules:
//! - `cluster-type` is detected once from node labels by ordered rules; once set it never
//!   changes. [`check_cluster_type_change`] rejects an update that tries.
//! - `kubernetes-version` is `vMAJOR.MINOR` of the reported `gitVersion`, refreshed every time.
//! - `federate-<key>`: a user's `true` / `false` is never overwritten; otherwise the catalog's
//!   declared default as `default-true` / `default-false`.
//! - `cluster-id`, `federation-enabled`, `workspace-ref`: set if absent, then left alone.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::selector::Labels;
use crate::version::{KubeVersion, VersionError};

/// Prefix of every label Kommander owns.
pub const PREFIX: &str = "kommander.mesosphere.io/";
/// A UUID, stable for the cluster.
pub const CLUSTER_ID: &str = "kommander.mesosphere.io/cluster-id";
/// `Konvoy`, `EKS`, `GKE`, `AKS` or `Generic`; immutable once set.
pub const CLUSTER_TYPE: &str = "kommander.mesosphere.io/cluster-type";
/// `vMAJOR.MINOR` of the cluster's Kubernetes.
pub const KUBERNETES_VERSION: &str = "kommander.mesosphere.io/kubernetes-version";
/// `false` stops everything from being federated to the cluster.
pub const FEDERATION_ENABLED: &str = "kommander.mesosphere.io/federation-enabled";
/// Version of the kubeaddons controller the catalog targets.
pub const KUBEADDONS_VERSION: &str = "kommander.mesosphere.io/kubeaddons-version";
/// Prefix of the per-addon opt-in/opt-out labels.
pub const FEDERATE_PREFIX: &str = "kommander.mesosphere.io/federate-";
/// The workspace (a UUID) the cluster belongs to.
pub const WORKSPACE_REF: &str = "workspaces.kommander.mesosphere.io/workspace-ref";

/// Namespace for name-derived UUIDs, so that ids are stable across runs and machines.
const FLOTILLA_UUID_NS: Uuid = Uuid::from_u128(0x6a4f_39c2_1b7e_4d0a_9e51_c3f0_8d2b_7a14);

/// One ordered rule: clusters with a node carrying `node_label` are of `cluster_type`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypeRule {
    /// A node label key whose presence decides the type.
    pub node_label: String,
    /// The type, e.g. `Konvoy`.
    #[serde(rename = "type")]
    pub cluster_type: String,
}

/// How labels are derived; the defaults follow Kommander.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelPolicy {
    /// Tried in order; the first that matches any node wins.
    pub type_rules: Vec<TypeRule>,
    /// Type when no rule matches.
    pub fallback_type: String,
    /// Value of `kubeaddons-version`, if the label is wanted.
    pub kubeaddons_version: Option<String>,
    /// Workspace name for clusters that name none.
    pub default_workspace: String,
}

impl Default for LabelPolicy {
    fn default() -> Self {
        let rule = |l: &str, t: &str| TypeRule {
            node_label: l.into(),
            cluster_type: t.into(),
        };
        Self {
            type_rules: vec![
                rule("konvoy.mesosphere.com/inventory_hostname", "Konvoy"),
                rule("eks.amazonaws.com/nodegroup", "EKS"),
                rule("cloud.google.com/gke-nodepool", "GKE"),
                rule("kubernetes.azure.com/cluster", "AKS"),
            ],
            fallback_type: "Generic".into(),
            kubeaddons_version: Some("v0.26.1".into()),
            default_workspace: "default".into(),
        }
    }
}

/// What the manager observed of a member cluster.
#[derive(Clone, Copy, Debug)]
pub struct ClusterFacts<'a> {
    /// Namespace of the KubeFedCluster.
    pub namespace: &'a str,
    /// Name of the KubeFedCluster.
    pub name: &'a str,
    /// Labels of each node.
    pub node_labels: &'a [BTreeMap<String, String>],
    /// `gitVersion` from the member's `/version`.
    pub git_version: &'a str,
    /// The member's `kube-system` namespace UID, when known: the natural cluster id.
    pub uid: Option<&'a str>,
    /// Workspace name, when the cluster names one.
    pub workspace: Option<&'a str>,
}

/// The labels to write, and what was noticed on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Derived {
    /// The complete label set for the KubeFedCluster.
    pub labels: BTreeMap<String, String>,
    /// Set when the nodes now say another type than the one the cluster keeps.
    pub type_conflict: Option<TypeConflict>,
}

/// Detection disagrees with the recorded (immutable) cluster type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeConflict {
    /// The type the cluster keeps.
    pub kept: String,
    /// The type its nodes say now.
    pub detected: String,
}

/// Why labels could not be derived or changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The cluster's `/version` could not be read as a Kubernetes version.
    #[error("cluster {cluster}: {source}")]
    Version {
        /// The cluster.
        cluster: String,
        /// What was wrong.
        #[source]
        source: VersionError,
    },
    /// An update tried to change or remove the cluster type.
    #[error(
        "cluster {cluster}: label {CLUSTER_TYPE} is immutable once set: it is {from:?} and cannot become {to}"
    )]
    ClusterTypeImmutable {
        /// The cluster.
        cluster: String,
        /// The recorded type.
        from: String,
        /// What the update asked for (`removed` when it dropped the label).
        to: String,
    },
}

/// The type the nodes say, by the policy's ordered rules.
pub fn detect_cluster_type(
    node_labels: &[BTreeMap<String, String>],
    policy: &LabelPolicy,
) -> String {
    policy
        .type_rules
        .iter()
        .find(|r| node_labels.iter().any(|n| n.contains_key(&r.node_label)))
        .map_or_else(|| policy.fallback_type.clone(), |r| r.cluster_type.clone())
}

/// A stable UUID for a name (cluster or workspace).
pub fn name_uuid(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&FLOTILLA_UUID_NS, format!("{kind}/{name}").as_bytes())
}

/// The value written for an addon's `federate-<key>` label when the user set none.
pub fn federate_default_value(default_on: bool) -> &'static str {
    if default_on {
        "default-true"
    } else {
        "default-false"
    }
}

/// Derives a cluster's labels. `federate_defaults` maps each federate key (`kibana` for
/// `kommander.mesosphere.io/federate-kibana`) to whether the catalog federates it by default.
pub fn derive_labels(
    facts: &ClusterFacts<'_>,
    current: &BTreeMap<String, String>,
    policy: &LabelPolicy,
    federate_defaults: &BTreeMap<String, bool>,
) -> Result<Derived, LabelError> {
    let version: KubeVersion = facts
        .git_version
        .parse()
        .map_err(|source| LabelError::Version {
            cluster: facts.name.to_owned(),
            source,
        })?;
    let mut labels = current.clone();
    let mut type_conflict = None;

    let detected = detect_cluster_type(facts.node_labels, policy);
    match current.get(CLUSTER_TYPE) {
        Some(kept) if *kept != detected => {
            type_conflict = Some(TypeConflict {
                kept: kept.clone(),
                detected,
            });
        }
        Some(_) => {}
        None => {
            labels.insert(CLUSTER_TYPE.into(), detected);
        }
    }
    labels.insert(KUBERNETES_VERSION.into(), version.label());
    labels
        .entry(CLUSTER_ID.into())
        .or_insert_with(|| match facts.uid {
            Some(uid) => uid.to_owned(),
            None => {
                name_uuid("cluster", &format!("{}/{}", facts.namespace, facts.name)).to_string()
            }
        });
    labels
        .entry(FEDERATION_ENABLED.into())
        .or_insert_with(|| "true".into());
    labels.entry(WORKSPACE_REF.into()).or_insert_with(|| {
        name_uuid(
            "workspace",
            facts.workspace.unwrap_or(&policy.default_workspace),
        )
        .to_string()
    });
    if let Some(v) = &policy.kubeaddons_version {
        labels.insert(KUBEADDONS_VERSION.into(), v.clone());
    }

    // Defaults we wrote for keys the catalog no longer has go; a user's choice stays.
    labels.retain(|k, v| match k.strip_prefix(FEDERATE_PREFIX) {
        Some(key) => federate_defaults.contains_key(key) || !v.starts_with("default-"),
        None => true,
    });
    for (key, on) in federate_defaults {
        let label = format!("{FEDERATE_PREFIX}{key}");
        let user_set = matches!(current.get(&label).map(String::as_str), Some(v) if !v.starts_with("default-"));
        if !user_set {
            labels.insert(label, federate_default_value(*on).into());
        }
    }
    Ok(Derived {
        labels,
        type_conflict,
    })
}

/// Rejects an update of a KubeFedCluster's labels that changes or removes its type
/// (what the admission policy enforces in a real host cluster).
pub fn check_cluster_type_change(
    cluster: &str,
    old: &impl Labels,
    new: &impl Labels,
) -> Result<(), LabelError> {
    match (old.get(CLUSTER_TYPE), new.get(CLUSTER_TYPE)) {
        (Some(from), to) if Some(from) != to => Err(LabelError::ClusterTypeImmutable {
            cluster: cluster.to_owned(),
            from: from.to_owned(),
            to: to.map_or_else(|| "removed".to_owned(), |t| format!("{t:?}")),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn facts<'a>(nodes: &'a [BTreeMap<String, String>], version: &'a str) -> ClusterFacts<'a> {
        ClusterFacts {
            namespace: "kommander",
            name: "alpha",
            node_labels: nodes,
            git_version: version,
            uid: None,
            workspace: None,
        }
    }

    fn defaults() -> BTreeMap<String, bool> {
        [
            ("cert-manager".to_string(), true),
            ("kibana".to_string(), false),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn konvoy_cluster_gets_the_articles_labels() {
        let nodes = [map(&[(
            "konvoy.mesosphere.com/inventory_hostname",
            "alpha-cp-0",
        )])];
        let d = derive_labels(
            &facts(&nodes, "v1.20.11"),
            &BTreeMap::new(),
            &LabelPolicy::default(),
            &defaults(),
        )
        .expect("derives");
        let l = &d.labels;
        assert_eq!(l[CLUSTER_TYPE], "Konvoy");
        assert_eq!(l[KUBERNETES_VERSION], "v1.20");
        assert_eq!(l[FEDERATION_ENABLED], "true");
        assert_eq!(l[KUBEADDONS_VERSION], "v0.26.1");
        assert_eq!(
            l["kommander.mesosphere.io/federate-cert-manager"],
            "default-true"
        );
        assert_eq!(
            l["kommander.mesosphere.io/federate-kibana"],
            "default-false"
        );
        assert!(Uuid::parse_str(&l[CLUSTER_ID]).is_ok());
        assert!(Uuid::parse_str(&l[WORKSPACE_REF]).is_ok());
        assert_eq!(d.type_conflict, None);
    }

    #[test]
    fn type_rules_are_ordered_and_configurable() {
        let p = LabelPolicy::default();
        let both = [
            map(&[("eks.amazonaws.com/nodegroup", "a")]),
            map(&[("konvoy.mesosphere.com/inventory_hostname", "b")]),
        ];
        assert_eq!(
            detect_cluster_type(&both, &p),
            "Konvoy",
            "Konvoy's rule comes first"
        );
        assert_eq!(
            detect_cluster_type(&[map(&[("cloud.google.com/gke-nodepool", "p")])], &p),
            "GKE"
        );
        assert_eq!(
            detect_cluster_type(&[map(&[("kubernetes.azure.com/cluster", "c")])], &p),
            "AKS"
        );
        assert_eq!(detect_cluster_type(&[map(&[("x", "y")])], &p), "Generic");
        assert_eq!(detect_cluster_type(&[], &p), "Generic");
        let custom = LabelPolicy {
            type_rules: vec![TypeRule {
                node_label: "node.k3s.io/x".into(),
                cluster_type: "K3s".into(),
            }],
            ..LabelPolicy::default()
        };
        assert_eq!(
            detect_cluster_type(&[map(&[("node.k3s.io/x", "")])], &custom),
            "K3s"
        );
    }

    #[test]
    fn cluster_type_never_changes() {
        let konvoy = [map(&[("konvoy.mesosphere.com/inventory_hostname", "a")])];
        let p = LabelPolicy::default();
        let first = derive_labels(
            &facts(&konvoy, "v1.20.1"),
            &BTreeMap::new(),
            &p,
            &defaults(),
        )
        .expect("derives");
        let eks = [map(&[("eks.amazonaws.com/nodegroup", "a")])];
        let second = derive_labels(&facts(&eks, "v1.21.0"), &first.labels, &p, &defaults())
            .expect("derives");
        assert_eq!(second.labels[CLUSTER_TYPE], "Konvoy");
        assert_eq!(
            second.type_conflict,
            Some(TypeConflict {
                kept: "Konvoy".into(),
                detected: "EKS".into()
            })
        );
        assert_eq!(
            second.labels[KUBERNETES_VERSION], "v1.21",
            "the version is refreshed"
        );
        assert_eq!(
            second.labels[CLUSTER_ID], first.labels[CLUSTER_ID],
            "the id is stable"
        );

        let mut edited = first.labels.clone();
        edited.insert(CLUSTER_TYPE.into(), "Generic".into());
        let e = check_cluster_type_change("alpha", &first.labels, &edited).expect_err("rejected");
        assert_eq!(
            e.to_string(),
            "cluster alpha: label kommander.mesosphere.io/cluster-type is immutable once set: it is \"Konvoy\" and cannot become \"Generic\""
        );
        edited.remove(CLUSTER_TYPE);
        assert!(
            check_cluster_type_change("alpha", &first.labels, &edited).is_err(),
            "removal is a change too"
        );
        assert!(
            check_cluster_type_change("alpha", &BTreeMap::new(), &first.labels).is_ok(),
            "first set is fine"
        );
        assert!(check_cluster_type_change("alpha", &first.labels, &first.labels).is_ok());
    }

    #[test]
    fn users_choices_win_and_stale_defaults_go() {
        let current = map(&[
            ("kommander.mesosphere.io/federate-kibana", "true"),
            ("kommander.mesosphere.io/federate-cert-manager", "false"),
            ("kommander.mesosphere.io/federate-gone", "default-true"),
            ("kommander.mesosphere.io/federate-mine", "false"),
            (FEDERATION_ENABLED, "false"),
            ("env", "prod"),
        ]);
        let d = derive_labels(
            &facts(&[], "v1.28.2+k3s1"),
            &current,
            &LabelPolicy::default(),
            &defaults(),
        )
        .expect("derives");
        let l = &d.labels;
        assert_eq!(l["kommander.mesosphere.io/federate-kibana"], "true");
        assert_eq!(l["kommander.mesosphere.io/federate-cert-manager"], "false");
        assert!(!l.contains_key("kommander.mesosphere.io/federate-gone"));
        assert_eq!(l["kommander.mesosphere.io/federate-mine"], "false");
        assert_eq!(l[FEDERATION_ENABLED], "false");
        assert_eq!(l["env"], "prod");
        assert_eq!(l[CLUSTER_TYPE], "Generic");
    }

    #[test]
    fn bad_versions_are_errors() {
        let e = derive_labels(
            &facts(&[], "1.20"),
            &BTreeMap::new(),
            &LabelPolicy::default(),
            &defaults(),
        )
        .expect_err("rejected");
        assert!(
            e.to_string()
                .starts_with("cluster alpha: invalid Kubernetes version \"1.20\""),
            "{e}"
        );
    }

    proptest! {
        /// Derivation is idempotent, keeps every user label outside Kommander's, keeps a
        /// user's federate choice, and always yields valid label values.
        #[test]
        fn derivation_rules(
            user in proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..6),
            choices in proptest::collection::btree_map(prop_oneof![Just("kibana"), Just("cert-manager"), Just("x")], prop_oneof![Just("true"), Just("false"), Just("default-true")], 0..3),
            konvoy in any::<bool>(),
            minor in 10u32..40,
        ) {
            let mut current = user.clone();
            for (k, v) in &choices {
                current.insert(format!("{FEDERATE_PREFIX}{k}"), v.to_string());
            }
            let nodes = if konvoy { vec![map(&[("konvoy.mesosphere.com/inventory_hostname", "n")])] } else { vec![] };
            let version = format!("v1.{minor}.3");
            let f = facts(&nodes, &version);
            let p = LabelPolicy::default();
            let once = derive_labels(&f, &current, &p, &defaults()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let twice = derive_labels(&f, &once.labels, &p, &defaults()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&once, &twice);
            for (k, v) in &user {
                prop_assert_eq!(once.labels.get(k), Some(v));
            }
            for (k, v) in &choices {
                let got = once.labels.get(&format!("{FEDERATE_PREFIX}{k}")).map(String::as_str);
                if *v != "default-true" {
                    prop_assert_eq!(got, Some(*v));
                }
            }
            prop_assert_eq!(once.labels[KUBERNETES_VERSION].clone(), format!("v1.{minor}"));
            prop_assert_eq!(once.labels[CLUSTER_TYPE].as_str(), if konvoy { "Konvoy" } else { "Generic" });
            for (k, v) in &once.labels {
                prop_assert!(crate::syntax::is_label_key(k), "{}", k);
                prop_assert!(crate::syntax::is_label_value(v), "{}={}", k, v);
            }
        }
    }
}
