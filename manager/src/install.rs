//! What `flotilla-manager install` prints for the host cluster, and the access `attach`
//! grants the manager in a member.
//!
//! Host: the federation CRDs, the ValidatingAdmissionPolicy that keeps
//! `kommander.mesosphere.io/cluster-type` immutable, and the manager's namespace,
//! least-privilege RBAC and two-replica Deployment (they elect a leader over a Lease).
//! Member: a ServiceAccount the manager acts as, allowed to read nodes and to manage
//! Addon / ClusterAddon objects, nothing else (`/healthz` and `/version` are public).

use flotilla_agent::install::{Controller, controller, crds_of, rule};
use serde_json::{Value, json};

/// Name of the manager's ServiceAccount, roles, Lease and Deployment.
pub const MANAGER: &str = "flotilla-manager";
/// Name of the ServiceAccount and ClusterRole `attach` creates in a member.
pub const MEMBER_ACCESS: &str = "flotilla-manager-member";

/// What the manager may do in the host cluster.
pub fn host_rules() -> Vec<Value> {
    vec![
        rule(
            "core.kubefed.io",
            &["kubefedclusters"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(
            "core.kubefed.io",
            &["kubefedclusters/status"],
            &["get", "update", "patch"],
        ),
        rule(
            "types.kubefed.io",
            &["federatedaddons", "federatedclusteraddons"],
            &["get", "list", "watch"],
        ),
        rule(
            "types.kubefed.io",
            &["federatedaddons/status", "federatedclusteraddons/status"],
            &["get", "update", "patch"],
        ),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Everything the host cluster needs, in apply order.
pub fn host_manifests(namespace: &str, image: &str, replicas: u32) -> Vec<Value> {
    let mut out = crds_of("core.kubefed.io");
    out.extend(crds_of("types.kubefed.io"));
    out.extend(controller(&Controller {
        name: MANAGER.into(),
        namespace: namespace.into(),
        image: image.into(),
        args: vec!["run".into(), "--namespace".into(), namespace.into()],
        replicas,
        cluster_rules: host_rules(),
        // Member credentials live next to the KubeFedClusters.
        namespace_rules: vec![rule("", &["secrets"], &["get"])],
    }));
    out
}

/// The ServiceAccount and RBAC that let the manager into a member.
pub fn member_access(namespace: &str) -> Vec<Value> {
    let name = MEMBER_ACCESS;
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "flotilla"});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": [
            rule("", &["nodes"], &["get", "list"]),
            rule("kubeaddons.mesosphere.io", &["addons", "clusteraddons"],
                &["get", "list", "watch", "create", "patch", "update", "delete"]),
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_gets_federation_crds_and_a_manager_that_cannot_write_specs() {
        let m = host_manifests("kommander", "flotilla:test", 2);
        let crds: Vec<&str> = m
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(
            crds,
            [
                "kubefedclusters.core.kubefed.io",
                "federatedaddons.types.kubefed.io",
                "federatedclusteraddons.types.kubefed.io"
            ]
        );
        let role = m
            .iter()
            .find(|o| o["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        let federated = &role["rules"][2];
        assert_eq!(federated["verbs"], json!(["get", "list", "watch"]));
        let deployment = m.last().expect("objects");
        assert_eq!(deployment["kind"], "Deployment");
        assert_eq!(deployment["spec"]["replicas"], 2);
    }
}
