//! Capped exponential backoff with jitter, shared by the manager and the agent.
//!
//! Pure: the caller passes the random draw, so simulated runs stay deterministic.

use std::time::Duration;

/// Capped exponential backoff: `base * 2^attempt`, at most `cap`, then "equal jitter"
/// (half fixed, half random) so that many clusters failing together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay of the first retry.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based); `draw` is uniform in `[0, 1)`.
    pub fn delay(&self, attempt: u32, draw: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        let capped = exp.min(self.cap);
        capped / 2 + (capped / 2).mul_f64(draw.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_millis(1500));
        assert!(
            b.delay(5, 0.3) >= Duration::from_secs(1) && b.delay(5, 0.3) <= Duration::from_secs(2)
        );
    }
}
