//! Device certificates: the issuing CA's statement that an attestation key belongs to a
//! device serial. A fixed binary layout a C firmware can build and check (README.md,
//! "Device certificate"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PBDC` |
//! | 4 | 1 | format version `0x01` |
//! | 5 | 1 | serial length n, 1..=32 |
//! | 6 | n | serial, UTF-8 (the device's `Info.serial`) |
//! | 6+n | 65 | attestation public key, SEC1 uncompressed |
//! | 71+n | 8 | not before, u64 BE Unix seconds |
//! | 79+n | 8 | not after, u64 BE Unix seconds |
//! | 87+n | 8 | issuer key id: first 8 bytes of SHA-256 of the CA public key (SEC1, 65 bytes) |
//! | 95+n | 64 | signature `r ‖ s`: ECDSA P-256/SHA-256 by the CA, signature domain
//! `DeviceCertificate` (`"PinBridge/v1/sig/device-certificate" ‖ 00 ‖ bytes 0..95+n`) |
//!
//! Total 159 + n bytes; nothing may follow.

use firmware_protocol::crypto::ecdsa::{
    EcdsaSignature, EcdsaSigningKey, EcdsaVerifyingKey, PUBLIC_KEY_LEN, SIGNATURE_LEN,
    SignatureDomain,
};

use crate::util::sha256;

/// The magic bytes that open a certificate.
pub const MAGIC: &[u8; 4] = b"PBDC";
/// The format version this module reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Longest serial (as in the protocol's `Info.serial`).
pub const MAX_SERIAL_LEN: usize = 32;
/// Length of an issuer key id.
pub const KEY_ID_LEN: usize = 8;

/// Why a certificate was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a certificate of this format.
    #[error("not a PinBridge device certificate (magic or version)")]
    NotACertificate,
    /// Shorter or longer than its fields say.
    #[error("certificate length {len} does not match its fields (expected {expected})")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the fields need.
        expected: usize,
    },
    /// The serial is empty, too long or not UTF-8.
    #[error("certificate serial is invalid")]
    Serial,
    /// The public key is not a valid P-256 point.
    #[error("certificate public key is invalid")]
    PublicKey,
    /// No trusted CA has this key id.
    #[error("certificate issuer {0} is not a trusted CA")]
    UnknownIssuer(String),
    /// The signature does not verify.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// Outside its validity period.
    #[error("certificate is not valid at this time")]
    Expired,
    /// The certificate is for another serial or key than the device presented.
    #[error("certificate does not match the device ({0})")]
    Mismatch(&'static str),
}

/// A decoded device certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// Device serial.
    pub serial: String,
    /// Attestation public key, SEC1 uncompressed.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Valid from (Unix seconds).
    pub not_before: u64,
    /// Valid until (Unix seconds).
    pub not_after: u64,
    /// Which CA signed it.
    pub issuer_key_id: [u8; KEY_ID_LEN],
    /// The CA's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// The key id of a CA public key: first 8 bytes of SHA-256 of its SEC1 encoding.
pub fn key_id(ca_public_key: &EcdsaVerifyingKey) -> [u8; KEY_ID_LEN] {
    let digest = sha256(&ca_public_key.to_sec1_bytes());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn tbs(
    serial: &str,
    public_key: &[u8; PUBLIC_KEY_LEN],
    not_before: u64,
    not_after: u64,
    issuer: &[u8; KEY_ID_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(95 + serial.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.push(serial.len() as u8);
    out.extend_from_slice(serial.as_bytes());
    out.extend_from_slice(public_key);
    out.extend_from_slice(&not_before.to_be_bytes());
    out.extend_from_slice(&not_after.to_be_bytes());
    out.extend_from_slice(issuer);
    out
}

/// Issues a certificate (the CA side: `pinpad-sim` manufacture and tests).
pub fn issue(
    ca: &EcdsaSigningKey,
    serial: &str,
    public_key: &EcdsaVerifyingKey,
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, CertificateError> {
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(CertificateError::Serial);
    }
    let mut bytes = tbs(
        serial,
        &public_key.to_sec1_bytes(),
        not_before,
        not_after,
        &key_id(&ca.verifying_key()),
    );
    let signature = ca.sign(SignatureDomain::DeviceCertificate, &bytes);
    bytes.extend_from_slice(signature.as_bytes());
    Ok(bytes)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], CertificateError> {
    bytes
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CertificateError::Length {
            len: bytes.len(),
            expected: at + N,
        })
}

impl DeviceCertificate {
    /// Decodes the layout strictly: magic, version, lengths, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.get(..4) != Some(MAGIC.as_slice()) || bytes.get(4) != Some(&FORMAT_VERSION) {
            return Err(CertificateError::NotACertificate);
        }
        let n = usize::from(*bytes.get(5).ok_or(CertificateError::NotACertificate)?);
        if n == 0 || n > MAX_SERIAL_LEN {
            return Err(CertificateError::Serial);
        }
        let expected = 159 + n;
        if bytes.len() != expected {
            return Err(CertificateError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let serial = std::str::from_utf8(bytes.get(6..6 + n).ok_or(CertificateError::Serial)?)
            .map_err(|_| CertificateError::Serial)?
            .to_owned();
        let public_key: [u8; PUBLIC_KEY_LEN] = array(bytes, 6 + n)?;
        EcdsaVerifyingKey::from_sec1_bytes(&public_key).map_err(|_| CertificateError::PublicKey)?;
        Ok(Self {
            serial,
            public_key,
            not_before: u64::from_be_bytes(array(bytes, 71 + n)?),
            not_after: u64::from_be_bytes(array(bytes, 79 + n)?),
            issuer_key_id: array(bytes, 87 + n)?,
            signature: array(bytes, 95 + n)?,
        })
    }

    /// The attestation key.
    pub fn attestation_key(&self) -> Result<EcdsaVerifyingKey, CertificateError> {
        EcdsaVerifyingKey::from_sec1_bytes(&self.public_key)
            .map_err(|_| CertificateError::PublicKey)
    }

    /// Checks the signature with the CA whose key id the certificate names (from `trusted`)
    /// and the validity period at `now_seconds`.
    pub fn verify(
        &self,
        trusted: &[EcdsaVerifyingKey],
        now_seconds: u64,
    ) -> Result<(), CertificateError> {
        let ca = trusted
            .iter()
            .find(|ca| key_id(ca) == self.issuer_key_id)
            .ok_or_else(|| CertificateError::UnknownIssuer(hex::encode(self.issuer_key_id)))?;
        let signed = tbs(
            &self.serial,
            &self.public_key,
            self.not_before,
            self.not_after,
            &self.issuer_key_id,
        );
        ca.verify(
            SignatureDomain::DeviceCertificate,
            &signed,
            &EcdsaSignature::from_array(self.signature),
        )
        .map_err(|_| CertificateError::BadSignature)?;
        if now_seconds < self.not_before || now_seconds > self.not_after {
            return Err(CertificateError::Expired);
        }
        Ok(())
    }

    /// Checks the certificate names `serial` and `public_key` (what the device presented).
    pub fn matches(&self, serial: &str, public_key: &[u8]) -> Result<(), CertificateError> {
        if self.serial != serial {
            return Err(CertificateError::Mismatch("serial"));
        }
        if self.public_key.as_slice() != public_key {
            return Err(CertificateError::Mismatch("attestation public key"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn keys() -> (EcdsaSigningKey, EcdsaSigningKey) {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        (
            EcdsaSigningKey::generate(&mut rng),
            EcdsaSigningKey::generate(&mut rng),
        )
    }

    #[test]
    fn issued_certificate_verifies_and_has_the_documented_layout() {
        let (ca, device) = keys();
        let bytes = issue(&ca, "PP-0001", &device.verifying_key(), 10, 20).unwrap();
        assert_eq!(bytes.len(), 159 + 7);
        assert_eq!(&bytes[..6], b"PBDC\x01\x07");
        assert_eq!(&bytes[6..13], b"PP-0001");
        assert_eq!(
            &bytes[13..78],
            device.verifying_key().to_sec1_bytes().as_slice()
        );
        assert_eq!(&bytes[78..86], &10u64.to_be_bytes());
        assert_eq!(&bytes[94..102], &key_id(&ca.verifying_key()));
        let cert = DeviceCertificate::decode(&bytes).unwrap();
        cert.verify(&[ca.verifying_key()], 15).unwrap();
        cert.matches("PP-0001", &device.verifying_key().to_sec1_bytes())
            .unwrap();
        // The signature covers everything before it, under the certificate domain label.
        let ca_pub = ca.verifying_key();
        let sig = EcdsaSignature::from_slice(&bytes[102..]).unwrap();
        ca_pub
            .verify(SignatureDomain::DeviceCertificate, &bytes[..102], &sig)
            .unwrap();
    }

    #[test]
    fn refusals() {
        let (ca, device) = keys();
        let bytes = issue(&ca, "PP-0001", &device.verifying_key(), 10, 20).unwrap();
        let cert = DeviceCertificate::decode(&bytes).unwrap();
        assert_eq!(
            cert.verify(&[device.verifying_key()], 15),
            Err(CertificateError::UnknownIssuer(hex::encode(
                cert.issuer_key_id
            )))
        );
        assert_eq!(
            cert.verify(&[ca.verifying_key()], 21),
            Err(CertificateError::Expired)
        );
        assert_eq!(
            cert.matches("PP-0002", &device.verifying_key().to_sec1_bytes()),
            Err(CertificateError::Mismatch("serial"))
        );
        let mut forged = bytes.clone();
        forged[80] ^= 1; // not_before changed
        assert_eq!(
            DeviceCertificate::decode(&forged)
                .unwrap()
                .verify(&[ca.verifying_key()], 15),
            Err(CertificateError::BadSignature)
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            DeviceCertificate::decode(&long),
            Err(CertificateError::Length { .. })
        ));
        assert_eq!(
            DeviceCertificate::decode(b"XXXX"),
            Err(CertificateError::NotACertificate)
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = DeviceCertificate::decode(&bytes);
        }
    }
}
