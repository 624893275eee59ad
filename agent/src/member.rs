//! The member cluster as the manager and the agent see it.
//!
//! One small trait, [`MemberCluster`], holds every call either side makes to a member:
//! health and facts for the manager's probes, Addon/ClusterAddon objects (written by the
//! manager, status by the agent), and the manifests the agent applies. It has two
//! implementations: [`crate::memory::MemoryMember`], simulated and in-process, and (in the
//! real mode) one backed by a Kubernetes API server. Nothing here does what the Kubernetes
//! API could not do.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::catalog::AddonId;
use flotilla_core::render::DesiredAddon;
use flotilla_core::types::{AddonSpec, AddonStatus};
use serde_json::Value;

/// Finalizer the agent puts on every Addon, so that it can uninstall before the object goes.
pub const UNINSTALL_FINALIZER: &str = "kubeaddons.mesosphere.io/uninstall";

/// An Addon or ClusterAddon object in a member cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberAddon {
    /// Identity (kind names the federated kind it came from).
    pub id: AddonId,
    /// Bumped by the API server whenever the spec changes.
    pub generation: i64,
    /// Labels (shared with the desired object they were applied from).
    pub labels: Arc<BTreeMap<String, String>>,
    /// Annotations (shared the same way).
    pub annotations: Arc<BTreeMap<String, String>>,
    /// The spec.
    pub spec: Arc<AddonSpec>,
    /// What the agent reported.
    pub status: AddonStatus,
    /// Finalizers still holding the object (shared: nearly every object holds the same one).
    pub finalizers: Arc<[String]>,
    /// Deletion was requested; the object stays until its finalizers are gone.
    pub deleting: bool,
}

/// A member's Addon and ClusterAddon objects, sorted by id, shared rather than copied: an
/// agent lists them at every pass, and most passes are resyncs that change nothing, so a
/// simulated member hands out the list it holds and copies it only when written to while
/// someone still reads it.
pub type AddonList = Arc<Vec<MemberAddon>>;

/// The addon with this id in a list sorted by id ([`AddonList`]'s order).
pub fn find_addon<'a>(addons: &'a [MemberAddon], id: &AddonId) -> Option<&'a MemberAddon> {
    addons
        .binary_search_by(|a| a.id.cmp(id))
        .ok()
        .map(|i| &addons[i])
}

/// Why a call to a member failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The member could not be reached (connection refused, partition).
    #[error("cluster is not reachable: {0}")]
    Unreachable(String),
    /// The call took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The API server answered with an error status (409 conflict, 429 throttled, 500, ...).
    #[error("API error {code}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The object does not exist.
    #[error("not found")]
    NotFound,
}

/// Whether something the agent applied is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not yet; ask again after `retry_after` when the member knows, else at the agent's poll.
    Pending {
        /// When it is worth asking again.
        retry_after: Option<Duration>,
    },
    /// It will not become ready (e.g. image pull failure); re-applying may help.
    Failed(String),
}

/// Every call the manager and the agent make to a member cluster.
pub trait MemberCluster: Send + Sync + 'static {
    /// `GET /healthz`: the body (KubeFed compares it to "ok", ignoring case), or
    /// [`MemberError::Timeout`] after `timeout`. The client applies the timeout, as KubeFed's
    /// does: a simulated member that knows its latency needs no second timer to say so.
    fn healthz(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<String, MemberError>> + Send;
    /// A probe scheduled for `at` (at once if that has passed): [`Self::healthz`] then.
    /// The manager's probes are periodic, so they say when, rather than sleep and then
    /// call: a simulated member folds its latency into that one wait (a 24-hour day of
    /// 10,000 clusters is 14 million probes, and each timer is a measurable share of them).
    fn healthz_at(
        &self,
        at: tokio::time::Instant,
        timeout: Duration,
    ) -> impl Future<Output = Result<String, MemberError>> + Send {
        async move {
            tokio::time::sleep_until(at).await;
            self.healthz(timeout).await
        }
    }
    /// `GET /version`: the `gitVersion`.
    fn version(&self) -> impl Future<Output = Result<String, MemberError>> + Send;
    /// The labels of every node.
    fn nodes(
        &self,
    ) -> impl Future<Output = Result<Vec<BTreeMap<String, String>>, MemberError>> + Send;
    /// Every Addon and ClusterAddon, with status, sorted by id.
    fn list_addons(&self) -> impl Future<Output = Result<AddonList, MemberError>> + Send;
    /// Server-side apply of the manager's desired object (create, or update labels,
    /// annotations and spec; the generation moves only when the spec changes).
    fn apply_addon(
        &self,
        desired: &DesiredAddon,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Requests deletion (the object stays while finalizers remain).
    fn delete_addon(&self, id: &AddonId) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Adds or removes the agent's finalizer; removing the last one of a deleting object
    /// lets it go.
    fn set_finalizer(
        &self,
        id: &AddonId,
        present: bool,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Writes an Addon's status subresource.
    fn update_status(
        &self,
        id: &AddonId,
        status: &AddonStatus,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Server-side apply of one manifest on behalf of an addon.
    fn apply_manifest(
        &self,
        owner: &AddonId,
        manifest: &Value,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Deletes every manifest an addon applied.
    fn delete_manifests(
        &self,
        owner: &AddonId,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Whether each applied manifest of each addon is ready (kstatus-style): one answer per
    /// addon, in order, each holding one state per manifest or the error that addon's reads
    /// met. One call for a whole pass: the reads go out together, so the agent waits one
    /// round trip, not one per addon or manifest.
    fn readiness(
        &self,
        addons: &[(&AddonId, &[Value])],
    ) -> impl Future<Output = Vec<Result<Vec<Readiness>, MemberError>>> + Send;
    /// Ticks whenever an Addon or ClusterAddon changes (a watch, reduced to "look again").
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// A short key for a manifest: `kind/namespace/name`.
pub fn manifest_key(m: &Value) -> String {
    let (kind, namespace, name) = manifest_identity(m);
    format!("{kind}/{namespace}/{name}")
}

/// A manifest's kind, namespace and name (empty when absent), read in place.
pub fn manifest_identity(m: &Value) -> (&str, &str, &str) {
    fn s(v: Option<&Value>) -> &str {
        v.and_then(Value::as_str).unwrap_or("")
    }
    let meta = m.get("metadata");
    (
        s(m.get("kind")),
        s(meta.and_then(|md| md.get("namespace"))),
        s(meta.and_then(|md| md.get("name"))),
    )
}
