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
        .any(|a| a.id.name.as_ref() == addon && !a.deleting)
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
        .find(|a| a.id.name.as_ref() == "kibana")
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

fn member(
    w: &flotilla_sim::world::World,
    name: &str,
) -> std::sync::Arc<flotilla_agent::memory::MemoryMember> {
    w.registry.get(name).expect("member")
}

fn slow_deployments() -> Behavior {
    let mut b = Behavior::default();
    b.stages.insert(
        "Deployment".into(),
        flotilla_agent::memory::Stage {
            delay: Duration::from_secs(20),
            jitter: Duration::from_secs(5),
            fail_share: 0.0,
        },
    );
    b
}

#[tokio::test(start_paused = true)]
async fn upgrade_out_of_range_removes_the_addon() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    assert!(has(&w, "beta", "cert-manager"));
    member(&w, "beta").set_version("v1.21.2-eks-1");
    // The manager reads /version again within a facts period, the agent within a resync.
    let facts = flotilla_manager::manager::ManagerConfig::default().facts_period;
    converge(&w, facts + Duration::from_secs(60)).await;
    assert!(
        !has(&w, "beta", "cert-manager"),
        "cert-manager supports v1.16 to v1.20 only"
    );
    assert!(
        has(&w, "beta", "traefik"),
        "traefik supports v1.21 and stays"
    );
    let labels = w
        .host
        .cluster("kommander", "beta")
        .and_then(|c| c.metadata.labels)
        .unwrap_or_default();
    assert_eq!(labels[KUBERNETES_VERSION], "v1.21");
    assert!(
        member(&w, "beta")
            .snapshot()
            .iter()
            .all(|a| a.id.name.as_ref() != "cert-manager"),
        "uninstalled and gone"
    );
}

#[tokio::test(start_paused = true)]
async fn kibana_waits_for_elasticsearch() {
    let w = article_world(WorldConfig::default(), &slow_deployments());
    converge(&w, Duration::from_secs(120)).await;
    let gamma = member(&w, "gamma");
    let stage = |name: &str| {
        gamma
            .snapshot()
            .into_iter()
            .find(|a| a.id.name.as_ref() == name)
            .and_then(|a| a.status.stage)
    };
    assert_eq!(stage("kibana"), Some(Stage::Pending));
    w.host
        .label_cluster(
            "kommander",
            "gamma",
            "kommander.mesosphere.io/federate-elasticsearch",
            Some("true"),
        )
        .expect("label");
    // elasticsearch arrives and deploys (slowly); kibana stays pending until it is ready.
    let mut saw_waiting_on_deploying = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if stage("elasticsearch") == Some(Stage::Deploying) {
            let kibana = gamma
                .snapshot()
                .into_iter()
                .find(|a| a.id.name.as_ref() == "kibana")
                .expect("kibana");
            assert_eq!(
                kibana.status.stage,
                Some(Stage::Pending),
                "kibana must wait"
            );
            saw_waiting_on_deploying |= kibana.status.message.as_deref()
                == Some("waiting for elasticsearch: not ready (stage deploying)");
        }
        if stage("kibana") == Some(Stage::Deployed) {
            break;
        }
    }
    assert!(saw_waiting_on_deploying);
    assert_eq!(stage("elasticsearch"), Some(Stage::Deployed));
    assert_eq!(stage("kibana"), Some(Stage::Deployed));
    let s = converge(&w, Duration::from_secs(60)).await;
    assert_eq!(s.blocked, 0);
}

#[tokio::test(start_paused = true)]
async fn federation_disabled_removes_everything() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    assert!(member(&w, "beta").snapshot().len() > 10);
    w.host
        .label_cluster(
            "kommander",
            "beta",
            "kommander.mesosphere.io/federation-enabled",
            Some("false"),
        )
        .expect("label");
    converge(&w, Duration::from_secs(60)).await;
    assert!(member(&w, "beta").snapshot().is_empty());
    assert_eq!(
        member(&w, "beta").manifest_count(),
        0,
        "the agent uninstalled everything"
    );
    assert!(
        !member(&w, "alpha").snapshot().is_empty(),
        "other clusters keep theirs"
    );
}

#[tokio::test(start_paused = true)]
async fn unreachable_cluster_goes_offline_and_catches_up() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    let beta = member(&w, "beta");
    let writes_before = beta.calls.manager();
    beta.set_reachable(false);
    tokio::time::sleep(Duration::from_secs(45)).await;
    let status = w
        .host
        .cluster("kommander", "beta")
        .and_then(|c| c.status)
        .expect("status");
    let offline = &status.conditions[0];
    assert_eq!(
        (offline.type_, offline.status),
        (ClusterConditionType::Offline, ConditionStatus::True)
    );
    assert_eq!(offline.reason.as_deref(), Some("ClusterNotReachable"));
    assert_eq!(offline.message.as_deref(), Some("cluster is not reachable"));

    // A new revision of reloader while beta is away: others get it, beta gets no writes.
    let mut reloader = flotilla_tests::article_objects()
        .into_iter()
        .find(|o| o.id().name.as_ref() == "reloader")
        .expect("reloader");
    if let flotilla_core::catalog::CatalogObject::Addon(a) = &mut reloader {
        let ann = a
            .spec
            .template
            .metadata
            .get_or_insert_with(Default::default);
        ann.annotations.insert(
            flotilla_core::types::REVISION_ANNOTATION.into(),
            "0.0.100-1".into(),
        );
    }
    w.host.apply_addon(reloader.clone()).expect("apply");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        beta.calls.manager(),
        writes_before,
        "no writes to a cluster that is not Ready"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = w
        .host
        .addon(&reloader.id())
        .and_then(|o| o.status().cloned())
        .expect("status");
    let b = st
        .clusters
        .iter()
        .find(|c| c.name == "beta")
        .expect("beta listed");
    assert_eq!(b.status.as_deref(), Some("ClusterNotReady"));

    beta.set_reachable(true);
    converge(&w, Duration::from_secs(60)).await;
    let r = beta
        .snapshot()
        .into_iter()
        .find(|a| a.id.name.as_ref() == "reloader")
        .expect("reloader");
    assert_eq!(r.status.revision.as_deref(), Some("0.0.100-1"), "caught up");
    let ready = &w
        .host
        .cluster("kommander", "beta")
        .and_then(|c| c.status)
        .expect("status")
        .conditions[0];
    assert_eq!(
        (ready.type_, ready.status),
        (ClusterConditionType::Ready, ConditionStatus::True)
    );
}

/// KubeFed's condition times: lastProbeTime moves at every probe, lastTransitionTime only
/// when the condition's status changes; the conditions follow the health (Ready; Ready
/// False with Offline False; Ready again).
#[tokio::test(start_paused = true)]
async fn a_conditions_transition_time_moves_only_when_its_status_does() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    let conditions = || {
        w.host
            .cluster("kommander", "beta")
            .and_then(|c| c.status)
            .expect("status")
            .conditions
    };
    let first = conditions();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let later = conditions();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].status, ConditionStatus::True);
    assert_eq!(later[0].last_transition_time, first[0].last_transition_time);
    assert!(later[0].last_probe_time.0 > first[0].last_probe_time.0);

    member(&w, "beta").set_healthy(false);
    tokio::time::sleep(Duration::from_secs(45)).await;
    let sick = conditions();
    let kinds: Vec<_> = sick.iter().map(|c| (c.type_, c.status)).collect();
    assert_eq!(
        kinds,
        [
            (ClusterConditionType::Ready, ConditionStatus::False),
            (ClusterConditionType::Offline, ConditionStatus::False)
        ]
    );
    assert!(sick[0].last_transition_time > later[0].last_transition_time);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let still = conditions();
    assert_eq!(still[0].last_transition_time, sick[0].last_transition_time);
    assert!(still[0].last_probe_time.0 > sick[0].last_probe_time.0);

    member(&w, "beta").set_healthy(true);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let well = conditions();
    assert_eq!(well.len(), 1);
    assert_eq!(
        (well[0].type_, well[0].status),
        (ClusterConditionType::Ready, ConditionStatus::True)
    );
    assert!(well[0].last_transition_time > still[0].last_transition_time);
}

/// Probes come in fleet-wide rounds, as KubeFed's health check does: a slow cluster's probe
/// goes out with everyone else's and is stamped its latency later, round after round (a
/// probe scheduled a period after the last one ended would drift by that latency each
/// round).
#[tokio::test(start_paused = true)]
async fn probes_go_out_in_fleet_wide_rounds() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    let slow = Duration::from_millis(700);
    member(&w, "beta").set_behavior(Behavior {
        latency: slow,
        ..Behavior::default()
    });
    converge(&w, Duration::from_secs(60)).await;
    let probed = |name: &str| {
        w.host
            .cluster("kommander", name)
            .and_then(|c| c.status)
            .expect("status")
            .conditions[0]
            .last_probe_time
            .0
    };
    let nanos = |d: Duration| i128::try_from(d.as_nanos()).expect("nanos");
    let period = nanos(WorldConfig::default().manager.probe_period);
    for wait in [5, 37, 61] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let apart = probed("beta").duration_since(probed("alpha")).as_nanos();
        assert_eq!(apart.rem_euclid(period), nanos(slow), "after {wait} s more");
    }
}

#[tokio::test(start_paused = true)]
async fn detach_cleans_up_then_the_object_goes() {
    let w = article_world(WorldConfig::default(), &slow_deployments());
    converge(&w, Duration::from_secs(120)).await;
    let beta = member(&w, "beta");
    assert!(beta.manifest_count() > 0);
    w.detach("kommander", "beta").expect("delete");
    assert!(
        w.host.cluster("kommander", "beta").is_some(),
        "held by the detach finalizer"
    );
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if w.host.cluster("kommander", "beta").is_none() {
            break;
        }
    }
    assert!(
        w.host.cluster("kommander", "beta").is_none(),
        "released once the member is clean"
    );
    assert!(beta.snapshot().is_empty());
    assert_eq!(beta.manifest_count(), 0);
    converge(&w, Duration::from_secs(30)).await;
}

#[tokio::test(start_paused = true)]
async fn unreachable_cluster_is_detached_after_the_timeout() {
    let mut config = WorldConfig::default();
    config.manager.detach_timeout = Duration::from_secs(120);
    let w = article_world(config, &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    member(&w, "gamma").set_reachable(false);
    tokio::time::sleep(Duration::from_secs(40)).await;
    w.detach("kommander", "gamma").expect("delete");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        w.host.cluster("kommander", "gamma").is_some(),
        "still waiting for the member"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        w.host.cluster("kommander", "gamma").is_none(),
        "detached anyway"
    );
    let events = w.host.events();
    let e = events
        .iter()
        .find(|e| e.reason == "DetachedWhileUnreachable")
        .expect("event");
    assert!(e.warning);
    assert!(
        e.message.contains("leaving behind 11 addon(s)")
            && e.message.contains("kubeaddons/reloader"),
        "{}",
        e.message
    );
}

fn manager_writes(w: &flotilla_sim::world::World) -> (u64, u64) {
    let all = w.registry.all();
    let applies = all
        .values()
        .map(|m| {
            m.calls
                .manager_applies
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    let deletes = all
        .values()
        .map(|m| {
            m.calls
                .manager_deletes
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    (applies, deletes)
}

#[tokio::test(start_paused = true)]
async fn nothing_is_written_when_nothing_changed() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    let s = converge(&w, Duration::from_secs(60)).await;
    let (applies, deletes) = manager_writes(&w);
    assert_eq!(
        (applies, deletes),
        (s.placements as u64, 0),
        "one write per placement, no faults"
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        manager_writes(&w),
        (applies, deletes),
        "steady state: no writes to members"
    );
}

#[tokio::test(start_paused = true)]
async fn manager_restart_mid_rollout_loses_and_duplicates_nothing() {
    let mut w = article_world(WorldConfig::default(), &slow_deployments());
    // Kill it in the middle: some addons written, most not ready.
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.kill_manager();
    let (written, _) = manager_writes(&w);
    assert!(written > 0, "some writes happened before the crash");
    tokio::time::sleep(Duration::from_secs(5)).await;
    w.start_manager();
    let s = converge(&w, Duration::from_secs(120)).await;
    let (applies, deletes) = manager_writes(&w);
    assert_eq!(
        applies, s.placements as u64,
        "each placement written exactly once across the restart"
    );
    assert_eq!(deletes, 0);
    for m in w.registry.all().values() {
        let names: Vec<_> = m.snapshot().into_iter().map(|a| a.id).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
    }
}

#[tokio::test(start_paused = true)]
async fn agent_restart_loses_nothing() {
    let mut w = article_world(WorldConfig::default(), &slow_deployments());
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.kill_agent("beta");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        converge_quick(&w).is_err(),
        "beta's addons cannot become ready without its agent"
    );
    w.start_agent("beta");
    let s = converge(&w, Duration::from_secs(120)).await;
    assert_eq!(s.ready + s.blocked, s.placements);
    let expected_manifests: usize = member(&w, "beta")
        .snapshot()
        .iter()
        .map(|a| a.spec.manifests.len())
        .sum();
    assert_eq!(
        member(&w, "beta").manifest_count(),
        expected_manifests,
        "nothing applied twice, nothing lost"
    );
}

fn converge_quick(w: &flotilla_sim::world::World) -> Result<(), Vec<String>> {
    w.check_converged(5).map(|_| ())
}

#[tokio::test(start_paused = true)]
async fn an_invalid_addon_is_reported_and_the_rest_flow() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    let bad: flotilla_core::catalog::CatalogObject = flotilla_core::catalog::CatalogObject::Addon(
        serde_json::from_value(serde_json::json!({
            "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedAddon",
            "metadata": {"name": "broken", "namespace": "kubeaddons"},
            "spec": {"template": {"spec": {}}, "placement": {"clusterSelector": {"matchExpressions": [
                {"key": "kommander.mesosphere.io/kubernetes-version", "operator": "Gt", "values": ["v1.19"]}]}}}}))
        .expect("object"),
    );
    w.host
        .apply_addon(bad.clone())
        .expect("the host stores it; Flotilla's validation reports it");
    let s = converge(&w, Duration::from_secs(60)).await;
    assert_eq!(s.placements, 30);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = w
        .host
        .addon(&bad.id())
        .and_then(|o| o.status().cloned())
        .expect("status");
    let c = &status.conditions[0];
    assert_eq!(
        (c.status, c.reason.as_deref()),
        (ConditionStatus::False, Some("InvalidSpec"))
    );
    assert!(c.message.as_deref().is_some_and(|m| m.contains(
        "FederatedAddon kubeaddons/broken: spec.placement.clusterSelector.matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator"
    )), "{c:?}");
    assert!(
        w.registry
            .all()
            .values()
            .all(|m| m.snapshot().iter().all(|a| a.id.name.as_ref() != "broken"))
    );
}

#[tokio::test(start_paused = true)]
async fn member_api_errors_are_retried_with_backoff() {
    let b = Behavior {
        error_rate: 0.2,
        throttle_rate: 0.1,
        conflict_rate: 0.1,
        ..Behavior::default()
    };
    let w = article_world(WorldConfig::default(), &b);
    let s = converge(&w, Duration::from_secs(300)).await;
    assert_eq!(s.placements, 30);
    let faults: u64 = w
        .registry
        .all()
        .values()
        .map(|m| {
            m.calls
                .faults_injected
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(
        faults > 20,
        "errors were injected ({faults}) and converged through anyway"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_members_converge_and_probe_timeouts_mean_offline() {
    let slow = Behavior {
        latency: Duration::from_millis(1500),
        latency_jitter: Duration::from_millis(500),
        ..Behavior::default()
    };
    let w = article_world(WorldConfig::default(), &slow);
    converge(&w, Duration::from_secs(300)).await;
    // Slower than the probe timeout (3 s): probes time out, the cluster goes Offline.
    let mut too_slow = slow.clone();
    too_slow.latency = Duration::from_secs(4);
    member(&w, "alpha").set_behavior(too_slow);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let c = &w
        .host
        .cluster("kommander", "alpha")
        .and_then(|c| c.status)
        .expect("status")
        .conditions[0];
    assert_eq!(
        (c.type_, c.status),
        (ClusterConditionType::Offline, ConditionStatus::True)
    );
    member(&w, "alpha").set_behavior(slow);
    converge(&w, Duration::from_secs(120)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_cluster_never_blocks_the_others() {
    let w = article_world(WorldConfig::default(), &slow_deployments());
    let broken = Behavior {
        error_rate: 1.0,
        ..Behavior::default()
    };
    member(&w, "beta").set_behavior(broken);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let others = w.check_converged(100).expect_err("beta cannot converge");
    assert!(
        others.iter().all(|l| l.starts_with("beta:")),
        "only beta is behind: {others:?}"
    );
}

/// Taking an addon out of the catalog takes its `federate-<addon>=default-*` label off
/// every cluster, and putting it back puts the label back: the probes relabel at once,
/// not at their next facts read.
#[tokio::test(start_paused = true)]
async fn catalog_changes_relabel_every_cluster() {
    let w = article_world(WorldConfig::default(), &Behavior::default());
    converge(&w, Duration::from_secs(60)).await;
    let label = |cluster: &str| {
        w.host
            .cluster("kommander", cluster)
            .and_then(|c| c.metadata.labels)
            .unwrap_or_default()
            .get("kommander.mesosphere.io/federate-reloader")
            .cloned()
    };
    assert_eq!(label("alpha").as_deref(), Some("default-true"));
    let reloader = flotilla_tests::article_objects()
        .into_iter()
        .find(|o| o.id().name.as_ref() == "reloader")
        .expect("reloader");
    w.host.delete_addon(&reloader.id()).expect("delete");
    tokio::time::sleep(Duration::from_secs(5)).await;
    for c in ["alpha", "beta", "gamma"] {
        assert_eq!(label(c), None, "{c}");
    }
    w.host.apply_addon(reloader).expect("apply");
    tokio::time::sleep(Duration::from_secs(5)).await;
    for c in ["alpha", "beta", "gamma"] {
        assert_eq!(label(c).as_deref(), Some("default-true"), "{c}");
    }
    converge(&w, Duration::from_secs(60)).await;
}
