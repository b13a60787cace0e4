//! Host verification (CN103106582A's communication-verification packet): after pairing, every
//! request from the host carries its host id, a counter and an AES-CMAC under a key derived
//! from the host pairing key. The device refuses unknown hosts, bad MACs and replays.
//!
//! - Request MAC key: HKDF-SHA256 with no salt, IKM = the 32-byte host pairing key,
//!   info = `"PinBridge/v1/host-auth/request-mac-key"`, 32 bytes: an AES-256 CMAC key.
//! - MAC = AES-256-CMAC over `"PinBridge/v1/host-auth/request"` || 0x00 || host id (8) ||
//!   counter (u64 big-endian) || inner length (u64 big-endian) || inner request bytes; the full
//!   16-byte CMAC is sent.
//!
//! Counters start at 1 and must strictly increase per host; the device keeps the highest one
//! it accepted. [`HostVerifier`] is the device's pure state (persist it with
//! [`HostVerifier::to_bytes`] after every accepted request, or a reboot reopens the replay
//! window); [`HostSigner`] is the host's.

use alloc::vec::Vec;
use core::fmt;
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::keys::MacKey;
use super::pairing::{HOST_ID_LEN, HOST_PAIRING_KEY_LEN, HostId, HostPairingKey, aes256_material};
use super::primitives::BlockCipher;

/// Length of the host request MAC (a full AES-CMAC block).
pub const HOST_MAC_LEN: usize = 16;
/// How many hosts a device keeps paired at once.
pub const MAX_PAIRED_HOSTS: usize = 16;
/// HKDF info of the host request MAC key.
pub const REQUEST_MAC_KEY_INFO: &str = "PinBridge/v1/host-auth/request-mac-key";
/// Tag in front of every MAC input.
pub const REQUEST_MAC_TAG: &str = "PinBridge/v1/host-auth/request";
/// First bytes of a serialised [`HostVerifier`].
pub const STATE_MAGIC: [u8; 4] = *b"PBHV";
/// Version byte of the serialised state this code writes and reads.
pub const STATE_VERSION: u8 = 1;

const STATE_HEADER_LEN: usize = STATE_MAGIC.len() + 2;
const STATE_ENTRY_LEN: usize = HOST_ID_LEN + 8 + HOST_PAIRING_KEY_LEN;

/// Why a host request, a pairing change or a stored state was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostAuthError {
    /// No pairing with this host id.
    #[error("host {host_id} is not paired with this device")]
    UnknownHost {
        /// The id the request named.
        host_id: HostId,
    },
    /// The MAC does not match: forged, corrupted or made with another key.
    #[error("the request MAC does not verify")]
    BadMac,
    /// The counter is not above the last one accepted from this host.
    #[error("replayed request: counter {got} is not above the last accepted {last}")]
    Replay {
        /// Highest counter accepted so far.
        last: u64,
        /// Counter in the request.
        got: u64,
    },
    /// The host has used every counter value; it must pair again.
    #[error("the request counter is exhausted; pair again")]
    CounterExhausted,
    /// The device already keeps the maximum number of pairings.
    #[error("at most {max} hosts can be paired")]
    TooManyHosts {
        /// The limit.
        max: usize,
    },
    /// The host id is already paired (remove it first: re-adding would reset its counter).
    #[error("host {host_id} is already paired")]
    AlreadyPaired {
        /// The id.
        host_id: HostId,
    },
    /// Stored state shorter or longer than its header says.
    #[error("stored host state is {len} bytes, expected {expected}")]
    StateLength {
        /// Length given.
        len: usize,
        /// Length the header implies (or the header length when even that is missing).
        expected: usize,
    },
    /// Stored state does not start with `PBHV`.
    #[error("stored host state does not start with the PBHV magic")]
    StateMagic,
    /// Stored state of a version this code does not read.
    #[error("stored host state version {version} is not supported")]
    StateVersion {
        /// Version byte found.
        version: u8,
    },
}

/// The AES-256 CMAC key for host requests, derived from a host pairing key. A distinct type
/// so that a bank session MAC key cannot be used here, nor this one there.
#[derive(Clone)]
pub struct HostMacKey(MacKey);

impl HostMacKey {
    /// HKDF-SHA256(salt none, IKM = pairing key, info = [`REQUEST_MAC_KEY_INFO`]) -> 32 bytes.
    pub fn derive(pairing_key: &HostPairingKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, pairing_key.reveal_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is within HKDF-SHA256's limit, so expand cannot fail.
        let _ = hkdf.expand(REQUEST_MAC_KEY_INFO.as_bytes(), okm.as_mut_slice());
        Self(MacKey::from_material(aes256_material(&okm)))
    }

    /// The typed MAC key.
    pub fn mac_key(&self) -> &MacKey {
        &self.0
    }
}

impl fmt::Debug for HostMacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostMacKey({:?})", self.0)
    }
}

/// The bytes a host request MAC covers: [`REQUEST_MAC_TAG`] || 0x00 || host id || counter
/// (u64 BE) || inner length (u64 BE) || inner. The one definition of the HostVerified
/// envelope's MAC input; `message::HostVerified::mac_input` returns exactly this.
pub fn host_request_mac_input(host_id: &HostId, counter: u64, inner: &[u8]) -> Vec<u8> {
    let tag = REQUEST_MAC_TAG.as_bytes();
    let mut data = Vec::with_capacity(tag.len() + 1 + HOST_ID_LEN + 16 + inner.len());
    data.extend_from_slice(tag);
    data.push(0x00);
    data.extend_from_slice(host_id.as_bytes());
    data.extend_from_slice(&counter.to_be_bytes());
    data.extend_from_slice(&(inner.len() as u64).to_be_bytes());
    data.extend_from_slice(inner);
    data
}

/// AES-CMAC under the host MAC key over [`host_request_mac_input`].
pub fn host_request_mac(
    key: &HostMacKey,
    host_id: &HostId,
    counter: u64,
    inner: &[u8],
) -> [u8; HOST_MAC_LEN] {
    let cmac = BlockCipher::new(key.mac_key().material())
        .cmac(&host_request_mac_input(host_id, counter, inner));
    let mut out = [0u8; HOST_MAC_LEN];
    // An AES key gives a 16-byte CMAC.
    if let Some(block) = cmac.get(..HOST_MAC_LEN) {
        out.copy_from_slice(block);
    }
    out
}

/// What the host attaches to a request (the HostVerified envelope's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRequestAuth {
    /// The pairing's id.
    pub host_id: HostId,
    /// This request's counter.
    pub counter: u64,
    /// The MAC over the inner request.
    pub mac: [u8; HOST_MAC_LEN],
}

/// The host side: holds the request MAC key and the next counter. Persist
/// [`HostSigner::next_counter`] with the pairing key.
#[derive(Clone, Debug)]
pub struct HostSigner {
    host_id: HostId,
    key: HostMacKey,
    /// `None` once `u64::MAX` has been used.
    next_counter: Option<u64>,
}

impl HostSigner {
    /// A signer for a fresh pairing: the first counter is 1.
    pub fn new(host_id: HostId, pairing_key: &HostPairingKey) -> Self {
        Self::resume(host_id, pairing_key, 1)
    }

    /// A signer restored from storage with the next counter to use.
    pub fn resume(host_id: HostId, pairing_key: &HostPairingKey, next_counter: u64) -> Self {
        Self {
            host_id,
            key: HostMacKey::derive(pairing_key),
            next_counter: Some(next_counter),
        }
    }

    /// The pairing's id.
    pub fn host_id(&self) -> HostId {
        self.host_id
    }

    /// The counter the next request will carry; `None` when exhausted.
    pub fn next_counter(&self) -> Option<u64> {
        self.next_counter
    }

    /// After the device reported `Replay { last, .. }` (host state lost or restored from an
    /// old backup): continue above `last`. Never moves the counter backwards.
    pub fn advance_past(&mut self, last_accepted: u64) {
        if let Some(next) = self.next_counter
            && next <= last_accepted
        {
            self.next_counter = last_accepted.checked_add(1);
        }
    }

    /// MACs `inner` with the next counter and advances it.
    pub fn sign(&mut self, inner: &[u8]) -> Result<HostRequestAuth, HostAuthError> {
        let counter = self.next_counter.ok_or(HostAuthError::CounterExhausted)?;
        self.next_counter = counter.checked_add(1);
        Ok(HostRequestAuth {
            host_id: self.host_id,
            counter,
            mac: host_request_mac(&self.key, &self.host_id, counter, inner),
        })
    }
}

#[derive(Clone)]
struct PairedHost {
    host_id: HostId,
    pairing_key: HostPairingKey,
    mac_key: HostMacKey,
    last_counter: u64,
}

/// The device side: paired hosts and the highest counter accepted from each. Pure state;
/// the device persists [`HostVerifier::to_bytes`] in its secure store.
#[derive(Clone, Default)]
pub struct HostVerifier {
    hosts: Vec<PairedHost>,
}

impl HostVerifier {
    /// No paired hosts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a completed pairing; its counter starts at 0 (the first request carries 1).
    pub fn add_host(
        &mut self,
        host_id: HostId,
        pairing_key: HostPairingKey,
    ) -> Result<(), HostAuthError> {
        self.insert(host_id, pairing_key, 0)
    }

    fn insert(
        &mut self,
        host_id: HostId,
        pairing_key: HostPairingKey,
        last_counter: u64,
    ) -> Result<(), HostAuthError> {
        if self.is_paired(&host_id) {
            return Err(HostAuthError::AlreadyPaired { host_id });
        }
        if self.hosts.len() >= MAX_PAIRED_HOSTS {
            return Err(HostAuthError::TooManyHosts {
                max: MAX_PAIRED_HOSTS,
            });
        }
        let mac_key = HostMacKey::derive(&pairing_key);
        self.hosts.push(PairedHost {
            host_id,
            pairing_key,
            mac_key,
            last_counter,
        });
        Ok(())
    }

    /// Forgets a pairing (user unpairs, device wipe). Whether it was there.
    pub fn remove_host(&mut self, host_id: &HostId) -> bool {
        let before = self.hosts.len();
        self.hosts.retain(|host| host.host_id != *host_id);
        self.hosts.len() != before
    }

    /// Whether this host id is paired.
    pub fn is_paired(&self, host_id: &HostId) -> bool {
        self.hosts.iter().any(|host| host.host_id == *host_id)
    }

    /// The highest counter accepted from this host (0 before its first request).
    pub fn last_counter(&self, host_id: &HostId) -> Option<u64> {
        self.find(host_id).map(|host| host.last_counter)
    }

    /// The paired host ids, in pairing order.
    pub fn host_ids(&self) -> impl Iterator<Item = HostId> + '_ {
        self.hosts.iter().map(|host| host.host_id)
    }

    /// Number of paired hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether no host is paired.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    fn find(&self, host_id: &HostId) -> Option<&PairedHost> {
        self.hosts.iter().find(|host| host.host_id == *host_id)
    }

    /// Checks a host-verified request: the host is paired, the MAC matches (constant time),
    /// and the counter is above the last accepted one. Only then is the counter advanced.
    pub fn verify(
        &mut self,
        host_id: &HostId,
        counter: u64,
        inner: &[u8],
        mac: &[u8; HOST_MAC_LEN],
    ) -> Result<(), HostAuthError> {
        let host = self
            .hosts
            .iter_mut()
            .find(|host| host.host_id == *host_id)
            .ok_or(HostAuthError::UnknownHost { host_id: *host_id })?;
        let expected = host_request_mac(&host.mac_key, host_id, counter, inner);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(HostAuthError::BadMac);
        }
        if counter <= host.last_counter {
            return Err(HostAuthError::Replay {
                last: host.last_counter,
                got: counter,
            });
        }
        host.last_counter = counter;
        Ok(())
    }

    /// Serialises the state: `"PBHV"` || version (1) || count (u8) || per host: host id (8) ||
    /// last counter (u64 BE) || host pairing key (32). Holds secrets: store it only in the
    /// device's secure store.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            STATE_HEADER_LEN + self.hosts.len() * STATE_ENTRY_LEN,
        ));
        out.extend_from_slice(&STATE_MAGIC);
        out.push(STATE_VERSION);
        // At most MAX_PAIRED_HOSTS (16) entries, so the count fits in a byte.
        out.push(self.hosts.len() as u8);
        for host in &self.hosts {
            out.extend_from_slice(host.host_id.as_bytes());
            out.extend_from_slice(&host.last_counter.to_be_bytes());
            out.extend_from_slice(host.pairing_key.reveal_bytes());
        }
        out
    }

    /// Reads a state written by [`Self::to_bytes`], rejecting any malformed input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HostAuthError> {
        let Some((header, entries)) = bytes.split_first_chunk::<STATE_HEADER_LEN>() else {
            return Err(HostAuthError::StateLength {
                len: bytes.len(),
                expected: STATE_HEADER_LEN,
            });
        };
        let [m0, m1, m2, m3, version, count] = *header;
        if [m0, m1, m2, m3] != STATE_MAGIC {
            return Err(HostAuthError::StateMagic);
        }
        if version != STATE_VERSION {
            return Err(HostAuthError::StateVersion { version });
        }
        let count = usize::from(count);
        let expected = STATE_HEADER_LEN + count * STATE_ENTRY_LEN;
        if bytes.len() != expected {
            return Err(HostAuthError::StateLength {
                len: bytes.len(),
                expected,
            });
        }
        if count > MAX_PAIRED_HOSTS {
            return Err(HostAuthError::TooManyHosts {
                max: MAX_PAIRED_HOSTS,
            });
        }
        let mut state = Self::new();
        for entry in entries.chunks_exact(STATE_ENTRY_LEN) {
            let Some((id, rest)) = entry.split_first_chunk::<HOST_ID_LEN>() else {
                continue;
            };
            let Some((counter, key)) = rest.split_first_chunk::<8>() else {
                continue;
            };
            let Ok(pairing_key) = HostPairingKey::from_bytes(key) else {
                continue;
            };
            state.insert(
                HostId::from_array(*id),
                pairing_key,
                u64::from_be_bytes(*counter),
            )?;
        }
        Ok(state)
    }
}

impl fmt::Debug for HostVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.hosts
                    .iter()
                    .map(|host| (host.host_id, host.last_counter)),
            )
            .finish()
    }
}
