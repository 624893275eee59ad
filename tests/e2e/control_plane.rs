//! A real Kubernetes control plane for tests: etcd and kube-apiserver built from the Go
//! module proxy by `build-control-plane.sh` (cached under `~/.cache/flotilla/`), started on
//! free loopback ports with generated keys, and stopped when dropped, also on failure.

#![allow(dead_code, reason = "shared by two test binaries, each using a part")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Builds (first time) or finds the control-plane binaries; returns their directory.
pub fn binaries() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/build-control-plane.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run build-control-plane.sh");
    assert!(
        out.status.success(),
        "building the control plane failed (see stderr above)"
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running etcd + kube-apiserver, and a kubeconfig for an admin.
pub struct ControlPlane {
    /// Where the kubeconfig, keys and data live.
    pub dir: tempfile::TempDir,
    /// `kubectl` of the same version.
    pub kubectl: PathBuf,
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The API server's URL.
    pub server: String,
    /// The admin's bearer token.
    pub token: String,
    /// The API server's serving certificate (PEM), which is its own CA.
    pub ca: PathBuf,
    bin: PathBuf,
    backend: Backend,
}

/// Where the API server runs.
enum Backend {
    /// etcd and kube-apiserver as child processes (the default; what CI uses).
    Local {
        etcd_port: u16,
        api_port: u16,
        etcd: Child,
        apiserver: Option<Child>,
    },
    /// A kind cluster (`FLOTILLA_E2E_PROVIDER=kind`, see `kind.sh`).
    Kind { name: String },
}

/// Which provider the tests get their clusters from.
pub fn kind_provider() -> bool {
    std::env::var("FLOTILLA_E2E_PROVIDER").as_deref() == Ok("kind")
}

impl ControlPlane {
    /// Starts a control plane and waits until `/readyz` says ok.
    pub fn start(bin: &Path) -> Self {
        Self::start_with(bin, &[])
    }

    /// Starts a control plane whose API server gets `extra` flags.
    pub fn start_with(bin: &Path, extra: &[&str]) -> Self {
        if kind_provider() {
            return Self::start_kind(bin, extra);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let sa_key = d.join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&sa_key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(
            status.success(),
            "generating the service-account key failed"
        );
        let token = "flotilla-e2e-admin-token";
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin,system:masters\n"),
        )
        .expect("token file");
        let log = |name: &str| std::fs::File::create(d.join(name)).expect("log file");

        let etcd = Command::new(bin.join("etcd"))
            .arg("--data-dir")
            .arg(d.join("etcd"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{peer_port}"
            ))
            .arg("--unsafe-no-fsync")
            .stdout(log("etcd.log"))
            .stderr(log("etcd.err"))
            .spawn()
            .expect("start etcd");
        // The API server writes its self-signed serving certificate into --cert-dir; trust
        // exactly that (TLS verified, no skipping).
        let kubeconfig = d.join("kubeconfig");
        let mut cp = Self {
            server: format!("https://127.0.0.1:{api_port}"),
            token: token.to_owned(),
            ca: dir.path().join("certs/apiserver.crt"),
            kubectl: bin.join("kubectl"),
            kubeconfig,
            bin: bin.to_owned(),
            backend: Backend::Local {
                etcd_port,
                api_port,
                etcd,
                apiserver: None,
            },
            dir,
        };
        cp.spawn_apiserver(extra);
        let cert = cp.dir.path().join("certs/apiserver.crt");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cert.exists() {
            assert!(
                Instant::now() < deadline,
                "kube-apiserver wrote no serving certificate:\n{}",
                cp.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: https://127.0.0.1:{api_port}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: admin}}\ncurrent-context: e2e\n",
            cert.display()
        );
        std::fs::write(&cp.kubeconfig, config).expect("kubeconfig");
        cp.wait_ready();
        cp
    }

    fn spawn_apiserver(&mut self, extra: &[&str]) {
        let Backend::Local {
            etcd_port,
            api_port,
            apiserver: slot,
            ..
        } = &mut self.backend
        else {
            return;
        };
        let d = self.dir.path();
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join(name))
                .expect("log file")
        };
        let sa_key = d.join("sa.key");
        let apiserver = Command::new(self.bin.join("kube-apiserver"))
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .arg("--cert-dir")
            .arg(d.join("certs"))
            .arg(format!("--secure-port={api_port}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .args([
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
            ])
            .arg(format!(
                "--token-auth-file={}",
                d.join("tokens.csv").display()
            ))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!("--service-account-key-file={}", sa_key.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                sa_key.display()
            ))
            .args(extra)
            .stdout(log("apiserver.log"))
            .stderr(log("apiserver.err"))
            .spawn()
            .expect("start kube-apiserver");
        *slot = Some(apiserver);
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self.kubectl_output(&["get", "--raw", "/readyz"]);
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver never became ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops the API server (etcd keeps the data), as an outage of the member would.
    pub fn stop_apiserver(&mut self) {
        match &mut self.backend {
            Backend::Local { apiserver, .. } => {
                if let Some(mut a) = apiserver.take() {
                    let _ = a.kill();
                    let _ = a.wait();
                }
            }
            Backend::Kind { name } => docker(&["stop", &format!("{name}-control-plane")]),
        }
    }

    /// Starts the API server again on the same port and data, with `extra` flags (for kind:
    /// the static pod manifest's `--emulated-version` is replaced by `extra`).
    pub fn restart_apiserver(&mut self, extra: &[&str]) {
        self.stop_apiserver();
        if let Backend::Kind { name } = &self.backend {
            let node = format!("{name}-control-plane");
            docker(&["start", &node]);
            let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
            let mut script = format!("sed -i '/--emulated-version/d' {manifest}");
            for flag in extra {
                script.push_str(&format!(
                    " && sed -i 's|^    - kube-apiserver$|    - kube-apiserver\\n    - {flag}|' {manifest}"
                ));
            }
            docker(&["exec", &node, "sh", "-c", &script]);
        }
        self.spawn_apiserver(extra);
        self.wait_ready();
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name` (a token from the
    /// TokenRequest API), to run a controller with exactly the RBAC it installs.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.kubectl(&["create", "token", name, "-n", namespace, "--duration=24h"]);
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{namespace}-{name}"));
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {name}\n  user:\n    token: {}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: {name}}}\ncurrent-context: e2e\n",
            self.server,
            self.ca.display(),
            token.trim()
        );
        std::fs::write(&path, config).expect("kubeconfig");
        path
    }

    /// The tails of the server logs, for failure messages.
    pub fn logs(&self) -> String {
        if let Backend::Kind { name } = &self.backend {
            return format!("(kind cluster {name}: see `docker logs {name}-control-plane`)");
        }
        let tail = |f: &str| {
            let s = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        format!(
            "--- etcd.err\n{}\n--- apiserver.err\n{}",
            tail("etcd.err"),
            tail("apiserver.err")
        )
    }

    /// Runs kubectl against this control plane.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr on error.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl finishes")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        match &mut self.backend {
            Backend::Local {
                etcd, apiserver, ..
            } => {
                for child in apiserver.iter_mut().chain([etcd]) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Backend::Kind { name } => {
                let _ = Command::new("kind")
                    .args(["delete", "cluster", "--name", name])
                    .output();
            }
        }
    }
}

/// Runs docker, failing the test on error.
fn docker(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ControlPlane {
    /// A fresh kind cluster standing in for a local control plane: the same admin token
    /// (a ServiceAccount bound to cluster-admin), its CA, a fixed API port so that a stopped
    /// and started node keeps its address, and no deployment controller, so that the tests'
    /// kubelet stand-in is the only writer of Deployment status, as with local control planes.
    fn start_kind(bin: &Path, extra: &[&str]) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "flotilla-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let api_port = free_port();
        let args: String = extra
            .iter()
            .filter_map(|f| f.strip_prefix("--")?.split_once('='))
            .map(|(k, v)| format!("\n      - name: {k}\n        value: \"{v}\""))
            .collect();
        let api_server = if args.is_empty() {
            String::new()
        } else {
            format!("\n    apiServer:\n      extraArgs:{args}")
        };
        let config = format!(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  apiServerAddress: 127.0.0.1\n  apiServerPort: {api_port}\nnodes:\n- role: control-plane\n  kubeadmConfigPatches:\n  - |\n    kind: ClusterConfiguration{api_server}\n    controllerManager:\n      extraArgs:\n      - name: controllers\n        value: \"*,-deployment-controller,-replicaset-controller\"\n"
        );
        let config_path = dir.path().join("kind.yaml");
        std::fs::write(&config_path, config).expect("kind config");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut create = Command::new("kind");
        create
            .args([
                "create", "cluster", "--name", &name, "--wait", "120s", "--config",
            ])
            .arg(&config_path)
            .arg("--kubeconfig")
            .arg(&kubeconfig);
        if let Ok(image) = std::env::var("KIND_NODE_IMAGE") {
            create.args(["--image", &image]);
        }
        let out = create.output().expect("kind runs");
        assert!(
            out.status.success(),
            "kind create cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(image) = std::env::var("FLOTILLA_E2E_KIND_LOAD") {
            let out = Command::new("kind")
                .args(["load", "docker-image", &image, "--name", &name])
                .output()
                .expect("kind runs");
            assert!(out.status.success(), "kind load docker-image {image}");
        }
        let mut cp = Self {
            server: format!("https://127.0.0.1:{api_port}"),
            token: String::new(),
            ca: dir.path().join("ca.crt"),
            kubectl: bin.join("kubectl"),
            kubeconfig,
            bin: bin.to_owned(),
            backend: Backend::Kind { name },
            dir,
        };
        let ca = cp.kubectl(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ]);
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim())
            .expect("the kubeconfig's CA");
        std::fs::write(&cp.ca, pem).expect("ca.crt");
        cp.kubectl(&["create", "serviceaccount", "e2e-admin", "-n", "kube-system"]);
        cp.kubectl(&[
            "create",
            "clusterrolebinding",
            "e2e-admin",
            "--clusterrole=cluster-admin",
            "--serviceaccount=kube-system:e2e-admin",
        ]);
        cp.token = cp
            .kubectl(&[
                "create",
                "token",
                "e2e-admin",
                "-n",
                "kube-system",
                "--duration=24h",
            ])
            .trim()
            .to_owned();
        cp
    }
}
