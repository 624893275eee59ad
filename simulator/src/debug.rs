//! Debugging a simulated fleet the way the article debugs a real one: `get`, `describe` and
//! `explain` over the state a run saved (`run --state-out`), in kubectl's shapes.

use std::fmt::Write as _;
use std::path::Path;

use flotilla_core::catalog::{Catalog, CatalogAddon, CatalogObject};
use flotilla_core::explain::ClusterView;
use flotilla_core::fleet::ResolvedCluster;
use flotilla_core::types::Stage;

use crate::input::InputError;
use crate::state::State;

/// A saved state, loaded.
pub struct StateView {
    state: State,
    objects: Vec<CatalogObject>,
}

/// Reads a state file.
pub fn load_state(path: &Path) -> Result<StateView, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError(vec![format!("{}: cannot read: {e}", path.display())]))?;
    let state: State = serde_json::from_str(&text).map_err(|e| {
        InputError(vec![format!(
            "{}:{}: not a state file: {e}",
            path.display(),
            e.line()
        )])
    })?;
    let mut objects = Vec::new();
    for v in &state.catalog {
        let o = match v.get("kind").and_then(|k| k.as_str()) {
            Some("FederatedAddon") => serde_json::from_value(v.clone()).map(CatalogObject::Addon),
            Some("FederatedClusterAddon") => {
                serde_json::from_value(v.clone()).map(CatalogObject::ClusterAddon)
            }
            _ => continue,
        };
        objects.push(
            o.map_err(|e| InputError(vec![format!("{}: catalog entry: {e}", path.display())]))?,
        );
    }
    Ok(StateView { state, objects })
}

/// `Addons`, `addon.kubeaddons.mesosphere.io`, `addon` → `addon`, as kubectl resolves names.
fn resource_kind(r: &str) -> String {
    let lower = r.trim().to_lowercase();
    lower
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('s')
        .to_owned()
}

fn table(rows: Vec<Vec<String>>) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    out
}

impl StateView {
    /// The catalog and clusters, for `explain`.
    pub fn world(&self) -> Result<(Catalog, Vec<ResolvedCluster>), InputError> {
        let addons: Vec<CatalogAddon> = self
            .objects
            .iter()
            .filter_map(|o| CatalogAddon::compile(o).ok())
            .collect();
        let catalog = Catalog::new(addons).map_err(|e| InputError(vec![e.to_string()]))?;
        let clusters = self
            .state
            .clusters
            .iter()
            .map(|c| ResolvedCluster {
                view: ClusterView {
                    name: c.name.clone(),
                    labels: c.labels.clone(),
                    version: c.kubernetes_version.as_deref().and_then(|v| v.parse().ok()),
                },
                type_conflict: None,
            })
            .collect();
        Ok((catalog, clusters))
    }

    /// `kubectl get` for one or more comma-separated resources.
    pub fn get(&self, resources: &str, cluster: Option<&str>) -> Result<String, String> {
        let mut out = String::new();
        for (i, r) in resources.split(',').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let kind = resource_kind(r);
            out.push_str(&match kind.as_str() {
                "kubefedcluster" => self.get_clusters(),
                "addon" => self.get_addons("Addon", cluster),
                "clusteraddon" => self.get_addons("ClusterAddon", cluster),
                "federatedaddon" => self.get_federated("FederatedAddon"),
                "federatedclusteraddon" => self.get_federated("FederatedClusterAddon"),
                other => {
                    return Err(format!(
                        "unknown resource {other:?}: expected kubefedclusters, addons, clusteraddons, federatedaddons or federatedclusteraddons"
                    ));
                }
            });
        }
        Ok(out)
    }

    fn get_clusters(&self) -> String {
        let mut rows = vec![vec![
            "NAMESPACE".into(),
            "NAME".into(),
            "READY".into(),
            "VERSION".into(),
            "TYPE".into(),
        ]];
        for c in &self.state.clusters {
            let ready = c
                .conditions
                .iter()
                .find(|x| format!("{:?}", x.type_) == "Ready")
                .map(|x| format!("{:?}", x.status));
            rows.push(vec![
                c.namespace.clone().unwrap_or_default(),
                c.name.clone(),
                ready.unwrap_or_default(),
                c.labels
                    .get("kommander.mesosphere.io/kubernetes-version")
                    .cloned()
                    .unwrap_or_default(),
                c.labels
                    .get("kommander.mesosphere.io/cluster-type")
                    .cloned()
                    .unwrap_or_default(),
            ]);
        }
        table(rows)
    }

    fn get_addons(&self, kind: &str, cluster: Option<&str>) -> String {
        let mut header = vec!["CLUSTER".to_string()];
        if kind == "Addon" {
            header.push("NAMESPACE".into());
        }
        header.extend([
            "NAME".into(),
            "READY".into(),
            "STAGE".into(),
            "REVISION".into(),
        ]);
        let mut rows = vec![header];
        for c in self
            .state
            .clusters
            .iter()
            .filter(|c| cluster.is_none_or(|n| n == c.name))
        {
            for a in c.addons.iter().filter(|a| a.kind == kind) {
                let mut row = vec![c.name.clone()];
                if kind == "Addon" {
                    row.push(a.namespace.clone().unwrap_or_default());
                }
                let resource = if kind == "Addon" {
                    "addon"
                } else {
                    "clusteraddon"
                };
                row.extend([
                    format!("{resource}.kubeaddons.mesosphere.io/{}", a.name),
                    a.ready.to_string(),
                    a.stage.map(Stage::as_str).unwrap_or_default().to_owned(),
                    a.revision.clone().unwrap_or_default(),
                ]);
                rows.push(row);
            }
        }
        table(rows)
    }

    fn get_federated(&self, kind: &str) -> String {
        let namespaced = kind == "FederatedAddon";
        let mut header = Vec::new();
        if namespaced {
            header.push("NAMESPACE".to_string());
        }
        header.extend(["NAME".into(), "PROPAGATION".into(), "SELECTED".into()]);
        let mut rows = vec![header];
        for o in self.objects.iter().filter(|o| o.id().kind.as_str() == kind) {
            let id = o.id();
            let mut row = Vec::new();
            if namespaced {
                row.push(id.namespace.as_deref().unwrap_or_default().to_owned());
            }
            let status = o.status();
            let prop = status
                .and_then(|s| s.conditions.first())
                .map(|c| {
                    c.message
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", c.status))
                })
                .unwrap_or_default();
            let selected = status.and_then(|s| s.selection.clone()).unwrap_or_default();
            let selected = selected.split(':').next().unwrap_or_default().to_string();
            let resource = if namespaced {
                "federatedaddon"
            } else {
                "federatedclusteraddon"
            };
            row.extend([
                format!("{resource}.types.kubefed.io/{}", id.name),
                prop,
                selected,
            ]);
            rows.push(row);
        }
        table(rows)
    }

    /// `kubectl describe` for a KubeFedCluster or a Federated* object.
    pub fn describe(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<String, String> {
        let kind = resource_kind(kind);
        match kind.as_str() {
            "kubefedcluster" => self.describe_cluster(name),
            "federatedaddon" | "federatedclusteraddon" => {
                self.describe_federated(&kind, name, namespace)
            }
            other => Err(format!(
                "cannot describe {other:?}: expected kubefedcluster, federatedaddon or federatedclusteraddon"
            )),
        }
    }

    fn describe_cluster(&self, name: &str) -> Result<String, String> {
        let c = self
            .state
            .clusters
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no kubefedcluster {name:?}"))?;
        let mut out = String::new();
        let _ = writeln!(out, "Name:         {}", c.name);
        let _ = writeln!(
            out,
            "Namespace:    {}",
            c.namespace.clone().unwrap_or_default()
        );
        for (i, (k, v)) in c.labels.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}{k}={v}",
                if i == 0 {
                    "Labels:       "
                } else {
                    "              "
                }
            );
        }
        let _ = writeln!(out, "API Version:  core.kubefed.io/v1beta1");
        let _ = writeln!(out, "Kind:         KubeFedCluster");
        let _ = writeln!(out, "Status:");
        let _ = writeln!(out, "  Conditions:");
        for cond in &c.conditions {
            let _ = writeln!(out, "    Last Probe Time:       {}", cond.last_probe_time.0);
            if let Some(t) = &cond.last_transition_time {
                let _ = writeln!(out, "    Last Transition Time:  {}", t.0);
            }
            let _ = writeln!(
                out,
                "    Message:               {}",
                cond.message.clone().unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "    Reason:                {}",
                cond.reason.clone().unwrap_or_default()
            );
            let _ = writeln!(out, "    Status:                {:?}", cond.status);
            let _ = writeln!(out, "    Type:                  {:?}", cond.type_);
        }
        let _ = writeln!(out, "Events:       <none>");
        Ok(out)
    }

    fn describe_federated(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<String, String> {
        let o = self
            .objects
            .iter()
            .find(|o| {
                let id = o.id();
                id.kind.as_str().to_lowercase() == kind
                    && *id.name == *name
                    && (namespace.is_none() || id.namespace.as_deref() == namespace)
            })
            .ok_or_else(|| {
                format!(
                    "no {kind} {name:?}{}",
                    namespace.map_or(String::new(), |n| format!(" in namespace {n:?}"))
                )
            })?;
        let id = o.id();
        let mut out = String::new();
        let _ = writeln!(out, "Name:         {}", id.name);
        if let Some(ns) = &id.namespace {
            let _ = writeln!(out, "Namespace:    {ns}");
        }
        let _ = writeln!(out, "API Version:  types.kubefed.io/v1beta1");
        let _ = writeln!(out, "Kind:         {}", id.kind.as_str());
        let _ = writeln!(out, "Spec:");
        let _ = writeln!(out, "  Placement:");
        let p = &o.spec().placement;
        if let Some(cs) = p.clusters.as_ref().filter(|c| !c.is_empty()) {
            let _ = writeln!(out, "    Clusters:");
            for c in cs {
                let _ = writeln!(out, "      Name:  {}", c.name);
            }
        }
        if let Some(sel) = &p.cluster_selector {
            let _ = writeln!(out, "    Cluster Selector:");
            if let Some(ml) = &sel.match_labels {
                let _ = writeln!(out, "      Match Labels:");
                for (k, v) in ml {
                    let _ = writeln!(out, "        {k}:  {v}");
                }
            }
            if let Some(me) = &sel.match_expressions {
                let _ = writeln!(out, "      Match Expressions:");
                for e in me {
                    let _ = writeln!(out, "        Key:       {}", e.key);
                    let _ = writeln!(out, "        Operator:  {}", e.operator);
                    let _ = writeln!(out, "        Values:");
                    for v in e.values.iter().flatten() {
                        let _ = writeln!(out, "          {v}");
                    }
                }
            }
        }
        if let Some(s) = o.status() {
            let _ = writeln!(out, "Status:");
            if let Some(sel) = &s.selection {
                let _ = writeln!(out, "  Selection:  {sel}");
            }
            for c in &s.conditions {
                let _ = writeln!(
                    out,
                    "  Condition:  {} {:?} {} {}",
                    c.type_,
                    c.status,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                );
            }
            if !s.clusters.is_empty() {
                let _ = writeln!(out, "  Clusters:");
                for c in &s.clusters {
                    let stage = c.stage.map(Stage::as_str).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    {}  ready={} stage={stage} revision={}{}",
                        c.name,
                        c.ready,
                        c.revision.clone().unwrap_or_default(),
                        c.status
                            .as_ref()
                            .map_or(String::new(), |r| format!(" status={r}"))
                    );
                }
            }
        }
        Ok(out)
    }
}
