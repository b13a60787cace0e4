//! Host pairing keys at rest, never in plaintext, and never beside the key that opens them.
//!
//! The pairings (serial, host id, pairing key, next host counter) live in `host-keys.enc` in
//! the state directory: AES-256-GCM (RustCrypto `aes-gcm`: confidentiality and tamper
//! detection in one) under a random 32-byte sealing key. The sealing key is kept by the
//! operating system's key store ([`secrets::OsSecretStore`]: Secret Service, Windows Credential
//! Manager, macOS Keychain), filed under a random account name the file's header records, so a
//! copy of the state directory alone opens nothing: the thief also needs the user's unlocked
//! key store. Where no key store exists (a headless machine) the sealing key is derived with
//! Argon2id from a passphrase the user types, or gives in `PINBRIDGE_KEYSTORE_PASSPHRASE`;
//! there is never a key file beside the data. The header (how the store is sealed) is part of
//! the associated data, so it cannot be swapped. Every write draws a fresh 96-bit nonce and
//! replaces the file atomically, mode 0600 on Unix (on Windows the per-user profile
//! directories' inherited ACL: the user, SYSTEM and Administrators).
//!
//! Stores of the first format (`host-keys.enc` sealed under the key in `host-keys.key`) are
//! migrated on first use: decrypted with the old key file, sealed again as above, and the key
//! file deleted.

pub mod secrets;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use firmware_protocol::crypto::pairing::{HostId, HostPairingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use secrets::{MemorySecretStore, OsSecretStore, SecretStore};

/// The first format's associated data and its key file (migrated away from).
const V1_AAD: &[u8] = b"PinBridge/companion/host-keys/v1";
const V1_KEY_FILE: &str = "host-keys.key";
/// The current format.
const FORMAT: &str = "PinBridge/companion/host-keys/v2";
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
    /// The old format's key file is not 32 bytes of hex.
    #[error("key store key file {0} is damaged (expected 64 hex digits)")]
    BadKeyFile(PathBuf),
    /// The old format's key file is readable by others.
    #[error("key store key file {0} is readable by other users; run chmod 600 on it")]
    KeyFilePermissions(PathBuf),
    /// Decryption failed: the file was modified, or (old format) the key file is not its key.
    #[error("key store {0} does not decrypt: it was modified, or its key is not this one")]
    Tampered(PathBuf),
    /// Decryption under a passphrase failed.
    #[error("key store {0} does not open with this passphrase (or the file was modified)")]
    WrongPassphrase(PathBuf),
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
    /// The OS key store cannot be reached.
    #[error("no OS key store: {0}")]
    NoSecretStore(String),
    /// The OS key store failed (locked and the unlock refused, D-Bus error).
    #[error("the OS key store failed: {0}")]
    SecretStore(String),
    /// The store's sealing key is not in the key store: the directory was copied from another
    /// computer or account, or the key was deleted.
    #[error(
        "the key that seals {path} is not in {store}: this state directory was copied from \
         another computer or user account, or its key was deleted; pair this computer again"
    )]
    KeyMissing {
        /// The store file.
        path: PathBuf,
        /// The key store looked in.
        store: String,
    },
    /// No key store and no passphrase.
    #[error(
        "the pairing keys need somewhere safe for their key: no OS key store is reachable \
         ({why}) and no passphrase was given; set PINBRIDGE_KEYSTORE_PASSPHRASE or run on a \
         terminal to type one (docs/SECURITY.md)"
    )]
    NoKeyStore {
        /// Why the OS key store is out.
        why: String,
    },
    /// The passphrase could not be had or is unusable.
    #[error("key store passphrase: {0}")]
    Passphrase(String),
}

impl KeyStoreError {
    /// What kind of failure this is, as the app and the CLI report it: a missing sealing key
    /// means this computer must pair again; a wrong passphrase is the user's input.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        match self {
            KeyStoreError::KeyMissing { .. } => K::NotPaired,
            KeyStoreError::WrongPassphrase(_) | KeyStoreError::Passphrase(_) => K::InvalidInput,
            _ => K::Internal,
        }
    }

    /// A stable code for the CLI's `--json` and the app.
    pub fn code(&self) -> &'static str {
        match self {
            KeyStoreError::KeyMissing { .. } => "keystore_key_missing",
            KeyStoreError::NoKeyStore { .. } | KeyStoreError::NoSecretStore(_) => "no_keystore",
            KeyStoreError::WrongPassphrase(_) | KeyStoreError::Passphrase(_) => {
                "keystore_passphrase"
            }
            KeyStoreError::Tampered(_)
            | KeyStoreError::Damaged { .. }
            | KeyStoreError::BadKeyFile(_)
            | KeyStoreError::KeyFilePermissions(_) => "keystore_damaged",
            KeyStoreError::Io { .. }
            | KeyStoreError::Entropy(_)
            | KeyStoreError::SecretStore(_) => "keystore_unavailable",
        }
    }
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

/// The first format's file: a nonce and a ciphertext, its key in `host-keys.key`.
#[derive(Serialize, Deserialize)]
struct SealedV1 {
    nonce: String,
    ciphertext: String,
}

/// How a store's sealing key is had (the file's header, authenticated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Sealing {
    /// Filed in a key store under this account (a random name: it says nothing about the key).
    KeyStore {
        /// The account name.
        account: String,
    },
    /// Derived with Argon2id from the user's passphrase.
    Passphrase {
        /// Hex salt.
        salt: String,
        /// Memory in KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
}

impl Sealing {
    fn aad(&self) -> Vec<u8> {
        let mut aad = FORMAT.as_bytes().to_vec();
        aad.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        aad
    }
}

#[derive(Serialize, Deserialize)]
struct SealedV2 {
    format: String,
    sealing: Sealing,
    nonce: String,
    ciphertext: String,
}

/// Where a new store's sealing key goes, and how an existing one is opened.
#[derive(Clone, Debug)]
enum Secrets {
    /// The platform's key store; else the passphrase from the environment (or, when allowed,
    /// typed on the terminal).
    Platform { prompt_on_terminal: bool },
    /// This store (the process's memory for throwaway state; a host app's own).
    Store(Arc<dyn SecretStore>),
    /// This passphrase (typed into the app), no key store.
    Passphrase(Arc<Zeroizing<String>>),
}

/// A store's sealing and its key, once opened (shared by clones).
type Opened = Option<(Sealing, Zeroizing<[u8; 32]>)>;

/// Which kind of protection a store has, for diagnostics and messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Protection {
    /// No store yet.
    None,
    /// The old format: a key file beside the data (migrated on the next use).
    LegacyKeyFile,
    /// The sealing key is in a key store.
    KeyStore,
    /// The sealing key comes from the user's passphrase.
    Passphrase,
}

/// The encrypted store in a state directory. Clones share the opened sealing key.
#[derive(Clone)]
pub struct KeyStore {
    dir: PathBuf,
    secrets: Secrets,
    opened: Arc<Mutex<Opened>>,
    /// A passphrase the user typed into the app ([`KeyStore::use_passphrase`]), shared by
    /// clones; used where the platform has no key store and the environment gives none.
    typed: Arc<Mutex<Option<Zeroizing<String>>>>,
}

/// What the store needs from the user before pairings can be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum PassphraseNeed {
    /// Nothing: the OS key store seals it, or a passphrase is already known.
    None,
    /// The store is sealed under a passphrase nobody has given yet: ask for it.
    Unlock,
    /// No OS key store and no store yet: ask for a new passphrase (twice).
    Create,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, KeyStoreError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut()).map_err(KeyStoreError::Entropy)?;
    Ok(bytes)
}

impl KeyStore {
    /// The store in `dir` (created when first written), its key in the OS key store, else
    /// under the passphrase in `PINBRIDGE_KEYSTORE_PASSPHRASE`. Never prompts: for the app.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_secrets(
            dir,
            Secrets::Platform {
                prompt_on_terminal: false,
            },
        )
    }

    /// As [`KeyStore::new`], and with neither key store nor variable the passphrase is asked
    /// for on the terminal (the CLI).
    pub fn new_interactive(dir: impl Into<PathBuf>) -> Self {
        Self::with_secrets(
            dir,
            Secrets::Platform {
                prompt_on_terminal: true,
            },
        )
    }

    /// The store in `dir`, its key in `store`.
    pub fn with_secret_store(dir: impl Into<PathBuf>, store: Arc<dyn SecretStore>) -> Self {
        Self::with_secrets(dir, Secrets::Store(store))
    }

    /// The store in `dir` sealed under `passphrase` (where no key store exists and the user
    /// typed one into the app). An existing store sealed by a key store still opens by it.
    pub fn with_passphrase(dir: impl Into<PathBuf>, passphrase: Zeroizing<String>) -> Self {
        Self::with_secrets(dir, Secrets::Passphrase(Arc::new(passphrase)))
    }

    /// A store whose key lives only as long as this process: for state that is itself
    /// throwaway (the sandbox's mock PIN pads and run directory, `pinbridge demo`).
    pub fn in_memory(dir: impl Into<PathBuf>) -> Self {
        Self::with_secret_store(dir, MemorySecretStore::process())
    }

    fn with_secrets(dir: impl Into<PathBuf>, secrets: Secrets) -> Self {
        Self {
            dir: dir.into(),
            secrets,
            opened: Arc::new(Mutex::new(None)),
            typed: Arc::new(Mutex::new(None)),
        }
    }

    fn typed(&self) -> std::sync::MutexGuard<'_, Option<Zeroizing<String>>> {
        self.typed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the user must give a passphrase before the pairings can be used (the app asks
    /// for it on a screen of its own; the CLI on the terminal).
    pub fn passphrase_need(&self) -> PassphraseNeed {
        let known = self.typed().is_some()
            || matches!(self.secrets, Secrets::Passphrase(_))
            || std::env::var(secrets::PASSPHRASE_ENV).is_ok_and(|v| !v.is_empty());
        match self.protection() {
            Protection::Passphrase if !known && self.opened().is_none() => PassphraseNeed::Unlock,
            Protection::None | Protection::LegacyKeyFile
                if !known
                    && matches!(self.secrets, Secrets::Platform { .. })
                    && OsSecretStore::platform().is_err() =>
            {
                PassphraseNeed::Create
            }
            _ => PassphraseNeed::None,
        }
    }

    /// Takes the passphrase the user typed into the app. An existing store sealed under a
    /// passphrase is opened with it at once, so a wrong one is refused here (and forgotten)
    /// rather than at the next pairing; for a new store it must have the minimum length.
    pub fn use_passphrase(&self, passphrase: Zeroizing<String>) -> Result<(), KeyStoreError> {
        let new_store = self.protection() == Protection::None;
        if new_store && passphrase.chars().count() < secrets::MIN_PASSPHRASE_CHARS {
            return Err(KeyStoreError::Passphrase(format!(
                "shorter than {} characters",
                secrets::MIN_PASSPHRASE_CHARS
            )));
        }
        *self.typed() = Some(passphrase);
        if new_store {
            return Ok(());
        }
        *self.opened() = None;
        self.load().map(drop).inspect_err(|_| {
            *self.typed() = None;
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn store_path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// How the store on disk is protected (reads only its header).
    pub fn protection(&self) -> Protection {
        let Ok(bytes) = std::fs::read(self.store_path()) else {
            return Protection::None;
        };
        match serde_json::from_slice::<SealedV2>(&bytes) {
            Ok(SealedV2 {
                sealing: Sealing::KeyStore { .. },
                ..
            }) => Protection::KeyStore,
            Ok(SealedV2 {
                sealing: Sealing::Passphrase { .. },
                ..
            }) => Protection::Passphrase,
            Err(_) => Protection::LegacyKeyFile,
        }
    }

    fn secret_store(&self) -> Result<Arc<dyn SecretStore>, KeyStoreError> {
        match &self.secrets {
            Secrets::Store(store) => Ok(store.clone()),
            Secrets::Platform { .. } | Secrets::Passphrase(_) => Ok(OsSecretStore::platform()?),
        }
    }

    fn prompt_on_terminal(&self) -> bool {
        matches!(
            self.secrets,
            Secrets::Platform {
                prompt_on_terminal: true
            }
        )
    }

    fn passphrase(&self, new_store: bool) -> Result<Option<Zeroizing<String>>, KeyStoreError> {
        match &self.secrets {
            Secrets::Passphrase(passphrase) => {
                if new_store && passphrase.chars().count() < secrets::MIN_PASSPHRASE_CHARS {
                    return Err(KeyStoreError::Passphrase(format!(
                        "shorter than {} characters",
                        secrets::MIN_PASSPHRASE_CHARS
                    )));
                }
                Ok(Some((**passphrase).clone()))
            }
            _ => {
                if let Some(typed) = self.typed().clone() {
                    return Ok(Some(typed));
                }
                secrets::passphrase(self.prompt_on_terminal(), new_store)
            }
        }
    }

    /// The sealing key of an existing store, from its header.
    fn key_for(&self, sealing: &Sealing) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        let path = self.store_path();
        match sealing {
            Sealing::KeyStore { account } => {
                let store = self.secret_store()?;
                let secret = store
                    .get(account)?
                    .ok_or_else(|| KeyStoreError::KeyMissing {
                        path: path.clone(),
                        store: store.name(),
                    })?;
                let key: [u8; 32] = secret
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyStoreError::Tampered(path.clone()))?;
                Ok(Zeroizing::new(key))
            }
            Sealing::Passphrase {
                salt,
                m_cost,
                t_cost,
                p_cost,
            } => {
                let passphrase =
                    self.passphrase(false)?
                        .ok_or_else(|| KeyStoreError::NoKeyStore {
                            why: format!("{} is sealed under a passphrase", path.display()),
                        })?;
                let salt = hex::decode(salt).map_err(|e| KeyStoreError::Damaged {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                secrets::derive_from_passphrase(&passphrase, &salt, (*m_cost, *t_cost, *p_cost))
            }
        }
    }

    /// A new sealing for this directory: a random key filed in the key store, else one
    /// derived from a passphrase.
    fn new_sealing(&self) -> Result<(Sealing, Zeroizing<[u8; 32]>), KeyStoreError> {
        let store = match &self.secrets {
            Secrets::Store(store) => Ok(store.clone()),
            Secrets::Platform { .. } => {
                OsSecretStore::platform().map(|s| -> Arc<dyn SecretStore> { s })
            }
            Secrets::Passphrase(_) => Err(KeyStoreError::NoSecretStore(
                "a passphrase was chosen instead".into(),
            )),
        };
        let why = match store {
            Ok(store) => {
                let key = random::<32>()?;
                let account = hex::encode(*random::<16>()?);
                let label = format!("PinBridge host pairing keys ({})", self.dir.display());
                match store.set(&account, key.as_ref(), &label) {
                    Ok(()) => {
                        tracing::info!(store = %store.name(), "pairing key store sealed by the OS key store");
                        return Ok((Sealing::KeyStore { account }, key));
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        let passphrase = self
            .passphrase(true)?
            .ok_or(KeyStoreError::NoKeyStore { why: why.clone() })?;
        tracing::warn!(
            why = %why,
            "pairing key store sealed under a passphrase: no OS key store"
        );
        let salt = *random::<16>()?;
        let cost = (
            secrets::ARGON2_M_COST,
            secrets::ARGON2_T_COST,
            secrets::ARGON2_P_COST,
        );
        let key = secrets::derive_from_passphrase(&passphrase, &salt, cost)?;
        Ok((
            Sealing::Passphrase {
                salt: hex::encode(salt),
                m_cost: cost.0,
                t_cost: cost.1,
                p_cost: cost.2,
            },
            key,
        ))
    }

    fn opened(&self) -> std::sync::MutexGuard<'_, Opened> {
        // Set whole or not at all: a poisoned slot is still consistent.
        self.opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every stored pairing (none when the store does not exist yet). A store of the first
    /// format is migrated here.
    pub fn load(&self) -> Result<Vec<PairedHost>, KeyStoreError> {
        let path = self.store_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        narrow_permissions(&path)?;
        let damaged = |reason: String| KeyStoreError::Damaged {
            path: path.clone(),
            reason,
        };
        let Ok(sealed) = serde_json::from_slice::<SealedV2>(&bytes) else {
            return self.migrate_v1(&bytes);
        };
        if sealed.format != FORMAT {
            return Err(damaged(format!("unknown format {:?}", sealed.format)));
        }
        let cached = self.opened().clone();
        let (key, fresh) = match cached {
            Some((sealing, key)) if sealing == sealed.sealing => (key, false),
            _ => (self.key_for(&sealed.sealing)?, true),
        };
        let refused = match sealed.sealing {
            Sealing::Passphrase { .. } => KeyStoreError::WrongPassphrase(path.clone()),
            Sealing::KeyStore { .. } => KeyStoreError::Tampered(path.clone()),
        };
        let plain = open(
            &key,
            &sealed.nonce,
            &sealed.ciphertext,
            &sealed.sealing.aad(),
        )
        .map_err(|e| e.unwrap_or(refused))?;
        // Kept only once it has opened the store: a wrong passphrase is not remembered.
        if fresh {
            *self.opened() = Some((sealed.sealing.clone(), key));
        }
        parse_hosts(&plain).map_err(damaged)
    }

    /// The first format: decrypt with the key file, seal again, delete the key file.
    fn migrate_v1(&self, bytes: &[u8]) -> Result<Vec<PairedHost>, KeyStoreError> {
        let path = self.store_path();
        let damaged = |reason: String| KeyStoreError::Damaged {
            path: path.clone(),
            reason,
        };
        let sealed: SealedV1 = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
        let key_path = self.dir.join(V1_KEY_FILE);
        if !key_path.exists() {
            return Err(KeyStoreError::Tampered(path));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path)
                .map_err(io(&key_path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyStoreError::KeyFilePermissions(key_path));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(&key_path).map_err(io(&key_path))?);
        let key_bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| KeyStoreError::BadKeyFile(key_path.clone()))?,
        );
        let key: [u8; 32] = key_bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyStoreError::BadKeyFile(key_path.clone()))?;
        let key = Zeroizing::new(key);
        let plain = open(&key, &sealed.nonce, &sealed.ciphertext, V1_AAD)
            .map_err(|e| e.unwrap_or_else(|| KeyStoreError::Tampered(path.clone())))?;
        let hosts = parse_hosts(&plain).map_err(damaged)?;
        self.write_all(&hosts)?;
        // Sealed again and on disk: the key file that opened the old one goes.
        std::fs::remove_file(&key_path).map_err(io(&key_path))?;
        tracing::info!(
            pairings = hosts.len(),
            "pairing key store migrated off its key file into the OS key store or passphrase"
        );
        Ok(hosts)
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
        let path = self.store_path();
        let damaged = |reason: String| KeyStoreError::Damaged {
            path: path.clone(),
            reason,
        };
        let cached = self.opened().clone();
        let (sealing, key) = match cached {
            Some(opened) => opened,
            None => {
                crate::private_file::create_dir(&self.dir).map_err(io(&self.dir))?;
                let opened = self.new_sealing()?;
                *self.opened() = Some(opened.clone());
                opened
            }
        };
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
            Zeroizing::new(serde_json::to_vec(&stored).map_err(|e| damaged(e.to_string()))?);
        // The hex copies of the keys above live in `stored`: zeroize them now.
        for s in stored {
            drop(Zeroizing::new(s.pairing_key));
        }
        let nonce = *random::<12>()?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|_| KeyStoreError::Tampered(path.clone()))?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &sealing.aad(),
                },
            )
            .map_err(|_| KeyStoreError::Tampered(path.clone()))?;
        let sealed = SealedV2 {
            format: FORMAT.into(),
            sealing,
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        let bytes = serde_json::to_vec_pretty(&sealed).map_err(|e| damaged(e.to_string()))?;
        write_private(&path, &bytes)
    }
}

/// AES-256-GCM open; `Err(None)`: the tag did not verify, `Err(Some(_))`: malformed input.
fn open(
    key: &[u8; 32],
    nonce_hex: &str,
    ciphertext_hex: &str,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Option<KeyStoreError>> {
    let malformed = |reason: String| {
        Some(KeyStoreError::Damaged {
            path: PathBuf::from(STORE_FILE),
            reason,
        })
    };
    let nonce = hex::decode(nonce_hex).map_err(|e| malformed(e.to_string()))?;
    if nonce.len() != 12 {
        return Err(malformed("nonce is not 12 bytes".into()));
    }
    let ciphertext = hex::decode(ciphertext_hex).map_err(|e| malformed(e.to_string()))?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| None)?;
    cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| None)
}

fn parse_hosts(plain: &[u8]) -> Result<Vec<PairedHost>, String> {
    let stored: Vec<StoredHost> = serde_json::from_slice(plain).map_err(|e| e.to_string())?;
    stored
        .into_iter()
        .map(|s| {
            let id = hex::decode(&s.host_id).map_err(|e| e.to_string())?;
            let key = Zeroizing::new(hex::decode(&s.pairing_key).map_err(|e| e.to_string())?);
            drop(Zeroizing::new(s.pairing_key));
            Ok(PairedHost {
                serial: s.serial,
                host_id: HostId::from_slice(&id).map_err(|e| e.to_string())?,
                pairing_key: HostPairingKey::from_bytes(&key).map_err(|e| e.to_string())?,
                next_counter: s.next_counter,
            })
        })
        .collect()
}

/// A store file another user could read is narrowed to the user alone.
fn narrow_permissions(path: &Path) -> Result<(), KeyStoreError> {
    crate::private_file::narrow(path).map_err(io(path))
}

/// Writes `bytes` to `path` atomically, for the user alone.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyStoreError> {
    crate::private_file::write_atomic(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every byte of every file in `dir`.
    fn everything_in(dir: &Path) -> Vec<u8> {
        files(dir)
            .iter()
            .flat_map(|name| std::fs::read(dir.join(name)).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_with_only_the_sealed_file_in_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let store = KeyStore::with_secret_store(dir.path(), secrets.clone());
        store.save(&host("PP-1", 0x11)).unwrap();
        store.save(&host("PP-2", 0x22)).unwrap();
        // A new process: nothing cached, the key comes from the key store again.
        let again = KeyStore::with_secret_store(dir.path(), secrets);
        let loaded = again
            .find("PP-1")
            .unwrap()
            .map(|h| h.pairing_key.reveal_bytes().to_vec());
        assert_eq!(loaded, Some(vec![0x11 ^ 0x5a; 32]));
        assert_eq!(files(dir.path()), ["host-keys.enc"]);
        assert_eq!(again.protection(), Protection::KeyStore);
        let on_disk = everything_in(dir.path());
        assert!(!String::from_utf8_lossy(&on_disk).contains(&hex::encode([0x11 ^ 0x5a; 32])));
        assert!(!on_disk.windows(32).any(|w| w == [0x11 ^ 0x5a; 32]));
        assert!(again.remove("PP-2").unwrap());
        assert_eq!(again.load().unwrap().len(), 1);
    }

    #[test]
    fn a_stolen_state_directory_alone_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let victim = Arc::new(MemorySecretStore::default());
        let store = KeyStore::with_secret_store(dir.path(), victim.clone());
        store.save(&host("PP-1", 0x11)).unwrap();
        // The thief copies the directory to a machine (or account) with its own key store.
        let stolen = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join(STORE_FILE), stolen.path().join(STORE_FILE)).unwrap();
        let thief =
            KeyStore::with_secret_store(stolen.path(), Arc::new(MemorySecretStore::default()));
        assert!(matches!(
            thief.load(),
            Err(KeyStoreError::KeyMissing { .. })
        ));
        // Nor are the sealing key or the pairing key anywhere in the copy.
        let bytes = everything_in(stolen.path());
        let sealed: SealedV2 = serde_json::from_slice(&bytes).unwrap();
        let Sealing::KeyStore { account } = &sealed.sealing else {
            panic!("sealed by the key store");
        };
        let key = victim.get(account).unwrap().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&hex::encode(&*key)));
        assert!(!bytes.windows(32).any(|w| w == key.as_slice()));
        assert!(!text.contains(&hex::encode([0x11 ^ 0x5a; 32])));
    }

    #[test]
    fn a_modified_store_or_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let store = KeyStore::with_secret_store(dir.path(), secrets.clone());
        store.save(&host("PP-1", 0x11)).unwrap();
        let path = dir.path().join(STORE_FILE);
        let original: SealedV2 = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

        let mut sealed: SealedV2 = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut bytes = hex::decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        sealed.ciphertext = hex::encode(bytes);
        std::fs::write(&path, serde_json::to_vec(&sealed).unwrap()).unwrap();
        let fresh = KeyStore::with_secret_store(dir.path(), secrets.clone());
        assert!(matches!(fresh.load(), Err(KeyStoreError::Tampered(_))));

        // The header is authenticated too: the same key filed under another account name
        // does not make a changed header pass.
        let mut sealed = original;
        let Sealing::KeyStore { account } = &sealed.sealing else {
            panic!("sealed by the key store");
        };
        let key = secrets.get(account).unwrap().unwrap();
        secrets.set("other", &key, "").unwrap();
        sealed.sealing = Sealing::KeyStore {
            account: "other".into(),
        };
        std::fs::write(&path, serde_json::to_vec(&sealed).unwrap()).unwrap();
        let fresh = KeyStore::with_secret_store(dir.path(), secrets);
        assert!(matches!(fresh.load(), Err(KeyStoreError::Tampered(_))));
    }

    /// A store as the first format wrote it: the sealed file and `host-keys.key` beside it.
    fn write_v1(dir: &Path, hosts: &[PairedHost]) {
        let key = [0x42u8; 32];
        std::fs::write(dir.join(V1_KEY_FILE), hex::encode(key)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join(V1_KEY_FILE),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let stored: Vec<StoredHost> = hosts
            .iter()
            .map(|h| StoredHost {
                serial: h.serial.clone(),
                host_id: hex::encode(h.host_id.as_bytes()),
                pairing_key: hex::encode(h.pairing_key.reveal_bytes()),
                next_counter: h.next_counter,
            })
            .collect();
        let nonce = [7u8; 12];
        let ciphertext = Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &serde_json::to_vec(&stored).unwrap(),
                    aad: V1_AAD,
                },
            )
            .unwrap();
        let sealed = SealedV1 {
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        std::fs::write(dir.join(STORE_FILE), serde_json::to_vec(&sealed).unwrap()).unwrap();
    }

    #[test]
    fn a_store_of_the_first_format_migrates_and_its_key_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        write_v1(dir.path(), &[host("PP-1", 0x11), host("PP-2", 0x22)]);
        let secrets = Arc::new(MemorySecretStore::default());
        let store = KeyStore::with_secret_store(dir.path(), secrets.clone());
        assert_eq!(store.protection(), Protection::LegacyKeyFile);
        let hosts = store.load().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(files(dir.path()), ["host-keys.enc"]);
        assert_eq!(store.protection(), Protection::KeyStore);
        // It opens in a new process from the key store alone.
        let again = KeyStore::with_secret_store(dir.path(), secrets);
        let found = again.find("PP-2").unwrap().unwrap();
        assert_eq!(found.pairing_key.reveal_bytes(), &[0x22 ^ 0x5a; 32]);
        assert_eq!(found.next_counter, 7);
    }

    #[test]
    fn without_a_key_store_a_passphrase_seals_it_and_a_wrong_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::with_passphrase(dir.path(), Zeroizing::new("correct horse".into()));
        store.save(&host("PP-1", 0x11)).unwrap();
        assert_eq!(store.protection(), Protection::Passphrase);
        assert_eq!(files(dir.path()), ["host-keys.enc"]);
        let again = KeyStore::with_passphrase(dir.path(), Zeroizing::new("correct horse".into()));
        assert_eq!(again.load().unwrap().len(), 1);
        let wrong = KeyStore::with_passphrase(dir.path(), Zeroizing::new("battery staple".into()));
        assert!(matches!(
            wrong.load(),
            Err(KeyStoreError::WrongPassphrase(_))
        ));
        let short = tempfile::tempdir().unwrap();
        let store = KeyStore::with_passphrase(short.path(), Zeroizing::new("1234".into()));
        assert!(matches!(
            store.save(&host("PP-1", 0x11)),
            Err(KeyStoreError::Passphrase(_))
        ));
    }

    /// A key store that is there but refuses everything (a locked, unreachable one).
    #[derive(Debug)]
    struct Refusing;

    impl SecretStore for Refusing {
        fn name(&self) -> String {
            "a refusing key store".into()
        }
        fn get(&self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError> {
            Err(KeyStoreError::NoSecretStore("refused".into()))
        }
        fn set(&self, _: &str, _: &[u8], _: &str) -> Result<(), KeyStoreError> {
            Err(KeyStoreError::NoSecretStore("refused".into()))
        }
        fn delete(&self, _: &str) -> Result<bool, KeyStoreError> {
            Err(KeyStoreError::NoSecretStore("refused".into()))
        }
    }

    /// The app's passphrase screen: with no usable key store the typed passphrase seals the
    /// first pairing; the next process must be given it again, refuses a wrong one and
    /// forgets it, and opens with the right one (shared by clones, as the app's sessions are).
    /// Needs `PINBRIDGE_KEYSTORE_PASSPHRASE` unset (the test command leaves it unset).
    #[test]
    fn a_passphrase_typed_into_the_app_seals_and_opens_the_store() {
        if std::env::var_os(secrets::PASSPHRASE_ENV).is_some() {
            panic!("unset {} to run this test", secrets::PASSPHRASE_ENV);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::with_secret_store(dir.path(), Arc::new(Refusing));
        assert!(matches!(
            store.save(&host("PP-1", 0x11)),
            Err(KeyStoreError::NoKeyStore { .. })
        ));
        assert!(matches!(
            store.use_passphrase(Zeroizing::new("short".into())),
            Err(KeyStoreError::Passphrase(_))
        ));
        store
            .use_passphrase(Zeroizing::new("correct horse".into()))
            .unwrap();
        store.save(&host("PP-1", 0x11)).unwrap();
        assert_eq!(store.protection(), Protection::Passphrase);
        assert_eq!(store.passphrase_need(), PassphraseNeed::None);

        let next = KeyStore::with_secret_store(dir.path(), Arc::new(Refusing));
        assert_eq!(next.passphrase_need(), PassphraseNeed::Unlock);
        assert!(matches!(
            next.find("PP-1"),
            Err(KeyStoreError::NoKeyStore { .. })
        ));
        assert!(matches!(
            next.use_passphrase(Zeroizing::new("battery staple".into())),
            Err(KeyStoreError::WrongPassphrase(_))
        ));
        assert_eq!(next.passphrase_need(), PassphraseNeed::Unlock);
        let session = next.clone();
        next.use_passphrase(Zeroizing::new("correct horse".into()))
            .unwrap();
        assert_eq!(next.passphrase_need(), PassphraseNeed::None);
        assert_eq!(
            session.find("PP-1").unwrap().map(|h| h.next_counter),
            Some(7)
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_private_and_a_widened_one_is_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let store = KeyStore::with_secret_store(&dir, Arc::new(MemorySecretStore::default()));
        store.save(&host("PP-1", 0x11)).unwrap();
        let path = dir.join(STORE_FILE);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.load().unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_first_format_key_file_is_refused_not_migrated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_v1(dir.path(), &[host("PP-1", 0x11)]);
        let key_file = dir.path().join(V1_KEY_FILE);
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = KeyStore::with_secret_store(dir.path(), Arc::new(MemorySecretStore::default()));
        assert!(matches!(
            store.load(),
            Err(KeyStoreError::KeyFilePermissions(_))
        ));
    }

    #[test]
    fn debug_redacts_the_pairing_key() {
        let text = format!("{:?}", host("PP-1", 0x11));
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([0x11 ^ 0x5a; 32])));
    }
}
