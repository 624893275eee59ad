//! The agent: one per member cluster, level-based.
//!
//! Every pass lists the member's Addon/ClusterAddon objects and brings each one a step
//! closer to what its spec asks, writing status only when it changes:
//!
//! - deleting → uninstall its manifests, then drop the finalizer (the object goes);
//! - outside `kubernetes.min/maxSupportedVersion` → `failed`, with the reason;
//! - a `requires` selector that no deployed, ready addon in the member satisfies →
//!   `pending`, naming what is missing or not ready;
//! - otherwise apply the manifests (once per generation) → `deploying` → `deployed` when
//!   every manifest is ready, or `failed` (retried with capped, jittered backoff).
//!
//! A pass reads, in one round trip, the manifests of every addon that is due a look, then
//! settles each of them: a pass costs the member two round trips (list, readiness), not
//! one per addon.
//!
//! All state comes from the member; the only memory is the member's version (read again
//! every resync: it moves on upgrades only) and one memo per addon: retry bookkeeping, its
//! rules (version bounds, `requires` selectors) parsed once per generation, and when its
//! manifests are next worth reading (a deployed one's at the next resync, a deploying one's
//! when the first of them may be ready), so a pass woken by one addon does not re-read the
//! manifests of all the others. Killing and restarting an agent at any point loses
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use compact_str::{CompactString, ToCompactString};
use flotilla_core::backoff::Backoff;
use flotilla_core::catalog::AddonId;
use flotilla_core::field::FieldPath;
use flotilla_core::selector::{LabelSelector, Selector};
use flotilla_core::types::{AddonStatus, REVISION_ANNOTATION, Stage};
use flotilla_core::version::{KubeVersion, VersionBound};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use crate::member::{
    MemberAddon, MemberCluster, MemberError, Readiness, UNINSTALL_FINALIZER, find_addon,
};

/// Where one addon's reconcile got to.
enum Step {
    /// As far as it goes for now; look again within the duration, if any.
    Done(Option<Duration>),
    /// Its manifests need reading: the pass reads them with every other addon's.
    Read,
}

/// How the agent paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// Look again this often when nothing tells us to (a resync).
    pub resync: Duration,
    /// Poll readiness this often when the member cannot say when.
    pub poll: Duration,
    /// Retries of failed calls and failed deployments.
    pub backoff: Backoff,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(60),
            poll: Duration::from_secs(2),
            backoff: Backoff::default(),
        }
    }
}

/// What an addon's spec asks of its cluster, parsed once per generation (a resync pass
/// would otherwise parse every version bound and `requires` selector of every addon).
struct Rules {
    generation: i64,
    /// `minSupportedVersion` and `maxSupportedVersion`, or why one does not parse.
    bounds: Result<(Option<VersionBound>, Option<VersionBound>), String>,
    /// Each `requires` selector, or why it is invalid.
    requires: Vec<Result<Selector, String>>,
}

impl Rules {
    fn parse(a: &MemberAddon) -> Self {
        let bound = |s: &Option<String>| -> Result<Option<VersionBound>, String> {
            s.as_deref()
                .map(|s| s.parse::<VersionBound>().map_err(|e| e.to_string()))
                .transpose()
        };
        let bounds = match &a.spec.kubernetes {
            None => Ok((None, None)),
            Some(k) => bound(&k.min_supported_version)
                .and_then(|min| Ok((min, bound(&k.max_supported_version)?))),
        };
        let requires =
            a.spec
                .requires
                .iter()
                .enumerate()
                .map(|(i, req)| {
                    LabelSelector::to_selector(req, &FieldPath::new("spec.requires").index(i))
                        .map_err(|errs| {
                            errs.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                })
                .collect();
        Self {
            generation: a.generation,
            bounds,
            requires,
        }
    }
}

/// What the agent remembers of one addon between passes (losing it all loses nothing but
/// time): one entry, found once or twice a pass, rather than a map per concern.
#[derive(Default)]
struct Memo {
    /// Failed attempts in a row, and when the next one is due.
    attempts: u32,
    not_before: Option<Instant>,
    /// For an addon deploying or deployed: (generation, time) before which its manifests
    /// need not be read again, as long as its status is what this agent wrote.
    next_read: Option<(i64, Instant)>,
    /// Its rules, as of the generation they were parsed at.
    rules: Option<Rules>,
}

/// The agent of one member cluster.
pub struct Agent<M> {
    cluster: String,
    member: Arc<M>,
    config: AgentConfig,
    /// Sorted by id, as the member lists its addons: a pass finds each memo by a short
    /// binary search in one small block of memory, not by hashing into a sparse table.
    memo: Vec<(AddonId, Memo)>,
    /// The member's version as last read, and when.
    version: Option<(Option<KubeVersion>, Instant)>,
    rng: SmallRng,
}

impl<M: MemberCluster> Agent<M> {
    /// An agent for `member`; `seed` drives its retry jitter.
    pub fn new(cluster: impl Into<String>, member: Arc<M>, config: AgentConfig, seed: u64) -> Self {
        Self {
            cluster: cluster.into(),
            member,
            config,
            memo: Vec::new(),
            version: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Runs until the task is dropped: a pass, then wait for a change or the next deadline.
    pub async fn run(mut self) {
        // Both waits are kept across passes: most passes are woken by their deadline, and
        // then the wait for a change stays registered as it was (a day of 10,000 agents
        // is 1.7 million passes).
        let mut changes = self.member.changes();
        changes.borrow_and_update();
        let mut change = Box::pin(next_change(changes));
        let mut deadline = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut failures = 0u32;
        loop {
            // Boxed: an idle agent (most of them, most of the time) is this loop asleep,
            // and need not carry the deep state of a pass.
            let wait = match Box::pin(self.pass()).await {
                Ok(wait) => {
                    failures = 0;
                    wait
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    debug!(cluster = %self.cluster, error = %e, "agent pass failed");
                    self.config.backoff.delay(failures - 1, self.rng.random())
                }
            };
            deadline.as_mut().reset(Instant::now() + wait);
            tokio::select! {
                // In this order: a change that came while the deadline also passed is taken
                // (the next pass covers both), and no random pick decides how many passes
                // run, so a virtual-time run replays exactly.
                biased;
                changes = &mut change => match changes {
                    Some(changes) => change.set(next_change(changes)),
                    None => return,
                },
                () = deadline.as_mut() => {}
            }
        }
    }

    /// One level-based pass over every addon; returns when to look again.
    pub async fn pass(&mut self) -> Result<Duration, MemberError> {
        let addons = self.member.list_addons().await?;
        let version = match self.version {
            Some((v, at)) if at.elapsed() < self.config.resync => v,
            _ => {
                let v = self.member.version().await?.parse().ok();
                self.version = Some((v, Instant::now()));
                v
            }
        };
        let mut next = self.config.resync;
        // Forget addons that are gone once the memo outgrows the member (an entry left for a
        // gone addon is harmless: a new object of that name starts without our status).
        if self.memo.len() > addons.len() {
            self.memo
                .retain(|(id, _)| find_addon(&addons, id).is_some());
        }
        let mut due = Vec::new();
        for a in addons.iter() {
            let span = info_span!("reconcile_addon", cluster = %self.cluster, addon = %a.id);
            match self.reconcile(a, &addons, version).instrument(span).await {
                Ok(Step::Read) => due.push(a),
                Ok(Step::Done(wait)) => self.settled(a, Ok(wait), &mut next),
                Err(e) => self.settled(a, Err(e), &mut next),
            }
        }
        if !due.is_empty() {
            let queries: Vec<(&AddonId, &[serde_json::Value])> =
                due.iter().map(|a| (&a.id, &a.spec.manifests[..])).collect();
            let answers = self.member.readiness(&queries).await;
            for (a, answer) in due.into_iter().zip(answers) {
                let span = info_span!("reconcile_addon", cluster = %self.cluster, addon = %a.id);
                let outcome = match answer {
                    Ok(states) => self.conclude(a, states).instrument(span).await,
                    Err(e) => Err(e),
                };
                self.settled(a, outcome, &mut next);
            }
        }
        Ok(next)
    }

    /// Books one addon's outcome: a failure is retried with backoff, and `next` comes no
    /// later than any addon asks.
    fn settled(
        &mut self,
        a: &MemberAddon,
        outcome: Result<Option<Duration>, MemberError>,
        next: &mut Duration,
    ) {
        let wait = match outcome {
            Ok(wait) => {
                if wait.is_none()
                    && let Some(m) = self.memo_of(&a.id)
                {
                    m.attempts = 0;
                    m.not_before = None;
                }
                wait
            }
            Err(e) => {
                debug!(cluster = %self.cluster, addon = %a.id, error = %e, "addon reconcile failed");
                Some(self.schedule_retry(&a.id))
            }
        };
        if let Some(w) = wait {
            *next = (*next).min(w);
        }
    }

    /// Where `id`'s memo is, or would go.
    fn memo_position(&self, id: &AddonId) -> Result<usize, usize> {
        self.memo.binary_search_by(|(k, _)| k.cmp(id))
    }

    /// The memo of `id`, if there is one.
    fn memo_of(&mut self, id: &AddonId) -> Option<&mut Memo> {
        let i = self.memo_position(id).ok()?;
        Some(&mut self.memo[i].1)
    }

    /// The memo of `id`, made if missing.
    fn memo(&mut self, id: &AddonId) -> &mut Memo {
        let i = match self.memo_position(id) {
            Ok(i) => i,
            Err(i) => {
                self.memo.insert(i, (id.clone(), Memo::default()));
                i
            }
        };
        &mut self.memo[i].1
    }

    fn schedule_retry(&mut self, id: &AddonId) -> Duration {
        let draw = self.rng.random();
        let backoff = self.config.backoff;
        let r = self.memo(id);
        let d = backoff.delay(r.attempts, draw);
        r.attempts = r.attempts.saturating_add(1);
        r.not_before = Some(Instant::now() + d);
        d
    }

    /// Writes the status an agent gives `a` at this stage, unless it already says so.
    async fn set_status(
        &self,
        a: &MemberAddon,
        stage: Stage,
        ready: bool,
        message: Option<String>,
    ) -> Result<(), MemberError> {
        if !says(a, stage, ready, message.as_deref()) {
            let status = status(a, stage, ready, message);
            self.member.update_status(&a.id, &status).await?;
        }
        Ok(())
    }

    /// Brings one addon a step closer, up to reading its manifests.
    async fn reconcile(
        &mut self,
        a: &MemberAddon,
        all: &[MemberAddon],
        version: Option<KubeVersion>,
    ) -> Result<Step, MemberError> {
        let has_finalizer = a.finalizers.iter().any(|f| f == UNINSTALL_FINALIZER);
        if a.deleting {
            if has_finalizer {
                let deleting = AddonStatus {
                    stage: Some(Stage::Deleting),
                    ready: false,
                    ..a.status.clone()
                };
                if a.status != deleting {
                    self.member.update_status(&a.id, &deleting).await?;
                }
                self.member.delete_manifests(&a.id).await?;
                self.member.set_finalizer(&a.id, false).await?;
            }
            return Ok(Step::Done(None));
        }
        if !has_finalizer {
            self.member.set_finalizer(&a.id, true).await?;
        }
        let memo = self.memo(&a.id);
        let rules = match &mut memo.rules {
            Some(r) if r.generation == a.generation => r,
            r => r.insert(Rules::parse(a)),
        };
        let (version_why, requirement_why) = match version_problem(rules, version) {
            Some(why) => (Some(why), None),
            None => (None, unmet_requirement(a, rules, all)),
        };
        let (not_before, next_read) = (memo.not_before, memo.next_read);
        if let Some(why) = version_why {
            self.set_status(a, Stage::Failed, false, Some(why)).await?;
            return Ok(Step::Done(None));
        }
        if let Some(why) = requirement_why {
            self.set_status(a, Stage::Pending, false, Some(why)).await?;
            return Ok(Step::Done(None));
        }

        let applied = a.status.observed_generation == Some(a.generation)
            && matches!(a.status.stage, Some(Stage::Deploying | Stage::Deployed));
        if !applied {
            let now = Instant::now();
            if a.status.stage == Some(Stage::Failed)
                && a.status.observed_generation == Some(a.generation)
                && let Some(t) = not_before
                && now < t
            {
                return Ok(Step::Done(Some(t - now)));
            }
            for m in &a.spec.manifests {
                self.member.apply_manifest(&a.id, m).await?;
            }
            self.set_status(a, Stage::Deploying, false, None).await?;
            // Our own status write ticks the watch; the next pass checks readiness.
            return Ok(Step::Done(Some(Duration::ZERO)));
        }

        // Read lately, and it still says what we wrote then (same generation and revision).
        if let Some((g, t)) = next_read
            && g == a.generation
        {
            let now = Instant::now();
            if now < t {
                if says(a, Stage::Deployed, true, None) {
                    return Ok(Step::Done(None));
                }
                if says(a, Stage::Deploying, false, None) {
                    return Ok(Step::Done(Some(t - now)));
                }
            }
        }
        if let Some(m) = self.memo_of(&a.id) {
            m.next_read = None;
        }
        Ok(Step::Read)
    }

    /// Settles an addon on what its manifests said: deployed when all are ready, failed
    /// (and retried) when one failed, else deploying until the first may be ready.
    async fn conclude(
        &mut self,
        a: &MemberAddon,
        states: Vec<Readiness>,
    ) -> Result<Option<Duration>, MemberError> {
        let mut wait: Option<Duration> = None;
        for r in states {
            match r {
                Readiness::Ready => {}
                Readiness::Pending { retry_after } => {
                    let d = retry_after.unwrap_or(self.config.poll);
                    wait = Some(wait.map_or(d, |w| w.min(d)));
                }
                Readiness::Failed(why) => {
                    warn!(cluster = %self.cluster, addon = %a.id, %why, "addon failed");
                    self.set_status(a, Stage::Failed, false, Some(why)).await?;
                    return Ok(Some(self.schedule_retry(&a.id)));
                }
            }
        }
        match wait {
            Some(w) => {
                self.set_status(a, Stage::Deploying, false, None).await?;
                self.memo(&a.id).next_read = Some((a.generation, Instant::now() + w));
                Ok(Some(w))
            }
            None => {
                self.set_status(a, Stage::Deployed, true, None).await?;
                self.memo(&a.id).next_read =
                    Some((a.generation, Instant::now() + self.config.resync));
                Ok(None)
            }
        }
    }
}

/// The member's next change, handing its receiver back for the one after (none: the member
/// is gone).
async fn next_change(
    mut changes: tokio::sync::watch::Receiver<u64>,
) -> Option<tokio::sync::watch::Receiver<u64>> {
    changes.changed().await.ok().map(|()| changes)
}

/// Whether `a`'s status is the one [`status`] would make (without making it: a resync
/// asks this of every deployed addon).
fn says(a: &MemberAddon, stage: Stage, ready: bool, message: Option<&str>) -> bool {
    let s = &a.status;
    s.ready == ready
        && s.stage == Some(stage)
        && s.message.as_deref() == message
        && s.observed_generation == Some(a.generation)
        && match (
            a.annotations.get(REVISION_ANNOTATION),
            s.revision.as_deref(),
        ) {
            (Some(wanted), Some(r)) => wanted == r,
            (None, Some(r)) => *r == a.generation.to_compact_string(),
            (_, None) => false,
        }
}

/// The status an agent writes for `a`, at its current generation and revision.
fn status(a: &MemberAddon, stage: Stage, ready: bool, message: Option<String>) -> AddonStatus {
    let revision = a
        .annotations
        .get(REVISION_ANNOTATION)
        .map_or_else(|| a.generation.to_compact_string(), CompactString::from);
    AddonStatus {
        ready,
        stage: Some(stage),
        revision: Some(revision),
        message,
        observed_generation: Some(a.generation),
    }
}

/// Why this cluster's version is outside the addon's supported range, if it is.
fn version_problem(rules: &Rules, version: Option<KubeVersion>) -> Option<String> {
    let (min, max) = match &rules.bounds {
        Ok((None, None)) => return None,
        Ok(bounds) => bounds,
        Err(e) => return version.map(|_| e.clone()),
    };
    let v = version?;
    match (min, max) {
        (Some(min), _) if !min.allows_min(&v) => {
            Some(format!("cluster runs {v}, below minSupportedVersion {min}"))
        }
        (_, Some(max)) if !max.allows_max(&v) => {
            Some(format!("cluster runs {v}, above maxSupportedVersion {max}"))
        }
        _ => None,
    }
}

/// The first `requires` selector no deployed, ready addon satisfies, said plainly.
fn unmet_requirement(a: &MemberAddon, rules: &Rules, all: &[MemberAddon]) -> Option<String> {
    for sel in &rules.requires {
        let sel = match sel {
            Ok(s) => s,
            Err(e) => return Some(e.clone()),
        };
        let mut candidates = all
            .iter()
            .filter(|o| o.id != a.id && !o.deleting && sel.matches(&*o.labels));
        let Some(first) = candidates.next() else {
            let text = sel
                .requirements()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Some(format!("waiting for {text}: no such addon in this cluster"));
        };
        let ready = |o: &MemberAddon| o.status.ready && o.status.stage == Some(Stage::Deployed);
        if !ready(first) && !candidates.any(ready) {
            let stage = first.status.stage.map_or("none", Stage::as_str);
            return Some(format!(
                "waiting for {}: not ready (stage {stage})",
                first.id.name
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addon(annotation: Option<&str>, generation: i64, status: AddonStatus) -> MemberAddon {
        let annotations = annotation
            .map(|r| [(REVISION_ANNOTATION.to_owned(), r.to_owned())].into())
            .unwrap_or_default();
        MemberAddon {
            id: AddonId {
                kind: flotilla_core::catalog::AddonKind::FederatedAddon,
                namespace: Some("kubeaddons".into()),
                name: "velero".into(),
            },
            generation,
            labels: Arc::default(),
            annotations: Arc::new(annotations),
            spec: Arc::default(),
            status,
            finalizers: Arc::new([]),
            deleting: false,
        }
    }

    fn stage() -> impl Strategy<Value = Stage> {
        prop_oneof![
            Just(Stage::Pending),
            Just(Stage::Deploying),
            Just(Stage::Deployed),
            Just(Stage::Failed),
            Just(Stage::Deleting),
        ]
    }

    proptest! {
        /// `says` is the comparison with a made status, without making it.
        #[test]
        fn says_is_equality_with_the_status_it_would_write(
            annotation in proptest::option::of(prop_oneof![Just("1"), Just("0.50.0-1")]),
            generation in 1i64..3,
            ready in any::<bool>(),
            stage in proptest::option::of(stage()),
            revision in proptest::option::of(prop_oneof![Just("1"), Just("2"), Just("0.50.0-1")]),
            message in proptest::option::of(prop_oneof![Just("a"), Just("b")]),
            observed in proptest::option::of(1i64..3),
            (want_stage, want_ready, want_message) in (stage(), any::<bool>(), proptest::option::of(prop_oneof![Just("a"), Just("b")])),
        ) {
            let current = AddonStatus {
                ready,
                stage,
                revision: revision.map(CompactString::from),
                message: message.map(str::to_owned),
                observed_generation: observed,
            };
            let a = addon(annotation, generation, current);
            let made = status(&a, want_stage, want_ready, want_message.map(str::to_owned));
            prop_assert_eq!(says(&a, want_stage, want_ready, want_message), a.status == made);
        }
    }
}
