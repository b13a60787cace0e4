//! Device certificates: the issuing CA's statement that an attestation key belongs to a
//! device serial. One definition for the device and the bank,
//! `firmware_protocol::crypto::certificate` (layout: PROTOCOL.md §4.5), re-exported here
//! with the issuing helper the bank's tests and load generator use.

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};

pub use firmware_protocol::crypto::certificate::{
    CertificateError, DeviceCertificate, FIXED_LEN, FORMAT_VERSION, KEY_ID_LEN, MAGIC,
    MAX_SERIAL_LEN, key_id,
};

/// Issues a certificate and returns its wire bytes (the CA side: tests and the load
/// generator manufacture their own devices).
pub fn issue(
    ca: &EcdsaSigningKey,
    serial: &str,
    public_key: &EcdsaVerifyingKey,
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, CertificateError> {
    DeviceCertificate::issue(ca, serial, public_key, not_before, not_after)
        .map(|certificate| certificate.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn issued_bytes_pass_the_checks_the_bank_makes() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let ca = EcdsaSigningKey::generate(&mut rng);
        let device = EcdsaSigningKey::generate(&mut rng);
        let bytes = issue(&ca, "PP-0001", &device.verifying_key(), 10, 20).unwrap();
        let certificate = DeviceCertificate::decode(&bytes).unwrap();
        certificate.verify(&[ca.verifying_key()], 15).unwrap();
        certificate
            .matches("PP-0001", &device.verifying_key().to_sec1_bytes())
            .unwrap();
        assert_eq!(
            certificate.verify(&[device.verifying_key()], 15),
            Err(CertificateError::UnknownIssuer {
                key_id: key_id(&ca.verifying_key())
            })
        );
    }
}
