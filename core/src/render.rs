//! Desired member objects: a federated addon's template, with one cluster's overrides applied.
//!
//! Rendering is pure and deterministic, so the manager can compare what a member holds with
//! what it should hold and write nothing when they agree. Templates without overrides for a
//! cluster render once and are shared (`Arc`) by every cluster that gets them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{AddonId, CatalogAddon};
use crate::types::{AddonSpec, MANAGED_LABEL, Override, OverrideOp, REVISION_ANNOTATION};

/// The object a member cluster should hold for one placed addon.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAddon {
    /// Identity (the member object has the federated object's namespace and name).
    pub id: AddonId,
    /// Labels, including `kubefed.io/managed=true`; shared, like the spec, between the
    /// clusters that render the same (a fleet holds one copy per addon, not per cluster).
    pub labels: Arc<BTreeMap<String, String>>,
    /// Annotations (the revision lives here), shared the same way.
    pub annotations: Arc<BTreeMap<String, String>>,
    /// The spec, shared between clusters that render the same.
    pub spec: Arc<AddonSpec>,
}

impl DesiredAddon {
    /// The revision the agent will report: the annotation, else none (the agent then uses
    /// the generation).
    pub fn revision(&self) -> Option<&str> {
        self.annotations
            .get(REVISION_ANNOTATION)
            .map(String::as_str)
    }
}

/// Why an override could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{addon} on cluster {cluster}: override {op:?} {path}: {reason}")]
pub struct RenderError {
    /// The addon.
    pub addon: String,
    /// The cluster.
    pub cluster: String,
    /// The operation.
    pub op: OverrideOp,
    /// The JSON pointer.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// Renders the template alone (no overrides), as shared by most clusters.
pub fn render_template(addon: &CatalogAddon) -> DesiredAddon {
    let meta = addon.spec.template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels;
    labels.insert(MANAGED_LABEL.into(), "true".into());
    DesiredAddon {
        id: addon.id.clone(),
        labels: Arc::new(labels),
        annotations: Arc::new(meta.annotations),
        spec: Arc::new(addon.spec.template.spec.clone()),
    }
}

/// The overrides `addon` declares for `cluster`, if any.
pub fn overrides_for<'a>(addon: &'a CatalogAddon, cluster: &str) -> Option<&'a [Override]> {
    addon
        .spec
        .overrides
        .iter()
        .find(|o| o.cluster_name == cluster)
        .map(|o| o.cluster_overrides.as_slice())
}

/// Renders `addon` for `cluster`: `shared` (from [`render_template`]) unless the addon has
/// overrides for the cluster, in which case they are applied to `{metadata, spec}` in order.
pub fn render_for(
    addon: &CatalogAddon,
    cluster: &str,
    shared: &DesiredAddon,
) -> Result<DesiredAddon, RenderError> {
    let Some(ops) = overrides_for(addon, cluster) else {
        return Ok(shared.clone());
    };
    let mut doc = serde_json::json!({
        "metadata": {"labels": shared.labels, "annotations": shared.annotations},
        "spec": &*shared.spec,
    });
    for o in ops {
        let op = o.op.unwrap_or_default();
        let fail = |reason: String| RenderError {
            addon: addon.id.to_string(),
            cluster: cluster.to_owned(),
            op,
            path: o.path.clone(),
            reason,
        };
        apply_op(&mut doc, op, &o.path, o.value.clone()).map_err(fail)?;
    }
    let labels =
        serde_json::from_value(doc["metadata"]["labels"].take()).map_err(|e| RenderError {
            addon: addon.id.to_string(),
            cluster: cluster.into(),
            op: OverrideOp::Replace,
            path: "/metadata/labels".into(),
            reason: e.to_string(),
        })?;
    let annotations =
        serde_json::from_value(doc["metadata"]["annotations"].take()).map_err(|e| RenderError {
            addon: addon.id.to_string(),
            cluster: cluster.into(),
            op: OverrideOp::Replace,
            path: "/metadata/annotations".into(),
            reason: e.to_string(),
        })?;
    let spec: AddonSpec = serde_json::from_value(doc["spec"].take()).map_err(|e| RenderError {
        addon: addon.id.to_string(),
        cluster: cluster.into(),
        op: OverrideOp::Replace,
        path: "/spec".into(),
        reason: e.to_string(),
    })?;
    let mut labels: BTreeMap<String, String> = labels;
    labels.insert(MANAGED_LABEL.into(), "true".into());
    Ok(DesiredAddon {
        id: addon.id.clone(),
        labels: Arc::new(labels),
        annotations: Arc::new(annotations),
        spec: Arc::new(spec),
    })
}

/// Decodes one JSON-pointer token (`~1` is `/`, `~0` is `~`).
fn token(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// Applies one JSON-patch-like operation (RFC 6902 semantics for add, remove, replace).
fn apply_op(
    doc: &mut Value,
    op: OverrideOp,
    path: &str,
    value: Option<Value>,
) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("path must start with '/'".into());
    };
    let tokens: Vec<String> = rest.split('/').map(token).collect();
    let (last, parents) = tokens.split_last().ok_or("empty path")?;
    let mut cur = doc;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| format!("no field {t:?}"))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| format!("{t:?} is not an array index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    let need_value = || {
        value
            .clone()
            .ok_or_else(|| "value is required for add and replace".to_string())
    };
    match (cur, op) {
        (Value::Object(m), OverrideOp::Add) => {
            m.insert(last.clone(), need_value()?);
        }
        (Value::Object(m), OverrideOp::Replace) => {
            let slot = m
                .get_mut(last)
                .ok_or_else(|| format!("no field {last:?} to replace"))?;
            *slot = need_value()?;
        }
        (Value::Object(m), OverrideOp::Remove) => {
            m.remove(last)
                .ok_or_else(|| format!("no field {last:?} to remove"))?;
        }
        (Value::Array(a), op) => {
            let i = if last == "-" && op == OverrideOp::Add {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("{last:?} is not an array index"))?
            };
            match op {
                OverrideOp::Add if i <= a.len() => a.insert(i, need_value()?),
                OverrideOp::Replace if i < a.len() => a[i] = need_value()?,
                OverrideOp::Remove if i < a.len() => {
                    a.remove(i);
                }
                _ => return Err(format!("index {i} out of range")),
            }
        }
        _ => return Err("the parent is not an object or array".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogObject;

    fn addon() -> CatalogAddon {
        let v = serde_json::json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedAddon",
            "metadata": {"name": "reloader", "namespace": "kubeaddons"},
            "spec": {
                "template": {"metadata": {"labels": {"a": "1"}, "annotations": {REVISION_ANNOTATION: "r1"}},
                             "spec": {"manifests": [{"kind": "ConfigMap", "data": {"level": "info"}}]}},
                "placement": {"clusterSelector": {}},
                "overrides": [{"clusterName": "beta", "clusterOverrides": [
                    {"path": "/spec/manifests/0/data/level", "value": "debug"},
                    {"op": "add", "path": "/metadata/labels/tier", "value": "gold"},
                    {"op": "remove", "path": "/metadata/labels/a"}]},
                    {"clusterName": "bad", "clusterOverrides": [{"path": "/spec/nope/x", "value": 1}]}]}});
        CatalogAddon::compile(&CatalogObject::Addon(
            serde_json::from_value(v).expect("object"),
        ))
        .expect("valid")
    }

    #[test]
    fn shared_unless_overridden() {
        let a = addon();
        let shared = render_template(&a);
        assert_eq!(shared.labels[MANAGED_LABEL], "true");
        assert_eq!(shared.revision(), Some("r1"));
        let alpha = render_for(&a, "alpha", &shared).expect("renders");
        assert!(
            Arc::ptr_eq(&alpha.spec, &shared.spec),
            "no overrides: the same spec is shared"
        );
        let beta = render_for(&a, "beta", &shared).expect("renders");
        assert_eq!(beta.spec.manifests[0]["data"]["level"], "debug");
        assert_eq!(beta.labels.get("tier").map(String::as_str), Some("gold"));
        assert!(!beta.labels.contains_key("a"));
        assert_eq!(
            beta.labels[MANAGED_LABEL], "true",
            "the managed label survives overrides"
        );
        let e = render_for(&a, "bad", &shared).expect_err("fails");
        assert!(e.to_string().contains("kubeaddons/reloader on cluster bad: override Replace /spec/nope/x: no field \"nope\""), "{e}");
    }

    #[test]
    fn json_patch_ops() {
        let mut d = serde_json::json!({"a": [1, 2], "b": {"c~/d": 1}});
        apply_op(&mut d, OverrideOp::Add, "/a/-", Some(3.into())).expect("append");
        apply_op(&mut d, OverrideOp::Add, "/a/0", Some(0.into())).expect("insert");
        apply_op(&mut d, OverrideOp::Remove, "/a/1", None).expect("remove");
        apply_op(&mut d, OverrideOp::Replace, "/b/c~0~1d", Some(2.into())).expect("escaped");
        assert_eq!(d, serde_json::json!({"a": [0, 2, 3], "b": {"c~/d": 2}}));
        assert!(apply_op(&mut d, OverrideOp::Replace, "/a/9", Some(1.into())).is_err());
        assert!(apply_op(&mut d, OverrideOp::Replace, "/b/zz", Some(1.into())).is_err());
        assert!(apply_op(&mut d, OverrideOp::Add, "/b/x", None).is_err());
    }
}
