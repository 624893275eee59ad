//! The federation engine end to end on the embedded stores: manager, agents and simulated
//! members, on a paused (virtual) clock. Each test is one scenario of the article or
//! around it.

use std::time::Duration;

use flotilla_agent::memory::Behavior;
use flotilla_core::catalog::AddonKind;
use flotilla_core::labels::{CLUSTER_TYPE, KUBERNETES_VERSION};
use flotilla_core::types::{ClusterConditionType, ConditionStatus, Stage};
use flotilla_sim::world::WorldConfig;
use flotilla_tests::{article_world, converge};

fn has(w: &flotilla_sim::world::World, cluster: &str, addon: &str) -> bool {
    w.registry
        .get(cluster)
        .expect("member")
        .snapshot()
        .iter()
        .any(|a| a.id.name == addon && !a.deleting)
}

#[tokio::test(start_paused = true)]
async fn article_fleet_converges() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    let s = converge(&w, Duration::from_secs(60)).await;
    assert_eq!(s.clusters, 3);
    assert_eq!(s.placements, 6 + 13 + 11, "as `flotilla-sim place` says");
    assert_eq!(s.blocked, 1, "kibana on gamma waits for elasticsearch");

    let alpha = w.host.cluster("kommander", "alpha").expect("alpha");
    let labels = alpha.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[CLUSTER_TYPE], "Konvoy");
    assert_eq!(labels[KUBERNETES_VERSION], "v1.20");
    let ready = &alpha.status.expect("status").conditions[0];
    assert_eq!(
        (ready.type_, ready.status),
        (ClusterConditionType::Ready, ConditionStatus::True)
    );
    assert_eq!(ready.reason.as_deref(), Some("ClusterReady"));
    assert_eq!(ready.message.as_deref(), Some("/healthz responded with ok"));

    assert!(
        !has(&w, "alpha", "cert-manager"),
        "a Konvoy cluster never gets cert-manager"
    );
    assert!(has(&w, "beta", "cert-manager"));
    let kibana = w
        .registry
        .get("gamma")
        .expect("gamma")
        .snapshot()
        .into_iter()
        .find(|a| a.id.name == "kibana")
        .expect("kibana");
    assert_eq!(kibana.status.stage, Some(Stage::Pending));
    assert_eq!(
        kibana.status.message.as_deref(),
        Some(
            "waiting for kubeaddons.mesosphere.io/name=elasticsearch: no such addon in this cluster"
        )
    );

    // Readiness flows back to the hub.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = flotilla_core::catalog::AddonId {
        kind: AddonKind::FederatedClusterAddon,
        namespace: None,
        name: "cert-manager".into(),
    };
    let status = w
        .host
        .addon(&id)
        .and_then(|o| o.status().cloned())
        .expect("status written");
    assert_eq!(
        status.selection.as_deref(),
        Some(
            "1/3 clusters selected: 1 failed kommander.mesosphere.io/cluster-type NotIn [Konvoy]; 1 failed kommander.mesosphere.io/kubernetes-version In [v1.16 v1.17 v1.18 v1.19 v1.20]"
        )
    );
    assert_eq!(status.clusters.len(), 1);
    assert_eq!(status.clusters[0].name, "beta");
    assert!(status.clusters[0].ready);
    assert_eq!(status.clusters[0].stage, Some(Stage::Deployed));
    assert_eq!(status.clusters[0].revision.as_deref(), Some("0.10.1-5"));
}
