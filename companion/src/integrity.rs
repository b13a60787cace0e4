//! Is the connected PIN pad genuine? (CN102610045A: the client checks the payment chip's
//! integrity when it starts; Ledger Live's and Trezor Suite's "genuine check".) The client
//! asks for a signed integrity report over a nonce of its own and checks, naming each
//! failure: the certificate is the issuing CA's (a CA this installation trusts), it is valid
//! now, it names the serial and attestation key the device presents, the report is signed by
//! that key over this nonce, and it names the same serial and firmware the device reports.
//! Whether that firmware is allowed is the bank's call at login (its allow-list).

use firmware_protocol::crypto::certificate::DeviceCertificate;
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::message::{
    GetInfo, GetIntegrityReport, GetStatus, Info, IntegrityReport, Nonce, Status,
};

use crate::session::{Session, SessionError};

/// What the client found out about the connected PIN pad.
#[derive(Debug, Clone)]
pub struct GenuineCheck {
    /// What the device says about itself.
    pub info: Info,
    /// Its state (lifecycle, tamper, lock, ...).
    pub status: Status,
    /// The certificate's validity window, if it decoded.
    pub certificate_window: Option<(u64, u64)>,
    /// Every check that failed, in words naming what (empty: genuine).
    pub failures: Vec<String>,
    /// No trusted device CA was configured, so the issuer was not checked.
    pub issuer_unchecked: bool,
}

impl GenuineCheck {
    /// All checks passed, the issuer included.
    pub fn genuine(&self) -> bool {
        self.failures.is_empty() && !self.issuer_unchecked
    }
}

/// Why the check could not be made at all (the device did not answer as a PIN pad does).
#[derive(Debug, thiserror::Error)]
pub enum GenuineCheckError {
    /// The device did not answer, or answered with the wrong type.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No randomness for the nonce.
    #[error("no randomness for the integrity nonce: {0}")]
    Entropy(String),
}

impl GenuineCheckError {
    /// What kind of failure this is, as the app and the CLI report it.
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            GenuineCheckError::Session(error) => error.kind(),
            GenuineCheckError::Entropy(_) => crate::error::ErrorKind::Internal,
        }
    }
}

/// A device-issuing CA's public key from SEC1 hex (`--device-ca`, `PINBRIDGE_DEVICE_CA`).
pub fn ca_from_hex(text: &str) -> Result<EcdsaVerifyingKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|_| format!("{text:?}: not hexadecimal"))?;
    EcdsaVerifyingKey::from_sec1_bytes(&bytes).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs the genuine check on `session` against `trusted_cas` at Unix time `now`.
pub async fn check(
    session: &mut Session,
    trusted_cas: &[EcdsaVerifyingKey],
    now: u64,
) -> Result<GenuineCheck, GenuineCheckError> {
    let info = session.ask(GetInfo).await?;
    let status = session.ask(GetStatus).await?;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| GenuineCheckError::Entropy(e.to_string()))?;
    let request = GetIntegrityReport {
        nonce: Nonce(nonce),
    };
    let report = match session.ask(request).await {
        Ok(report) => Some(report),
        // A tampered or revoked device refuses the report: that is an answer, not a crash.
        Err(SessionError::Refused { status: code, .. }) => {
            return Ok(GenuineCheck {
                info,
                status,
                certificate_window: None,
                failures: vec![format!(
                    "firmware: the PIN pad refused its integrity report ({code:?})"
                )],
                issuer_unchecked: trusted_cas.is_empty(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    let mut failures = Vec::new();
    let certificate = match DeviceCertificate::decode(&info.certificate) {
        Ok(certificate) => Some(certificate),
        Err(e) => {
            failures.push(format!("certificate: does not decode ({e})"));
            None
        }
    };
    if let Some(certificate) = &certificate {
        if !trusted_cas.is_empty()
            && let Err(e) = certificate.verify(trusted_cas, now)
        {
            failures.push(format!("certificate: {e}"));
        }
        if let Err(e) = certificate.check_validity(now) {
            failures.push(format!("certificate: {e}"));
        }
        if let Err(e) = certificate.matches(&info.serial, info.attestation_public_key.as_bytes()) {
            failures.push(format!("certificate: {e}"));
        }
    }
    if let (Some(certificate), Some(report)) = (&certificate, &report) {
        check_report(certificate, &request, report, &info, &mut failures);
    }
    Ok(GenuineCheck {
        certificate_window: certificate.map(|c| (c.not_before, c.not_after)),
        info,
        status,
        failures,
        issuer_unchecked: trusted_cas.is_empty(),
    })
}

fn check_report(
    certificate: &DeviceCertificate,
    request: &GetIntegrityReport,
    report: &IntegrityReport,
    info: &Info,
    failures: &mut Vec<String>,
) {
    match report.signed_bytes(request) {
        Ok(signed) => {
            if certificate
                .attestation_public_key
                .verify(
                    IntegrityReport::SIGNATURE_DOMAIN,
                    &signed,
                    &report.signature,
                )
                .is_err()
            {
                failures.push(
                    "firmware: the integrity report is not signed by the certified attestation key over this nonce"
                        .into(),
                );
            }
        }
        Err(e) => failures.push(format!("firmware: integrity report unreadable ({e})")),
    }
    if report.device_serial != info.serial {
        failures.push(format!(
            "firmware: the integrity report names serial {}, the device {}",
            report.device_serial, info.serial
        ));
    }
    if report.firmware_hash != info.firmware_hash {
        failures.push(
            "firmware: the signed report's firmware hash differs from the one the device announces"
                .into(),
        );
    }
}
