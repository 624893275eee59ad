//! Attaching a cluster from its kubeconfig and detaching it, as `kubefedctl join` / `unjoin`
//! did.
//!
//! Attach gives the manager its own identity in the member (a ServiceAccount with the
//! narrow rights of [`install::member_access`]), requests a token for it, and writes that
//! token as a Secret next to a `KubeFedCluster` in the host. The manager never uses the
//! person's own credentials from the kubeconfig, and the token is never printed or logged.
//! Detach deletes the `KubeFedCluster` (whose finalizer makes the manager clean the member
//! first), waits for it to go, then deletes the Secret.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use flotilla_agent::kube_member::apply_object;
use flotilla_core::types::KubeFedCluster;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use tracing::info;

use crate::install::{self, MEMBER_ACCESS};

/// Field manager of what attach writes.
const ATTACH_FIELD_MANAGER: &str = "flotilla-attach";

/// Why attaching or detaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The member's kubeconfig is unusable.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A call to the member failed.
    #[error("member cluster: {step}: {source}")]
    Member {
        /// What attach was doing.
        step: String,
        /// The API's answer.
        source: kube::Error,
    },
    /// A call to the host failed.
    #[error("host cluster: {step}: {source}")]
    Host {
        /// What attach was doing.
        step: String,
        /// The API's answer.
        source: kube::Error,
    },
    /// The member answered the token request without a token.
    #[error("member cluster: the token request for {MEMBER_ACCESS} returned no token")]
    NoToken,
    /// Detach waited for the manager to release the cluster and it did not.
    #[error(
        "KubeFedCluster {0} is still there after {1:?}: the manager may be down or still cleaning the member (see its events)"
    )]
    Timeout(String, Duration),
}

/// A member as its kubeconfig describes it.
pub struct MemberAccess {
    /// API server URL the manager will use.
    pub server: String,
    /// Base64 PEM CA bundle, if the kubeconfig has one.
    pub ca_bundle: Option<String>,
    /// The kubeconfig skips TLS verification.
    pub insecure: bool,
    /// A client with the kubeconfig's own credentials, to set up access.
    pub client: Client,
}

/// Reads a member's kubeconfig (its current context, or `context`).
pub async fn read_member(path: &Path, context: Option<&str>) -> Result<MemberAccess, AttachError> {
    let bad = |message: String| AttachError::Kubeconfig {
        path: path.display().to_string(),
        message,
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
    let context_name = context
        .map(str::to_owned)
        .or_else(|| kc.current_context.clone())
        .ok_or_else(|| bad("no current-context and no --member-context".into()))?;
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| bad(format!("no context {context_name:?}")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| bad(format!("no cluster {cluster_name:?}")))?;
    let server = cluster
        .server
        .clone()
        .ok_or_else(|| bad(format!("cluster {cluster_name:?} has no server")))?;
    let ca_bundle = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(file)) => {
            let pem = std::fs::read(file).map_err(|e| bad(format!("reading {file}: {e}")))?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        (None, None) => None,
    };
    let options = KubeConfigOptions {
        context: Some(context_name),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let client = Client::try_from(config).map_err(|e| bad(e.to_string()))?;
    Ok(MemberAccess {
        server,
        ca_bundle,
        insecure: cluster.insecure_skip_tls_verify == Some(true),
        client,
    })
}

/// What to attach, and how.
pub struct AttachOptions<'a> {
    /// The KubeFedCluster's name.
    pub name: &'a str,
    /// Namespace of KubeFedClusters and Secrets in the host, and of the manager's
    /// ServiceAccount in the member.
    pub namespace: &'a str,
    /// Overrides the kubeconfig's server (as the manager must reach it).
    pub api_endpoint: Option<&'a str>,
    /// Lifetime of the manager's token (re-attach to renew it).
    pub token_ttl: Duration,
    /// Labels to put on the KubeFedCluster (a workspace, a user's federate-* choice).
    pub labels: BTreeMap<String, String>,
}

/// Grants the manager access to the member, and writes the Secret and KubeFedCluster.
pub async fn attach(
    host: &Client,
    member: &MemberAccess,
    opts: &AttachOptions<'_>,
) -> Result<(), AttachError> {
    let (name, ns) = (opts.name, opts.namespace);
    let in_member = |step: &str| {
        let step = step.to_owned();
        move |source| AttachError::Member { step, source }
    };
    let in_host = |step: &str| {
        let step = step.to_owned();
        move |source| AttachError::Host { step, source }
    };
    for object in install::member_access(ns) {
        let what = format!(
            "applying {} {}",
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or("")
        );
        apply_object(&member.client, ATTACH_FIELD_MANAGER, &object)
            .await
            .map_err(in_member(&what))?;
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(i64::try_from(opts.token_ttl.as_secs()).unwrap_or(i64::MAX)),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(member.client.clone(), ns)
        .create_token_request(MEMBER_ACCESS, &PostParams::default(), &request)
        .await
        .map_err(in_member("requesting a token for the manager"))?
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or(AttachError::NoToken)?;
    info!(cluster = name, "member access granted");

    let pp = PatchParams::apply(ATTACH_FIELD_MANAGER).force();
    let secret_name = format!("{name}-token");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": ns,
            "labels": {"app.kubernetes.io/part-of": "flotilla", "flotilla.io/cluster": name}},
        "type": "Opaque",
        "stringData": {"token": token},
    });
    Api::<Secret>::namespaced(host.clone(), ns)
        .patch(&secret_name, &pp, &Patch::Apply(&secret))
        .await
        .map_err(in_host(&format!("writing Secret {ns}/{secret_name}")))?;
    let mut spec = json!({
        "apiEndpoint": opts.api_endpoint.unwrap_or(&member.server),
        "secretRef": {"name": secret_name},
    });
    if let Some(ca) = &member.ca_bundle {
        spec["caBundle"] = json!(ca);
    }
    if member.insecure {
        spec["disabledTLSValidations"] = json!(["*"]);
    }
    let cluster = json!({
        "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
        "metadata": {"name": name, "namespace": ns, "labels": opts.labels},
        "spec": spec,
    });
    Api::<KubeFedCluster>::namespaced(host.clone(), ns)
        .patch(name, &pp, &Patch::Apply(&cluster))
        .await
        .map_err(in_host(&format!("writing KubeFedCluster {ns}/{name}")))?;
    info!(cluster = name, "attached");
    Ok(())
}

/// Deletes the KubeFedCluster, waits up to `wait` for the manager to release it, then
/// deletes its Secret. Returns false if there was nothing to detach.
pub async fn detach(
    host: &Client,
    name: &str,
    namespace: &str,
    wait: Duration,
) -> Result<bool, AttachError> {
    let in_host = |step: String| move |source| AttachError::Host { step, source };
    let clusters = Api::<KubeFedCluster>::namespaced(host.clone(), namespace);
    let Some(cluster) = clusters.get_opt(name).await.map_err(in_host(format!(
        "reading KubeFedCluster {namespace}/{name}"
    )))?
    else {
        return Ok(false);
    };
    clusters
        .delete(name, &DeleteParams::default())
        .await
        .map_err(in_host(format!(
            "deleting KubeFedCluster {namespace}/{name}"
        )))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = clusters.get_opt(name).await.map_err(in_host(format!(
            "reading KubeFedCluster {namespace}/{name}"
        )))?;
        // Gone, or replaced by a new attach under the same name.
        if now.is_none_or(|c| c.metadata.uid != cluster.metadata.uid) {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AttachError::Timeout(format!("{namespace}/{name}"), wait));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secret = &cluster.spec.secret_ref.name;
    match Api::<Secret>::namespaced(host.clone(), namespace)
        .delete(secret, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(in_host(format!("deleting Secret {namespace}/{secret}"))(e)),
    }
    info!(cluster = name, "detached");
    Ok(true)
}

/// Removes the manager's ServiceAccount and RBAC from a detached member; its tokens stop
/// working with the ServiceAccount.
pub async fn revoke(member: &Client, namespace: &str) -> Result<(), AttachError> {
    for object in install::member_access(namespace).iter().skip(1).rev() {
        let what = format!(
            "deleting {} {}",
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or("")
        );
        let (api, name) = flotilla_agent::kube_member::dynamic_api(member, object)
            .await
            .map_err(|source| AttachError::Member {
                step: what.clone(),
                source,
            })?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => return Err(AttachError::Member { step: what, source }),
        }
    }
    Ok(())
}
