//! A member cluster behind a real Kubernetes API server, through kube-rs.
//!
//! The same [`MemberCluster`] calls as the simulated member, done the Kubernetes way:
//! server-side apply with field managers `flotilla-manager` (Addon objects) and
//! `flotilla-agent` (status, manifests), the status subresource, finalizers through merge
//! patches that carry the resourceVersion (optimistic concurrency), discovery to apply any
//! manifest kind, kstatus-style readiness, and watchers on Addon / ClusterAddon turned into
//! the change signal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::catalog::{AddonId, AddonKind};
use flotilla_core::render::DesiredAddon;
use flotilla_core::types::{
    Addon, AddonSpec, AddonStatus, ClusterAddon, ClusterAddonSpec, with_finalizer,
};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::member::{AddonList, MemberAddon, MemberCluster, MemberError, Readiness};

/// Field manager of the manager's writes.
pub const MANAGER_FIELD_MANAGER: &str = "flotilla-manager";
/// Field manager of the agent's writes.
pub const AGENT_FIELD_MANAGER: &str = "flotilla-agent";

/// A member cluster reached through a Kubernetes client.
pub struct KubeMember {
    client: Client,
    changes: watch::Sender<u64>,
    watchers: Vec<AbortHandle>,
}

impl Drop for KubeMember {
    fn drop(&mut self) {
        self.watchers.iter().for_each(AbortHandle::abort);
    }
}

fn api_error(e: kube::Error) -> MemberError {
    match e {
        kube::Error::Api(s) if s.code == 404 => MemberError::NotFound,
        kube::Error::Api(s) => MemberError::Api {
            code: s.code,
            message: s.message,
        },
        other => MemberError::Unreachable(other.to_string()),
    }
}

impl KubeMember {
    /// A member over `client`; starts watchers on Addon and ClusterAddon objects.
    pub fn new(client: Client) -> Arc<Self> {
        // Watchers carry a backoff: one retrying a dead API server in a tight loop never
        // yields, and could not even be cancelled.
        let changes = watch::channel(0).0;
        let tick = |tx: watch::Sender<u64>| move |_| tx.send_modify(|n| *n += 1);
        let addons = watcher(
            Api::<Addon>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff();
        let cluster_addons = watcher(
            Api::<ClusterAddon>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff();
        let (t1, t2) = (tick(changes.clone()), tick(changes.clone()));
        let w1 = tokio::spawn(addons.for_each(move |e| {
            t1(e.is_ok());
            async {}
        }));
        let w2 = tokio::spawn(cluster_addons.for_each(move |e| {
            t2(e.is_ok());
            async {}
        }));
        Arc::new(Self {
            client,
            changes,
            watchers: vec![w1.abort_handle(), w2.abort_handle()],
        })
    }

    fn addons(&self, namespace: &str) -> Api<Addon> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn cluster_addons(&self) -> Api<ClusterAddon> {
        Api::all(self.client.clone())
    }

    async fn resource_api(
        &self,
        manifest: &Value,
    ) -> Result<(Api<DynamicObject>, String), MemberError> {
        dynamic_api(&self.client, manifest).await.map_err(api_error)
    }

    async fn spec_of(&self, id: &AddonId) -> Result<AddonSpec, MemberError> {
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                Ok(self.addons(ns).get(&id.name).await.map_err(api_error)?.spec)
            }
            _ => Ok(self
                .cluster_addons()
                .get(&id.name)
                .await
                .map_err(api_error)?
                .spec
                .0),
        }
    }
}

/// A client from a kubeconfig file (and context), or else the usual way: `$KUBECONFIG`,
/// `~/.kube/config`, or the pod's service account when running in a cluster.
pub async fn connect(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<Client, ConnectError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| ConnectError {
                from: path.display().to_string(),
                message: e.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| ConnectError {
                    from: path.display().to_string(),
                    message: e.to_string(),
                })?
        }
        None if context.is_some() => {
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| ConnectError {
                    from: "the default kubeconfig".into(),
                    message: e.to_string(),
                })?
        }
        None => kube::Config::infer().await.map_err(|e| ConnectError {
            from: "$KUBECONFIG, ~/.kube/config or the in-cluster service account".into(),
            message: e.to_string(),
        })?,
    };
    Client::try_from(config).map_err(|e| ConnectError {
        from: "the client configuration".into(),
        message: e.to_string(),
    })
}

/// A kubeconfig that does not give a working client.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect using {from}: {message}")]
pub struct ConnectError {
    /// Where the configuration came from.
    pub from: String,
    /// What is wrong with it.
    pub message: String,
}

/// An API for whatever kind `manifest` is (found by discovery), and the object's name.
pub async fn dynamic_api(
    client: &Client,
    manifest: &Value,
) -> Result<(Api<DynamicObject>, String), kube::Error> {
    let s = |p: &str| {
        manifest
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &kind);
    let (ar, caps) = pinned_kind(client, &gvk).await?;
    let api = match (caps.scope, s("/metadata/namespace")) {
        (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
        (Scope::Namespaced, ns) if !ns.is_empty() => Api::namespaced_with(client.clone(), &ns, &ar),
        (Scope::Namespaced, _) => Api::default_namespaced_with(client.clone(), &ar),
    };
    Ok((api, name))
}

/// Server-side applies one object of any kind, as `field_manager`.
pub async fn apply_object(
    client: &Client,
    field_manager: &str,
    manifest: &Value,
) -> Result<(), kube::Error> {
    let (api, name) = dynamic_api(client, manifest).await?;
    let pp = PatchParams::apply(field_manager).force();
    api.patch(&name, &pp, &Patch::Apply(manifest))
        .await
        .map(|_| ())
}

/// The Kubernetes version a cluster serves, from its `/version` answer.
///
/// A control plane upgraded with compatibility versions (KEP-4330, `--emulated-version`)
/// serves the APIs and features of the version it emulates until the upgrade is finished,
/// so that is the version addons must be placed for: `v1.35.0+emulated.by.v1.36.3`. Without
/// emulation it is the `gitVersion` as reported.
fn served_version(info: &Value) -> String {
    let field = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("");
    let git = field("gitVersion");
    let (major, minor) = (field("emulationMajor"), field("emulationMinor"));
    let emulating = !major.is_empty()
        && !minor.is_empty()
        && (major, minor) != (field("major"), field("minor").trim_end_matches('+'));
    if emulating {
        format!("v{major}.{minor}.0+emulated.by.{git}")
    } else {
        git.to_owned()
    }
}

fn member_addon(
    kind: AddonKind,
    meta: &kube::core::ObjectMeta,
    spec: AddonSpec,
    status: Option<AddonStatus>,
) -> MemberAddon {
    MemberAddon {
        id: AddonId {
            kind,
            namespace: meta
                .namespace
                .as_deref()
                .filter(|_| kind == AddonKind::FederatedAddon)
                .map(Into::into),
            name: meta.name.as_deref().unwrap_or_default().into(),
        },
        generation: meta.generation.unwrap_or(0),
        labels: Arc::new(meta.labels.clone().unwrap_or_default()),
        annotations: Arc::new(meta.annotations.clone().unwrap_or_default()),
        spec: Arc::new(spec),
        status: status.unwrap_or_default(),
        finalizers: meta.finalizers.clone().unwrap_or_default().into(),
        deleting: meta.deletion_timestamp.is_some(),
    }
}

impl MemberCluster for KubeMember {
    async fn healthz(&self, timeout: Duration) -> Result<String, MemberError> {
        let req = http::Request::get("/healthz")
            .body(Vec::new())
            .map_err(|e| MemberError::Unreachable(e.to_string()))?;
        tokio::time::timeout(timeout, self.client.request_text(req))
            .await
            .map_err(|_| MemberError::Timeout(timeout))?
            .map_err(api_error)
    }

    async fn version(&self) -> Result<String, MemberError> {
        let req = http::Request::get("/version")
            .body(Vec::new())
            .map_err(|e| MemberError::Unreachable(e.to_string()))?;
        let info: Value = self.client.request(req).await.map_err(api_error)?;
        Ok(served_version(&info))
    }

    async fn nodes(&self) -> Result<Vec<BTreeMap<String, String>>, MemberError> {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(api_error)?;
        Ok(nodes
            .items
            .into_iter()
            .map(|n| n.metadata.labels.unwrap_or_default())
            .collect())
    }

    async fn list_addons(&self) -> Result<AddonList, MemberError> {
        let lp = ListParams::default();
        let mut out: Vec<MemberAddon> = Api::<Addon>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(api_error)?
            .items
            .into_iter()
            .map(|a| member_addon(AddonKind::FederatedAddon, &a.metadata, a.spec, a.status))
            .collect();
        out.extend(
            self.cluster_addons()
                .list(&lp)
                .await
                .map_err(api_error)?
                .items
                .into_iter()
                .map(|a| {
                    member_addon(
                        AddonKind::FederatedClusterAddon,
                        &a.metadata,
                        a.spec.0,
                        a.status,
                    )
                }),
        );
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Arc::new(out))
    }

    async fn apply_addon(&self, desired: &DesiredAddon) -> Result<(), MemberError> {
        let pp = PatchParams::apply(MANAGER_FIELD_MANAGER).force();
        let meta = json!({"name": desired.id.name, "labels": desired.labels, "annotations": desired.annotations});
        match (&desired.id.kind, &desired.id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                let mut m = meta;
                m["namespace"] = json!(ns);
                let body = json!({"apiVersion": Addon::api_version(&()), "kind": "Addon", "metadata": m, "spec": &*desired.spec});
                self.addons(ns)
                    .patch(&desired.id.name, &pp, &Patch::Apply(body))
                    .await
                    .map_err(api_error)?;
            }
            _ => {
                let spec = ClusterAddonSpec((*desired.spec).clone());
                let body = json!({"apiVersion": ClusterAddon::api_version(&()), "kind": "ClusterAddon", "metadata": meta, "spec": spec});
                self.cluster_addons()
                    .patch(&desired.id.name, &pp, &Patch::Apply(body))
                    .await
                    .map_err(api_error)?;
            }
        }
        Ok(())
    }

    async fn delete_addon(&self, id: &AddonId) -> Result<(), MemberError> {
        let dp = DeleteParams::default();
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                self.addons(ns).delete(&id.name, &dp).await.map(|_| ())
            }
            _ => self
                .cluster_addons()
                .delete(&id.name, &dp)
                .await
                .map(|_| ()),
        }
        .map_err(api_error)
    }

    async fn set_finalizer(&self, id: &AddonId, present: bool) -> Result<(), MemberError> {
        let patch = |meta: &kube::core::ObjectMeta| {
            let current = meta.finalizers.as_deref().unwrap_or_default();
            let f = with_finalizer(current, crate::member::UNINSTALL_FINALIZER, present);
            Patch::Merge(
                json!({"metadata": {"finalizers": f, "resourceVersion": meta.resource_version}}),
            )
        };
        let pp = PatchParams::default();
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                let api = self.addons(ns);
                let a = api.get(&id.name).await.map_err(api_error)?;
                api.patch(&id.name, &pp, &patch(a.meta())).await.map(|_| ())
            }
            _ => {
                let api = self.cluster_addons();
                let a = api.get(&id.name).await.map_err(api_error)?;
                api.patch(&id.name, &pp, &patch(a.meta())).await.map(|_| ())
            }
        }
        .map_err(api_error)
    }

    async fn update_status(&self, id: &AddonId, status: &AddonStatus) -> Result<(), MemberError> {
        let pp = PatchParams::apply(AGENT_FIELD_MANAGER).force();
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                let body = json!({"apiVersion": Addon::api_version(&()), "kind": "Addon", "status": status});
                self.addons(ns).patch_status(&id.name, &pp, &Patch::Apply(body)).await.map(|_| ())
            }
            _ => {
                let body = json!({"apiVersion": ClusterAddon::api_version(&()), "kind": "ClusterAddon", "status": status});
                self.cluster_addons().patch_status(&id.name, &pp, &Patch::Apply(body)).await.map(|_| ())
            }
        }
        .map_err(api_error)
    }

    async fn apply_manifest(&self, owner: &AddonId, manifest: &Value) -> Result<(), MemberError> {
        let (api, name) = self.resource_api(manifest).await?;
        let mut body = manifest.clone();
        body["metadata"]["annotations"]["kubeaddons.mesosphere.io/owner"] =
            json!(owner.to_string());
        let pp = PatchParams::apply(AGENT_FIELD_MANAGER).force();
        api.patch(&name, &pp, &Patch::Apply(body))
            .await
            .map(|_| ())
            .map_err(api_error)
    }

    async fn delete_manifests(&self, owner: &AddonId) -> Result<(), MemberError> {
        let spec = match self.spec_of(owner).await {
            Ok(s) => s,
            Err(MemberError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        for m in &spec.manifests {
            let (api, name) = self.resource_api(m).await?;
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(api_error(e)),
            }
        }
        Ok(())
    }

    async fn readiness(
        &self,
        addons: &[(&AddonId, &[Value])],
    ) -> Vec<Result<Vec<Readiness>, MemberError>> {
        futures::future::join_all(addons.iter().map(|(_, manifests)| {
            futures::future::try_join_all(manifests.iter().map(|m| self.readiness_of(m)))
        }))
        .await
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl KubeMember {
    /// One manifest's readiness: a GET and kstatus.
    async fn readiness_of(&self, manifest: &Value) -> Result<Readiness, MemberError> {
        let (api, name) = self.resource_api(manifest).await?;
        let obj = match api.get(&name).await {
            Ok(o) => o,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Ok(Readiness::Pending { retry_after: None });
            }
            Err(e) => return Err(api_error(e)),
        };
        Ok(kstatus(
            manifest.get("kind").and_then(Value::as_str).unwrap_or(""),
            &obj,
        ))
    }
}

/// kstatus-style readiness: Deployments available, Jobs complete, CRDs established,
/// everything else present.
fn kstatus(kind: &str, obj: &DynamicObject) -> Readiness {
    let status = obj.data.get("status");
    let condition = |t: &str| {
        status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .and_then(|c| c.get("status").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let pending = Readiness::Pending {
        retry_after: Some(Duration::from_secs(2)),
    };
    match kind {
        "Deployment" => {
            let want = obj
                .data
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let observed = status
                .and_then(|s| s.get("observedGeneration"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let available = status
                .and_then(|s| s.get("availableReplicas"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if observed >= obj.metadata.generation.unwrap_or(0) && available >= want {
                Readiness::Ready
            } else {
                pending
            }
        }
        "Job" => match (
            condition("Complete").as_deref(),
            condition("Failed").as_deref(),
        ) {
            (Some("True"), _) => Readiness::Ready,
            (_, Some("True")) => Readiness::Failed(format!("Job {} failed", obj.name_any())),
            _ => pending,
        },
        "CustomResourceDefinition" => {
            if condition("Established").as_deref() == Some("True") {
                Readiness::Ready
            } else {
                pending
            }
        }
        _ => Readiness::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_core::version::KubeVersion;

    #[test]
    fn an_emulating_control_plane_serves_the_emulated_version() {
        let plain = json!({"major": "1", "minor": "36", "gitVersion": "v1.36.3",
            "emulationMajor": "1", "emulationMinor": "36"});
        assert_eq!(served_version(&plain), "v1.36.3");
        let old = json!({"major": "1", "minor": "20+", "gitVersion": "v1.20.11-eks-f17b81"});
        assert_eq!(served_version(&old), "v1.20.11-eks-f17b81");
        let emulating = json!({"major": "1", "minor": "36", "gitVersion": "v1.36.3",
            "emulationMajor": "1", "emulationMinor": "35"});
        let v = served_version(&emulating);
        assert_eq!(v, "v1.35.0+emulated.by.v1.36.3");
        let parsed: KubeVersion = v.parse().expect("a valid gitVersion");
        assert_eq!((parsed.major, parsed.minor), (1, 35));
    }
}
