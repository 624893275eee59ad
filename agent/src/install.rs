//! What `flotilla-agent install` (and, built on [`controller`], `flotilla-manager install`)
//! prints for `kubectl apply -f -`: CRDs, a namespace, a ServiceAccount with least-privilege
//! RBAC, a Role for the leader-election Lease, and a Deployment.
//!
//! Objects are JSON values (the binaries print them as YAML), built from one shape for both
//! controllers so that their RBAC and Deployments cannot drift apart.

use flotilla_core::types::crds;
use serde_json::{Value, json};

/// The agent's own API group.
const ADDONS_GROUP: &str = "kubeaddons.mesosphere.io";

/// A controller to install: who it is, where, and what it may do cluster-wide.
#[derive(Clone, Debug)]
pub struct Controller {
    /// Name of the ServiceAccount, roles, Lease and Deployment.
    pub name: String,
    /// Namespace it runs in.
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// Arguments after the binary name.
    pub args: Vec<String>,
    /// Replicas (two are safe: they elect a leader).
    pub replicas: u32,
    /// Cluster-wide RBAC rules.
    pub cluster_rules: Vec<Value>,
    /// Extra rules in its own namespace (beyond the Lease).
    pub namespace_rules: Vec<Value>,
}

/// One RBAC rule.
pub fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
}

/// The namespace, ServiceAccount, RBAC and Deployment of `c`.
pub fn controller(c: &Controller) -> Vec<Value> {
    let (name, ns) = (&c.name, &c.namespace);
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "flotilla"});
    let meta = |namespaced: bool| {
        let mut m = json!({"name": name, "labels": labels});
        if namespaced {
            m["namespace"] = json!(ns);
        }
        m
    };
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}]);
    let mut namespace_rules = vec![rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "list", "watch", "create", "update", "patch"],
    )];
    namespace_rules.extend(c.namespace_rules.iter().cloned());
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(true)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": meta(false), "rules": c.cluster_rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": meta(false), "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta(true), "rules": namespace_rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta(true), "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(true),
        "spec": {
            "replicas": c.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": name,
                        "image": c.image,
                        // One image holds both binaries, named after their controllers.
                        "command": [name],
                        "args": c.args,
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "FLOTILLA_LOG", "value": "info"},
                        ],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        }}),
    ]
}

/// The CRDs of one API group, as JSON.
pub fn crds_of(group: &str) -> Vec<Value> {
    crds()
        .into_iter()
        .filter(|c| c.spec.group == group)
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect()
}

/// What the agent may do: its own objects, and the kinds addon manifests commonly hold.
///
/// Applying a manifest needs `create` and `patch` on its kind (server-side apply), readiness
/// needs `get`, uninstalling needs `delete`. Addons that ship other kinds need rules added
/// here (or a ClusterRole of their own bound to the `flotilla-agent` ServiceAccount).
pub fn agent_rules() -> Vec<Value> {
    let write = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    vec![
        rule(
            ADDONS_GROUP,
            &["addons", "clusteraddons"],
            &["get", "list", "watch", "patch", "update"],
        ),
        rule(
            ADDONS_GROUP,
            &["addons/status", "clusteraddons/status"],
            &["get", "patch", "update"],
        ),
        rule(
            "",
            &[
                "namespaces",
                "configmaps",
                "secrets",
                "services",
                "serviceaccounts",
            ],
            &write,
        ),
        rule(
            "apps",
            &["deployments", "daemonsets", "statefulsets"],
            &write,
        ),
        rule("batch", &["jobs", "cronjobs"], &write),
        rule(
            "apiextensions.k8s.io",
            &["customresourcedefinitions"],
            &write,
        ),
        rule(
            "rbac.authorization.k8s.io",
            &[
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            ],
            &[
                "get", "list", "watch", "create", "patch", "update", "delete", "bind", "escalate",
            ],
        ),
        rule(
            "networking.k8s.io",
            &["ingresses", "networkpolicies"],
            &write,
        ),
        rule("policy", &["poddisruptionbudgets"], &write),
        rule(
            "admissionregistration.k8s.io",
            &[
                "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations",
            ],
            &write,
        ),
    ]
}

/// Everything a member cluster needs for the agent named after `cluster`.
pub fn member_manifests(
    cluster: &str,
    namespace: &str,
    addon_namespace: &str,
    image: &str,
) -> Vec<Value> {
    let mut out = crds_of(ADDONS_GROUP);
    out.push(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": addon_namespace}}),
    );
    out.extend(controller(&Controller {
        name: "flotilla-agent".into(),
        namespace: namespace.into(),
        image: image.into(),
        args: vec![
            "run".into(),
            "--cluster-name".into(),
            cluster.into(),
            "--namespace".into(),
            namespace.into(),
        ],
        replicas: 2,
        cluster_rules: agent_rules(),
        namespace_rules: vec![],
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_manifests_hold_the_addon_crds_rbac_and_a_deployment() {
        let m = member_manifests("alpha", "kommander", "kubeaddons", "flotilla:test");
        let kinds: Vec<&str> = m.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "Namespace",
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Deployment"
            ]
        );
        let deployment = &m[9];
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["run", "--cluster-name", "alpha", "--namespace", "kommander"])
        );
        // Least privilege: no wildcard anywhere.
        let text = serde_json::to_string(&m[5]).unwrap_or_default();
        assert!(!text.contains("\"*\""), "{text}");
    }
}
