//! The article's workflow on real clusters, through the shipped binaries: one host and three
//! members (real etcd + kube-apiserver each, see `build-control-plane.sh`), installed with
//! `flotilla-manager install` / `flotilla-agent install`, attached with
//! `flotilla-manager attach`, run as their ServiceAccounts (so the RBAC they install is
//! exactly what they get), two manager replicas electing a leader over a Lease.
//!
//! The fleet is `docs/examples/fleet.yaml` (its nodes become Node objects, its labels go on
//! the KubeFedClusters) and the catalog is `docs/examples/catalog-v1.36.yaml`, the article's
//! moved 15 minors up: the article's v1.20 clusters are v1.35 here (an API server emulating
//! 1.35 with `--emulated-version`), its v1.21 cluster is v1.36.
//!
//! No kubelet runs, so nothing would ever make a Deployment available; a stand-in marks
//! them available through the status subresource, as a kubelet and the deployment
//! controller would (what KWOK does for fake nodes).

mod control_plane;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_plane::{ControlPlane, binaries};
use flotilla_tests::{TODAY_SHIFT, article_fleet, examples, shift_minors};

/// The workspace's `flotilla-manager` and `flotilla-agent`, built now (a no-op when they
/// are current) in the profile and target directory of this test, so what runs is the code
/// under test.
fn workspace_bins() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "flotilla-manager", "-p", "flotilla-agent"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building the binaries failed");
    (dir.join("flotilla-manager"), dir.join("flotilla-agent"))
}

/// A child process, killed when dropped; its output goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn");
        Self { child, log }
    }

    /// SIGKILL: no chance to release the Lease or finish anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        format!(
            "--- {}\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command and returns its stdout; fails the test with its stderr otherwise.
fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn apply(cp: &ControlPlane, yaml: &str) {
    let out = cp.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `kubectl` until `check` holds on its stdout (90 s at most: four control planes
/// share two cores).
fn eventually(cp: &ControlPlane, args: &[&str], what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = cp.kubectl_output(args);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && check(&got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: kubectl {args:?} printed {got:?} ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn eventually_is(cp: &ControlPlane, args: &[&str], want: &str) {
    eventually(cp, args, &format!("waiting for {want:?}"), |got| {
        got == want
    });
}

fn gone(cp: &ControlPlane, args: &[&str], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = cp.kubectl_output(args);
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && err.contains("NotFound") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} is still there: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Stands in for kubelets and the deployment controller: every Deployment becomes available.
fn kubelet_stand_in(kubectl: &Path, kubeconfig: &Path, stop: &AtomicBool) {
    let run = |args: &[&str]| {
        Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(out) = run(&["get", "deployments", "-A", "-o", "json"]) else {
            break;
        };
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for d in list["items"].as_array().into_iter().flatten() {
            let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let status = &d["status"];
            if status["observedGeneration"].as_i64() == Some(generation)
                && status["availableReplicas"].as_i64() == Some(replicas)
            {
                continue;
            }
            let patch = serde_json::json!({"status": {"observedGeneration": generation,
                "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                "availableReplicas": replicas}});
            let _ = run(&[
                "patch",
                "deployment",
                d["metadata"]["name"].as_str().unwrap_or(""),
                "-n",
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch.to_string(),
            ]);
        }
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// `--emulated-version` for a fleet cluster's version moved to today (none for the binary's
/// own v1.36).
fn emulation(git_version: &str) -> Vec<String> {
    let v: flotilla_core::version::KubeVersion = shift_minors(git_version, TODAY_SHIFT)
        .parse()
        .expect("fleet version");
    if (v.major, v.minor) == (1, 36) {
        vec![]
    } else {
        vec![format!("--emulated-version={}.{}", v.major, v.minor)]
    }
}

fn labels_of(host: &ControlPlane, name: &str) -> String {
    host.kubectl(&[
        "get",
        "kubefedcluster",
        name,
        "-n",
        "kommander",
        "-o",
        "jsonpath={.metadata.labels}",
    ])
}

fn condition(name: &str, kind: &str) -> Vec<String> {
    [
        "get",
        "kubefedcluster",
        name,
        "-n",
        "kommander",
        "-o",
        &format!("jsonpath={{.status.conditions[?(@.type=='{kind}')].status}}/{{.status.conditions[?(@.type=='{kind}')].reason}}"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// With `FLOTILLA_E2E_CAPTURE=DIR`, writes what a command printed to `DIR/NAME.txt` (how
/// `docs/debugging.md` got its output).
fn capture(name: &str, command: &str, text: &str) {
    if let Some(dir) = std::env::var_os("FLOTILLA_E2E_CAPTURE") {
        let path = Path::new(&dir).join(format!("{name}.txt"));
        std::fs::write(&path, format!("$ {command}\n{text}")).expect("capture");
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn the_articles_workflow_on_real_clusters() {
    let bin = binaries();
    let (manager_bin, agent_bin) = workspace_bins();
    let fleet = article_fleet();
    let logs = tempfile::tempdir().expect("tempdir");

    // One host and the fleet's three members, started side by side.
    let (host, mut members) = std::thread::scope(|s| {
        let host = s.spawn(|| ControlPlane::start(&bin));
        let members: Vec<_> = fleet
            .clusters
            .iter()
            .map(|c| {
                let flags = emulation(&c.kubernetes_version);
                let bin = &bin;
                s.spawn(move || {
                    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                    ControlPlane::start_with(bin, &flags)
                })
            })
            .collect();
        (
            host.join().expect("host"),
            members
                .into_iter()
                .map(|m| m.join().expect("member"))
                .collect::<Vec<_>>(),
        )
    });
    let names: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    // Install: the host, then each member; nodes as the fleet file says.
    apply(
        &host,
        &output(Command::new(&manager_bin).args(["install", "--image", "flotilla:e2e"])),
    );
    host.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "--all",
    ]);
    for ns in ["kubeaddons", "kommander-system"] {
        host.kubectl(&["create", "namespace", ns]);
    }
    for (c, cp) in fleet.clusters.iter().zip(&members) {
        apply(
            cp,
            &output(Command::new(&agent_bin).args([
                "install",
                "--cluster-name",
                &c.name,
                "--image",
                "flotilla:e2e",
            ])),
        );
        cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ]);
        cp.kubectl(&["create", "namespace", "kommander-system"]);
        for node in &c.nodes {
            let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": node.labels}});
            apply(cp, &node.to_string());
        }
    }

    // Attach each member from its kubeconfig, with the fleet's user labels.
    for (c, cp) in fleet.clusters.iter().zip(&members) {
        let mut cmd = Command::new(&manager_bin);
        cmd.arg("--kubeconfig")
            .arg(&host.kubeconfig)
            .args(["attach", &c.name, "--member-kubeconfig"])
            .arg(&cp.kubeconfig);
        for (k, v) in &c.labels {
            cmd.args(["--label", &format!("{k}={v}")]);
        }
        assert_eq!(
            output(&mut cmd).trim(),
            format!("kubefedcluster.core.kubefed.io/{} attached", c.name)
        );
    }
    let catalog = std::fs::read_to_string(examples().join("catalog-v1.36.yaml")).expect("catalog");
    apply(&host, &catalog);

    // Run everything as the ServiceAccounts the installs created.
    let stop = Arc::new(AtomicBool::new(false));
    let manager_config = host.service_account_kubeconfig("kommander", "flotilla-manager");
    let manager = |identity: &str| {
        let mut cmd = Command::new(&manager_bin);
        cmd.arg("--kubeconfig")
            .arg(&manager_config)
            .args(["run", "--probe-period", "1s"])
            .env("POD_NAME", identity)
            .env("FLOTILLA_LOG", "info");
        Proc::spawn(cmd, logs.path().join(format!("{identity}.log")))
    };
    let mut managers = vec![manager("manager-a"), manager("manager-b")];
    let mut agents: Vec<Proc> = fleet
        .clusters
        .iter()
        .zip(&members)
        .map(|(c, cp)| {
            let config = cp.service_account_kubeconfig("kommander", "flotilla-agent");
            let mut cmd = Command::new(&agent_bin);
            cmd.arg("run")
                .args(["--cluster-name", &c.name, "--resync", "10s", "--kubeconfig"])
                .arg(config)
                .env("POD_NAME", format!("agent-{}", c.name))
                .env("FLOTILLA_LOG", "info")
                .stdin(Stdio::null());
            Proc::spawn(cmd, logs.path().join(format!("agent-{}.log", c.name)))
        })
        .collect();

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::thread::scope(|s| {
            for cp in &members {
                let (kubectl, kubeconfig, stop) =
                    (cp.kubectl.clone(), cp.kubeconfig.clone(), &stop);
                s.spawn(move || kubelet_stand_in(&kubectl, &kubeconfig, stop));
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                workflow(&host, &mut members, &manager_bin, &mut managers, &manager)
            }));
            stop.store(true, Ordering::Relaxed);
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        });
    }));
    if let Err(e) = result {
        for p in managers.iter().chain(&agents) {
            eprintln!("{}", p.tail());
        }
        std::panic::resume_unwind(e);
    }
    agents.iter_mut().for_each(Proc::kill);
}

/// The article's steps, then the things that go wrong in a fleet.
fn workflow(
    host: &ControlPlane,
    members: &mut [ControlPlane],
    manager_bin: &Path,
    managers: &mut [Proc],
    manager: &dyn Fn(&str) -> Proc,
) {
    let [alpha, beta, gamma] = members else {
        panic!("three members")
    };

    // `kubectl get kubefedcluster -A`: every member READY True.
    eventually(
        host,
        &["get", "kubefedcluster", "-A"],
        "three Ready clusters",
        |t| {
            let header: Vec<&str> = t.lines().next().unwrap_or("").split_whitespace().collect();
            header == ["NAMESPACE", "NAME", "AGE", "READY"]
                && t.lines().skip(1).filter(|l| l.ends_with("True")).count() == 3
        },
    );
    // `kubectl describe kubefedcluster -n kommander alpha`: the labels and Ready condition.
    eventually(
        host,
        &["describe", "kubefedcluster", "-n", "kommander", "alpha"],
        "alpha's derived labels",
        |t| {
            [
                "kommander.mesosphere.io/cluster-type=Konvoy",
                "kommander.mesosphere.io/kubernetes-version=v1.35",
                "kommander.mesosphere.io/federate-cert-manager=true",
                "kommander.mesosphere.io/federate-elasticsearch=default-false",
                "kommander.mesosphere.io/federation-enabled=true",
                "kommander.mesosphere.io/cluster-id=",
                "Reason:                ClusterReady",
                "/healthz responded with ok",
            ]
            .iter()
            .all(|want| t.contains(want))
        },
    );
    let gamma_labels = labels_of(host, "gamma");
    assert!(
        gamma_labels.contains(r#""kommander.mesosphere.io/cluster-type":"GKE""#)
            && gamma_labels.contains(r#""kommander.mesosphere.io/kubernetes-version":"v1.36""#),
        "{gamma_labels}"
    );

    // Placement as the article has it: cert-manager on beta (EKS, v1.35), never on Konvoy
    // alpha (whatever its federate label says), not on gamma (v1.36 is out of its range).
    let cert_manager = [
        "get",
        "clusteraddon",
        "cert-manager",
        "-o",
        "jsonpath={.status.ready}/{.status.stage}/{.status.revision}",
    ];
    eventually_is(beta, &cert_manager, "true/deployed/0.10.1-5");
    beta.kubectl(&["get", "deployment", "cert-manager", "-n", "cert-manager"]);
    for cp in [&*alpha, &*gamma] {
        gone(cp, &["get", "clusteraddon", "cert-manager"], "cert-manager");
    }
    // Readiness flows back: `kubectl get addons,clusteraddons -A` on a member, in both forms.
    for resources in [
        "addons,clusteraddons",
        "addon.kubeaddons.mesosphere.io,clusteraddon.kubeaddons.mesosphere.io",
    ] {
        eventually(
            beta,
            &["get", resources, "-A"],
            "beta's addons deployed",
            |t| {
                let header: Vec<&str> = t.lines().next().unwrap_or("").split_whitespace().collect();
                let row = |want: &[&str]| {
                    t.lines()
                        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
                };
                header == ["NAMESPACE", "NAME", "READY", "STAGE", "REVISION"]
                    && row(&["kubeaddons", "addon.kubeaddons.mesosphere.io/kibana", "true", "deployed", "7.9.3-1"])
                    // Cluster-scoped: the NAMESPACE column is empty.
                    && row(&["clusteraddon.kubeaddons.mesosphere.io/kubecost", "true", "deployed", "0.10.0-1"])
            },
        );
    }
    // gamma opted into kibana but not elasticsearch, which kibana requires: it waits.
    eventually_is(
        gamma,
        &[
            "get",
            "addon",
            "kibana",
            "-n",
            "kubeaddons",
            "-o",
            "jsonpath={.status.stage}",
        ],
        "pending",
    );
    // The hub side: `kubectl get federatedaddons,federatedclusteraddons -A`, and describe.
    let federated = host.kubectl(&["get", "federatedaddons,federatedclusteraddons", "-A"]);
    assert_eq!(
        federated
            .lines()
            .filter(|l| l.contains("federated"))
            .count(),
        16,
        "{federated}"
    );
    let reloader = host.kubectl(&["describe", "federatedaddon", "reloader", "-n", "kubeaddons"]);
    for want in [
        "Placement:",
        "Cluster Selector:",
        "Match Expressions:",
        "Konvoy",
    ] {
        assert!(reloader.contains(want), "{want}: {reloader}");
    }
    eventually(
        host,
        &["describe", "federatedclusteraddon", "cert-manager"],
        "cert-manager's status on the hub",
        |t| t.contains("Placement:") && t.contains("1/3 clusters selected") && t.contains("beta"),
    );
    // explain, against the host.
    let explain = output(
        Command::new(manager_bin)
            .arg("--kubeconfig")
            .arg(&host.kubeconfig)
            .args(["explain", "--cluster", "alpha", "--addon", "cert-manager"]),
    );
    assert!(
        explain.starts_with("cert-manager -> alpha: not placed")
            && explain.contains("FAIL  kommander.mesosphere.io/cluster-type NotIn [Konvoy]"),
        "{explain}"
    );
    let explain = output(
        Command::new(manager_bin)
            .arg("--kubeconfig")
            .arg(&host.kubeconfig)
            .args(["explain", "--cluster", "gamma", "--addon", "kibana"]),
    );
    assert!(
        explain.contains("kibana requires elasticsearch, which is not placed on gamma"),
        "{explain}"
    );

    if std::env::var_os("FLOTILLA_E2E_CAPTURE").is_some() {
        let shown: [(&str, &ControlPlane, &[&str]); 9] = [
            ("get-kubefedcluster", host, &["get", "kubefedcluster", "-A"]),
            (
                "describe-kubefedcluster-alpha",
                host,
                &["describe", "kubefedcluster", "-n", "kommander", "alpha"],
            ),
            (
                "get-addons-beta",
                beta,
                &["get", "addons,clusteraddons", "-A"],
            ),
            (
                "get-addons-long-alpha",
                alpha,
                &[
                    "get",
                    "addon.kubeaddons.mesosphere.io,clusteraddon.kubeaddons.mesosphere.io",
                    "-A",
                ],
            ),
            (
                "get-addons-gamma",
                gamma,
                &["get", "addons,clusteraddons", "-A"],
            ),
            (
                "get-federated",
                host,
                &["get", "federatedaddons,federatedclusteraddons", "-A"],
            ),
            (
                "describe-federatedaddon-reloader",
                host,
                &["describe", "federatedaddon", "reloader", "-n", "kubeaddons"],
            ),
            (
                "describe-federatedclusteraddon-cert-manager",
                host,
                &["describe", "federatedclusteraddon", "cert-manager"],
            ),
            (
                "describe-addon-kibana-gamma",
                gamma,
                &["describe", "addon", "kibana", "-n", "kubeaddons"],
            ),
        ];
        for (name, cp, args) in shown {
            capture(
                name,
                &format!("kubectl {}", args.join(" ")),
                &cp.kubectl(args),
            );
        }
        for (name, args) in [
            ("explain-fleet", vec!["explain"]),
            (
                "explain-alpha-cert-manager",
                vec!["explain", "--cluster", "alpha", "--addon", "cert-manager"],
            ),
            (
                "explain-gamma-kibana",
                vec!["explain", "--cluster", "gamma", "--addon", "kibana"],
            ),
        ] {
            let text = output(
                Command::new(manager_bin)
                    .arg("--kubeconfig")
                    .arg(&host.kubeconfig)
                    .args(&args),
            );
            capture(name, &format!("flotilla-manager {}", args.join(" ")), &text);
        }
    }

    // The API server itself refuses a cluster-type change, even from an admin.
    let change = host.kubectl_output(&[
        "label",
        "kubefedcluster",
        "alpha",
        "-n",
        "kommander",
        "--overwrite",
        "kommander.mesosphere.io/cluster-type=EKS",
    ]);
    assert!(
        !change.status.success()
            && String::from_utf8_lossy(&change.stderr).contains("immutable once set"),
        "{}",
        String::from_utf8_lossy(&change.stderr)
    );
    capture(
        "label-cluster-type-denied",
        "kubectl label kubefedcluster alpha -n kommander --overwrite kommander.mesosphere.io/cluster-type=EKS",
        &String::from_utf8_lossy(&change.stderr),
    );

    // Opt gamma into elasticsearch: it arrives, and kibana, which waited for it, deploys.
    host.kubectl(&[
        "label",
        "kubefedcluster",
        "gamma",
        "-n",
        "kommander",
        "--overwrite",
        "kommander.mesosphere.io/federate-elasticsearch=true",
    ]);
    for addon in ["elasticsearch", "kibana"] {
        eventually_is(
            gamma,
            &[
                "get",
                "addon",
                addon,
                "-n",
                "kubeaddons",
                "-o",
                "jsonpath={.status.stage}",
            ],
            "deployed",
        );
    }

    // The leader is killed (SIGKILL: no release) in the middle of a rollout; the standby
    // takes the Lease when it expires and finishes the rollout. The killed one comes back.
    let holder = [
        "get",
        "lease",
        "flotilla-manager",
        "-n",
        "kommander",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ];
    let leader = host.kubectl(&holder);
    let leader_index = match leader.as_str() {
        "manager-a" => 0,
        "manager-b" => 1,
        other => panic!("unexpected lease holder {other:?}"),
    };
    // A rollout is a new revision in the template.
    host.kubectl(&[
        "patch",
        "federatedclusteraddon",
        "kubecost",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"catalog.kubeaddons.mesosphere.io/addon-revision":"0.10.0-2"}}}}}"#,
    ]);
    std::thread::sleep(Duration::from_millis(300));
    managers[leader_index].kill();
    let standby = if leader_index == 0 {
        "manager-b"
    } else {
        "manager-a"
    };
    eventually_is(host, &holder, standby);
    managers[leader_index] = manager(&leader);
    for cp in [&*alpha, &*beta, &*gamma] {
        eventually_is(
            cp,
            &[
                "get",
                "clusteraddon",
                "kubecost",
                "-o",
                "jsonpath={.status.revision}/{.status.stage}",
            ],
            "0.10.0-2/deployed",
        );
    }

    // beta's API server goes down: Offline, ClusterNotReachable. While it is away reloader
    // gets a new revision. It comes back upgraded to v1.36 (no more emulation): it catches
    // up with reloader and loses cert-manager, which does not support v1.36.
    let stopped_at = output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]));
    beta.stop_apiserver();
    // KubeFed's way: an unreachable cluster has only Offline True, ClusterNotReachable.
    let (ready, offline) = (condition("beta", "Ready"), condition("beta", "Offline"));
    eventually_is(host, &strs(&offline), "True/ClusterNotReachable");
    eventually_is(host, &strs(&ready), "/");
    // Condition times are wall-clock times (a replica that waited for the Lease counts from
    // when it started leading).
    let went_offline = host.kubectl(&[
        "get",
        "kubefedcluster",
        "beta",
        "-n",
        "kommander",
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Offline')].lastTransitionTime}",
    ]);
    assert!(
        went_offline.as_str() >= stopped_at.trim(),
        "beta went offline at {went_offline}, before it was stopped at {stopped_at}"
    );
    let listed = host.kubectl(&["get", "kubefedcluster", "-A"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("beta") && !l.contains("True")),
        "READY is empty while beta is away: {listed}"
    );
    capture(
        "get-kubefedcluster-beta-down",
        "kubectl get kubefedcluster -A",
        &listed,
    );
    let conditions = host.kubectl(&["describe", "kubefedcluster", "-n", "kommander", "beta"]);
    capture(
        "describe-kubefedcluster-beta-down",
        "kubectl describe kubefedcluster -n kommander beta",
        &conditions,
    );
    host.kubectl(&[
        "patch",
        "federatedaddon",
        "reloader",
        "-n",
        "kubeaddons",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"catalog.kubeaddons.mesosphere.io/addon-revision":"0.0.100-1"}}}}}"#,
    ]);
    beta.restart_apiserver(&[]);
    eventually_is(host, &strs(&ready), "True/ClusterReady");
    eventually(
        host,
        &[
            "get",
            "kubefedcluster",
            "beta",
            "-n",
            "kommander",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
        "beta upgraded",
        |t| t.contains(r#""kommander.mesosphere.io/kubernetes-version":"v1.36""#),
    );
    eventually_is(
        beta,
        &[
            "get",
            "addon",
            "reloader",
            "-n",
            "kubeaddons",
            "-o",
            "jsonpath={.status.revision}/{.status.stage}",
        ],
        "0.0.100-1/deployed",
    );
    gone(
        beta,
        &["get", "clusteraddon", "cert-manager"],
        "cert-manager on upgraded beta",
    );
    gone(
        beta,
        &["get", "deployment", "cert-manager", "-n", "cert-manager"],
        "cert-manager's Deployment",
    );

    // Detach gamma: its addons are uninstalled, then the KubeFedCluster, its Secret and the
    // manager's access to gamma go.
    let detached = output(
        Command::new(manager_bin)
            .arg("--kubeconfig")
            .arg(&host.kubeconfig)
            .args(["detach", "gamma", "--wait", "2m", "--member-kubeconfig"])
            .arg(&gamma.kubeconfig),
    );
    assert!(
        detached.contains("kubefedcluster.core.kubefed.io/gamma detached"),
        "{detached}"
    );
    eventually_is(
        gamma,
        &["get", "addons,clusteraddons", "-A", "-o", "name"],
        "",
    );
    gone(
        gamma,
        &[
            "get",
            "configmap",
            "elasticsearch-config",
            "-n",
            "kubeaddons",
        ],
        "elasticsearch's ConfigMap",
    );
    gone(
        host,
        &["get", "secret", "gamma-token", "-n", "kommander"],
        "gamma's token Secret",
    );
    gone(
        gamma,
        &[
            "get",
            "serviceaccount",
            "flotilla-manager-member",
            "-n",
            "kommander",
        ],
        "the manager's ServiceAccount",
    );
    eventually(
        host,
        &[
            "get",
            "federatedclusteraddon",
            "kubecost",
            "-o",
            "jsonpath={.status.selection}",
        ],
        "kubecost over two clusters",
        |t| t.starts_with("2/2 clusters selected"),
    );
}
