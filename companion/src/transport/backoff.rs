//! When to try again: exponential backoff for reconnecting to a device and for retrying a
//! request the device refused as busy.

use std::future::Future;
use std::time::Duration;

/// How often, and how far apart, to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait before the first retry.
    pub initial_delay: Duration,
    /// Each wait is this many times the previous one ...
    pub multiplier: u32,
    /// ... but never longer than this.
    pub max_delay: Duration,
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    /// 250 ms, doubling up to 4 s, 8 attempts: about 20 s, long enough to replug a cable or
    /// walk back into BLE range, short enough that a person is still waiting.
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(250),
            multiplier: 2,
            max_delay: Duration::from_secs(4),
            max_attempts: 8,
        }
    }
}

impl ReconnectPolicy {
    /// The wait after failed attempt number `failures` (1-based), before the next one.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1);
        let factor = self.multiplier.max(1).saturating_pow(exponent);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// The state of one retry sequence: how many attempts failed so far.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    failures: u32,
}

impl Backoff {
    /// A fresh sequence.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// Records a failed attempt; returns how long to wait before the next one, or `None` when
    /// the attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.max_attempts.max(1) {
            return None;
        }
        Some(self.policy.delay_after(self.failures))
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Runs `attempt` until it succeeds, fails permanently (`is_permanent`), or the policy's
/// attempts are used up; returns the last error then. Waits with [`tokio::time::sleep`].
pub async fn retry<T, E, F, Fut>(
    policy: &ReconnectPolicy,
    mut attempt: F,
    is_permanent: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(*policy);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if is_permanent(&error) => return Err(error),
            Err(error) => match backoff.next_delay() {
                Some(delay) => {
                    tracing::debug!(
                        failures = backoff.failures(),
                        delay_ms = delay.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy(max_attempts: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            multiplier: 2,
            max_delay: Duration::from_millis(500),
            max_attempts,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut backoff = Backoff::new(policy(6));
        let delays: Vec<_> = std::iter::from_fn(|| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 500, 500]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(backoff.failures(), 6);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        assert_eq!(Backoff::new(policy(1)).next_delay(), None);
        assert_eq!(Backoff::new(policy(0)).next_delay(), None);
    }

    #[test]
    fn huge_exponents_saturate_at_the_cap() {
        assert_eq!(policy(100).delay_after(90), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_succeeds_after_transient_failures_waiting_between() {
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result: Result<u32, &str> = retry(
            &policy(5),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 3 { Err("not yet") } else { Ok(n) } }
            },
            |_| false,
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_a_permanent_error() {
        let calls = Cell::new(0);
        let result: Result<(), &str> = retry(
            &policy(5),
            || {
                calls.set(calls.get() + 1);
                async { Err("permission denied") }
            },
            |error| *error == "permission denied",
        )
        .await;
        assert_eq!(result, Err("permission denied"));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_after_max_attempts_with_the_last_error() {
        let calls = Cell::new(0);
        let result: Result<(), u32> = retry(
            &policy(4),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { Err(n) }
            },
            |_| false,
        )
        .await;
        assert_eq!(result, Err(4));
    }
}
