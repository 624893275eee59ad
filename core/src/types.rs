//! The API objects, with the groups, kinds and printer columns of Kommander, KubeFed and
//! kubeaddons, so that the article's `kubectl get/describe` commands work unchanged.
//!
//! | kind | group | scope |
//! |---|---|---|
//! | `KubeFedCluster` | `core.kubefed.io/v1beta1` | namespaced |
//! | `FederatedAddon` / `FederatedClusterAddon` | `types.kubefed.io/v1beta1` | namespaced / cluster |
//! | `Addon` / `ClusterAddon` | `kubeaddons.mesosphere.io/v1beta1` | namespaced / cluster |
//!
//! The cluster-scoped kinds share their spec with the namespaced ones through a transparent
//! newtype, so code handles both through one type. Spec types deny unknown fields: a typo in
//! a catalog is an error with its line, not a silently ignored setting.

use std::borrow::Cow;
use std::collections::BTreeMap;

use compact_str::CompactString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, CustomResourceExt};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::selector::LabelSelector;

/// Label that marks objects the manager created in member clusters (KubeFed's).
pub const MANAGED_LABEL: &str = "kubefed.io/managed";
/// Annotation that carries an addon's revision (kubeaddons').
pub const REVISION_ANNOTATION: &str = "catalog.kubeaddons.mesosphere.io/addon-revision";
/// Label by which addons find each other in `requires` (kubeaddons').
pub const ADDON_NAME_LABEL: &str = "kubeaddons.mesosphere.io/name";

// ---------------------------------------------------------------------------------------------
// KubeFedCluster
// ---------------------------------------------------------------------------------------------

/// An attached member cluster: where to reach it and with which credentials.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "core.kubefed.io",
    version = "v1beta1",
    kind = "KubeFedCluster",
    namespaced,
    status = "KubeFedClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeFedClusterSpec {
    /// URL of the member's API server.
    pub api_endpoint: String,
    /// PEM CA bundle (base64) that verifies the member's serving certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Secret in the control-plane namespace whose `token` authenticates to the member.
    pub secret_ref: LocalSecretReference,
    /// TLS checks to skip, for members with self-signed or expired certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_tls_validations: Vec<TlsValidation>,
}

/// A Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalSecretReference {
    /// The Secret's name.
    pub name: String,
}

/// A TLS check that may be disabled (KubeFed's `TLSValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsValidation {
    /// Every check.
    #[serde(rename = "*")]
    All,
    /// The certificate's subject name.
    SubjectName,
    /// The certificate's validity period.
    ValidityPeriod,
}

/// Health of a member as the manager last saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeFedClusterStatus {
    /// Ready and Offline conditions, KubeFed's.
    #[serde(default)]
    pub conditions: Vec<ClusterCondition>,
    /// Zones of the member's nodes (`topology.kubernetes.io/zone`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Region of the member's nodes (`topology.kubernetes.io/region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// One condition of a member cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    /// `Ready` or `Offline`.
    #[serde(rename = "type")]
    pub type_: ClusterConditionType,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// When the member was last probed.
    pub last_probe_time: Time,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason, e.g. `ClusterReady` (borrowed when it is one of ours: the
    /// manager writes these on every probe of every cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    /// Human-readable message, e.g. `/healthz responded with ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'static, str>>,
}

/// The kinds of member condition KubeFed keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterConditionType {
    /// `/healthz` answered.
    Ready,
    /// The member could not be reached.
    Offline,
}

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Nobody knows yet.
    Unknown,
}

// ---------------------------------------------------------------------------------------------
// Addon / ClusterAddon
// ---------------------------------------------------------------------------------------------

/// What an addon installs in a member cluster, and what it needs first.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeaddons.mesosphere.io",
    version = "v1beta1",
    kind = "Addon",
    namespaced,
    status = "AddonStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"READY","type":"boolean","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"STAGE","type":"string","jsonPath":".status.stage"}"#,
    printcolumn = r#"{"name":"REVISION","type":"string","jsonPath":".status.revision"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonSpec {
    /// Other addons (selected by their labels) that must be deployed and ready first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<LabelSelector>,
    /// Kubernetes versions the addon supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSupport>,
    /// The Kubernetes objects the addon installs, applied as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_objects")]
    pub manifests: Vec<serde_json::Value>,
}

/// The same spec, cluster-scoped.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeaddons.mesosphere.io",
    version = "v1beta1",
    kind = "ClusterAddon",
    status = "AddonStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"READY","type":"boolean","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"STAGE","type":"string","jsonPath":".status.stage"}"#,
    printcolumn = r#"{"name":"REVISION","type":"string","jsonPath":".status.revision"}"#
)]
#[serde(transparent)]
pub struct ClusterAddonSpec(pub AddonSpec);

/// Kubernetes versions an addon supports; the agent refuses to install outside them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSupport {
    /// Lowest supported version, e.g. `v1.16` or `v1.16.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_supported_version: Option<String>,
    /// Highest supported version; without a patch it covers the whole minor release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_supported_version: Option<String>,
}

/// What the agent reports about an addon in its cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddonStatus {
    /// Everything the addon installed is ready.
    #[serde(default)]
    pub ready: bool,
    /// Where the addon is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The revision deployed: the revision annotation, else the generation. Inline (it is
    /// short): a resync compares it with the wanted one for every addon of every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub revision: Option<CompactString>,
    /// Why the addon is pending or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// An addon's stage, as kubeaddons named them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Waiting for something it requires.
    Pending,
    /// Being applied, or waiting for what was applied to become ready.
    Deploying,
    /// Applied and ready.
    Deployed,
    /// Could not be deployed; `message` says why.
    Failed,
    /// Being uninstalled.
    Deleting,
}

// ---------------------------------------------------------------------------------------------
// FederatedAddon / FederatedClusterAddon
// ---------------------------------------------------------------------------------------------

/// An addon to federate: the template, where it goes, and per-cluster changes.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "types.kubefed.io",
    version = "v1beta1",
    kind = "FederatedAddon",
    namespaced,
    status = "FederatedStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedAddonSpec {
    /// The Addon (or ClusterAddon) every selected cluster gets.
    pub template: AddonTemplate,
    /// Which clusters get it.
    #[serde(default)]
    pub placement: Placement,
    /// Per-cluster changes, applied to the template after rendering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ClusterOverrides>,
}

/// The same spec, for a cluster-scoped addon.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "types.kubefed.io",
    version = "v1beta1",
    kind = "FederatedClusterAddon",
    status = "FederatedStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct FederatedClusterAddonSpec(pub FederatedAddonSpec);

/// The object a member receives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonTemplate {
    /// Labels and annotations the member object carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// The Addon spec.
    pub spec: AddonSpec,
}

/// The part of metadata a template may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateMeta {
    /// Labels of the member object (`requires` selects on these).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the member object (the revision lives here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// KubeFed placement: a non-empty `clusters` list wins; otherwise the selector; neither: nowhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// Clusters named explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<ClusterName>>,
    /// Clusters selected by their labels; `{}` selects every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
}

/// A cluster named in a placement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterName {
    /// The KubeFedCluster's name.
    pub name: String,
}

/// The overrides for one cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterOverrides {
    /// Which cluster.
    pub cluster_name: String,
    /// JSON-patch-like operations, applied in order.
    #[serde(default)]
    pub cluster_overrides: Vec<Override>,
}

/// One override (`op` defaults to replace, as in KubeFed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    /// add, remove or replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OverrideOp>,
    /// A JSON pointer into the rendered object, e.g. `/spec/manifests/0/data/level`.
    pub path: String,
    /// The value for add and replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub value: Option<serde_json::Value>,
}

/// An override operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverrideOp {
    /// Add a value (or insert into an array).
    Add,
    /// Remove a value.
    Remove,
    /// Replace a value that exists.
    #[default]
    Replace,
}

/// Where a federated addon stands, per cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// KubeFed's Propagation condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PropagationCondition>,
    /// One entry per selected cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterPropagation>,
    /// Why the other clusters were not selected, e.g. `1/4 clusters selected: 3 failed ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

/// KubeFed's Propagation condition on a federated object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationCondition {
    /// Always `Propagation`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` when every selected cluster holds the current template.
    pub status: ConditionStatus,
    /// Why not, e.g. `CheckClusters` or `InvalidPlacement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// The addon's state in one selected cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPropagation {
    /// The cluster.
    pub name: String,
    /// KubeFed's propagation status when not fine (ClusterNotReady, CreationFailed, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Readiness the agent reported.
    #[serde(default)]
    pub ready: bool,
    /// Stage the agent reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Revision the agent reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Message the agent or the manager reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl std::ops::Deref for ClusterAddonSpec {
    type Target = AddonSpec;
    fn deref(&self) -> &AddonSpec {
        &self.0
    }
}

impl std::ops::Deref for FederatedClusterAddonSpec {
    type Target = FederatedAddonSpec;
    fn deref(&self) -> &FederatedAddonSpec {
        &self.0
    }
}

fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

fn any_objects(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// Every CRD Flotilla serves, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        KubeFedCluster::crd(),
        FederatedAddon::crd(),
        FederatedClusterAddon::crd(),
        Addon::crd(),
        ClusterAddon::crd(),
    ]
}

impl Stage {
    /// The stage as kubectl shows it (`deployed`), the same as its wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }
}

/// `finalizers` with `name` present or absent (once, at the end when added), as every
/// finalizer write of the manager and the agent needs it.
pub fn with_finalizer(finalizers: &[String], name: &str, present: bool) -> Vec<String> {
    let mut out: Vec<String> = finalizers.iter().filter(|f| *f != name).cloned().collect();
    if present {
        out.push(name.to_owned());
    }
    out
}

/// Name of the admission policy that keeps `cluster-type` immutable.
pub const CLUSTER_TYPE_POLICY: &str = "flotilla-cluster-type-immutable";

/// A ValidatingAdmissionPolicy and its binding that reject any change to, or removal of,
/// `kommander.mesosphere.io/cluster-type` on a KubeFedCluster once set, so the rule holds
/// even against kubectl (the in-memory host enforces the same rule).
pub fn admission_policy_yaml() -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {CLUSTER_TYPE_POLICY}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["core.kubefed.io"]
        apiVersions: ["v1beta1"]
        operations: ["UPDATE"]
        resources: ["kubefedclusters"]
  variables:
    - name: key
      expression: "'kommander.mesosphere.io/cluster-type'"
  validations:
    - expression: >-
        !has(oldObject.metadata.labels) || !(variables.key in oldObject.metadata.labels) ||
        (has(object.metadata.labels) && variables.key in object.metadata.labels &&
        object.metadata.labels[variables.key] == oldObject.metadata.labels[variables.key])
      messageExpression: >-
        'label kommander.mesosphere.io/cluster-type is immutable once set: it is "' +
        oldObject.metadata.labels[variables.key] + '"'
      reason: Invalid
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {CLUSTER_TYPE_POLICY}
spec:
  policyName: {CLUSTER_TYPE_POLICY}
  validationActions: [Deny]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_print_as_on_the_wire_and_finalizers_edit_once() {
        for s in [
            Stage::Pending,
            Stage::Deploying,
            Stage::Deployed,
            Stage::Failed,
            Stage::Deleting,
        ] {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
        }
        let f = vec!["a".to_string(), "x".to_string()];
        assert_eq!(with_finalizer(&f, "x", true), ["a", "x"]);
        assert_eq!(with_finalizer(&f, "b", true), ["a", "x", "b"]);
        assert_eq!(with_finalizer(&f, "x", false), ["a"]);
    }

    #[test]
    fn crds_have_the_articles_names_and_columns() {
        let crds = crds();
        let names: Vec<_> = crds
            .iter()
            .map(|c| c.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "kubefedclusters.core.kubefed.io",
                "federatedaddons.types.kubefed.io",
                "federatedclusteraddons.types.kubefed.io",
                "addons.kubeaddons.mesosphere.io",
                "clusteraddons.kubeaddons.mesosphere.io"
            ]
        );
        let columns = |i: usize| -> Vec<String> {
            crds[i].spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(columns(0), ["AGE", "READY"]);
        assert_eq!(columns(3), ["READY", "STAGE", "REVISION"]);
        assert_eq!(columns(4), ["READY", "STAGE", "REVISION"]);
        assert_eq!(crds[4].spec.scope, "Cluster");
        assert_eq!(crds[1].spec.scope, "Namespaced");
    }

    #[test]
    fn cluster_scoped_specs_share_the_wire_shape() {
        let json =
            serde_json::json!({"template": {"spec": {}}, "placement": {"clusterSelector": {}}});
        let a: FederatedAddonSpec = serde_json::from_value(json.clone()).expect("namespaced");
        let c: FederatedClusterAddonSpec = serde_json::from_value(json).expect("cluster");
        assert_eq!(a, c.0);
        assert_eq!(serde_json::to_value(&a).ok(), serde_json::to_value(&c).ok());
    }
}
