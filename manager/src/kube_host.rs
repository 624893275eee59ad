//! The host store behind a real Kubernetes API server, through kube-rs, and the connector
//! that turns a KubeFedCluster and its Secret into a member client.
//!
//! Label updates are optimistic (a replace carrying the resourceVersion the manager read:
//! a stale one is a 409), statuses go to the status subresource, and the watch is three
//! kube-rs watchers whose events are reduced to keys, marked status-only when neither
//! generation, labels, finalizers nor deletion changed (the generation predicate, in spirit).
//! The watchers feed reflector stores: lists and Federated* reads come from them (an event
//! is sent after its store holds the change); a cluster is read from the API server itself
//! before it is written, so its resourceVersion is fresh.
//! Tokens never appear in logs or errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use flotilla_agent::kube_member::KubeMember;
use flotilla_core::catalog::{AddonId, AddonKind, Catalog, CatalogAddon, CatalogObject};
use flotilla_core::explain::ClusterView;
use flotilla_core::types::{
    FederatedAddon, FederatedClusterAddon, FederatedStatus, KubeFedCluster, KubeFedClusterStatus,
    TlsValidation, with_finalizer,
};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

use crate::host::{EventRecord, HostError, HostEvent, HostStore, ObjectKey};
use crate::manager::Connector;

fn host_error(e: kube::Error) -> HostError {
    match e {
        kube::Error::Api(s) if s.code == 404 => HostError::NotFound,
        kube::Error::Api(s) if s.code == 409 => HostError::Conflict,
        kube::Error::Api(s) if s.code == 422 || s.code == 403 || s.code == 400 => {
            HostError::Invalid(s.message)
        }
        other => HostError::Unavailable(other.to_string()),
    }
}

/// The host cluster through a Kubernetes client.
pub struct KubeHost {
    client: Client,
    /// Reflector stores the watch fills (kube-rs `reflector`): lists and Federated* reads
    /// come from them once `watch` runs; before that, from the API server.
    stores: OnceLock<Stores>,
}

struct Stores {
    clusters: Store<KubeFedCluster>,
    addons: Store<FederatedAddon>,
    cluster_addons: Store<FederatedClusterAddon>,
}

/// Waits until a store holds its first full list (the API server may still be starting).
async fn ready<K>(store: &Store<K>) -> Result<(), HostError>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .await
        .map_err(|e| HostError::Unavailable(e.to_string()))
}

impl KubeHost {
    /// A host store over `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            stores: OnceLock::new(),
        }
    }

    /// The catalog and clusters `explain` reasons about, as the host holds them now, and a
    /// warning for each addon that does not compile (its status says why, too).
    pub async fn explain_inputs(
        &self,
    ) -> Result<(Catalog, Vec<ClusterView>, Vec<String>), HostError> {
        let mut warnings = Vec::new();
        let mut addons = Vec::new();
        for obj in self.list_addons().await? {
            match CatalogAddon::compile(&obj) {
                Ok(a) => addons.push(a),
                Err(e) => warnings.push(format!("{}: {e}", obj.id())),
            }
        }
        let catalog = Catalog::new(addons).map_err(|e| HostError::Invalid(e.to_string()))?;
        let views = self
            .list_clusters()
            .await?
            .into_iter()
            .map(|c| ClusterView {
                name: c.name_any(),
                labels: c.metadata.labels.unwrap_or_default(),
                version: None,
            })
            .collect();
        Ok((catalog, views, warnings))
    }

    fn clusters(&self, namespace: &str) -> Api<KubeFedCluster> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Watches every `K`: fills a reflector store, and sends each change's key (marked
    /// status-only when it is) to `tx`, after the store holds it.
    fn watch_kind<K>(
        &self,
        tx: mpsc::UnboundedSender<HostEvent>,
        include_status: bool,
        key: fn(&K) -> ObjectKey,
    ) -> Store<K>
    where
        K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let seen: Arc<Mutex<HashMap<ObjectKey, String>>> = Arc::default();
        let (store, writer) = reflector::store();
        // With backoff: a watcher retrying a dead API server in a tight loop never yields.
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        tokio::spawn(stream.for_each(move |ev| {
            let (obj, deleted) = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (Some(o), false),
                Ok(watcher::Event::Delete(o)) => (Some(o), true),
                _ => (None, false),
            };
            if let Some(o) = obj {
                let k = key(&o);
                let m = o.meta();
                let fingerprint = format!(
                    "{:?}|{:?}|{:?}|{:?}|{deleted}",
                    m.generation, m.labels, m.finalizers, m.deletion_timestamp
                );
                let previous = {
                    let mut s = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if deleted {
                        s.remove(&k)
                    } else {
                        s.insert(k.clone(), fingerprint.clone())
                    }
                };
                let status_only = !deleted && previous.as_deref() == Some(&fingerprint);
                if !status_only || include_status {
                    let _ = tx.send(HostEvent {
                        key: k,
                        status_only,
                    });
                }
            }
            async {}
        }));
        store
    }
}

fn cluster_key(c: &KubeFedCluster) -> ObjectKey {
    ObjectKey::cluster(&c.namespace().unwrap_or_default(), &c.name_any())
}

fn addon_key(a: &FederatedAddon) -> ObjectKey {
    ObjectKey::Addon(CatalogObject::Addon(a.clone()).id())
}

fn cluster_addon_key(a: &FederatedClusterAddon) -> ObjectKey {
    ObjectKey::Addon(AddonId {
        kind: AddonKind::FederatedClusterAddon,
        namespace: None,
        name: a.name_any().into(),
    })
}

impl HostStore for KubeHost {
    async fn list_clusters(&self) -> Result<Vec<KubeFedCluster>, HostError> {
        if let Some(s) = self.stores.get() {
            ready(&s.clusters).await?;
            return Ok(s.clusters.state().iter().map(|c| (**c).clone()).collect());
        }
        let api: Api<KubeFedCluster> = Api::all(self.client.clone());
        Ok(api
            .list(&ListParams::default())
            .await
            .map_err(host_error)?
            .items)
    }

    async fn get_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<KubeFedCluster>, HostError> {
        self.clusters(namespace)
            .get_opt(name)
            .await
            .map_err(host_error)
    }

    async fn update_cluster_labels(
        &self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        resource_version: &str,
    ) -> Result<(), HostError> {
        let api = self.clusters(namespace);
        let mut c = api.get(name).await.map_err(host_error)?;
        if c.metadata.resource_version.as_deref() != Some(resource_version) {
            return Err(HostError::Conflict);
        }
        c.metadata.labels = Some(labels);
        api.replace(name, &PostParams::default(), &c)
            .await
            .map(|_| ())
            .map_err(host_error)
    }

    async fn update_cluster_status(
        &self,
        namespace: &str,
        name: &str,
        status: &KubeFedClusterStatus,
    ) -> Result<(), HostError> {
        let patch = Patch::Merge(json!({ "status": status }));
        self.clusters(namespace)
            .patch_status(name, &PatchParams::default(), &patch)
            .await
            .map(|_| ())
            .map_err(host_error)
    }

    async fn set_cluster_finalizer(
        &self,
        namespace: &str,
        name: &str,
        present: bool,
    ) -> Result<(), HostError> {
        let api = self.clusters(namespace);
        let c = api.get(name).await.map_err(host_error)?;
        let current = c.metadata.finalizers.as_deref().unwrap_or_default();
        let f = with_finalizer(current, crate::host::DETACH_FINALIZER, present);
        let patch = Patch::Merge(
            json!({"metadata": {"finalizers": f, "resourceVersion": c.metadata.resource_version}}),
        );
        api.patch(name, &PatchParams::default(), &patch)
            .await
            .map(|_| ())
            .map_err(host_error)
    }

    async fn list_addons(&self) -> Result<Vec<CatalogObject>, HostError> {
        if let Some(s) = self.stores.get() {
            ready(&s.addons).await?;
            ready(&s.cluster_addons).await?;
            let mut out: Vec<CatalogObject> = (s.addons.state().iter())
                .map(|a| CatalogObject::Addon((**a).clone()))
                .collect();
            out.extend(
                (s.cluster_addons.state().iter())
                    .map(|a| CatalogObject::ClusterAddon((**a).clone())),
            );
            return Ok(out);
        }
        let lp = ListParams::default();
        let mut out: Vec<CatalogObject> = Api::<FederatedAddon>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(host_error)?
            .items
            .into_iter()
            .map(CatalogObject::Addon)
            .collect();
        let cluster_scoped = Api::<FederatedClusterAddon>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(host_error)?;
        out.extend(
            cluster_scoped
                .items
                .into_iter()
                .map(CatalogObject::ClusterAddon),
        );
        Ok(out)
    }

    async fn get_addon(&self, id: &AddonId) -> Result<Option<CatalogObject>, HostError> {
        if let Some(s) = self.stores.get() {
            ready(&s.addons).await?;
            ready(&s.cluster_addons).await?;
            return Ok(match (&id.kind, &id.namespace) {
                (AddonKind::FederatedAddon, Some(ns)) => s
                    .addons
                    .get(&ObjectRef::new(&id.name).within(ns))
                    .map(|a| CatalogObject::Addon((*a).clone())),
                _ => s
                    .cluster_addons
                    .get(&ObjectRef::new(&id.name))
                    .map(|a| CatalogObject::ClusterAddon((*a).clone())),
            });
        }
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                Ok(Api::<FederatedAddon>::namespaced(self.client.clone(), ns)
                    .get_opt(&id.name)
                    .await
                    .map_err(host_error)?
                    .map(CatalogObject::Addon))
            }
            _ => Ok(Api::<FederatedClusterAddon>::all(self.client.clone())
                .get_opt(&id.name)
                .await
                .map_err(host_error)?
                .map(CatalogObject::ClusterAddon)),
        }
    }

    async fn update_addon_status(
        &self,
        id: &AddonId,
        status: FederatedStatus,
    ) -> Result<(), HostError> {
        let patch = Patch::Merge(json!({ "status": status }));
        let pp = PatchParams::default();
        match (&id.kind, &id.namespace) {
            (AddonKind::FederatedAddon, Some(ns)) => {
                Api::<FederatedAddon>::namespaced(self.client.clone(), ns)
                    .patch_status(&id.name, &pp, &patch)
                    .await
                    .map(|_| ())
            }
            _ => Api::<FederatedClusterAddon>::all(self.client.clone())
                .patch_status(&id.name, &pp, &patch)
                .await
                .map(|_| ()),
        }
        .map_err(host_error)
    }

    async fn record_event(&self, event: EventRecord) -> Result<(), HostError> {
        let (namespace, regarding) = match &event.regarding {
            ObjectKey::Cluster { namespace, name } => (
                namespace.clone(),
                ObjectReference {
                    api_version: Some(KubeFedCluster::api_version(&()).into_owned()),
                    kind: Some("KubeFedCluster".into()),
                    namespace: Some(namespace.clone()),
                    name: Some(name.clone()),
                    ..Default::default()
                },
            ),
            ObjectKey::Addon(id) => (
                id.namespace.as_deref().unwrap_or("default").to_owned(),
                ObjectReference {
                    api_version: Some("types.kubefed.io/v1beta1".into()),
                    kind: Some(id.kind.as_str().into()),
                    namespace: id.namespace.as_deref().map(str::to_owned),
                    name: Some(id.name.to_string()),
                    ..Default::default()
                },
            ),
        };
        let e = Event {
            metadata: ObjectMeta {
                generate_name: Some("flotilla-".into()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            reporting_controller: Some("flotilla.io/manager".into()),
            reporting_instance: Some("flotilla-manager".into()),
            action: Some("Reconcile".into()),
            reason: Some(event.reason),
            note: Some(event.message),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
            regarding: Some(regarding),
            ..Default::default()
        };
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &e)
            .await
            .map(|_| ())
            .map_err(host_error)
    }

    fn watch(&self, include_status: bool) -> mpsc::UnboundedReceiver<HostEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stores = Stores {
            clusters: self.watch_kind::<KubeFedCluster>(tx.clone(), include_status, cluster_key),
            addons: self.watch_kind::<FederatedAddon>(tx.clone(), include_status, addon_key),
            cluster_addons: self.watch_kind::<FederatedClusterAddon>(
                tx,
                include_status,
                cluster_addon_key,
            ),
        };
        // Reads come from the first watch's stores; a later watch only adds events.
        let _ = self.stores.set(stores);
        rx
    }
}

/// Connects to members the way KubeFed does: the KubeFedCluster's endpoint and CA bundle,
/// and the `token` of the Secret it names, in the cluster's namespace. TLS is verified unless
/// `disabledTLSValidations` says `*`.
pub struct KubeConnector {
    host: Client,
}

impl KubeConnector {
    /// A connector reading Secrets through the host client.
    pub fn new(host: Client) -> Self {
        Self { host }
    }
}

impl Connector for KubeConnector {
    type Member = KubeMember;

    async fn connect(&self, cluster: &KubeFedCluster) -> Result<Arc<KubeMember>, String> {
        let ns = cluster.namespace().unwrap_or_default();
        let name = cluster.name_any();
        let secret_name = &cluster.spec.secret_ref.name;
        let secret = Api::<Secret>::namespaced(self.host.clone(), &ns)
            .get(secret_name)
            .await
            .map_err(|e| format!("reading Secret {ns}/{secret_name}: {e}"))?;
        let token = secret
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .ok_or_else(|| format!("Secret {ns}/{secret_name} has no `token`"))?;
        let insecure = cluster
            .spec
            .disabled_tls_validations
            .contains(&TlsValidation::All);
        let kubeconfig = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": {
                "server": cluster.spec.api_endpoint,
                "certificate-authority-data": cluster.spec.ca_bundle,
                "insecure-skip-tls-verify": insecure}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        });
        let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig.to_string())
            .map_err(|e| format!("cluster {name}: {e}"))?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("cluster {name}: {e}"))?;
        let client = Client::try_from(config).map_err(|e| format!("cluster {name}: {e}"))?;
        Ok(KubeMember::new(client))
    }
}
