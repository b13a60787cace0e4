//! The app's settings: what the Settings screen edits (bank URL and CA, language, theme), plus
//! which PIN pads to look for, kept as JSON in the app's config directory.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::AppError;

/// Screen language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    /// English.
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Language {
    /// The language of the user's locale (`LC_ALL`, `LC_MESSAGES`, `LANG`): Chinese locales
    /// get zh-CN, everything else English.
    pub fn from_locale_env() -> Self {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        if locale.to_ascii_lowercase().starts_with("zh") {
            Language::ZhCn
        } else {
            Language::En
        }
    }
}

/// Colour scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Theme {
    /// Follow the system.
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// What the Settings screen reads and writes (`Settings` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The bank's API base URL; empty for the embedded sandbox bank.
    pub bank_url: String,
    /// PEM of a CA to trust for the bank, or `None` for the system roots.
    pub bank_ca_pem: Option<String>,
    /// Screen language.
    pub language: Language,
    /// Colour scheme.
    pub theme: Theme,
    /// Staff mode: the Staff (and, in the sandbox build, QA) screens are in the menu. Off for
    /// a customer, whose menu then has none of them.
    #[serde(default)]
    pub staff_mode: bool,
    /// The guided first run (connect, pair, log in) was finished or skipped: it is not
    /// offered again.
    #[serde(default)]
    pub first_run_done: bool,
}

impl Settings {
    /// The first-run settings: embedded bank, system roots, the locale's language.
    pub fn first_run() -> Self {
        Settings {
            bank_url: String::new(),
            bank_ca_pem: None,
            language: Language::from_locale_env(),
            theme: Theme::System,
            staff_mode: false,
            first_run_done: false,
        }
    }

    /// Trims, checks and normalises settings from the screen.
    ///
    /// The bank URL must be https, or http to this computer only (a sandbox bank on the
    /// loopback); a CA must be a PEM certificate.
    pub fn validated(self) -> Result<Self, AppError> {
        let bank_url = self.bank_url.trim().to_owned();
        if !bank_url.is_empty() {
            let url = reqwest::Url::parse(&bank_url).map_err(|error| {
                AppError::InvalidInput(format!("the bank URL is not a valid URL: {error}"))
            })?;
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            let allowed = url.scheme() == "https" || (url.scheme() == "http" && loopback);
            if !allowed {
                return Err(AppError::InvalidInput(
                    "the bank URL must use https (http only for this computer)",
                ));
            }
        }
        let bank_ca_pem = self
            .bank_ca_pem
            .map(|pem| pem.trim().to_owned())
            .filter(|pem| !pem.is_empty());
        if let Some(pem) = &bank_ca_pem {
            let framed = pem.starts_with("-----BEGIN CERTIFICATE-----")
                && pem.ends_with("-----END CERTIFICATE-----");
            if !framed {
                return Err(AppError::InvalidInput(
                    "the CA must be a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
                ));
            }
        }
        Ok(Settings {
            bank_url,
            bank_ca_pem,
            ..self
        })
    }
}

/// Which PIN pads the app looks for. Not on the Settings screen: QA and the tests set it in
/// the settings file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Discovery {
    /// Look for USB PIN pads.
    pub usb: bool,
    /// Scan for BLE PIN pads (off by default: a scan needs a Bluetooth adapter and takes
    /// two seconds each time).
    pub ble: bool,
    /// `pinpad-sim` addresses (`127.0.0.1:7001`).
    pub sim_devices: Vec<SocketAddr>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            usb: true,
            ble: false,
            sim_devices: Vec::new(),
        }
    }
}

impl Discovery {
    /// The companion's discovery configuration for these settings.
    pub fn to_config(&self) -> crate::devices::DiscoveryConfig {
        crate::devices::DiscoveryConfig {
            usb: self.usb,
            ble: self.ble,
            sim: self.sim_devices.clone(),
            ble_adapter: None,
        }
    }
}

/// The settings file: the screen's settings and the discovery section side by side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsFile {
    /// What the Settings screen edits.
    #[serde(flatten)]
    pub settings: Settings,
    /// Which PIN pads to look for.
    #[serde(default)]
    pub discovery: Discovery,
}

/// Why the settings file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid settings JSON.
    #[error("{path} is not a valid settings file: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl From<SettingsError> for AppError {
    fn from(error: SettingsError) -> Self {
        AppError::Internal(error.to_string())
    }
}

/// Who decides which bank the app talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankPolicy {
    /// The sandbox flavour: the user's settings (an empty URL: the embedded sandbox bank).
    User,
    /// The production flavour with a bank profile: its URL and CA, read-only unless the
    /// profile lets the user override them.
    Profile {
        /// The profile's bank URL.
        url: String,
        /// The profile's pinned CA.
        ca_pem: Option<String>,
        /// Whether the user may set another URL and CA.
        user_override: bool,
    },
    /// The production flavour without a valid profile: no bank, and none can be typed in.
    Unprovisioned,
}

/// The settings in memory and on disk (`settings.json` in the app's config directory).
#[derive(Debug)]
pub struct SettingsStore {
    path: PathBuf,
    current: Mutex<SettingsFile>,
    policy: BankPolicy,
}

impl SettingsStore {
    /// The file's name in the config directory.
    pub const FILE_NAME: &'static str = "settings.json";

    /// Loads `settings.json` from `config_dir`; first-run settings if there is none yet.
    /// A malformed file is an error rather than silently replaced: it may hold the user's
    /// bank URL.
    pub fn load(config_dir: &Path) -> Result<Self, SettingsError> {
        let path = config_dir.join(Self::FILE_NAME);
        let current = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| SettingsError::Malformed {
                    path: path.clone(),
                    source,
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => SettingsFile {
                settings: Settings::first_run(),
                discovery: Discovery::default(),
            },
            Err(source) => return Err(SettingsError::Io { path, source }),
        };
        Ok(SettingsStore {
            path,
            current: Mutex::new(current),
            policy: BankPolicy::User,
        })
    }

    /// The same store under a bank policy.
    pub fn with_policy(self, policy: BankPolicy) -> Self {
        SettingsStore { policy, ..self }
    }

    /// Who decides the bank.
    pub fn policy(&self) -> &BankPolicy {
        &self.policy
    }

    /// The screen's settings as the policy makes them: the profile's bank unless the user may
    /// override it and did.
    fn effective(&self, stored: Settings) -> Settings {
        match &self.policy {
            BankPolicy::User => stored,
            BankPolicy::Profile {
                user_override: true,
                ..
            } if !stored.bank_url.is_empty() => stored,
            BankPolicy::Profile { url, ca_pem, .. } => Settings {
                bank_url: url.clone(),
                bank_ca_pem: ca_pem.clone(),
                ..stored
            },
            BankPolicy::Unprovisioned => Settings {
                bank_url: String::new(),
                bank_ca_pem: None,
                ..stored
            },
        }
    }

    /// What of the screen's settings is saved under the policy, or why the bank part is
    /// refused. `kept` is the file's current content.
    fn to_store(&self, wanted: Settings, kept: &Settings) -> Result<Settings, AppError> {
        let read_only = |why: &str| {
            Err(AppError::InvalidInput(format!(
                "the bank URL and CA are set by the administrator ({why}) and cannot be changed here"
            )))
        };
        match &self.policy {
            BankPolicy::User => Ok(wanted),
            BankPolicy::Profile {
                url,
                ca_pem,
                user_override,
            } => {
                let is_profiles = wanted.bank_url == *url && wanted.bank_ca_pem == *ca_pem;
                if is_profiles {
                    // Follow the profile (and its updates) rather than a copy of it.
                    Ok(Settings {
                        bank_url: String::new(),
                        bank_ca_pem: None,
                        ..wanted
                    })
                } else if *user_override {
                    Ok(wanted)
                } else {
                    read_only("the bank profile")
                }
            }
            BankPolicy::Unprovisioned => {
                if wanted.bank_url.is_empty() && wanted.bank_ca_pem.is_none() {
                    Ok(Settings {
                        bank_url: kept.bank_url.clone(),
                        bank_ca_pem: kept.bank_ca_pem.clone(),
                        ..wanted
                    })
                } else {
                    read_only("no bank profile is installed")
                }
            }
        }
    }

    /// Like [`SettingsStore::load`], but a malformed file does not stop the app: it is moved
    /// aside to `settings.json.bad` (kept for the user or support to look at) and the app
    /// starts with first-run settings. Returns the store and, if that happened, what to log.
    pub fn load_or_recover(config_dir: &Path) -> Result<(Self, Option<String>), SettingsError> {
        match Self::load(config_dir) {
            Err(SettingsError::Malformed { path, source }) => {
                let aside = path.with_extension("json.bad");
                fs::rename(&path, &aside).map_err(|source| SettingsError::Io {
                    path: path.clone(),
                    source,
                })?;
                let store = Self::load(config_dir)?;
                let words = format!(
                    "{} was not valid ({source}); moved to {} and started with default settings",
                    path.display(),
                    aside.display()
                );
                Ok((store, Some(words)))
            }
            other => other.map(|store| (store, None)),
        }
    }

    /// Where the settings live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SettingsFile> {
        // The value is replaced whole, so a poisoned lock still holds consistent settings.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The screen's settings (the bank as the policy decides it).
    pub fn settings(&self) -> Settings {
        self.effective(self.lock().settings.clone())
    }

    /// The discovery section.
    pub fn discovery(&self) -> Discovery {
        self.lock().discovery.clone()
    }

    /// Validates, saves (write to a temporary file, then rename, so a crash never leaves half
    /// a file) and keeps new screen settings; the discovery section is kept as it is.
    pub fn set(&self, settings: Settings) -> Result<Settings, AppError> {
        let settings = settings.validated()?;
        let mut current = self.lock();
        let stored = self.to_store(settings, &current.settings)?;
        let next = SettingsFile {
            settings: stored.clone(),
            discovery: current.discovery.clone(),
        };
        self.write(&next)?;
        *current = next;
        Ok(self.effective(stored))
    }

    fn write(&self, file: &SettingsFile) -> Result<(), SettingsError> {
        let io = |source| SettingsError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut json =
            serde_json::to_vec_pretty(file).map_err(|source| SettingsError::Malformed {
                path: self.path.clone(),
                source,
            })?;
        json.push(b'\n');
        let temporary = self.path.with_extension("json.tmp");
        let mut out = fs::File::create(&temporary).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        out.sync_all().map_err(io)?;
        fs::rename(&temporary, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Settings {
        Settings {
            bank_url: "https://bank.example/api".into(),
            bank_ca_pem: None,
            language: Language::ZhCn,
            theme: Theme::Dark,
            staff_mode: false,
            first_run_done: false,
        }
    }

    #[test]
    fn json_shape_is_the_contracts() {
        let json = serde_json::to_value(sample()).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "bankUrl": "https://bank.example/api",
                "bankCaPem": null,
                "language": "zh-CN",
                "theme": "dark",
                "staffMode": false,
                "firstRunDone": false,
            })
        );
        // A file from before staff mode and the first run still reads: both off.
        let old: Settings = serde_json::from_value(serde_json::json!({
            "bankUrl": "", "bankCaPem": null, "language": "en", "theme": "system",
        }))
        .expect("an older settings file still reads");
        assert!(!old.staff_mode && !old.first_run_done);
    }

    #[test]
    fn bank_url_must_be_https_or_loopback_http() {
        let with_url = |url: &str| Settings {
            bank_url: url.into(),
            ..sample()
        };
        assert!(with_url("https://bank.example").validated().is_ok());
        assert!(with_url("http://127.0.0.1:8443").validated().is_ok());
        assert!(with_url("http://localhost:8443").validated().is_ok());
        assert!(
            with_url("  ")
                .validated()
                .is_ok_and(|s| s.bank_url.is_empty())
        );
        for bad in [
            "http://bank.example",
            "ftp://bank.example",
            "bank.example",
            "https://",
        ] {
            assert!(
                matches!(
                    with_url(bad).validated(),
                    Err(AppError {
                        kind: crate::error::ErrorKind::InvalidInput,
                        ..
                    })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn ca_must_be_a_pem_certificate() {
        let with_ca = |pem: &str| Settings {
            bank_ca_pem: Some(pem.into()),
            ..sample()
        };
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(
            with_ca(&format!("\n{pem}\n"))
                .validated()
                .map(|s| s.bank_ca_pem),
            Ok(Some(pem.to_owned()))
        );
        assert_eq!(with_ca("  ").validated().map(|s| s.bank_ca_pem), Ok(None));
        assert!(matches!(
            with_ca("-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----").validated(),
            Err(AppError {
                kind: crate::error::ErrorKind::InvalidInput,
                ..
            })
        ));
    }

    #[test]
    fn saved_settings_survive_a_reload_and_keep_the_discovery_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(SettingsStore::FILE_NAME),
            r#"{"bankUrl":"","bankCaPem":null,"language":"en","theme":"system",
               "discovery":{"usb":false,"ble":false,"simDevices":["127.0.0.1:7001"]}}"#,
        )
        .expect("seed");
        let store = SettingsStore::load(dir.path()).expect("load");
        store.set(sample()).expect("set");
        let reloaded = SettingsStore::load(dir.path()).expect("reload");
        assert_eq!(reloaded.settings(), sample());
        assert_eq!(
            reloaded.discovery().sim_devices,
            vec!["127.0.0.1:7001".parse::<SocketAddr>().expect("addr")]
        );
    }

    #[test]
    fn a_missing_file_means_first_run_and_a_malformed_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SettingsStore::load(dir.path()).expect("load");
        assert_eq!(store.settings().bank_url, "");
        assert_eq!(store.discovery(), Discovery::default());
        std::fs::write(dir.path().join(SettingsStore::FILE_NAME), b"{not json").expect("seed");
        assert!(matches!(
            SettingsStore::load(dir.path()),
            Err(SettingsError::Malformed { .. })
        ));
    }

    #[test]
    fn a_malformed_file_is_moved_aside_and_the_app_starts_with_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(SettingsStore::FILE_NAME);
        std::fs::write(&file, b"{\"bankUrl\": 42}").expect("seed");
        let (store, warning) = SettingsStore::load_or_recover(dir.path()).expect("recover");
        assert!(warning.is_some_and(|w| w.contains("settings.json.bad")));
        assert_eq!(store.settings().bank_url, "");
        assert!(!file.exists());
        assert_eq!(
            std::fs::read(dir.path().join("settings.json.bad")).expect("kept"),
            b"{\"bankUrl\": 42}"
        );
        let (_, again) = SettingsStore::load_or_recover(dir.path()).expect("second start");
        assert!(again.is_none());
    }

    #[test]
    fn a_profile_without_override_makes_the_bank_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SettingsStore::load(dir.path())
                .expect("load")
                .with_policy(BankPolicy::Profile {
                    url: "https://bank.example/api".into(),
                    ca_pem: None,
                    user_override: false,
                });
        assert_eq!(store.settings().bank_url, "https://bank.example/api");
        // Language and theme change; the bank stays the profile's.
        assert_eq!(store.set(sample()), Ok(sample()));
        let other = Settings {
            bank_url: "https://evil.example".into(),
            ..sample()
        };
        assert!(matches!(
            store.set(other),
            Err(AppError {
                kind: crate::error::ErrorKind::InvalidInput,
                ..
            })
        ));
        assert_eq!(store.settings(), sample());
    }

    #[test]
    fn a_profile_with_override_lets_the_user_choose_and_go_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SettingsStore::load(dir.path())
                .expect("load")
                .with_policy(BankPolicy::Profile {
                    url: "https://bank.example/api".into(),
                    ca_pem: None,
                    user_override: true,
                });
        let other = Settings {
            bank_url: "https://test.bank.example".into(),
            ..sample()
        };
        assert_eq!(store.set(other.clone()), Ok(other));
        let cleared = Settings {
            bank_url: String::new(),
            ..sample()
        };
        assert_eq!(
            store.set(cleared).map(|s| s.bank_url),
            Ok("https://bank.example/api".into())
        );
    }

    #[test]
    fn without_a_profile_no_bank_can_be_typed_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SettingsStore::load(dir.path())
            .expect("load")
            .with_policy(BankPolicy::Unprovisioned);
        assert!(matches!(
            store.set(sample()),
            Err(AppError {
                kind: crate::error::ErrorKind::InvalidInput,
                ..
            })
        ));
        let local = Settings {
            bank_url: String::new(),
            ..sample()
        };
        assert_eq!(store.set(local.clone()), Ok(local));
    }

    #[test]
    fn rejected_settings_are_not_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SettingsStore::load(dir.path()).expect("load");
        let bad = Settings {
            bank_url: "http://bank.example".into(),
            ..sample()
        };
        assert!(store.set(bad).is_err());
        assert!(!dir.path().join(SettingsStore::FILE_NAME).exists());
        assert_eq!(store.settings().bank_url, "");
    }
}
