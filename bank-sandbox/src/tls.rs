//! A TLS identity for a sandbox bank: its own CA and a server certificate that CA signs, so
//! the app's CA pinning can be tried (and tested) without a public CA or an `openssl` command.
//! `bank-sandbox tls-init --out DIR` writes them; `serve --tls-cert DIR/server.pem --tls-key
//! DIR/server.key` uses them; the app pins `DIR/ca.pem`.
//!
//! ECDSA P-256 with SHA-256 throughout (what rustls and every platform verifier accept). The
//! CA's private key is not kept: a sandbox CA signs its one server certificate and is then
//! useless to anyone who copies the directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// Why a TLS identity could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsInitError {
    /// No host names or addresses were given for the server certificate.
    #[error("the server certificate needs at least one host name or IP address")]
    NoHosts,
    /// A host name is not a valid DNS name (nor an IP address).
    #[error("{host:?} is neither an IP address nor a valid DNS name: {reason}")]
    BadHost {
        /// The name as given.
        host: String,
        /// What rcgen said.
        reason: String,
    },
    /// The validity is zero days or too long to represent.
    #[error("validity of {days} days is out of range (1..=3650)")]
    BadValidity {
        /// The days asked for.
        days: u32,
    },
    /// Key generation or signing failed.
    #[error("making the certificates failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The sandbox bank's CA certificate and its server certificate with the server's key.
pub struct SandboxTls {
    /// The CA certificate (PEM): what the app pins.
    pub ca_pem: String,
    /// The server certificate (PEM), signed by the CA.
    pub server_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub server_key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for SandboxTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxTls")
            .field("ca_pem", &self.ca_pem)
            .field("server_pem", &self.server_pem)
            .field("server_key_pem", &"[redacted]")
            .finish()
    }
}

/// Where [`SandboxTls::write_to`] put the files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `server.pem`.
    pub certificate: PathBuf,
    /// `server.key` (mode 0600 on Unix).
    pub key: PathBuf,
}

impl SandboxTls {
    /// A fresh CA and a server certificate for `hosts` (DNS names or IP addresses), valid
    /// from an hour ago (clock skew) for `days` days.
    pub fn generate(hosts: &[String], days: u32) -> Result<Self, TlsInitError> {
        if hosts.is_empty() {
            return Err(TlsInitError::NoHosts);
        }
        if !(1..=3650).contains(&days) {
            return Err(TlsInitError::BadValidity { days });
        }
        let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        let not_after = not_before + Duration::days(i64::from(days));

        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("PinBridge Sandbox Bank CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let ca_certificate = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(hosts.to_vec()).map_err(|e| {
            // rcgen names no host; find the one it refused.
            let host = hosts
                .iter()
                .find(|h| CertificateParams::new(vec![(*h).clone()]).is_err())
                .cloned()
                .unwrap_or_default();
            TlsInitError::BadHost {
                host,
                reason: e.to_string(),
            }
        })?;
        server_params.distinguished_name = name(hosts.first().map_or("localhost", String::as_str));
        server_params.is_ca = IsCa::ExplicitNoCa;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        server_params.not_before = not_before;
        server_params.not_after = not_after;
        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let server_certificate = server_params.signed_by(&server_key, &ca)?;

        Ok(SandboxTls {
            ca_pem: ca_certificate.pem(),
            server_pem: server_certificate.pem(),
            server_key_pem: Zeroizing::new(server_key.serialize_pem()),
        })
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir` (created if missing); the
    /// key file is readable by its owner only.
    pub fn write_to(&self, dir: &Path) -> Result<TlsFiles, TlsInitError> {
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            certificate: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::create_dir_all(dir).map_err(|source| TlsInitError::Write {
            path: dir.to_owned(),
            source,
        })?;
        write(&files.ca, self.ca_pem.as_bytes(), false)?;
        write(&files.certificate, self.server_pem.as_bytes(), false)?;
        write(&files.key, self.server_key_pem.as_bytes(), true)?;
        Ok(files)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "PinBridge sandbox");
    name
}

fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsInitError> {
    let failed = |source| TlsInitError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(failed)?;
    std::io::Write::write_all(&mut file, bytes).map_err(failed)?;
    file.sync_all().map_err(failed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn refuses_what_cannot_make_a_certificate() {
        assert!(matches!(
            SandboxTls::generate(&[], 30),
            Err(TlsInitError::NoHosts)
        ));
        assert!(matches!(
            SandboxTls::generate(&hosts(&["localhost"]), 0),
            Err(TlsInitError::BadValidity { days: 0 })
        ));
        match SandboxTls::generate(&hosts(&["localhost", "bad host\u{e9}"]), 30) {
            Err(TlsInitError::BadHost { host, .. }) => assert_eq!(host, "bad host\u{e9}"),
            other => panic!("expected BadHost, got {other:?}"),
        }
    }

    #[test]
    fn the_key_is_redacted_and_written_owner_only() {
        let tls = SandboxTls::generate(&hosts(&["127.0.0.1", "localhost"]), 2).unwrap();
        assert!(
            tls.server_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let debug = format!("{tls:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let dir = tempfile::tempdir().unwrap();
        let files = tls.write_to(&dir.path().join("tls")).unwrap();
        assert_eq!(std::fs::read_to_string(&files.ca).unwrap(), tls.ca_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
