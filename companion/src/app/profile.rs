//! The bank profile: which bank the production app talks to, installed by the bank's package
//! or an administrator, never typed in by whoever sits at the PC.
//!
//! A TOML file at a system-wide path only an administrator can write:
//!
//! | OS      | path                                               |
//! |---------|----------------------------------------------------|
//! | Linux   | `/etc/pinbridge/bank.toml`                         |
//! | macOS   | `/Library/Application Support/PinBridge/bank.toml` |
//! | Windows | `%ProgramData%\PinBridge\bank.toml`                |
//!
//! ```toml
//! display_name = "Example Bank"
//! url = "https://api.bank.example/"
//! ca_path = "bank-ca.pem"          # or ca_pem = """-----BEGIN CERTIFICATE-----..."""; relative to this file
//! transports = ["usb", "ble"]      # of usb, ble, sim
//! allow_user_override = false      # may the user change the URL and CA in Settings?
//! ```
//!
//! Only the production flavour reads it; the sandbox flavour always has its embedded default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the bank profile lives on this OS.
pub fn default_path() -> PathBuf {
    #[cfg(target_os = "windows")]
    {
        // %ProgramData% is writable by administrators only; C:\ProgramData if unset.
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        base.join("PinBridge").join("bank.toml")
    }
    #[cfg(target_os = "macos")]
    {
        PathBuf::from("/Library/Application Support/PinBridge/bank.toml")
    }
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    {
        PathBuf::from("/etc/pinbridge/bank.toml")
    }
}

/// The transports a profile may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Transport {
    /// USB PIN pads.
    Usb,
    /// Bluetooth LE PIN pads.
    Ble,
    /// `pinpad-sim` over its TCP link (a bank's own test installs).
    Sim,
}

/// A checked bank profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankProfile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The bank's name as the screens show it.
    pub display_name: String,
    /// The bank's API base URL (https).
    pub url: String,
    /// The pinned CA (PEM), or `None` for the system roots.
    pub ca_pem: Option<String>,
    /// The transports the app may look for PIN pads on.
    pub transports: Vec<Transport>,
    /// Whether the user may change the URL and CA in Settings.
    pub allow_user_override: bool,
}

impl BankProfile {
    /// Whether the profile allows this transport.
    pub fn allows(&self, transport: Transport) -> bool {
        self.transports.contains(&transport)
    }
}

/// Why a bank profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// There is no profile file.
    #[error("no bank profile at {}", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file (or the CA file it names) could not be read.
    #[error("{}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or a field of the wrong type or an unknown field.
    #[error("{} is not a valid bank profile: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's words (they name the key).
        message: String,
    },
    /// A field is missing or its value is not acceptable.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The field's key in the file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The file as written; every field optional here so a missing one is reported by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    display_name: Option<String>,
    url: Option<String>,
    ca_path: Option<PathBuf>,
    ca_pem: Option<String>,
    transports: Option<Vec<String>>,
    allow_user_override: Option<bool>,
}

/// Whether `pem` is one PEM certificate (framing only; the bank client parses it).
pub fn is_pem_certificate(pem: &str) -> bool {
    let pem = pem.trim();
    pem.starts_with("-----BEGIN CERTIFICATE-----") && pem.ends_with("-----END CERTIFICATE-----")
}

/// Reads and checks the profile at `path`.
pub fn load(path: &Path) -> Result<BankProfile, ProfileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProfileError::Missing {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(ProfileError::Unreadable {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse(path, &text)
}

/// Parses and checks profile text read from `path` (a relative `ca_path` is resolved against
/// its directory).
pub fn parse(path: &Path, text: &str) -> Result<BankProfile, ProfileError> {
    let raw: RawProfile = toml::from_str(text).map_err(|error| ProfileError::Syntax {
        path: path.to_owned(),
        message: error.message().to_owned(),
    })?;
    let field = |field: &'static str, reason: &str| ProfileError::Field {
        path: path.to_owned(),
        field,
        reason: reason.to_owned(),
    };

    let display_name = raw.display_name.unwrap_or_default().trim().to_owned();
    if display_name.is_empty() {
        return Err(field("display_name", "missing or empty"));
    }
    if display_name.chars().count() > 64 || display_name.chars().any(char::is_control) {
        return Err(field(
            "display_name",
            "at most 64 characters, no control characters",
        ));
    }

    let url = raw.url.unwrap_or_default().trim().to_owned();
    if url.is_empty() {
        return Err(field("url", "missing or empty"));
    }
    let parsed = reqwest::Url::parse(&url).map_err(|error| field("url", &error.to_string()))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none_or(str::is_empty) {
        return Err(field("url", "must be an https URL with a host"));
    }

    let ca_pem = match (raw.ca_path, raw.ca_pem) {
        (Some(_), Some(_)) => {
            return Err(field("ca_path", "give ca_path or ca_pem, not both"));
        }
        (Some(ca_path), None) => {
            let ca_path = match path.parent() {
                Some(dir) if ca_path.is_relative() => dir.join(ca_path),
                _ => ca_path,
            };
            let pem = std::fs::read_to_string(&ca_path).map_err(|error| {
                field(
                    "ca_path",
                    &format!("cannot read {}: {error}", ca_path.display()),
                )
            })?;
            if !is_pem_certificate(&pem) {
                return Err(field(
                    "ca_path",
                    &format!("{} is not a PEM certificate", ca_path.display()),
                ));
            }
            Some(pem.trim().to_owned())
        }
        (None, Some(pem)) => {
            if !is_pem_certificate(&pem) {
                return Err(field(
                    "ca_pem",
                    "not a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
                ));
            }
            Some(pem.trim().to_owned())
        }
        (None, None) => None,
    };

    let names = raw
        .transports
        .ok_or_else(|| field("transports", "missing (a list of usb, ble, sim)"))?;
    let mut transports = Vec::new();
    for name in &names {
        let transport = match name.as_str() {
            "usb" => Transport::Usb,
            "ble" => Transport::Ble,
            "sim" => Transport::Sim,
            other => {
                return Err(field(
                    "transports",
                    &format!("unknown transport {other:?} (usb, ble, sim)"),
                ));
            }
        };
        if !transports.contains(&transport) {
            transports.push(transport);
        }
    }
    if transports.is_empty() {
        return Err(field("transports", "allows no transport"));
    }

    Ok(BankProfile {
        path: path.to_owned(),
        display_name,
        url,
        ca_pem,
        transports,
        allow_user_override: raw.allow_user_override.unwrap_or(false),
    })
}

/// What the app knows about its bank profile (`BankProfileInfo` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum ProfileInfo {
    /// A valid profile is installed.
    #[serde(rename_all = "camelCase")]
    Loaded {
        /// The file.
        path: String,
        /// The bank's name.
        display_name: String,
        /// The bank's URL.
        url: String,
        /// Whether the user may change the URL and CA.
        user_override: bool,
    },
    /// No profile is installed.
    Missing {
        /// Where the administrator installs it.
        path: String,
    },
    /// The installed profile is not valid.
    Invalid {
        /// The file.
        path: String,
        /// Why, naming the field.
        error: String,
    },
}

impl ProfileInfo {
    /// The screen's view of a load result.
    pub fn of(path: &Path, loaded: &Result<BankProfile, ProfileError>) -> Self {
        let shown = path.display().to_string();
        match loaded {
            Ok(profile) => ProfileInfo::Loaded {
                path: shown,
                display_name: profile.display_name.clone(),
                url: profile.url.clone(),
                user_override: profile.allow_user_override,
            },
            Err(ProfileError::Missing { .. }) => ProfileInfo::Missing { path: shown },
            Err(error) => ProfileInfo::Invalid {
                path: shown,
                error: error.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    fn parsed(text: &str) -> Result<BankProfile, ProfileError> {
        parse(Path::new("/etc/pinbridge/bank.toml"), text)
    }

    fn field_of(result: Result<BankProfile, ProfileError>) -> Option<&'static str> {
        match result {
            Err(ProfileError::Field { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn a_complete_profile_parses() {
        let text = format!(
            "display_name = \"Example Bank\"\nurl = \"https://api.bank.example/\"\n\
             ca_pem = \"\"\"\n{PEM}\n\"\"\"\ntransports = [\"usb\", \"ble\", \"usb\"]\n\
             allow_user_override = true\n"
        );
        let profile = parsed(&text);
        assert!(
            matches!(&profile, Ok(p) if p.display_name == "Example Bank"
                && p.url == "https://api.bank.example/"
                && p.ca_pem.as_deref() == Some(PEM)
                && p.transports == [Transport::Usb, Transport::Ble]
                && p.allow_user_override),
            "{profile:?}"
        );
    }

    #[test]
    fn the_user_override_is_off_unless_granted() {
        let profile =
            parsed("display_name = \"B\"\nurl = \"https://b.example\"\ntransports = [\"usb\"]\n");
        assert!(matches!(profile, Ok(p) if !p.allow_user_override && p.ca_pem.is_none()));
    }

    #[test]
    fn a_bad_profile_is_refused_naming_the_field() {
        let base = "display_name = \"B\"\nurl = \"https://b.example\"\ntransports = [\"usb\"]\n";
        let cases = [
            (
                "url = \"https://b.example\"\ntransports = [\"usb\"]\n",
                "display_name",
            ),
            ("display_name = \"B\"\ntransports = [\"usb\"]\n", "url"),
            (
                "display_name = \"B\"\nurl = \"http://b.example\"\ntransports = [\"usb\"]\n",
                "url",
            ),
            (
                "display_name = \"B\"\nurl = \"https://b.example\"\n",
                "transports",
            ),
            (
                "display_name = \"B\"\nurl = \"https://b.example\"\ntransports = [\"serial\"]\n",
                "transports",
            ),
            (
                "display_name = \"B\"\nurl = \"https://b.example\"\ntransports = []\n",
                "transports",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(field_of(parsed(text)), Some(expected), "{text}");
        }
        let bad_pem = format!("{base}ca_pem = \"not a certificate\"\n");
        assert_eq!(field_of(parsed(&bad_pem)), Some("ca_pem"));
        let both = format!("{base}ca_pem = \"x\"\nca_path = \"ca.pem\"\n");
        assert_eq!(field_of(parsed(&both)), Some("ca_path"));
        let missing_ca = format!("{base}ca_path = \"/nonexistent/pinbridge-ca.pem\"\n");
        let error = parsed(&missing_ca);
        assert_eq!(field_of(error), Some("ca_path"));
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_refused_naming_the_key() {
        let wrong_type = parsed("display_name = \"B\"\nurl = 5\ntransports = [\"usb\"]\n");
        assert!(
            matches!(&wrong_type, Err(ProfileError::Syntax { message, .. }) if message.contains("string")),
            "{wrong_type:?}"
        );
        let unknown = parsed(
            "display_name = \"B\"\nurl = \"https://b.example\"\ntransports = [\"usb\"]\nbank_url = \"x\"\n",
        );
        assert!(
            matches!(&unknown, Err(ProfileError::Syntax { message, .. }) if message.contains("bank_url")),
            "{unknown:?}"
        );
        assert!(matches!(
            parsed("display_name = "),
            Err(ProfileError::Syntax { .. })
        ));
    }

    #[test]
    fn a_relative_ca_path_is_read_beside_the_profile_and_a_missing_file_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), format!("{PEM}\n")).expect("ca");
        let path = dir.path().join("bank.toml");
        std::fs::write(
            &path,
            "display_name = \"B\"\nurl = \"https://b.example\"\nca_path = \"ca.pem\"\ntransports = [\"usb\"]\n",
        )
        .expect("profile");
        assert!(matches!(load(&path), Ok(p) if p.ca_pem.as_deref() == Some(PEM)));
        assert!(matches!(
            load(&dir.path().join("none.toml")),
            Err(ProfileError::Missing { .. })
        ));
    }
}
