//! Payment cryptography: typed keys, ISO 9564 PIN blocks, ISO 9797-1 and CMAC MACs, key check
//! values, TR-31 key blocks, DUKPT, P-256 pairing and host verification, and ECDSA signatures.
//! Pure functions over caller-supplied keys and RNGs.

pub mod certificate;
pub mod dukpt;
pub mod ecdsa;
pub mod host_auth;
pub mod kcv;
pub mod keys;
pub mod mac;
pub mod pairing;
pub mod pinblock;
pub mod primitives;
pub mod tr31;
