//! The catalog: FederatedAddon / FederatedClusterAddon objects, validated once and compiled
//! into what placement and explain need (targets, `requires` selectors, version bounds,
//! federate keys and their defaults).
//!
//! Each object compiles on its own ([`CatalogAddon::compile`]), so that one invalid addon is
//! reported on its own and every other addon keeps flowing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::field::{FieldError, FieldPath};
use crate::labels::FEDERATE_PREFIX;
use crate::selector::{LabelSelector, Selector};
use crate::syntax::label_map_errors;
use crate::types::{
    ADDON_NAME_LABEL, AddonSpec, FederatedAddon, FederatedAddonSpec, FederatedClusterAddon,
    FederatedStatus, REVISION_ANNOTATION,
};
use crate::version::VersionBound;

/// Annotation on a Federated* object declaring whether its federate key is on by default
/// (`"true"`, the default, or `"false"`; Kommander shipped elasticsearch, fluentbit and
/// kibana off by default).
pub const FEDERATE_DEFAULT_ANNOTATION: &str = "kommander.mesosphere.io/federate-default";

/// Which kind of federated object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum AddonKind {
    /// A `FederatedAddon`, rendered as a namespaced `Addon`.
    FederatedAddon,
    /// A `FederatedClusterAddon`, rendered as a cluster-scoped `ClusterAddon`.
    FederatedClusterAddon,
}

impl AddonKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FederatedAddon => "FederatedAddon",
            Self::FederatedClusterAddon => "FederatedClusterAddon",
        }
    }

    /// The kind of the object members receive.
    pub fn member_kind(self) -> &'static str {
        match self {
            Self::FederatedAddon => "Addon",
            Self::FederatedClusterAddon => "ClusterAddon",
        }
    }
}

/// Identity of a federated addon: kind, namespace (none when cluster-scoped), name.
///
/// Every (cluster, addon) pair is keyed by it, on the hub and in each member, so clones
/// share their text (`Arc<str>`): a 100,000-cluster fleet holds millions of ids.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddonId {
    /// The kind.
    pub kind: AddonKind,
    /// The namespace, for FederatedAddon.
    pub namespace: Option<Arc<str>>,
    /// The name.
    pub name: Arc<str>,
}

impl fmt::Display for AddonId {
    /// `kubeaddons/reloader` or `cert-manager`, as kubectl names objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A federated object as read from YAML or from the host store.
#[derive(Clone, Debug, PartialEq)]
pub enum CatalogObject {
    /// Namespaced.
    Addon(FederatedAddon),
    /// Cluster-scoped.
    ClusterAddon(FederatedClusterAddon),
}

impl CatalogObject {
    /// Its identity (namespace `default` when none is given, as kubectl does).
    pub fn id(&self) -> AddonId {
        match self {
            Self::Addon(a) => AddonId {
                kind: AddonKind::FederatedAddon,
                namespace: Some(a.namespace().unwrap_or_else(|| "default".into()).into()),
                name: a.name_any().into(),
            },
            Self::ClusterAddon(a) => AddonId {
                kind: AddonKind::FederatedClusterAddon,
                namespace: None,
                name: a.name_any().into(),
            },
        }
    }

    /// The shared spec.
    pub fn spec(&self) -> &FederatedAddonSpec {
        match self {
            Self::Addon(a) => &a.spec,
            Self::ClusterAddon(a) => &a.spec.0,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Addon(a) => &a.metadata,
            Self::ClusterAddon(a) => &a.metadata,
        }
    }

    /// The generation (0 when the store has not set one).
    pub fn generation(&self) -> i64 {
        self.metadata().generation.unwrap_or(0)
    }

    /// The status, as last written.
    pub fn status(&self) -> Option<&FederatedStatus> {
        match self {
            Self::Addon(a) => a.status.as_ref(),
            Self::ClusterAddon(a) => a.status.as_ref(),
        }
    }

    /// Replaces the status.
    pub fn set_status(&mut self, status: Option<FederatedStatus>) {
        match self {
            Self::Addon(a) => a.status = status,
            Self::ClusterAddon(a) => a.status = status,
        }
    }

    /// The object's annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Addon(a) => a.annotations(),
            Self::ClusterAddon(a) => a.annotations(),
        }
    }
}

/// Everything wrong with one object, each line as kubectl prints it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ObjectError {
    /// `FederatedAddon kubeaddons/kibana`.
    pub object: String,
    /// The field errors.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", self.object)?;
        }
        Ok(())
    }
}

/// Which clusters an addon targets (KubeFed's placement rule, compiled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A non-empty `clusters` list: exactly these names.
    Clusters(Vec<String>),
    /// Otherwise the selector (missing: nothing).
    Selector(Selector),
}

/// A validated addon, ready for placement.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogAddon {
    /// Identity.
    pub id: AddonId,
    /// The spec as given.
    pub spec: FederatedAddonSpec,
    /// Where it goes.
    pub target: Target,
    /// Labels of the member object, by which other addons' `requires` find it.
    pub labels: BTreeMap<String, String>,
    /// What must be deployed and ready first.
    pub requires: Vec<Selector>,
    /// Lowest supported Kubernetes version.
    pub min_version: Option<VersionBound>,
    /// Highest supported Kubernetes version.
    pub max_version: Option<VersionBound>,
    /// The `federate-<key>` keys its selector reads.
    pub federate_keys: Vec<String>,
    /// Declared default for those keys (`None`: not declared, on).
    pub federate_default: Option<bool>,
    /// The revision annotation of its template, if any.
    pub revision: Option<String>,
}

impl CatalogAddon {
    /// Validates one object the way the API server and Flotilla's admission would.
    pub fn compile(obj: &CatalogObject) -> Result<Self, ObjectError> {
        let id = obj.id();
        let spec = obj.spec();
        let mut errs = Vec::new();
        if id.name.is_empty() {
            errs.push(FieldError::required(
                FieldPath::new("metadata.name"),
                "name or generateName is required",
            ));
        }

        let pp = FieldPath::new("spec").child("placement");
        let target = match &spec.placement.clusters {
            Some(list) if !list.is_empty() => {
                for (i, c) in list.iter().enumerate() {
                    if c.name.is_empty() {
                        errs.push(FieldError::required(
                            pp.child("clusters").index(i).child("name"),
                            "must name a cluster",
                        ));
                    }
                }
                Target::Clusters(list.iter().map(|c| c.name.clone()).collect())
            }
            _ => match Selector::from_wire(
                spec.placement.cluster_selector.as_ref(),
                &pp.child("clusterSelector"),
            ) {
                Ok(s) => Target::Selector(s),
                Err(e) => {
                    errs.extend(e);
                    Target::Selector(Selector::Nothing)
                }
            },
        };

        let tp = FieldPath::new("spec").child("template");
        let meta = spec.template.metadata.clone().unwrap_or_default();
        let mut labels = meta.labels.clone();
        errs.extend(label_map_errors(
            &meta.labels,
            &tp.child("metadata").child("labels"),
        ));
        labels
            .entry(ADDON_NAME_LABEL.into())
            .or_insert_with(|| id.name.to_string());

        let (requires, min_version, max_version) =
            compile_addon_spec(&spec.template.spec, &tp.child("spec"), &mut errs);

        let federate_keys = match &target {
            Target::Selector(s) => {
                let mut keys: Vec<String> = s
                    .requirements()
                    .iter()
                    .filter_map(|r| r.key.strip_prefix(FEDERATE_PREFIX).map(str::to_owned))
                    .collect();
                keys.sort();
                keys.dedup();
                keys
            }
            Target::Clusters(_) => Vec::new(),
        };
        let federate_default = match obj
            .annotations()
            .get(FEDERATE_DEFAULT_ANNOTATION)
            .map(String::as_str)
        {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                errs.push(FieldError::invalid(
                    FieldPath::new("metadata")
                        .child("annotations")
                        .key(FEDERATE_DEFAULT_ANNOTATION),
                    other,
                    "must be \"true\" or \"false\"",
                ));
                None
            }
        };

        for (i, o) in spec.overrides.iter().enumerate() {
            let op = FieldPath::new("spec").child("overrides").index(i);
            if o.cluster_name.is_empty() {
                errs.push(FieldError::required(
                    op.child("clusterName"),
                    "must name a cluster",
                ));
            }
            for (j, co) in o.cluster_overrides.iter().enumerate() {
                if !co.path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        op.child("clusterOverrides").index(j).child("path"),
                        &co.path,
                        "must be a JSON pointer starting with '/'",
                    ));
                }
            }
        }

        if !errs.is_empty() {
            return Err(ObjectError {
                object: format!("{} {id}", id.kind.as_str()),
                errors: errs,
            });
        }
        Ok(Self {
            revision: meta.annotations.get(REVISION_ANNOTATION).cloned(),
            id,
            spec: spec.clone(),
            target,
            labels,
            requires,
            min_version,
            max_version,
            federate_keys,
            federate_default,
        })
    }
}

/// Validates an Addon spec: `requires` selectors and version bounds.
pub fn compile_addon_spec(
    spec: &AddonSpec,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) -> (Vec<Selector>, Option<VersionBound>, Option<VersionBound>) {
    let mut requires = Vec::new();
    for (i, r) in spec.requires.iter().enumerate() {
        match LabelSelector::to_selector(r, &path.child("requires").index(i)) {
            Ok(s) => requires.push(s),
            Err(e) => errs.extend(e),
        }
    }
    let kp = path.child("kubernetes");
    let bound = |v: &Option<String>, field: &str, errs: &mut Vec<FieldError>| {
        v.as_deref().and_then(|s| match s.parse::<VersionBound>() {
            Ok(b) => Some(b),
            Err(e) => {
                errs.push(FieldError::invalid(kp.child(field), s, e.reason));
                None
            }
        })
    };
    let k = spec.kubernetes.clone().unwrap_or_default();
    let min = bound(&k.min_supported_version, "minSupportedVersion", errs);
    let max = bound(&k.max_supported_version, "maxSupportedVersion", errs);
    if let (Some(lo), Some(hi)) = (min, max)
        && (lo.major, lo.minor) > (hi.major, hi.minor)
    {
        errs.push(FieldError::invalid(
            kp.child("maxSupportedVersion"),
            &hi.to_string(),
            format!("must not be below minSupportedVersion {lo}"),
        ));
    }
    (requires, min, max)
}

/// Each federate key the addons read, with its default: on unless an addon reading it
/// declares otherwise.
pub fn federate_defaults<'a>(
    addons: impl IntoIterator<Item = &'a CatalogAddon>,
) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for a in addons {
        for k in &a.federate_keys {
            let on = out.entry(k.clone()).or_insert(true);
            *on &= a.federate_default.unwrap_or(true);
        }
    }
    out
}

/// Duplicate objects in one catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {id} is defined more than once", kind = .0.kind.as_str(), id = .0)]
pub struct DuplicateAddon(pub AddonId);

/// A set of compiled addons, sorted by identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    addons: Vec<CatalogAddon>,
}

impl Catalog {
    /// Builds a catalog; identities must be unique.
    pub fn new(mut addons: Vec<CatalogAddon>) -> Result<Self, DuplicateAddon> {
        addons.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = addons.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(DuplicateAddon(w[0].id.clone()));
        }
        Ok(Self { addons })
    }

    /// The addons, sorted by identity.
    pub fn addons(&self) -> &[CatalogAddon] {
        &self.addons
    }

    /// Finds an addon by `[namespace/]name`.
    pub fn find(&self, spec: &str) -> Option<usize> {
        let (ns, name) = match spec.split_once('/') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, spec),
        };
        self.addons
            .iter()
            .position(|a| *a.id.name == *name && (ns.is_none() || a.id.namespace.as_deref() == ns))
    }

    /// Each federate key with its default: on unless an addon reading it declares otherwise.
    pub fn federate_defaults(&self) -> BTreeMap<String, bool> {
        federate_defaults(&self.addons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(yaml_spec: serde_json::Value) -> CatalogObject {
        let v = serde_json::json!({
            "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedAddon",
            "metadata": {"name": "kibana", "namespace": "kubeaddons"}, "spec": yaml_spec});
        CatalogObject::Addon(serde_json::from_value(v).expect("valid object"))
    }

    #[test]
    fn errors_name_object_and_field() {
        let o = obj(
            serde_json::json!({"template": {"spec": {}}, "placement": {"clusterSelector": {
            "matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "In"}]}}}),
        );
        let e = CatalogAddon::compile(&o).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "FederatedAddon kubeaddons/kibana: spec.placement.clusterSelector.matchExpressions[1].values: \
             Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
    }

    #[test]
    fn placement_rules() {
        let t = |p| {
            CatalogAddon::compile(&obj(
                serde_json::json!({"template": {"spec": {}}, "placement": p}),
            ))
            .expect("valid")
            .target
        };
        assert_eq!(
            t(serde_json::json!({})),
            Target::Selector(Selector::Nothing)
        );
        assert_eq!(
            t(serde_json::json!({"clusterSelector": {}})),
            Target::Selector(Selector::All(vec![]))
        );
        assert_eq!(
            t(serde_json::json!({"clusters": [{"name": "a"}], "clusterSelector": {}})),
            Target::Clusters(vec!["a".into()])
        );
        assert_eq!(
            t(serde_json::json!({"clusters": [], "clusterSelector": {}})),
            Target::Selector(Selector::All(vec![]))
        );
    }

    #[test]
    fn versions_defaults_and_overrides_are_checked() {
        let o = obj(serde_json::json!({
            "template": {"spec": {"kubernetes": {"minSupportedVersion": "v1.x", "maxSupportedVersion": "v1.20"}}},
            "overrides": [{"clusterName": "", "clusterOverrides": [{"path": "spec"}]}]}));
        let e = CatalogAddon::compile(&o).expect_err("invalid").to_string();
        assert!(
            e.contains(
                "spec.template.spec.kubernetes.minSupportedVersion: Invalid value: \"v1.x\""
            ),
            "{e}"
        );
        assert!(
            e.contains("spec.overrides[0].clusterName: Required value"),
            "{e}"
        );
        assert!(
            e.contains("spec.overrides[0].clusterOverrides[0].path: Invalid value: \"spec\""),
            "{e}"
        );
    }

    #[test]
    fn federate_keys_and_defaults() {
        let mut o = obj(
            serde_json::json!({"template": {"spec": {}}, "placement": {"clusterSelector": {
            "matchExpressions": [{"key": "kommander.mesosphere.io/federate-kibana", "operator": "In", "values": ["true"]}]}}}),
        );
        if let CatalogObject::Addon(a) = &mut o {
            a.metadata.annotations =
                Some([(FEDERATE_DEFAULT_ANNOTATION.to_string(), "false".to_string())].into());
        }
        let a = CatalogAddon::compile(&o).expect("valid");
        assert_eq!(a.federate_keys, ["kibana"]);
        assert_eq!(a.labels[ADDON_NAME_LABEL], "kibana");
        let c = Catalog::new(vec![a.clone()]).expect("unique");
        assert_eq!(
            c.federate_defaults(),
            [("kibana".to_string(), false)].into()
        );
        assert!(
            Catalog::new(vec![a.clone(), a]).is_err(),
            "duplicates are rejected"
        );
    }
}
