//! The agent against a simulated member, on a paused clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::catalog::{AddonId, AddonKind};
use flotilla_core::render::DesiredAddon;
use flotilla_core::selector::LabelSelector;
use flotilla_core::types::{ADDON_NAME_LABEL, AddonSpec, KubernetesSupport, Stage};

use crate::member::{MemberCluster, Readiness};
use crate::memory::{Behavior, MemoryMember, Stage as SimStage};
use crate::reconcile::{Agent, AgentConfig};

fn id(name: &str) -> AddonId {
    AddonId {
        kind: AddonKind::FederatedAddon,
        namespace: Some("kubeaddons".into()),
        name: name.into(),
    }
}

fn desired(name: &str, spec: AddonSpec) -> DesiredAddon {
    DesiredAddon {
        id: id(name),
        labels: BTreeMap::from([(ADDON_NAME_LABEL.to_string(), name.to_string())]).into(),
        annotations: Default::default(),
        spec: Arc::new(spec),
    }
}

fn deployment(name: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "x"}})
}

fn slow_deployments() -> Behavior {
    Behavior {
        stages: BTreeMap::from([(
            "Deployment".to_string(),
            SimStage {
                delay: Duration::from_secs(5),
                jitter: Duration::ZERO,
                fail_share: 0.0,
            },
        )]),
        ..Behavior::default()
    }
}

fn status_of(m: &MemoryMember, name: &str) -> (Option<Stage>, bool, Option<String>) {
    let a = m
        .snapshot()
        .into_iter()
        .find(|a| a.id.name.as_ref() == name)
        .expect("present");
    (a.status.stage, a.status.ready, a.status.message)
}

async fn settle(agent: &mut Agent<MemoryMember>, rounds: usize) {
    for _ in 0..rounds {
        let wait = agent.pass().await.expect("pass");
        tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
    }
}

/// One pass, with how many reads it made of the member.
async fn counted_pass(agent: &mut Agent<MemoryMember>, m: &MemoryMember) -> (u64, Duration) {
    let reads = || m.calls.reads.load(std::sync::atomic::Ordering::Relaxed);
    let before = reads();
    let wait = agent.pass().await.expect("pass");
    (reads() - before, wait)
}

#[tokio::test(start_paused = true)]
async fn deploys_then_reports_ready() {
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], slow_deployments(), 1);
    m.apply_addon(&desired(
        "reloader",
        AddonSpec {
            manifests: vec![deployment("reloader")],
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    let mut agent = Agent::new("alpha", m.clone(), AgentConfig::default(), 7);
    agent.pass().await.expect("pass");
    agent.pass().await.expect("pass");
    assert_eq!(status_of(&m, "reloader").0, Some(Stage::Deploying));
    settle(&mut agent, 3).await;
    assert_eq!(
        status_of(&m, "reloader"),
        (Some(Stage::Deployed), true, None)
    );
    let a = m.snapshot().remove(0);
    assert_eq!(
        a.status.revision.as_deref(),
        Some("1"),
        "no annotation: the generation"
    );
    assert_eq!(*a.finalizers, [crate::member::UNINSTALL_FINALIZER]);
}

#[tokio::test(start_paused = true)]
async fn requires_waits_for_the_dependency() {
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], slow_deployments(), 1);
    let requires = vec![LabelSelector {
        match_labels: Some(BTreeMap::from([(
            ADDON_NAME_LABEL.to_string(),
            "elasticsearch".to_string(),
        )])),
        match_expressions: None,
    }];
    m.apply_addon(&desired(
        "kibana",
        AddonSpec {
            requires,
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    let mut agent = Agent::new("alpha", m.clone(), AgentConfig::default(), 7);
    settle(&mut agent, 2).await;
    let (stage, ready, msg) = status_of(&m, "kibana");
    assert_eq!((stage, ready), (Some(Stage::Pending), false));
    assert_eq!(
        msg.as_deref(),
        Some(
            "waiting for kubeaddons.mesosphere.io/name=elasticsearch: no such addon in this cluster"
        )
    );

    m.apply_addon(&desired(
        "elasticsearch",
        AddonSpec {
            manifests: vec![deployment("es")],
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    settle(&mut agent, 2).await;
    assert_eq!(
        status_of(&m, "kibana").2.as_deref(),
        Some("waiting for elasticsearch: not ready (stage deploying)")
    );
    settle(&mut agent, 4).await;
    assert_eq!(status_of(&m, "elasticsearch").0, Some(Stage::Deployed));
    assert_eq!(status_of(&m, "kibana"), (Some(Stage::Deployed), true, None));
}

#[tokio::test(start_paused = true)]
async fn refuses_unsupported_versions() {
    let m = MemoryMember::new("gamma", "v1.21.14-gke.700", vec![], Behavior::default(), 1);
    let k = KubernetesSupport {
        min_supported_version: Some("v1.16".into()),
        max_supported_version: Some("v1.20".into()),
    };
    m.apply_addon(&desired(
        "cert-manager",
        AddonSpec {
            kubernetes: Some(k),
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    let mut agent = Agent::new("gamma", m.clone(), AgentConfig::default(), 7);
    settle(&mut agent, 2).await;
    let (stage, _, msg) = status_of(&m, "cert-manager");
    assert_eq!(stage, Some(Stage::Failed));
    assert_eq!(
        msg.as_deref(),
        Some("cluster runs v1.21.14, above maxSupportedVersion v1.20")
    );
    assert_eq!(m.manifest_count(), 0);
}

/// The version moves on upgrades only: a pass reads it once a resync, and an upgrade out
/// of an addon's range fails the addon at the next one.
#[tokio::test(start_paused = true)]
async fn an_upgrade_is_seen_at_the_next_resync() {
    let m = MemoryMember::new("gamma", "v1.20.4", vec![], Behavior::default(), 1);
    let k = KubernetesSupport {
        min_supported_version: Some("v1.16".into()),
        max_supported_version: Some("v1.20".into()),
    };
    let spec = AddonSpec {
        kubernetes: Some(k),
        manifests: vec![deployment("cert-manager")],
        ..Default::default()
    };
    m.apply_addon(&desired("cert-manager", spec))
        .await
        .expect("apply");
    let config = AgentConfig::default();
    let mut agent = Agent::new("gamma", m.clone(), config, 7);
    settle(&mut agent, 2).await;
    assert_eq!(status_of(&m, "cert-manager").0, Some(Stage::Deployed));

    m.set_version("v1.21.1");
    agent.pass().await.expect("pass");
    assert_eq!(
        status_of(&m, "cert-manager").0,
        Some(Stage::Deployed),
        "not read again before the resync"
    );
    tokio::time::advance(config.resync).await;
    agent.pass().await.expect("pass");
    assert_eq!(
        status_of(&m, "cert-manager"),
        (
            Some(Stage::Failed),
            false,
            Some("cluster runs v1.21.1, above maxSupportedVersion v1.20".into())
        )
    );
}

#[tokio::test(start_paused = true)]
async fn uninstalls_on_delete() {
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], Behavior::default(), 1);
    m.apply_addon(&desired(
        "reloader",
        AddonSpec {
            manifests: vec![deployment("r")],
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    let mut agent = Agent::new("alpha", m.clone(), AgentConfig::default(), 7);
    settle(&mut agent, 3).await;
    assert_eq!(m.manifest_count(), 1);
    m.delete_addon(&id("reloader")).await.expect("delete");
    assert_eq!(m.snapshot().len(), 1, "the finalizer holds the object");
    settle(&mut agent, 1).await;
    assert!(m.snapshot().is_empty(), "uninstalled, then the object went");
    assert_eq!(m.manifest_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn api_errors_and_failures_are_retried() {
    let mut b = slow_deployments();
    b.error_rate = 0.3;
    b.throttle_rate = 0.1;
    b.conflict_rate = 0.1;
    b.stages.insert(
        "Deployment".into(),
        SimStage {
            delay: Duration::from_secs(1),
            jitter: Duration::ZERO,
            fail_share: 0.5,
        },
    );
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], Behavior::default(), 3);
    for i in 0..5 {
        m.apply_addon(&desired(
            &format!("a{i}"),
            AddonSpec {
                manifests: vec![deployment(&format!("d{i}"))],
                ..Default::default()
            },
        ))
        .await
        .expect("apply");
    }
    m.set_behavior(b);
    let agent = Agent::new("alpha", m.clone(), AgentConfig::default(), 7);
    let task = tokio::spawn(agent.run());
    let mut failures_seen = false;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let snap = m.snapshot();
        failures_seen |= snap.iter().any(|a| a.status.stage == Some(Stage::Failed));
        if snap.iter().all(|a| a.status.stage == Some(Stage::Deployed)) {
            break;
        }
    }
    task.abort();
    assert!(
        failures_seen,
        "the stage model should have failed some applies"
    );
    assert!(
        m.snapshot()
            .iter()
            .all(|a| a.status.ready && a.status.stage == Some(Stage::Deployed)),
        "{:?}",
        m.snapshot()
    );
}

#[tokio::test(start_paused = true)]
async fn a_woken_pass_rereads_deployed_manifests_only_at_resync() {
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], Behavior::default(), 1);
    m.apply_addon(&desired(
        "traefik",
        AddonSpec {
            manifests: vec![deployment("traefik"), deployment("traefik-forward-auth")],
            ..Default::default()
        },
    ))
    .await
    .expect("apply");
    let config = AgentConfig::default();
    let mut agent = Agent::new("alpha", m.clone(), config, 7);
    agent.pass().await.expect("applies");
    agent.pass().await.expect("finds it ready");
    assert_eq!(
        status_of(&m, "traefik"),
        (Some(Stage::Deployed), true, None)
    );
    let (reads, _) = counted_pass(&mut agent, &m).await;
    assert_eq!(
        reads, 1,
        "woken: the list only (the version is read at resync)"
    );

    // A new revision with the same spec: the status says so at once.
    let mut revised = desired(
        "traefik",
        AddonSpec {
            manifests: vec![deployment("traefik"), deployment("traefik-forward-auth")],
            ..Default::default()
        },
    );
    revised.annotations = BTreeMap::from([(
        flotilla_core::types::REVISION_ANNOTATION.to_string(),
        "1.7.24-2".to_string(),
    )])
    .into();
    m.apply_addon(&revised).await.expect("apply");
    agent.pass().await.expect("pass");
    let a = m.snapshot().remove(0);
    assert_eq!(a.status.revision.as_deref(), Some("1.7.24-2"));
    assert!(a.status.ready);

    tokio::time::advance(config.resync).await;
    let (reads, _) = counted_pass(&mut agent, &m).await;
    assert_eq!(
        reads, 4,
        "at resync: the list, the version and both manifests"
    );
    assert_eq!(
        status_of(&m, "traefik"),
        (Some(Stage::Deployed), true, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploying_addon_is_read_again_when_it_may_be_ready_not_when_another_is() {
    let stage = |secs| SimStage {
        delay: Duration::from_secs(secs),
        jitter: Duration::ZERO,
        fail_share: 0.0,
    };
    let behavior = Behavior {
        stages: BTreeMap::from([
            ("Deployment".to_string(), stage(5)),
            ("Job".to_string(), stage(60)),
        ]),
        ..Behavior::default()
    };
    let m = MemoryMember::new("alpha", "v1.20.11", vec![], behavior, 1);
    let job = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "x"}});
    for (name, manifest) in [("reloader", deployment("reloader")), ("velero", job)] {
        let spec = AddonSpec {
            manifests: vec![manifest],
            ..Default::default()
        };
        m.apply_addon(&desired(name, spec)).await.expect("apply");
    }
    let mut agent = Agent::new("alpha", m.clone(), AgentConfig::default(), 7);
    agent.pass().await.expect("applies both");
    let wait = agent.pass().await.expect("reads both");
    assert_eq!(wait, Duration::from_secs(5));

    tokio::time::advance(wait).await;
    let (reads, wait) = counted_pass(&mut agent, &m).await;
    assert_eq!(
        reads, 2,
        "the list and reloader's Deployment; not velero's Job"
    );
    assert_eq!(
        status_of(&m, "reloader"),
        (Some(Stage::Deployed), true, None)
    );
    assert_eq!(status_of(&m, "velero").0, Some(Stage::Deploying));
    assert_eq!(wait, Duration::from_secs(55), "velero's Job is due then");

    tokio::time::advance(wait).await;
    agent.pass().await.expect("pass");
    assert_eq!(status_of(&m, "velero"), (Some(Stage::Deployed), true, None));
}

/// The member client applies the probe's timeout: a member slower than it answers
/// "timed out" once the timeout has passed, not when its own latency would have.
#[tokio::test(start_paused = true)]
async fn a_healthz_slower_than_its_timeout_times_out_at_the_timeout() {
    let slow = Behavior {
        latency: Duration::from_secs(5),
        ..Behavior::default()
    };
    let m = MemoryMember::new("c1", "v1.20.0", vec![], slow, 1);
    let start = tokio::time::Instant::now();
    let timeout = Duration::from_secs(3);
    assert_eq!(
        m.healthz(timeout).await,
        Err(crate::member::MemberError::Timeout(timeout))
    );
    assert_eq!(start.elapsed(), timeout);
    let start = tokio::time::Instant::now();
    assert_eq!(
        m.healthz(Duration::from_secs(10)).await.as_deref(),
        Ok("ok")
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

/// Several addons' manifests are read in one round trip, each GET still counted, and an
/// addon with nothing applied is pending, not failed.
#[tokio::test(start_paused = true)]
async fn readiness_is_one_round_trip_of_one_read_per_manifest() {
    let behavior = Behavior {
        latency: Duration::from_secs(1),
        ..Behavior::default()
    };
    let m = MemoryMember::new("c1", "v1.20.0", vec![], behavior, 1);
    let manifests = vec![deployment("a"), deployment("b"), deployment("c")];
    for d in &manifests {
        m.apply_manifest(&id("x"), d).await.expect("apply");
    }
    let reads = || m.calls.reads.load(std::sync::atomic::Ordering::Relaxed);
    let (before, start) = (reads(), tokio::time::Instant::now());
    let (x, y) = (id("x"), id("y"));
    let answers = m
        .readiness(&[(&x, &manifests[..]), (&y, &manifests[..1])])
        .await;
    assert_eq!(
        answers,
        vec![
            Ok(vec![Readiness::Ready; 3]),
            Ok(vec![Readiness::Pending { retry_after: None }])
        ]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(reads() - before, 4);
}

#[tokio::test(start_paused = true)]
async fn a_change_log_names_a_changed_member_once_per_read() {
    let log = Arc::new(crate::memory::ChangeLog::default());
    let a = MemoryMember::new("alpha", "v1.20.11", vec![], Behavior::default(), 1);
    let b = MemoryMember::new("beta", "v1.20.11", vec![], Behavior::default(), 2);
    a.log_changes_to(log.clone());
    b.log_changes_to(log.clone());
    assert!(log.take().is_empty());
    for name in ["reloader", "traefik"] {
        a.apply_addon(&desired(name, AddonSpec::default()))
            .await
            .expect("apply");
    }
    assert_eq!(log.take(), ["alpha"]);
    assert!(log.take().is_empty(), "nothing moved since the last read");
    b.apply_addon(&desired("reloader", AddonSpec::default()))
        .await
        .expect("apply");
    a.delete_addon(&id("traefik")).await.expect("delete");
    assert_eq!(log.take(), ["beta", "alpha"]);
}

/// A scheduled probe answers once, at its time plus the member's latency, with the
/// member's state when the answer leaves; a member slower than the timeout times out at
/// its time plus the timeout.
#[tokio::test(start_paused = true)]
async fn a_scheduled_healthz_answers_at_its_time_plus_the_latency() {
    let latency = Duration::from_millis(250);
    let behavior = Behavior {
        latency,
        ..Behavior::default()
    };
    let m = MemoryMember::new("c1", "v1.20.0", vec![], behavior, 1);
    let start = tokio::time::Instant::now();
    let at = start + Duration::from_secs(60);
    let timeout = Duration::from_secs(3);
    assert_eq!(m.healthz_at(at, timeout).await.as_deref(), Ok("ok"));
    assert_eq!(start.elapsed(), Duration::from_secs(60) + latency);

    // The member turns unhealthy while the probe is on its way: the answer says so.
    let at = tokio::time::Instant::now() + Duration::from_secs(60);
    let probe = m.healthz_at(at, timeout);
    let member = m.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60) + latency / 2).await;
        member.set_healthy(false);
    });
    let answer = probe.await;
    assert!(
        answer.as_deref().is_ok_and(|b| b != "ok"),
        "answer {answer:?}"
    );

    m.set_behavior(Behavior {
        latency: Duration::from_secs(5),
        ..Behavior::default()
    });
    let at = tokio::time::Instant::now() + Duration::from_secs(60);
    assert_eq!(
        m.healthz_at(at, timeout).await,
        Err(crate::member::MemberError::Timeout(timeout))
    );
    assert_eq!(tokio::time::Instant::now(), at + timeout);
}
