//! TLS for the PostgreSQL group-commit connections (`tokio-postgres`), honouring the URL's
//! `sslmode` and `sslrootcert` as sqlx does for the pool: the two kinds of connection to one
//! database must not differ in whether they encrypt or what they trust.
//!
//! sqlx's rules (sqlx-postgres `connection/tls.rs`), followed here: `disable` and `allow`
//! connect in the clear; `prefer` (the default) uses TLS when the server offers it;
//! `require` insists on TLS but, like libpq without a root certificate, checks no
//! certificate; `verify-ca` checks the chain; `verify-full` also the host name. The roots
//! are webpki's plus `sslrootcert` (a file, or PEM text), as sqlx's `tls-rustls-ring-webpki`.
//! `PGSSLMODE` and `PGSSLROOTCERT` apply when the URL does not say.

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// The URL's query keys handled here: tokio-postgres does not know `verify-ca`,
/// `verify-full` or `allow`, nor `sslrootcert`.
const TLS_KEYS: [&str; 2] = ["sslmode", "sslrootcert"];

/// The tokio-postgres configuration of `url` and the TLS connector its `sslmode` asks for.
pub(super) fn config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    // sqlx's own reading of the URL (and of PGSSLMODE): the pool connects by it.
    let mode = PgConnectOptions::from_str(url)?.get_ssl_mode();
    let (rest, root_cert) = split_tls_keys(url);
    let root_cert = root_cert.or_else(|| std::env::var("PGSSLROOTCERT").ok());
    let mut config = tokio_postgres::Config::from_str(&rest)?;
    config.ssl_mode(match mode {
        // sqlx does not implement `allow` either: no TLS.
        PgSslMode::Disable | PgSslMode::Allow => SslMode::Disable,
        PgSslMode::Prefer => SslMode::Prefer,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(source) = root_cert {
                for cert in root_certificates(&source)? {
                    roots.add(cert).map_err(tls_error)?;
                }
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(tls_error)?;
            Arc::new(Checked {
                webpki,
                check_name: matches!(mode, PgSslMode::VerifyFull),
            })
        }
        _ => Arc::new(Unchecked(provider.clone())),
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

fn tls_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Tls(e.to_string())
}

/// `url` without the [`TLS_KEYS`] query parameters, and the `sslrootcert` value if any.
fn split_tls_keys(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root_cert = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "sslrootcert" {
                root_cert = Some(percent_decode(value));
            }
            !pair.is_empty() && !TLS_KEYS.contains(&key)
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), root_cert)
    } else {
        (format!("{base}?{}", kept.join("&")), root_cert)
    }
}

/// A query value as `url`'s `query_pairs` decodes it (`%XX`, `+` for a space).
fn percent_decode(value: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((high, low)), _) => {
                // Two hex digits: at most 0xff.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `sslrootcert`: PEM text (as sqlx takes it, by its first line) or a file of PEM certificates.
fn root_certificates(source: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let pem = if source
        .trim_start()
        .starts_with("-----BEGIN CERTIFICATE-----")
    {
        source.as_bytes().to_vec()
    } else {
        std::fs::read(source).map_err(|e| tls_error(format!("sslrootcert {source}: {e}")))?
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("sslrootcert {source}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("sslrootcert {source}: no certificate")));
    }
    Ok(certs)
}

/// `verify-ca` and `verify-full`: webpki's chain check, and the name check for `verify-full`
/// only.
#[derive(Debug)]
struct Checked {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encrypted, certificate not checked (sqlx and libpq alike); the
/// handshake's signatures still are, so the session keys belong to the certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_are_taken_out_of_the_url() {
        assert_eq!(
            split_tls_keys(
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca+1.pem&application_name=x"
            ),
            (
                "postgres://u@h/db?application_name=x".to_owned(),
                Some("/tmp/ca 1.pem".to_owned())
            )
        );
        assert_eq!(
            split_tls_keys("postgres://u@h/db?sslmode=require"),
            ("postgres://u@h/db".to_owned(), None)
        );
        assert_eq!(
            split_tls_keys("postgres://u@h/db"),
            ("postgres://u@h/db".to_owned(), None)
        );
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn sslmode_is_read_as_sqlx_reads_it() {
        for (url, mode) in [
            ("postgres://u@h/db?sslmode=disable", SslMode::Disable),
            ("postgres://u@h/db?sslmode=allow", SslMode::Disable),
            ("postgres://u@h/db?sslmode=require", SslMode::Require),
            ("postgres://u@h/db?sslmode=verify-ca", SslMode::Require),
            ("postgres://u@h/db?sslmode=verify-full", SslMode::Require),
        ] {
            let (config, _) = config(url).expect(url);
            assert_eq!(config.get_ssl_mode(), mode, "{url}");
        }
    }
}
