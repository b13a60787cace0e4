//! Host pairing keys at rest, never in plaintext.
//!
//! No OS keyring is available on every target (headless Linux, CI), so the keys live in an
//! encrypted file: AES-256-GCM (RustCrypto `aes-gcm`, a standard AEAD: confidentiality and
//! tamper detection in one) under a 32-byte random key kept in a separate file created with
//! mode 0600. A key file rather than a passphrase because the companion runs unattended
//! (scripts, the desktop app at login) where nobody can type one; the pairing keys are only
//! as safe as the user account, which is the same trust an OS keyring gives. Every write draws
//! a fresh 96-bit nonce and replaces the file atomically. The associated data names the format
//! so a file of another kind cannot be passed off as this one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use firmware_protocol::crypto::pairing::{HostId, HostPairingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const FORMAT_AAD: &[u8] = b"PinBridge/companion/host-keys/v1";
const KEY_FILE: &str = "host-keys.key";
const STORE_FILE: &str = "host-keys.enc";

/// Why the key store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// File system trouble.
    #[error("key store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The key file is not 32 bytes of hex.
    #[error("key store key file {0} is damaged (expected 64 hex digits)")]
    BadKeyFile(PathBuf),
    /// The key file is readable by others.
    #[error("key store key file {0} is readable by other users; run chmod 600 on it")]
    KeyFilePermissions(PathBuf),
    /// Decryption failed: wrong key, or the file was modified.
    #[error("key store {0} does not decrypt: it was modified or the key file is not its key")]
    Tampered(PathBuf),
    /// The decrypted content does not parse.
    #[error("key store {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No entropy.
    #[error("no randomness from the OS: {0}")]
    Entropy(getrandom::Error),
}

/// One pairing: what a host needs to speak host-verified requests to one device.
#[derive(Clone)]
pub struct PairedHost {
    /// The device's serial.
    pub serial: String,
    /// The pairing's public id.
    pub host_id: HostId,
    /// The secret pairing key.
    pub pairing_key: HostPairingKey,
    /// The next host counter to use (persisted after every request).
    pub next_counter: u64,
}

impl fmt::Debug for PairedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairedHost")
            .field("serial", &self.serial)
            .field("host_id", &self.host_id)
            .field("pairing_key", &"<redacted>")
            .field("next_counter", &self.next_counter)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredHost {
    serial: String,
    host_id: String,
    pairing_key: String,
    next_counter: u64,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

/// The encrypted store in a state directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The store in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
        move |source| KeyStoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn cipher(&self, create: bool) -> Result<Option<Aes256Gcm>, KeyStoreError> {
        let path = self.dir.join(KEY_FILE);
        if !path.exists() {
            if !create {
                return Ok(None);
            }
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&self.dir).map_err(Self::io(&self.dir))?;
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(KeyStoreError::Entropy)?;
            let text = Zeroizing::new(hex::encode(key.as_ref()));
            write_private(&path, text.as_bytes())?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(Self::io(&path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyStoreError::KeyFilePermissions(path));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(Self::io(&path))?);
        let key = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| KeyStoreError::BadKeyFile(path.clone()))?,
        );
        let cipher =
            Aes256Gcm::new_from_slice(&key).map_err(|_| KeyStoreError::BadKeyFile(path.clone()))?;
        Ok(Some(cipher))
    }

    /// Every stored pairing (none when the store does not exist yet).
    pub fn load(&self) -> Result<Vec<PairedHost>, KeyStoreError> {
        let path = self.dir.join(STORE_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let cipher = self
            .cipher(false)?
            .ok_or_else(|| KeyStoreError::Tampered(path.clone()))?;
        let damaged = |reason: String| KeyStoreError::Damaged {
            path: path.clone(),
            reason,
        };
        let sealed: Sealed =
            serde_json::from_slice(&std::fs::read(&path).map_err(Self::io(&path))?)
                .map_err(|e| damaged(e.to_string()))?;
        let nonce = hex::decode(&sealed.nonce).map_err(|e| damaged(e.to_string()))?;
        if nonce.len() != 12 {
            return Err(damaged("nonce is not 12 bytes".into()));
        }
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|e| damaged(e.to_string()))?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: FORMAT_AAD,
                    },
                )
                .map_err(|_| KeyStoreError::Tampered(path.clone()))?,
        );
        let stored: Vec<StoredHost> =
            serde_json::from_slice(&plain).map_err(|e| damaged(e.to_string()))?;
        stored
            .into_iter()
            .map(|s| {
                let id = hex::decode(&s.host_id).map_err(|e| damaged(e.to_string()))?;
                let key = Zeroizing::new(
                    hex::decode(&s.pairing_key).map_err(|e| damaged(e.to_string()))?,
                );
                Ok(PairedHost {
                    serial: s.serial,
                    host_id: HostId::from_slice(&id).map_err(|e| damaged(e.to_string()))?,
                    pairing_key: HostPairingKey::from_bytes(&key)
                        .map_err(|e| damaged(e.to_string()))?,
                    next_counter: s.next_counter,
                })
            })
            .collect()
    }

    /// The pairing for `serial`, if any.
    pub fn find(&self, serial: &str) -> Result<Option<PairedHost>, KeyStoreError> {
        Ok(self.load()?.into_iter().find(|h| h.serial == serial))
    }

    /// Stores `host`, replacing any pairing with the same serial.
    pub fn save(&self, host: &PairedHost) -> Result<(), KeyStoreError> {
        let mut all = self.load()?;
        all.retain(|h| h.serial != host.serial);
        all.push(host.clone());
        self.write_all(&all)
    }

    /// Forgets the pairing for `serial`; true if there was one.
    pub fn remove(&self, serial: &str) -> Result<bool, KeyStoreError> {
        let mut all = self.load()?;
        let before = all.len();
        all.retain(|h| h.serial != serial);
        let removed = all.len() != before;
        if removed {
            self.write_all(&all)?;
        }
        Ok(removed)
    }

    fn write_all(&self, hosts: &[PairedHost]) -> Result<(), KeyStoreError> {
        let cipher = self
            .cipher(true)?
            .ok_or_else(|| KeyStoreError::BadKeyFile(self.dir.join(KEY_FILE)))?;
        let stored: Vec<StoredHost> = hosts
            .iter()
            .map(|h| StoredHost {
                serial: h.serial.clone(),
                host_id: hex::encode(h.host_id.as_bytes()),
                pairing_key: hex::encode(h.pairing_key.reveal_bytes()),
                next_counter: h.next_counter,
            })
            .collect();
        let plain =
            Zeroizing::new(
                serde_json::to_vec(&stored).map_err(|e| KeyStoreError::Damaged {
                    path: self.dir.join(STORE_FILE),
                    reason: e.to_string(),
                })?,
            );
        // The hex copies of the keys above live in `stored`: zeroize them now.
        for s in stored {
            drop(Zeroizing::new(s.pairing_key));
        }
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(KeyStoreError::Entropy)?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: FORMAT_AAD,
                },
            )
            .map_err(|_| KeyStoreError::Tampered(self.dir.join(STORE_FILE)))?;
        let sealed = Sealed {
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        let bytes = serde_json::to_vec_pretty(&sealed).map_err(|e| KeyStoreError::Damaged {
            path: self.dir.join(STORE_FILE),
            reason: e.to_string(),
        })?;
        write_private(&self.dir.join(STORE_FILE), &bytes)
    }
}

/// Writes `bytes` to `path` atomically (temp file + rename) with mode 0600 on Unix.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyStoreError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(KeyStore::io(&tmp))?;
    file.write_all(bytes).map_err(KeyStore::io(&tmp))?;
    file.sync_all().map_err(KeyStore::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(KeyStore::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(serial: &str, byte: u8) -> PairedHost {
        PairedHost {
            serial: serial.into(),
            host_id: HostId::from_array([byte; 8]),
            pairing_key: HostPairingKey::from_bytes(&[byte ^ 0x5a; 32])
                .unwrap_or_else(|_| unreachable!("32 bytes is the pairing key length")),
            next_counter: 7,
        }
    }

    #[test]
    fn round_trips_and_never_writes_the_key_in_clear() -> Result<(), KeyStoreError> {
        let dir = tempfile::tempdir().map_err(|source| KeyStoreError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let store = KeyStore::new(dir.path());
        store.save(&host("PP-1", 0x11))?;
        store.save(&host("PP-2", 0x22))?;
        let loaded = store
            .find("PP-1")?
            .map(|h| h.pairing_key.reveal_bytes().to_vec());
        assert_eq!(loaded, Some(vec![0x11 ^ 0x5a; 32]));
        let on_disk = std::fs::read(dir.path().join(STORE_FILE)).unwrap_or_default();
        let key_hex = hex::encode([0x11 ^ 0x5a; 32]);
        assert!(!String::from_utf8_lossy(&on_disk).contains(&key_hex));
        assert!(!on_disk.windows(32).any(|w| w == [0x11 ^ 0x5a; 32]));
        assert!(store.remove("PP-2")?);
        assert_eq!(store.load()?.len(), 1);
        Ok(())
    }

    #[test]
    fn a_modified_store_is_refused() -> Result<(), KeyStoreError> {
        let dir = tempfile::tempdir().map_err(|source| KeyStoreError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let store = KeyStore::new(dir.path());
        store.save(&host("PP-1", 0x11))?;
        let path = dir.path().join(STORE_FILE);
        let mut sealed: Sealed = serde_json::from_slice(&std::fs::read(&path).unwrap_or_default())
            .map_err(|e| KeyStoreError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let mut bytes = hex::decode(&sealed.ciphertext).unwrap_or_default();
        bytes[0] ^= 1;
        sealed.ciphertext = hex::encode(bytes);
        std::fs::write(&path, serde_json::to_vec(&sealed).unwrap_or_default()).ok();
        assert!(matches!(store.load(), Err(KeyStoreError::Tampered(_))));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_and_a_readable_one_is_refused() -> Result<(), KeyStoreError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|source| KeyStoreError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let store = KeyStore::new(dir.path());
        store.save(&host("PP-1", 0x11))?;
        let key_file = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&key_file)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).ok();
        assert!(matches!(
            store.load(),
            Err(KeyStoreError::KeyFilePermissions(_))
        ));
        Ok(())
    }

    #[test]
    fn debug_redacts_the_pairing_key() {
        let text = format!("{:?}", host("PP-1", 0x11));
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([0x11 ^ 0x5a; 32])));
    }
}
