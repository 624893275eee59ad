//! The simulator as a user drives it: scenarios, generation, virtual time, reports, and
//! debugging a simulated fleet from its saved state.

use std::path::Path;
mod common;

use common::{ok, sim};

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn scenarios_are_listed_and_printable() {
    let list = ok(&["scenarios"]);
    for name in ["default", "konvoy-mix", "upgrade-wave", "chaos"] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{list}");
    }
    let chaos = ok(&["scenarios", "chaos"]);
    assert!(chaos.contains("name: chaos") && chaos.contains("duration: 24h"));
    let e = sim(&["scenarios", "nope"]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr)
            .contains("built in: default, konvoy-mix, upgrade-wave, chaos")
    );
}

#[test]
fn generated_fleets_replay_and_feed_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.yaml");
    ok(&[
        "generate",
        "--scenario",
        "konvoy-mix",
        "--clusters",
        "25",
        "--seed",
        "9",
        "-o",
        &path(&a),
    ]);
    let again = ok(&[
        "generate",
        "--scenario",
        "konvoy-mix",
        "--clusters",
        "25",
        "--seed",
        "9",
    ]);
    assert_eq!(
        std::fs::read_to_string(&a).expect("fleet"),
        again,
        "same seed, same fleet"
    );
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/catalog.yaml");
    let placed = ok(&[
        "place",
        "--fleet",
        &path(&a),
        "--catalog",
        &path(&catalog),
        "-o",
        "json",
    ]);
    assert_eq!(placed.lines().count(), 25 * 16);
    // Konvoy clusters never get cert-manager, however the generator set federate-cert-manager.
    for l in placed.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        if v["name"] == "cert-manager" && v["placed"] == true {
            assert!(!l.contains("NotIn [Konvoy]"));
        }
    }
}

fn report_without_wall(p: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("report")).expect("json");
    v.as_object_mut().expect("object").remove("wall");
    v
}

#[test]
fn virtual_time_replays_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let args = |r: &Path| {
        vec![
            "run".to_string(),
            "--scenario".into(),
            "upgrade-wave".into(),
            "--clusters".into(),
            "150".into(),
            "--seed".into(),
            "11".into(),
            "--virtual-time".into(),
            "--report".into(),
            path(r),
        ]
    };
    let out = ok(&args(&a).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("converged, no invariant violated"), "{out}");
    ok(&args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    let (ra, rb) = (report_without_wall(&a), report_without_wall(&b));
    assert_eq!(
        serde_json::to_string_pretty(&ra).ok(),
        serde_json::to_string_pretty(&rb).ok(),
        "everything outside `wall` is deterministic"
    );
    assert_eq!(ra["clock"], "virtual");
    assert_eq!(ra["converged"], true);
    assert!(ra["time_to_converge_ms"].as_u64().is_some());
    assert!(ra["propagation_latency"]["count"].as_u64().unwrap_or(0) > 0);
    assert!(
        ra["writes"]["manager_per_placement"]
            .as_f64()
            .unwrap_or(9.0)
            <= 1.5
    );
    for key in [
        "scenario",
        "seed",
        "clusters",
        "addons",
        "placements",
        "reconciles",
        "probes",
        "violations",
    ] {
        assert!(ra.get(key).is_some(), "report has {key}");
    }
}

/// Every fault and churn kind of the chaos scenario, compressed into three hours of a small
/// fleet so that it runs in seconds in a debug build (the full day is a benchmark).
const MINI_CHAOS: &str = "name: mini-chaos
clusters: 40
seed: 5
duration: 3h
deadline: 30m
probePeriod: 60s
fleet:
  types: {Konvoy: 0.3, EKS: 0.3, GKE: 0.2, Generic: 0.2}
  versions: {v1.19: 0.3, v1.20: 0.4, v1.21: 0.3}
  federate:
    kibana: {\"true\": 0.3}
    elasticsearch: {\"true\": 0.3}
members:
  latency: 50ms
  latencyJitter: 200ms
  errorRate: 0.05
  throttleRate: 0.02
  conflictRate: 0.02
  unreachable: 0.1
  unreachableFor: 20m
  flapping: 0.05
  flappingFor: 30m
  stages:
    Deployment: {delay: 30s, jitter: 60s, failShare: 0.1}
timeline:
  - at: 30m
    partition: {share: 0.2, for: 15m}
  - at: 50m
    rollout: {addon: kubeaddons/prometheus, revision: 0.50.0-1}
  - at: 1h
    restartManager: {}
  - at: 70m
    upgradeWave: {share: 0.5, from: v1.20, to: v1.21}
  - at: 80m
    restartAgents: {share: 0.3}
  - at: 90m
    attach: {count: 10}
  - at: 100m
    detach: {share: 0.1}
  - at: 110m
    catalogRemove: {addon: kubeaddons/reloader}
  - at: 2h
    catalogAdd: {addon: kubeaddons/reloader}
  - at: 130m
    labelFlip: {share: 0.2, key: kommander.mesosphere.io/federation-enabled, value: \"false\"}
";

#[test]
fn a_chaos_day_converges_once_faults_heal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (scenario, r) = (
        dir.path().join("mini-chaos.yaml"),
        dir.path().join("r.json"),
    );
    std::fs::write(&scenario, MINI_CHAOS).expect("write");
    let out = ok(&[
        "run",
        "--scenario",
        &path(&scenario),
        "--virtual-time",
        "--report",
        &path(&r),
    ]);
    assert!(out.contains("converged, no invariant violated"), "{out}");
    let v = report_without_wall(&r);
    assert!(
        v["writes"]["faults_injected"].as_u64().unwrap_or(0) > 0,
        "faults were injected"
    );
    assert!(
        v["probes"]["offline"].as_u64().unwrap_or(0) > 0,
        "partitions were seen"
    );
    assert!(
        v["probes"]["not_ok"].as_u64().unwrap_or(0) > 0,
        "flapping was seen"
    );
    assert!(v["violations"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(
        v["clusters"].as_u64(),
        Some(v["clusters"].as_u64().unwrap_or(0)).filter(|n| (40..=50).contains(n))
    );
}

#[test]
fn a_simulated_fleet_is_debugged_like_a_real_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    ok(&[
        "run",
        "--clusters",
        "40",
        "--seed",
        "2",
        "--virtual-time",
        "--state-out",
        &path(&state),
    ]);
    let s = path(&state);
    let clusters = ok(&["get", "kubefedclusters", "--state", &s]);
    assert!(
        clusters.starts_with("NAMESPACE   NAME")
            && clusters.contains("kommander   cluster-00000   True"),
        "{clusters}"
    );
    let addons = ok(&[
        "get",
        "addon.kubeaddons.mesosphere.io,clusteraddon.kubeaddons.mesosphere.io",
        "--state",
        &s,
        "--cluster",
        "cluster-00001",
    ]);
    assert!(
        addons.contains("READY") && addons.contains("STAGE") && addons.contains("REVISION"),
        "{addons}"
    );
    assert!(addons.contains("deployed"), "{addons}");
    let fed = ok(&[
        "get",
        "federatedaddons,federatedclusteraddons",
        "--state",
        &s,
    ]);
    assert!(
        fed.contains("federatedclusteraddon.types.kubefed.io/cert-manager"),
        "{fed}"
    );
    let describe = ok(&["describe", "kubefedcluster", "cluster-00000", "--state", &s]);
    assert!(
        describe.contains("kommander.mesosphere.io/cluster-type=")
            && describe.contains("/healthz responded with ok"),
        "{describe}"
    );
    let cm = ok(&[
        "describe",
        "federatedclusteraddon",
        "cert-manager",
        "--state",
        &s,
    ]);
    assert!(
        cm.contains("Match Expressions:")
            && cm.contains("Operator:  NotIn")
            && cm.contains("Selection:"),
        "{cm}"
    );
    let why = ok(&["explain", "--state", &s, "--addon", "cert-manager"]);
    assert!(
        why.starts_with("cert-manager: ") && why.contains(" -> cluster-00000: "),
        "{why}"
    );
}

#[test]
fn scenario_files_are_checked_with_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("s.yaml");
    std::fs::write(&f, "name: mine\nclusters: 10\ndeadline: 60s\nfleet:\n  types: {Konvoy: 1}\n  versions: {v1.20: 1}\ntimeline:\n  - at: 10s\n    rollout: {addon: reloader}\n").expect("write");
    let out = sim(&["run", "--scenario", &path(&f), "--virtual-time"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&path(&f)) && e.contains("revision"), "{e}");
}
