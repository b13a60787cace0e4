//! The measured loops' percentiles, shared by both benches (criterion reports medians only).

use std::time::Duration;

/// p50 and p99 of `samples` (nearest rank); `None` when there are none.
pub fn p50_p99(mut samples: Vec<Duration>) -> Option<(Duration, Duration)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Some((at(0.50), at(0.99)))
}
