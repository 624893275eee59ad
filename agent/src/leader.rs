//! Leader election over a `coordination.k8s.io` Lease, so that two replicas of the manager
//! (or of an agent) are safe: only the holder works.
//!
//! A replica that loses the lease stops working at once and [`run_as_leader`] returns an
//! error, so the process exits and starts over from fresh lists, as controller-runtime does;
//! a replica whose work ends (it was asked to shut down) releases the lease so the other
//! takes over without waiting for it to expire.

use std::future::Future;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tracing::info;

/// Which Lease to hold, and how.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (one per controller).
    pub name: String,
    /// This replica (the pod name in a Deployment).
    pub identity: String,
    /// Seconds a holder keeps the lease without renewing it.
    pub duration_secs: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace_secs: u64,
}

/// Why leading stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be read or written.
    #[error("lease {lease}: {source}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What the API said.
        source: LeaseManagerError,
    },
    /// Another replica holds the lease now; this one must stop.
    #[error("lost lease {0} to another replica")]
    Lost(String),
}

/// Waits until this replica holds the lease, then runs `work` for as long as it keeps it.
pub async fn run_as_leader<F, Fut>(
    client: Client,
    config: &LeaseConfig,
    work: F,
) -> Result<(), LeaderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let lease = format!("{}/{}", config.namespace, config.name);
    let err = |source| LeaderError::Lease {
        lease: lease.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration_secs)
        .with_grace(config.grace_secs)
        .build()
        .await
        .map_err(err)?;
    let (mut leading, task) = manager.watch().await;
    info!(%lease, identity = %config.identity, "waiting to lead");
    while !*leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            // The lease task ended: it says why.
            return match task.await {
                Ok(Err(e)) => Err(err(e)),
                _ => Err(LeaderError::Lost(lease)),
            };
        }
    }
    info!(%lease, identity = %config.identity, "leading");
    let lost = async {
        while leading.changed().await.is_ok() {
            if !*leading.borrow() {
                break;
            }
        }
    };
    tokio::select! {
        () = work() => {
            // Dropping the receiver makes the lease task release the lease.
            drop(leading);
            match task.await {
                Ok(Err(e)) => Err(err(e)),
                _ => Ok(()),
            }
        }
        () = lost => Err(LeaderError::Lost(lease.clone())),
    }
}

/// This replica's name for the Lease: the pod's (`POD_NAME`), else host and process.
pub fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Resolves on Ctrl-C or SIGTERM (what a pod gets when it is stopped), so a leader
/// finishes its work and releases the Lease.
pub async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
