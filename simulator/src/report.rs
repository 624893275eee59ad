//! `place` and `explain`: what goes where, and why.

use std::fmt::Write as _;

use flotilla_core::catalog::Catalog;
use flotilla_core::explain::{ClusterView, explain_pair};
use flotilla_core::fleet::ResolvedCluster;
use flotilla_core::labels::{CLUSTER_TYPE, KUBERNETES_VERSION};
use flotilla_core::placement::PlacementIndex;
use serde::Serialize;

/// One (cluster, addon) decision, as `place -o json` prints it.
#[derive(Debug, Serialize)]
pub struct Decision<'a> {
    /// The cluster.
    pub cluster: &'a str,
    /// `FederatedAddon` or `FederatedClusterAddon`.
    pub kind: &'static str,
    /// The namespace (null for cluster-scoped addons).
    pub namespace: Option<&'a str>,
    /// The addon's name.
    pub name: &'a str,
    /// Whether the addon goes to the cluster.
    pub placed: bool,
    /// The placement requirements the cluster does not meet.
    pub unmet: Vec<String>,
}

/// Warnings about the fleet a user should see (printed on stderr).
pub fn warnings(clusters: &[ResolvedCluster]) -> Vec<String> {
    clusters
        .iter()
        .filter_map(|c| {
            c.type_conflict.as_ref().map(|t| {
                format!(
                    "warning: cluster {}: nodes say cluster-type {} but the cluster keeps {} (it never changes once set)",
                    c.view.name, t.detected, t.kept
                )
            })
        })
        .collect()
}

/// One JSON object per line per (cluster, addon).
pub fn place_json(
    catalog: &Catalog,
    clusters: &[ResolvedCluster],
) -> Result<String, serde_json::Error> {
    let index = PlacementIndex::new(catalog);
    let mut out = String::new();
    for c in clusters {
        let row = index.row_of(&c.view.labels);
        for (i, a) in catalog.addons().iter().enumerate() {
            let placed = index.is_placed(&row, &c.view.name, i);
            let unmet = if placed {
                Vec::new()
            } else {
                explain_pair(catalog, &c.view, i).unmet()
            };
            let d = Decision {
                cluster: &c.view.name,
                kind: a.id.kind.as_str(),
                namespace: a.id.namespace.as_deref(),
                name: &a.id.name,
                placed,
                unmet,
            };
            out.push_str(&serde_json::to_string(&d)?);
            out.push('\n');
        }
    }
    Ok(out)
}

/// A table: one row per cluster with its type, version and placed addons.
pub fn place_table(catalog: &Catalog, clusters: &[ResolvedCluster]) -> String {
    let index = PlacementIndex::new(catalog);
    let mut rows = vec![[
        "CLUSTER".to_string(),
        "TYPE".into(),
        "VERSION".into(),
        "PLACED".into(),
        "ADDONS".into(),
    ]];
    for c in clusters {
        let set = index.place(&index.row_of(&c.view.labels), &c.view.name);
        let names: Vec<&str> = set.iter().map(|i| &*catalog.addons()[i].id.name).collect();
        let label = |k: &str| c.view.labels.get(k).cloned().unwrap_or_else(|| "-".into());
        rows.push([
            c.view.name.clone(),
            label(CLUSTER_TYPE),
            label(KUBERNETES_VERSION),
            format!("{}/{}", set.len(), catalog.addons().len()),
            if names.is_empty() {
                "-".into()
            } else {
                names.join(" ")
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = (0..5)
            .map(|i| {
                if i == 4 {
                    r[i].clone()
                } else {
                    format!("{:<w$}", r[i], w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Why addons are (not) placed: for one pair, one cluster, one addon, or the whole fleet.
pub fn explain(
    catalog: &Catalog,
    clusters: &[ResolvedCluster],
    cluster: Option<&str>,
    addon: Option<&str>,
) -> Result<String, String> {
    let views: Vec<ClusterView> = clusters.iter().map(|c| c.view.clone()).collect();
    flotilla_core::explain::report(catalog, &views, cluster, addon).map_err(|e| e.to_string())
}
