//! A little randomness (watch timeouts, retry jitter, identity suffixes) without a dependency:
//! std's `RandomState` is seeded randomly per instance, so hashing the time with a fresh one
//! gives an unpredictable value. Not for cryptography.
//!
//! Mirrors apimachinery's `util/rand` and the jitter of `wait.Jitter`.

use std::hash::{BuildHasher, Hasher};

/// A random 64-bit value.
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

/// A random fraction in [0, 1).
pub(crate) fn random_fraction() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
