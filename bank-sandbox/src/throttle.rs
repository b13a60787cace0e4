//! Failure throttles for the bank's open doors: device login per source address, staff
//! sign-in per user name and per source address.
//!
//! A device's own verified failures are counted in the database (`devices.failed_logins`,
//! see `bank::login`), because only the device can produce them. Everything else (malformed
//! requests, forged reports, wrong staff passwords) can come from anyone, so it is counted
//! here, per source address and per staff user name, in fixed windows. The counts live in
//! this process: several bank processes behind one address each count on their own, which
//! multiplies an attacker's budget by the number of processes but never locks a customer
//! out. The source is the TCP peer address; no forwarding header is trusted.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::StatusCode;

use crate::error::BankError;
use crate::util::now_ms;

/// Limits of the throttles.
#[derive(Clone, Debug)]
pub struct ThrottlePolicy {
    /// Refused device-login calls (any step) one source may make per window.
    pub login_source_failures: u32,
    /// Wrong staff passwords one user name may receive per window.
    pub staff_user_failures: u32,
    /// Refused staff sign-ins one source may make per window (user name spraying).
    pub staff_source_failures: u32,
    /// The window, and how long a throttled key waits at most.
    pub window_ms: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            login_source_failures: 30,
            staff_user_failures: 5,
            staff_source_failures: 20,
            window_ms: 15 * 60_000,
        }
    }
}

/// Counts failures per key in fixed windows.
#[derive(Debug)]
pub struct FailureCounter<K> {
    limit: u32,
    window_ms: i64,
    windows: Mutex<HashMap<K, (i64, u32)>>,
}

/// Keys kept before expired windows are swept.
const SWEEP_AT: usize = 10_000;

impl<K: Eq + Hash + Clone> FailureCounter<K> {
    /// `limit` failures per `window_ms`.
    pub fn new(limit: u32, window_ms: i64) -> Self {
        Self {
            limit,
            window_ms,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` must still wait (ms), if it used up its failures.
    pub fn blocked(&self, key: &K) -> Option<i64> {
        let now = now_ms();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = windows.get(key)?;
        let left = start + self.window_ms - now;
        (*count >= self.limit && left > 0).then_some(left)
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: &K) {
        let now = now_ms();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            let window = self.window_ms;
            windows.retain(|_, (start, _)| *start + window > now);
        }
        let entry = windows.entry(key.clone()).or_insert((now, 0));
        if entry.0 + self.window_ms <= now {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `key`'s failures (a staff member who signed in).
    pub fn succeeded(&self, key: &K) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// The throttles one API server keeps.
#[derive(Debug)]
pub struct Throttles {
    /// Refused device-login calls per source.
    pub login_sources: FailureCounter<Option<IpAddr>>,
    /// Wrong passwords per staff user name (existing or not: the same work either way).
    pub staff_users: FailureCounter<String>,
    /// Refused staff sign-ins per source.
    pub staff_sources: FailureCounter<Option<IpAddr>>,
}

impl Throttles {
    /// Throttles with `policy`.
    pub fn new(policy: &ThrottlePolicy) -> Self {
        Self {
            login_sources: FailureCounter::new(policy.login_source_failures, policy.window_ms),
            staff_users: FailureCounter::new(policy.staff_user_failures, policy.window_ms),
            staff_sources: FailureCounter::new(policy.staff_source_failures, policy.window_ms),
        }
    }
}

/// 429 for a source address that used up its failures.
pub fn source_throttled(retry_after_ms: i64) -> BankError {
    BankError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "source_throttled",
        "too many refused requests from this address; try again later",
    )
    .with("retry_after_ms", retry_after_ms)
}

/// 429 for a staff user name that received too many wrong passwords.
pub fn staff_throttled(retry_after_ms: i64) -> BankError {
    BankError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "staff_throttled",
        "too many wrong passwords for this user; try again later",
    )
    .with("retry_after_ms", retry_after_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_its_limit_and_others_are_not() {
        let counter = FailureCounter::new(3, 60_000);
        for _ in 0..2 {
            counter.failed(&"a");
        }
        assert_eq!(counter.blocked(&"a"), None);
        counter.failed(&"a");
        assert!(counter.blocked(&"a").is_some_and(|ms| ms > 0));
        assert_eq!(counter.blocked(&"b"), None);
        counter.succeeded(&"a");
        assert_eq!(counter.blocked(&"a"), None);
    }

    #[test]
    fn a_window_ends() {
        let counter = FailureCounter::new(1, 0);
        counter.failed(&"a");
        assert_eq!(counter.blocked(&"a"), None);
    }
}
