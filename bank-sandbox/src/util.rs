//! Small helpers: the clock, the CSPRNG and random identifiers.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

thread_local! {
    // One ChaCha20 CSPRNG per thread, seeded from the OS: a syscall per thread instead of
    // per key or nonce. `None` until first use (or if the OS could not seed it).
    static RNG: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// The OS could not provide entropy.
#[derive(Debug, thiserror::Error)]
#[error("the operating system could not provide random bytes: {0}")]
pub struct EntropyError(String);

/// Runs `f` with this thread's CSPRNG.
pub fn with_rng<T>(f: impl FnOnce(&mut ChaCha20Rng) -> T) -> Result<T, EntropyError> {
    RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| EntropyError(e.to_string()))?;
            *slot = Some(ChaCha20Rng::from_seed(seed));
            zeroize::Zeroize::zeroize(&mut seed);
        }
        match slot.as_mut() {
            Some(rng) => Ok(f(rng)),
            None => Err(EntropyError("RNG not seeded".into())),
        }
    })
}

/// `N` random bytes from the CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], EntropyError> {
    with_rng(|rng| {
        let mut out = [0u8; N];
        rand_core::Rng::fill_bytes(rng, &mut out);
        out
    })
}

/// A random identifier: `prefix` and 16 random bytes in lower-case hex.
pub fn random_id(prefix: &str) -> Result<String, EntropyError> {
    Ok(format!("{prefix}{}", hex::encode(random_bytes::<16>()?)))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
