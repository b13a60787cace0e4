//! Where the key that seals the pairing store lives: the operating system's key store behind
//! one trait, and a passphrase the user types where no key store exists.
//!
//! - Linux: the freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet, KeePassXC).
//! - Windows: the Credential Manager (generic credentials, protected by DPAPI per user).
//! - macOS: the login Keychain.
//!
//! All three through `keyring-core`, the library of the `keyring` project, with the store
//! crate of each OS compiled under `cfg`. Only Linux is built and tested here (CI runs a real
//! GNOME Keyring daemon, `scripts/keystore-test.sh`); the other two compile against their
//! platforms' crates as the `keyring` project ships them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use keyring_core::{CredentialStore, Entry};
use zeroize::Zeroizing;

use super::KeyStoreError;

/// The key-store service name the sealing keys are filed under.
pub const SERVICE: &str = "PinBridge host pairing keys";

/// Somewhere secrets are kept outside the state directory, by account name.
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// What to call it in messages ("Secret Service").
    fn name(&self) -> String;
    /// The secret filed under `account`, or `None` when there is none.
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError>;
    /// Files `secret` under `account`, replacing any.
    fn set(&self, account: &str, secret: &[u8], label: &str) -> Result<(), KeyStoreError>;
    /// Removes the secret under `account`; true if there was one.
    fn delete(&self, account: &str) -> Result<bool, KeyStoreError>;
}

/// The operating system's key store.
pub struct OsSecretStore {
    store: Arc<CredentialStore>,
}

impl fmt::Debug for OsSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsSecretStore")
            .field("vendor", &self.store.vendor())
            .finish()
    }
}

fn unavailable(error: keyring_core::Error) -> KeyStoreError {
    KeyStoreError::SecretStore(error.to_string())
}

impl OsSecretStore {
    /// This platform's key store, connected (Linux: the session bus must have a Secret
    /// Service). One connection per process, shared.
    pub fn platform() -> Result<Arc<OsSecretStore>, KeyStoreError> {
        static PLATFORM: OnceLock<Result<Arc<OsSecretStore>, String>> = OnceLock::new();
        PLATFORM
            .get_or_init(|| {
                platform_store()
                    .map(|store| Arc::new(OsSecretStore { store }))
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(KeyStoreError::NoSecretStore)
    }

    /// A store built elsewhere (any `keyring-core` credential store).
    pub fn with_store(store: Arc<CredentialStore>) -> Self {
        OsSecretStore { store }
    }

    fn entry(&self, account: &str, label: Option<&str>) -> Result<Entry, KeyStoreError> {
        let mut modifiers = HashMap::new();
        if let Some(label) = label
            && cfg!(target_os = "linux")
        {
            // The name people see in Seahorse / KWallet; the other stores take no label.
            modifiers.insert("label", label);
        }
        self.store
            .build(
                SERVICE,
                account,
                (!modifiers.is_empty()).then_some(&modifiers),
            )
            .map_err(unavailable)
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> Result<Arc<CredentialStore>, keyring_core::Error> {
    // Without a session bus libdbus would try X11 autolaunch; say plainly there is none.
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Err(keyring_core::Error::NoStorageAccess(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service"
                .into(),
        ));
    }
    let store: Arc<CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> Result<Arc<CredentialStore>, keyring_core::Error> {
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> Result<Arc<CredentialStore>, keyring_core::Error> {
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
fn platform_store() -> Result<Arc<CredentialStore>, keyring_core::Error> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no OS key store is supported on this platform".into(),
    ))
}

impl SecretStore for OsSecretStore {
    fn name(&self) -> String {
        if cfg!(target_os = "linux") {
            "the Secret Service".into()
        } else if cfg!(target_os = "windows") {
            "the Windows Credential Manager".into()
        } else if cfg!(target_os = "macos") {
            "the macOS Keychain".into()
        } else {
            "the OS key store".into()
        }
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError> {
        match self.entry(account, None)?.get_secret() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn set(&self, account: &str, secret: &[u8], label: &str) -> Result<(), KeyStoreError> {
        self.entry(account, Some(label))?
            .set_secret(secret)
            .map_err(unavailable)
    }

    fn delete(&self, account: &str) -> Result<bool, KeyStoreError> {
        match self.entry(account, None)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// Secrets held by this process only, gone when it exits: for state that is itself
/// throwaway (the sandbox's mock PIN pads, new every run) and for tests.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecretStore").finish_non_exhaustive()
    }
}

impl MemorySecretStore {
    /// The process-wide one.
    pub fn process() -> Arc<MemorySecretStore> {
        static PROCESS: OnceLock<Arc<MemorySecretStore>> = OnceLock::new();
        PROCESS.get_or_init(Arc::default).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Zeroizing<Vec<u8>>>> {
        // Entries are inserted and removed whole: a poisoned map is still consistent.
        self.secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SecretStore for MemorySecretStore {
    fn name(&self) -> String {
        "this process's memory".into()
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError> {
        Ok(self.lock().get(account).cloned())
    }

    fn set(&self, account: &str, secret: &[u8], _label: &str) -> Result<(), KeyStoreError> {
        self.lock()
            .insert(account.to_owned(), Zeroizing::new(secret.to_vec()));
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<bool, KeyStoreError> {
        Ok(self.lock().remove(account).is_some())
    }
}

/// The environment variable a passphrase may come from where no key store exists (a headless
/// machine, CI): documented in docs/SECURITY.md.
pub const PASSPHRASE_ENV: &str = "PINBRIDGE_KEYSTORE_PASSPHRASE";

/// Shortest passphrase accepted for a new store.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Argon2id cost: OWASP's first recommended set (19 MiB, 2 passes), the one the sandbox bank
/// uses for staff passwords. Paid once per process: the derived key is cached.
pub const ARGON2_M_COST: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P_COST: u32 = 1;

/// The 32-byte sealing key from a passphrase and the store's salt (Argon2id).
pub fn derive_from_passphrase(
    passphrase: &str,
    salt: &[u8],
    (m_cost, t_cost, p_cost): (u32, u32, u32),
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let params = argon2::Params::new(m_cost, t_cost, p_cost, Some(32))
        .map_err(|e| KeyStoreError::Passphrase(format!("Argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeyStoreError::Passphrase(format!("Argon2: {e}")))?;
    Ok(key)
}

/// The passphrase from the environment, else (when allowed and on a terminal) typed by the
/// user; `new_store` asks twice and enforces the minimum length.
pub fn passphrase(
    prompt_on_terminal: bool,
    new_store: bool,
) -> Result<Option<Zeroizing<String>>, KeyStoreError> {
    if let Ok(value) = std::env::var(PASSPHRASE_ENV)
        && !value.is_empty()
    {
        let value = Zeroizing::new(value);
        if new_store && value.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(KeyStoreError::Passphrase(format!(
                "{PASSPHRASE_ENV} is shorter than {MIN_PASSPHRASE_CHARS} characters"
            )));
        }
        return Ok(Some(value));
    }
    if !prompt_on_terminal || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(None);
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| KeyStoreError::Passphrase(format!("cannot read it: {e}")))
    };
    if !new_store {
        return read("Passphrase of the PinBridge pairing key store: ").map(Some);
    }
    eprintln!(
        "pinbridge: no OS key store is reachable, so the pairing keys are sealed under a \
         passphrase of yours (at least {MIN_PASSPHRASE_CHARS} characters)"
    );
    let first = read("New passphrase for the pairing key store: ")?;
    if first.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(KeyStoreError::Passphrase(format!(
            "shorter than {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    let second = read("The same passphrase again: ")?;
    if *first != *second {
        return Err(KeyStoreError::Passphrase(
            "the two passphrases differ".into(),
        ));
    }
    Ok(Some(first))
}
