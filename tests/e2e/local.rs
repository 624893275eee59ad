//! End to end against a real kube-apiserver (provider `local`: etcd and kube-apiserver built
//! from the Go module proxy, see `build-control-plane.sh`). No mock stands in for the API
//! server.

mod control_plane;

use control_plane::{ControlPlane, binaries};

/// What `flotilla-sim crds` prints.
fn crds_yaml() -> String {
    flotilla_core::types::crds()
        .iter()
        .map(|c| format!("---\n{}", serde_saphyr::to_string(c).expect("CRD as YAML")))
        .collect()
}

fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The CRDs install into a real API server (their schemas are structural and accepted), and
/// the article's `kubectl get` commands show its columns, status subresource included.
#[test]
fn crds_install_and_the_articles_kubectl_columns_work() {
    let cp = ControlPlane::start(&binaries());
    let crds = crds_yaml();
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &crds);
    assert!(
        out.status.success(),
        "applying the CRDs: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cp.logs()
    );
    for crd in [
        "kubefedclusters.core.kubefed.io",
        "federatedaddons.types.kubefed.io",
        "federatedclusteraddons.types.kubefed.io",
        "addons.kubeaddons.mesosphere.io",
        "clusteraddons.kubeaddons.mesosphere.io",
    ] {
        cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{crd}"),
        ]);
    }
    for ns in ["kommander", "kubeaddons"] {
        cp.kubectl(&["create", "namespace", ns]);
    }

    // A KubeFedCluster with the article's labels and a Ready condition.
    let cluster = r#"apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata:
  name: alpha
  namespace: kommander
  labels:
    kommander.mesosphere.io/cluster-type: Konvoy
    kommander.mesosphere.io/kubernetes-version: v1.20
spec:
  apiEndpoint: https://alpha.example:6443
  secretRef: {name: alpha-token}
"#;
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], cluster);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"ClusterReady","message":"/healthz responded with ok","lastProbeTime":"2021-09-30T21:54:07Z","lastTransitionTime":"2021-09-30T21:46:06Z"}]}}"#;
    cp.kubectl(&[
        "patch",
        "kubefedcluster",
        "alpha",
        "-n",
        "kommander",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    let get = cp.kubectl(&["get", "kubefedcluster", "-A"]);
    assert_eq!(header(&get), ["NAMESPACE", "NAME", "AGE", "READY"], "{get}");
    let row: Vec<&str> = get
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[0], row[1], row[3]),
        ("kommander", "alpha", "True"),
        "{get}"
    );
    let describe = cp.kubectl(&["describe", "kubefedcluster", "-n", "kommander", "alpha"]);
    assert!(
        describe.contains("kommander.mesosphere.io/cluster-type=Konvoy"),
        "{describe}"
    );
    assert!(
        describe.contains("/healthz responded with ok") && describe.contains("ClusterReady"),
        "{describe}"
    );

    // An Addon and a ClusterAddon with agent-reported status: READY, STAGE, REVISION.
    let addons = r#"apiVersion: kubeaddons.mesosphere.io/v1beta1
kind: Addon
metadata: {name: reloader, namespace: kubeaddons}
spec:
  manifests:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: reloader, namespace: kubeaddons}, data: {a: b}}
---
apiVersion: kubeaddons.mesosphere.io/v1beta1
kind: ClusterAddon
metadata: {name: cert-manager}
spec:
  kubernetes: {minSupportedVersion: v1.16, maxSupportedVersion: v1.20}
"#;
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], addons);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp.kubectl(&[
        "patch",
        "addon",
        "reloader",
        "-n",
        "kubeaddons",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true,"stage":"deployed","revision":"0.0.99-1"}}"#,
    ]);
    cp.kubectl(&[
        "patch",
        "clusteraddon",
        "cert-manager",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":false,"stage":"deploying","revision":"0.10.1-5"}}"#,
    ]);
    let long = cp.kubectl(&[
        "get",
        "addon.kubeaddons.mesosphere.io,clusteraddon.kubeaddons.mesosphere.io",
        "-A",
    ]);
    assert!(
        long.contains("READY") && long.contains("STAGE") && long.contains("REVISION"),
        "{long}"
    );
    let reloader = long
        .lines()
        .find(|l| l.contains("addon.kubeaddons.mesosphere.io/reloader"))
        .unwrap_or_default();
    assert_eq!(
        reloader.split_whitespace().collect::<Vec<_>>(),
        [
            "kubeaddons",
            "addon.kubeaddons.mesosphere.io/reloader",
            "true",
            "deployed",
            "0.0.99-1"
        ],
        "{long}"
    );
    let cm = long
        .lines()
        .find(|l| l.contains("clusteraddon.kubeaddons.mesosphere.io/cert-manager"))
        .unwrap_or_default();
    assert!(
        cm.ends_with("false   deploying   0.10.1-5")
            || cm.split_whitespace().collect::<Vec<_>>().ends_with(&[
                "false",
                "deploying",
                "0.10.1-5"
            ]),
        "{long}"
    );
    let short = cp.kubectl(&["get", "addons,clusteraddons", "-A"]);
    assert!(
        short.contains("addon.kubeaddons.mesosphere.io/reloader"),
        "{short}"
    );

    // The article's catalog applies unchanged, and describe shows Spec.Placement.
    let catalog = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/catalog.yaml"),
    )
    .expect("catalog");
    cp.kubectl(&["create", "namespace", "kommander-system"]);
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &catalog);
    assert!(
        out.status.success(),
        "the article's catalog: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fed = cp.kubectl(&["get", "federatedaddons,federatedclusteraddons", "-A"]);
    assert_eq!(
        fed.lines()
            .filter(|l| l.contains("types.kubefed.io/"))
            .count(),
        16,
        "{fed}"
    );
    let cmd = cp.kubectl(&["describe", "federatedclusteraddon", "cert-manager"]);
    for needle in [
        "Placement:",
        "Cluster Selector:",
        "Match Expressions:",
        "Operator:  NotIn",
        "Konvoy",
        "v1.20",
    ] {
        assert!(cmd.contains(needle), "{needle} missing in:\n{cmd}");
    }
}

async fn client(cp: &ControlPlane) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cp.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("client config");
    kube::Client::try_from(config).expect("client")
}

fn install_crds(cp: &ControlPlane) {
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &crds_yaml());
    assert!(
        out.status.success(),
        "applying the CRDs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for crd in flotilla_core::types::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{name}"),
        ]);
    }
}

/// Polls `kubectl get ... -o jsonpath` until it prints `want` (30 s at most).
async fn eventually(cp: &ControlPlane, args: &[&str], want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = cp.kubectl_output(args);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl {args:?}: wanted {want:?}, got {got:?} ({})",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// The same agent reconciler as in the simulator, against a real API server: the manager's
/// server-side apply creates the Addon, the agent applies its manifests, reports readiness on
/// the status subresource, refuses an unsupported version, and uninstalls on delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_deploys_and_uninstalls_against_a_real_api_server() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use flotilla_agent::kube_member::KubeMember;
    use flotilla_agent::member::MemberCluster;
    use flotilla_agent::reconcile::{Agent, AgentConfig};
    use flotilla_core::catalog::{AddonId, AddonKind};
    use flotilla_core::render::DesiredAddon;
    use flotilla_core::types::{AddonSpec, KubernetesSupport};

    let cp = ControlPlane::start(&binaries());
    install_crds(&cp);
    cp.kubectl(&["create", "namespace", "kubeaddons"]);
    let member = KubeMember::new(client(&cp).await);
    assert_eq!(
        member
            .healthz(std::time::Duration::from_secs(10))
            .await
            .expect("healthz")
            .to_lowercase(),
        "ok"
    );
    assert!(
        member
            .version()
            .await
            .expect("version")
            .starts_with("v1.36.")
    );

    let labels = |name: &str| {
        BTreeMap::from([
            ("kubefed.io/managed".to_string(), "true".to_string()),
            (
                "kubeaddons.mesosphere.io/name".to_string(),
                name.to_string(),
            ),
        ])
    };
    let reloader = DesiredAddon {
        id: AddonId {
            kind: AddonKind::FederatedAddon,
            namespace: Some("kubeaddons".into()),
            name: "reloader".into(),
        },
        labels: labels("reloader").into(),
        annotations: BTreeMap::from([(
            "catalog.kubeaddons.mesosphere.io/addon-revision".to_string(),
            "0.0.99-1".to_string(),
        )])
        .into(),
        spec: Arc::new(AddonSpec {
            manifests: vec![serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "reloader-config", "namespace": "kubeaddons"}, "data": {"level": "info"}})],
            ..Default::default()
        }),
    };
    let cert_manager = DesiredAddon {
        id: AddonId {
            kind: AddonKind::FederatedClusterAddon,
            namespace: None,
            name: "cert-manager".into(),
        },
        labels: labels("cert-manager").into(),
        annotations: Default::default(),
        spec: Arc::new(AddonSpec {
            kubernetes: Some(KubernetesSupport {
                min_supported_version: Some("v1.16".into()),
                max_supported_version: Some("v1.20".into()),
            }),
            ..Default::default()
        }),
    };
    member.apply_addon(&reloader).await.expect("apply reloader");
    member
        .apply_addon(&cert_manager)
        .await
        .expect("apply cert-manager");
    member
        .apply_addon(&reloader)
        .await
        .expect("applying again changes nothing");

    let agent = tokio::spawn(Agent::new("e2e", member.clone(), AgentConfig::default(), 1).run());
    eventually(
        &cp,
        &[
            "get",
            "addon",
            "reloader",
            "-n",
            "kubeaddons",
            "-o",
            "jsonpath={.status.stage}/{.status.ready}/{.status.revision}",
        ],
        "deployed/true/0.0.99-1",
    )
    .await;
    cp.kubectl(&["get", "configmap", "reloader-config", "-n", "kubeaddons"]);
    eventually(
        &cp,
        &[
            "get",
            "clusteraddon",
            "cert-manager",
            "-o",
            "jsonpath={.status.stage}",
        ],
        "failed",
    )
    .await;
    let message = cp.kubectl(&[
        "get",
        "clusteraddon",
        "cert-manager",
        "-o",
        "jsonpath={.status.message}",
    ]);
    assert!(
        message.starts_with("cluster runs v1.36.")
            && message.ends_with("above maxSupportedVersion v1.20"),
        "{message}"
    );
    let table = cp.kubectl(&[
        "get",
        "addon.kubeaddons.mesosphere.io,clusteraddon.kubeaddons.mesosphere.io",
        "-A",
    ]);
    assert!(
        table.contains("true    deployed   0.0.99-1")
            || table
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .any(|w| w == ["true", "deployed", "0.0.99-1"]),
        "{table}"
    );
    let managed = cp.kubectl(&[
        "get",
        "addon",
        "reloader",
        "-n",
        "kubeaddons",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        managed.contains("manager: flotilla-manager")
            && managed.contains("manager: flotilla-agent"),
        "{managed}"
    );
    assert_eq!(
        cp.kubectl(&[
            "get",
            "addon",
            "reloader",
            "-n",
            "kubeaddons",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1",
        "an unchanged apply does not bump the generation"
    );

    // Uninstall: the finalizer holds the Addon until the agent removed what it applied.
    member.delete_addon(&reloader.id).await.expect("delete");
    eventually(
        &cp,
        &["get", "addons", "-n", "kubeaddons", "-o", "name"],
        "",
    )
    .await;
    let gone = cp.kubectl_output(&["get", "configmap", "reloader-config", "-n", "kubeaddons"]);
    assert!(!gone.status.success(), "the ConfigMap was uninstalled");
    agent.abort();
}

/// The manager and agents against three real API servers: attach two members (one with
/// Konvoy node labels) from their endpoint, CA and token Secret; health and labels are
/// written to the host; placement follows the selectors; readiness flows back to the hub;
/// a federate-X opt-out removes the addon and the agent uninstalls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_federates_across_real_clusters() {
    use std::sync::Arc;
    use std::time::Duration;

    use flotilla_agent::kube_member::KubeMember;
    use flotilla_agent::reconcile::{Agent, AgentConfig};
    use flotilla_manager::kube_host::{KubeConnector, KubeHost};
    use flotilla_manager::manager::{ManagerConfig, start};

    use base64::Engine as _;

    let bin = binaries();
    let (host, alpha, beta) = (
        ControlPlane::start(&bin),
        ControlPlane::start(&bin),
        ControlPlane::start(&bin),
    );
    for cp in [&host, &alpha, &beta] {
        install_crds(cp);
        cp.kubectl(&["create", "namespace", "kubeaddons"]);
    }
    host.kubectl(&["create", "namespace", "kommander"]);
    for (cp, label) in [
        (&alpha, "konvoy.mesosphere.com/inventory_hostname"),
        (&beta, "eks.amazonaws.com/nodegroup"),
    ] {
        let node = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-0\n  labels:\n    {label}: node-0\n    topology.kubernetes.io/region: us-east-1\n"
        );
        let out = cp.kubectl_stdin(&["apply", "-f", "-"], &node);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (name, cp) in [("alpha", &alpha), ("beta", &beta)] {
        host.kubectl(&[
            "create",
            "secret",
            "generic",
            &format!("{name}-token"),
            "-n",
            "kommander",
            &format!("--from-literal=token={}", cp.token),
        ]);
        let pem = std::fs::read(&cp.ca).expect("member CA");
        let cluster = format!(
            "apiVersion: core.kubefed.io/v1beta1\nkind: KubeFedCluster\nmetadata:\n  name: {name}\n  namespace: kommander\nspec:\n  apiEndpoint: {}\n  caBundle: {}\n  secretRef:\n    name: {name}-token\n",
            cp.server,
            base64::engine::general_purpose::STANDARD.encode(&pem)
        );
        let out = host.kubectl_stdin(&["apply", "-f", "-"], &cluster);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let catalog = r#"apiVersion: types.kubefed.io/v1beta1
kind: FederatedAddon
metadata: {name: reloader, namespace: kubeaddons}
spec:
  template:
    metadata:
      annotations: {catalog.kubeaddons.mesosphere.io/addon-revision: 0.0.99-1}
    spec:
      manifests:
        - {apiVersion: v1, kind: ConfigMap, metadata: {name: reloader-config, namespace: kubeaddons}, data: {a: b}}
  placement:
    clusterSelector:
      matchExpressions:
        - {key: kommander.mesosphere.io/cluster-type, operator: Exists}
        - {key: kommander.mesosphere.io/cluster-type, operator: NotIn, values: [Konvoy]}
        - {key: kommander.mesosphere.io/federate-reloader, operator: In, values: ["true", default-true]}
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedClusterAddon
metadata: {name: kubecost}
spec:
  template:
    spec:
      manifests:
        - {apiVersion: v1, kind: ConfigMap, metadata: {name: kubecost-config, namespace: kubeaddons}, data: {a: b}}
  placement:
    clusterSelector: {}
"#;
    let out = host.kubectl_stdin(&["apply", "-f", "-"], catalog);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let host_client = client(&host).await;
    let config = ManagerConfig {
        probe_period: Duration::from_secs(2),
        status_interval: Duration::from_millis(500),
        ..ManagerConfig::default()
    };
    let mut manager = start(
        Arc::new(KubeHost::new(host_client.clone())),
        Arc::new(KubeConnector::new(host_client)),
        config,
        Arc::default(),
    );
    let agents = [
        tokio::spawn(
            Agent::new(
                "alpha",
                KubeMember::new(client(&alpha).await),
                AgentConfig::default(),
                1,
            )
            .run(),
        ),
        tokio::spawn(
            Agent::new(
                "beta",
                KubeMember::new(client(&beta).await),
                AgentConfig::default(),
                2,
            )
            .run(),
        ),
    ];

    // Health and labels on the host, as the article shows them.
    for name in ["alpha", "beta"] {
        eventually(
            &host,
            &[
                "get",
                "kubefedcluster",
                name,
                "-n",
                "kommander",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].reason}",
            ],
            "ClusterReady",
        )
        .await;
    }
    let label = |name: &str, key: &str| {
        vec![
            "get".to_string(),
            "kubefedcluster".into(),
            name.into(),
            "-n".into(),
            "kommander".into(),
            "-o".into(),
            format!("jsonpath={{.metadata.labels.kommander\\.mesosphere\\.io/{key}}}"),
        ]
    };
    for (name, key, want) in [
        ("alpha", "cluster-type", "Konvoy"),
        ("beta", "cluster-type", "EKS"),
        ("beta", "kubernetes-version", "v1.36"),
    ] {
        let args = label(name, key);
        eventually(
            &host,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            want,
        )
        .await;
    }
    let get = host.kubectl(&["get", "kubefedcluster", "-A"]);
    assert_eq!(
        get.lines()
            .filter(|l| l.trim_end().ends_with("True"))
            .count(),
        2,
        "{get}"
    );

    // Placement: reloader only on the non-Konvoy member; kubecost everywhere; deployed.
    eventually(
        &beta,
        &[
            "get",
            "addon",
            "reloader",
            "-n",
            "kubeaddons",
            "-o",
            "jsonpath={.status.stage}/{.status.ready}",
        ],
        "deployed/true",
    )
    .await;
    eventually(
        &alpha,
        &[
            "get",
            "clusteraddon",
            "kubecost",
            "-o",
            "jsonpath={.status.stage}",
        ],
        "deployed",
    )
    .await;
    eventually(
        &beta,
        &[
            "get",
            "clusteraddon",
            "kubecost",
            "-o",
            "jsonpath={.status.stage}",
        ],
        "deployed",
    )
    .await;
    assert_eq!(
        alpha.kubectl(&["get", "addons", "-A", "-o", "name"]).trim(),
        "",
        "a Konvoy cluster does not get reloader"
    );
    beta.kubectl(&["get", "configmap", "reloader-config", "-n", "kubeaddons"]);
    // Readiness flows back to the hub.
    eventually(&host, &["get", "federatedaddon", "reloader", "-n", "kubeaddons", "-o", "jsonpath={.status.clusters[0].name}/{.status.clusters[0].ready}/{.status.clusters[0].revision}"], "beta/true/0.0.99-1").await;
    let selection = host.kubectl(&[
        "get",
        "federatedaddon",
        "reloader",
        "-n",
        "kubeaddons",
        "-o",
        "jsonpath={.status.selection}",
    ]);
    assert_eq!(
        selection,
        "1/2 clusters selected: 1 failed kommander.mesosphere.io/cluster-type NotIn [Konvoy]"
    );

    // Opt out: the addon leaves beta and the agent uninstalls it.
    host.kubectl(&[
        "label",
        "kubefedcluster",
        "beta",
        "-n",
        "kommander",
        "--overwrite",
        "kommander.mesosphere.io/federate-reloader=false",
    ]);
    eventually(&beta, &["get", "addons", "-A", "-o", "name"], "").await;
    assert!(
        !beta
            .kubectl_output(&["get", "configmap", "reloader-config", "-n", "kubeaddons"])
            .status
            .success()
    );

    manager.kill();
    agents.iter().for_each(tokio::task::JoinHandle::abort);
}

/// The admission policy makes the API server itself reject any change to, or removal of,
/// `cluster-type` once set, so the rule holds even against kubectl.
#[test]
fn the_api_server_rejects_a_cluster_type_change() {
    let cp = ControlPlane::start(&binaries());
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], &crds_yaml());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/kubefedclusters.core.kubefed.io",
    ]);
    let out = cp.kubectl_stdin(
        &["apply", "-f", "-"],
        &flotilla_core::types::admission_policy_yaml(),
    );
    assert!(
        out.status.success(),
        "the policy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp.kubectl(&["create", "namespace", "kommander"]);
    let cluster = "apiVersion: core.kubefed.io/v1beta1\nkind: KubeFedCluster\nmetadata:\n  name: alpha\n  namespace: kommander\n  labels:\n    kommander.mesosphere.io/cluster-type: Konvoy\nspec:\n  apiEndpoint: https://alpha.example:6443\n  secretRef: {name: alpha-token}\n";
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], cluster);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The policy takes effect once the API server has type-checked it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let change = [
        "label",
        "kubefedcluster",
        "alpha",
        "-n",
        "kommander",
        "--overwrite",
        "kommander.mesosphere.io/cluster-type=Generic",
    ];
    let denied = loop {
        let out = cp.kubectl_output(&change);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        // It went through before the policy was active: put it back and try again.
        cp.kubectl(&[
            "label",
            "kubefedcluster",
            "alpha",
            "-n",
            "kommander",
            "--overwrite",
            "kommander.mesosphere.io/cluster-type=Konvoy",
        ]);
        assert!(
            std::time::Instant::now() < deadline,
            "the policy never took effect"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(
        denied.contains("flotilla-cluster-type-immutable")
            && denied.contains("immutable once set: it is \"Konvoy\""),
        "{denied}"
    );
    let removal = cp.kubectl_output(&[
        "label",
        "kubefedcluster",
        "alpha",
        "-n",
        "kommander",
        "kommander.mesosphere.io/cluster-type-",
    ]);
    assert!(
        !removal.status.success(),
        "removing the label is a change too"
    );
    cp.kubectl(&[
        "label",
        "kubefedcluster",
        "alpha",
        "-n",
        "kommander",
        "env=prod",
    ]);
    let labels = cp.kubectl(&["get", "kubefedcluster", "alpha", "-n", "kommander", "-o", r"jsonpath={.metadata.labels.kommander\.mesosphere\.io/cluster-type}/{.metadata.labels.env}"]);
    assert_eq!(labels, "Konvoy/prod", "other labels still change freely");
}
