//! The `flotilla-sim` binary, driven as a user would, on the article's examples.

use std::path::{Path, PathBuf};
mod common;

use common::{ok, sim};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

fn failing(args: &[&str]) -> String {
    let out = sim(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn world() -> [String; 4] {
    let e = examples();
    [
        "--fleet".into(),
        e.join("fleet.yaml").display().to_string(),
        "--catalog".into(),
        e.join("catalog.yaml").display().to_string(),
    ]
}

fn with<'a>(cmd: &'a str, w: &'a [String; 4], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd];
    v.extend(w.iter().map(String::as_str));
    v.extend_from_slice(extra);
    v
}

#[test]
fn place_json_follows_the_article() {
    let w = world();
    let out = ok(&with("place", &w, &["-o", "json"]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3 * 16, "one line per (cluster, addon)");
    let find = |c: &str, n: &str| {
        lines
            .iter()
            .find(|l| l["cluster"] == c && l["name"] == n)
            .expect("present")
            .clone()
    };
    let alpha_cm = find("alpha", "cert-manager");
    assert_eq!(alpha_cm["kind"], "FederatedClusterAddon");
    assert_eq!(alpha_cm["namespace"], serde_json::Value::Null);
    assert_eq!(
        alpha_cm["placed"], false,
        "Konvoy never gets cert-manager, even with federate-cert-manager=true"
    );
    assert_eq!(
        alpha_cm["unmet"],
        serde_json::json!(["kommander.mesosphere.io/cluster-type NotIn [Konvoy]"])
    );
    assert_eq!(find("beta", "cert-manager")["placed"], true);
    assert_eq!(
        find("gamma", "cert-manager")["unmet"],
        serde_json::json!([
            "kommander.mesosphere.io/kubernetes-version In [v1.16 v1.17 v1.18 v1.19 v1.20]"
        ])
    );
    let reloader = find("alpha", "reloader");
    assert_eq!(reloader["namespace"], "kubeaddons");
    assert_eq!(find("gamma", "elasticsearch")["placed"], false);
    assert_eq!(find("gamma", "kibana")["placed"], true);
}

#[test]
fn place_table_has_a_row_per_cluster() {
    let w = world();
    let out = ok(&with("place", &w, &[]));
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("CLUSTER") && rows[0].contains("PLACED"));
    assert!(
        rows[1].starts_with("alpha") && rows[1].contains("Konvoy") && rows[1].contains("6/16"),
        "{out}"
    );
    assert!(!rows[1].contains("cert-manager"));
    assert!(rows[2].starts_with("beta") && rows[2].contains("cert-manager"));
}

#[test]
fn explain_says_why_requirement_by_requirement() {
    let w = world();
    let out = ok(&with(
        "explain",
        &w,
        &["--cluster", "alpha", "--addon", "cert-manager"],
    ));
    assert_eq!(
        out,
        "cert-manager -> alpha: not placed
  ok    kommander.mesosphere.io/cluster-type Exists                                    (Konvoy)
  FAIL  kommander.mesosphere.io/cluster-type NotIn [Konvoy]                            (Konvoy)
  ok    kommander.mesosphere.io/federate-cert-manager In [true default-true]           (true)
  ok    kommander.mesosphere.io/kubernetes-version In [v1.16 v1.17 v1.18 v1.19 v1.20]  (v1.20)
"
    );
    let kibana = ok(&with("explain", &w, &["--addon", "kubeaddons/kibana"]));
    assert!(kibana.starts_with("kubeaddons/kibana: 2/3 clusters selected: 1 failed kommander.mesosphere.io/cluster-type NotIn [Konvoy]\n"), "{kibana}");
    assert!(kibana.contains("kubeaddons/kibana -> gamma: placed, blocked\n"));
    assert!(kibana.contains(
        "  blocked: kibana requires elasticsearch, which is not placed on gamma: federate-elasticsearch=default-false\n"
    ));
    let fleet = ok(&with("explain", &w, &[]));
    assert_eq!(fleet.lines().count(), 16, "one summary per addon");
    assert!(fleet.contains("cert-manager: 1/3 clusters selected: 1 failed kommander.mesosphere.io/cluster-type NotIn [Konvoy]; 1 failed kommander.mesosphere.io/kubernetes-version In [v1.16 v1.17 v1.18 v1.19 v1.20]\n"));
}

#[test]
fn unknown_names_list_what_exists() {
    let w = world();
    let e = failing(&with("explain", &w, &["--cluster", "delta"]));
    assert!(
        e.contains("no cluster \"delta\" in the fleet; it has: alpha, beta, gamma"),
        "{e}"
    );
    let e = failing(&with("explain", &w, &["--addon", "kubeaddons/nope"]));
    assert!(
        e.contains("no addon \"kubeaddons/nope\" in the catalog"),
        "{e}"
    );
}

#[test]
fn bad_input_names_file_line_object_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = std::fs::read_to_string(examples().join("catalog.yaml")).expect("catalog");
    let fleet = examples().join("fleet.yaml").display().to_string();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };

    let missing = failing(&[
        "place",
        "--fleet",
        &fleet,
        "--catalog",
        "/nonexistent/catalog.yaml",
    ]);
    assert!(
        missing.contains("/nonexistent/catalog.yaml: cannot read"),
        "{missing}"
    );

    let gt = write(
        "gt.yaml",
        &catalog.replacen("operator: NotIn", "operator: Gt", 1),
    );
    let e = failing(&["place", "--fleet", &fleet, "--catalog", &gt]);
    assert!(e.contains(&format!("{gt}:")), "{e}");
    assert!(e.contains("FederatedAddon kubeaddons/elasticsearch: spec.placement.clusterSelector.matchExpressions[1].operator: Invalid value: \"Gt\": not a valid selector operator"), "{e}");

    let syntax = write(
        "syntax.yaml",
        &catalog.replacen("operator: Exists", "operator: [Exists", 1),
    );
    let e = failing(&["place", "--fleet", &fleet, "--catalog", &syntax]);
    assert!(
        e.contains(&format!(
            "{syntax}:261:14: spec.placement.clusterSelector.matchExpressions[0].operator:"
        )),
        "{e}"
    );

    let unknown = write(
        "unknown.yaml",
        &catalog.replacen("clusterSelector:", "clusterSelecter:", 1),
    );
    let e = failing(&["place", "--fleet", &fleet, "--catalog", &unknown]);
    assert!(
        e.contains("unknown field `clusterSelecter`")
            && e.contains("spec.placement.clusterSelecter"),
        "{e}"
    );

    let kind = write(
        "kind.yaml",
        &catalog.replacen("kind: FederatedAddon", "kind: FederatedThing", 1),
    );
    let e = failing(&["place", "--fleet", &fleet, "--catalog", &kind]);
    assert!(e.contains(":7: FederatedThing kommander-system/kommander-kubeaddons-kommander-karma-proxy: kind: Unsupported value"), "{e}");

    let bad_fleet = write(
        "fleet.yaml",
        "clusters:\n  - name: a\n    kubernetesVersion: 1.20\n",
    );
    let e = failing(&[
        "place",
        "--fleet",
        &bad_fleet,
        "--catalog",
        &examples().join("catalog.yaml").display().to_string(),
    ]);
    assert!(e.contains("clusters[0].kubernetesVersion"), "{e}");

    let type_err = write(
        "fleet2.yaml",
        "clusters:\n  - name: a\n    kubernetesVersion: v1.20.1\n    nodes: 3\n",
    );
    let e = failing(&["place", "--fleet", &type_err, "--catalog", &gt]);
    assert!(
        e.contains(&format!("{type_err}:4:")) && e.contains("clusters[0].nodes"),
        "{e}"
    );
    assert!(
        e.contains("Gt"),
        "both files' problems are reported together: {e}"
    );
}

#[test]
fn crds_print_as_yaml() {
    let out = ok(&["crds"]);
    let docs: Vec<&str> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    assert_eq!(docs.len(), 5);
    assert!(out.contains("name: kubefedclusters.core.kubefed.io"));
    assert!(out.contains("name: clusteraddons.kubeaddons.mesosphere.io"));
    assert!(out.contains("jsonPath: .status.stage"));
}

#[test]
fn run_converges_and_writes_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let w = world();
    let out = ok(&with(
        "run",
        &w,
        &[
            "--state-out",
            &state.display().to_string(),
            "--deadline",
            "30s",
        ],
    ));
    assert!(out.contains("converged, no invariant violated"), "{out}");
    assert!(
        out.contains("30 (29 ready, 1 held back as explain predicts)"),
        "{out}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let clusters = s["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 3);
    let alpha = &clusters[0];
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(
        alpha["labels"]["kommander.mesosphere.io/cluster-type"],
        "Konvoy"
    );
    assert_eq!(alpha["conditions"][0]["reason"], "ClusterReady");
    let addons = alpha["addons"].as_array().expect("addons");
    assert_eq!(addons.len(), 6);
    assert!(
        addons
            .iter()
            .all(|a| a["ready"] == true && a["stage"] == "deployed")
    );
    let beta_cm = clusters[1]["addons"]
        .as_array()
        .expect("addons")
        .iter()
        .find(|a| a["name"] == "cert-manager")
        .cloned()
        .expect("cert-manager");
    assert_eq!(beta_cm["kind"], "ClusterAddon");
    assert_eq!(beta_cm["namespace"], serde_json::Value::Null);
    assert_eq!(beta_cm["revision"], "0.10.1-5");
}

#[test]
fn run_fails_when_the_deadline_passes() {
    let w = world();
    let out = sim(&with("run", &w, &["--deadline", "0s"]));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("VIOLATION converges"),
        "{stdout}"
    );
}
