//! Device certificates (`Info.certificate`, PROTOCOL.md §4.5): the issuing CA's statement
//! that an attestation public key belongs to a device serial, for a validity window.
//!
//! A fixed binary layout a C firmware can build and a bank can check without an ASN.1
//! parser (all integers big-endian, `n` the serial length):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PBDC` |
//! | 4 | 1 | format version `0x01` |
//! | 5 | 1 | serial length n, 1..=32 |
//! | 6 | n | serial, UTF-8 (the device's `Info.serial`) |
//! | 6+n | 65 | attestation public key, SEC1 uncompressed (the device's `Info.attestation_public_key`) |
//! | 71+n | 8 | not before, u64 Unix seconds |
//! | 79+n | 8 | not after, u64 Unix seconds, not before `not before` |
//! | 87+n | 8 | issuer key id: first 8 bytes of SHA-256 of the CA public key (SEC1, 65 bytes) |
//! | 95+n | 64 | signature `r ‖ s` by the CA, ECDSA P-256/SHA-256 in [`SignatureDomain::DeviceCertificate`] over bytes `0..95+n` |
//!
//! Total 159 + n bytes; nothing may follow. The window is inclusive at both ends.

use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::ecdsa::{
    EcdsaError, EcdsaSignature, EcdsaSigningKey, EcdsaVerifyingKey, PUBLIC_KEY_LEN, PublicKeyError,
    SIGNATURE_LEN, SignatureDomain,
};

/// The magic bytes that open a certificate.
pub const MAGIC: [u8; 4] = *b"PBDC";
/// The format version this module reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Longest serial (as the protocol's `Info.serial`).
pub const MAX_SERIAL_LEN: usize = 32;
/// Length of an issuer key id.
pub const KEY_ID_LEN: usize = 8;
/// Length of everything but the serial: header 6, key 65, two times 8, key id 8, signature 64.
pub const FIXED_LEN: usize = 6 + PUBLIC_KEY_LEN + 8 + 8 + KEY_ID_LEN + SIGNATURE_LEN;
/// Length of the shortest certificate (a one-byte serial).
pub const MIN_LEN: usize = FIXED_LEN + 1;

const SERIAL_AT: usize = 6;

/// Why a certificate was refused, at decoding, issuing or checking.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Too short to hold the 6-byte header.
    #[error("a device certificate is at least {MIN_LEN} bytes, got {len}")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The first four bytes are not `PBDC`.
    #[error("not a PinBridge device certificate (magic {found:02x?}, expected \"PBDC\")")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A format version this code does not know.
    #[error("device certificate format version {version} is not supported (only {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The serial is empty or longer than [`MAX_SERIAL_LEN`].
    #[error("a certified serial is 1..={MAX_SERIAL_LEN} bytes, got {len}")]
    SerialLength {
        /// The serial's length.
        len: usize,
    },
    /// The serial bytes are not UTF-8.
    #[error("the certificate serial is not UTF-8")]
    SerialNotUtf8,
    /// Shorter or longer than its serial length says.
    #[error("certificate is {len} bytes; its serial length makes it {expected}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the fields need.
        expected: usize,
    },
    /// The attestation public key is not a P-256 point in SEC1 uncompressed form.
    #[error("certificate attestation key: {0}")]
    PublicKey(PublicKeyError),
    /// `not after` is earlier than `not before`: valid at no time.
    #[error(
        "certificate validity is empty: not before {not_before} is after not after {not_after}"
    )]
    EmptyValidity {
        /// Valid from (Unix seconds).
        not_before: u64,
        /// Valid until (Unix seconds).
        not_after: u64,
    },
    /// Not signed by the CA (or none of the CAs) given: the issuer key id differs.
    #[error("certificate issuer {} is not a trusted CA", hex::encode(.key_id))]
    UnknownIssuer {
        /// The key id the certificate names.
        key_id: [u8; KEY_ID_LEN],
    },
    /// The issuer key id matches, but the signature does not verify.
    #[error("certificate signature does not verify: {0}")]
    BadSignature(EcdsaError),
    /// Checked before its window opens.
    #[error("certificate is not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The time checked (Unix seconds).
        now: u64,
        /// Valid from.
        not_before: u64,
    },
    /// Checked after its window closed.
    #[error("certificate expired at {not_after} (now {now})")]
    Expired {
        /// The time checked (Unix seconds).
        now: u64,
        /// Valid until.
        not_after: u64,
    },
    /// Certifies another serial than the device presented.
    #[error("certificate is for serial {certified:?}, the device says {presented:?}")]
    SerialMismatch {
        /// The certified serial.
        certified: String,
        /// The serial the device presented.
        presented: String,
    },
    /// Certifies another attestation key than the device presented.
    #[error("certificate is for another attestation key than the device presented")]
    PublicKeyMismatch,
}

/// The key id of a CA public key: the first 8 bytes of SHA-256 of its SEC1 encoding.
pub fn key_id(ca_public_key: &EcdsaVerifyingKey) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(ca_public_key.to_sec1_bytes());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// A device certificate, decoded (its signature not necessarily checked: see
/// [`DeviceCertificate::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// Device serial, 1..=32 bytes of UTF-8.
    pub serial: String,
    /// The device's attestation public key.
    pub attestation_public_key: EcdsaVerifyingKey,
    /// Valid from, Unix seconds (inclusive).
    pub not_before: u64,
    /// Valid until, Unix seconds (inclusive).
    pub not_after: u64,
    /// Which CA signed it.
    pub issuer_key_id: [u8; KEY_ID_LEN],
    /// The CA's signature over [`DeviceCertificate::signed_bytes`].
    pub signature: EcdsaSignature,
}

fn check_serial(serial: &str) -> Result<(), CertificateError> {
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(CertificateError::SerialLength { len: serial.len() });
    }
    Ok(())
}

fn check_window(not_before: u64, not_after: u64) -> Result<(), CertificateError> {
    if not_before > not_after {
        return Err(CertificateError::EmptyValidity {
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// `N` bytes at `at`; the caller has checked the total length, so this only guards slicing.
fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], CertificateError> {
    bytes
        .get(at..at.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CertificateError::Length {
            len: bytes.len(),
            expected: at.saturating_add(N),
        })
}

impl DeviceCertificate {
    /// Issues a certificate (the CA's side: manufacture, tests) for `serial` and
    /// `attestation_public_key`, valid from `not_before` to `not_after` inclusive (Unix
    /// seconds). Signing is deterministic (RFC 6979).
    pub fn issue(
        ca: &EcdsaSigningKey,
        serial: &str,
        attestation_public_key: &EcdsaVerifyingKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, CertificateError> {
        check_serial(serial)?;
        check_window(not_before, not_after)?;
        let mut certificate = Self {
            serial: serial.into(),
            attestation_public_key: *attestation_public_key,
            not_before,
            not_after,
            issuer_key_id: key_id(&ca.verifying_key()),
            signature: EcdsaSignature::from_array([0; SIGNATURE_LEN]),
        };
        certificate.signature = ca.sign(
            SignatureDomain::DeviceCertificate,
            &certificate.signed_bytes(),
        );
        Ok(certificate)
    }

    /// Bytes `0..95+n`: everything the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.serial.len());
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        // A serial is at most 32 bytes (checked at issue and decode; the field is public, so
        // an oversized one is cut to what the length byte can say and fails to verify).
        out.push(u8::try_from(self.serial.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.serial.as_bytes());
        out.extend_from_slice(&self.attestation_public_key.to_sec1_bytes());
        out.extend_from_slice(&self.not_before.to_be_bytes());
        out.extend_from_slice(&self.not_after.to_be_bytes());
        out.extend_from_slice(&self.issuer_key_id);
        out
    }

    /// The wire bytes (`Info.certificate`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// Decodes the wire bytes strictly (magic, version, serial, exact length, a valid
    /// attestation key, a non-empty window) without checking the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let header: [u8; SERIAL_AT] = bytes
            .get(..SERIAL_AT)
            .and_then(|h| h.try_into().ok())
            .ok_or(CertificateError::TooShort { len: bytes.len() })?;
        let [m0, m1, m2, m3, version, serial_len] = header;
        let found = [m0, m1, m2, m3];
        if found != MAGIC {
            return Err(CertificateError::BadMagic { found });
        }
        if version != FORMAT_VERSION {
            return Err(CertificateError::UnsupportedVersion { version });
        }
        let n = usize::from(serial_len);
        if n == 0 || n > MAX_SERIAL_LEN {
            return Err(CertificateError::SerialLength { len: n });
        }
        let expected = FIXED_LEN + n;
        if bytes.len() != expected {
            return Err(CertificateError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let serial = bytes
            .get(SERIAL_AT..SERIAL_AT + n)
            .ok_or(CertificateError::Length {
                len: bytes.len(),
                expected,
            })?;
        let serial = core::str::from_utf8(serial).map_err(|_| CertificateError::SerialNotUtf8)?;
        let key_at = SERIAL_AT + n;
        let key: [u8; PUBLIC_KEY_LEN] = array(bytes, key_at)?;
        let attestation_public_key =
            EcdsaVerifyingKey::from_sec1_bytes(&key).map_err(CertificateError::PublicKey)?;
        let not_before = u64::from_be_bytes(array(bytes, key_at + PUBLIC_KEY_LEN)?);
        let not_after = u64::from_be_bytes(array(bytes, key_at + PUBLIC_KEY_LEN + 8)?);
        check_window(not_before, not_after)?;
        Ok(Self {
            serial: serial.into(),
            attestation_public_key,
            not_before,
            not_after,
            issuer_key_id: array(bytes, key_at + PUBLIC_KEY_LEN + 16)?,
            signature: EcdsaSignature::from_array(array(
                bytes,
                key_at + PUBLIC_KEY_LEN + 16 + KEY_ID_LEN,
            )?),
        })
    }

    /// Checks that `ca_public_key` issued this certificate: its key id, then the signature.
    /// The validity window is separate ([`DeviceCertificate::check_validity`]).
    pub fn verify_signature(
        &self,
        ca_public_key: &EcdsaVerifyingKey,
    ) -> Result<(), CertificateError> {
        if key_id(ca_public_key) != self.issuer_key_id {
            return Err(CertificateError::UnknownIssuer {
                key_id: self.issuer_key_id,
            });
        }
        ca_public_key
            .verify(
                SignatureDomain::DeviceCertificate,
                &self.signed_bytes(),
                &self.signature,
            )
            .map_err(CertificateError::BadSignature)
    }

    /// The whole check a bank makes: signed by the CA in `trusted` whose key id the
    /// certificate names, and valid at `now` (Unix seconds). Returns that CA.
    pub fn verify<'a>(
        &self,
        trusted: &'a [EcdsaVerifyingKey],
        now: u64,
    ) -> Result<&'a EcdsaVerifyingKey, CertificateError> {
        let ca = trusted
            .iter()
            .find(|ca| key_id(ca) == self.issuer_key_id)
            .ok_or(CertificateError::UnknownIssuer {
                key_id: self.issuer_key_id,
            })?;
        self.verify_signature(ca)?;
        self.check_validity(now)?;
        Ok(ca)
    }

    /// Whether `now` (Unix seconds) is inside the window, both ends included.
    pub fn check_validity(&self, now: u64) -> Result<(), CertificateError> {
        if now < self.not_before {
            return Err(CertificateError::NotYetValid {
                now,
                not_before: self.not_before,
            });
        }
        if now > self.not_after {
            return Err(CertificateError::Expired {
                now,
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    /// [`DeviceCertificate::check_validity`] as a yes/no.
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.check_validity(now).is_ok()
    }

    /// Checks the certificate names what the device presented (`Info.serial`,
    /// `Info.attestation_public_key` as SEC1 bytes).
    pub fn matches(
        &self,
        serial: &str,
        attestation_public_key: &[u8],
    ) -> Result<(), CertificateError> {
        if self.serial != serial {
            return Err(CertificateError::SerialMismatch {
                certified: self.serial.clone(),
                presented: serial.into(),
            });
        }
        if self.attestation_public_key.to_sec1_bytes().as_slice() != attestation_public_key {
            return Err(CertificateError::PublicKeyMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const SERIAL: &str = "PP-0001";

    struct Keys {
        ca: EcdsaSigningKey,
        device: EcdsaSigningKey,
        other_ca: EcdsaSigningKey,
    }

    fn keys() -> Keys {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        Keys {
            ca: EcdsaSigningKey::generate(&mut rng),
            device: EcdsaSigningKey::generate(&mut rng),
            other_ca: EcdsaSigningKey::generate(&mut rng),
        }
    }

    fn issued(keys: &Keys) -> DeviceCertificate {
        DeviceCertificate::issue(&keys.ca, SERIAL, &keys.device.verifying_key(), 10, 20).unwrap()
    }

    #[test]
    fn the_wire_bytes_follow_the_documented_table() {
        let keys = keys();
        let certificate = issued(&keys);
        // Built field by field from the table in the module documentation.
        let mut expected = Vec::new();
        expected.extend_from_slice(b"PBDC");
        expected.push(0x01);
        expected.push(7);
        expected.extend_from_slice(b"PP-0001");
        expected.extend_from_slice(&keys.device.verifying_key().to_sec1_bytes());
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 20]);
        let ca_digest = Sha256::digest(keys.ca.verifying_key().to_sec1_bytes());
        expected.extend_from_slice(&ca_digest[..8]);
        assert_eq!(certificate.signed_bytes(), expected);
        let bytes = certificate.to_bytes();
        assert_eq!(bytes.len(), 159 + 7);
        assert_eq!(&bytes[..102], expected.as_slice());
        // The signature is a plain domain-separated ECDSA signature over bytes 0..95+n.
        let signature = EcdsaSignature::from_slice(&bytes[102..]).unwrap();
        keys.ca
            .verifying_key()
            .verify(
                SignatureDomain::DeviceCertificate,
                &bytes[..102],
                &signature,
            )
            .unwrap();
        assert!(
            keys.ca
                .verifying_key()
                .verify(
                    SignatureDomain::DeviceAttestation,
                    &bytes[..102],
                    &signature
                )
                .is_err()
        );
    }

    #[test]
    fn round_trip_and_verification() {
        let keys = keys();
        let certificate = issued(&keys);
        let decoded = DeviceCertificate::decode(&certificate.to_bytes()).unwrap();
        assert_eq!(decoded, certificate);
        decoded.verify_signature(&keys.ca.verifying_key()).unwrap();
        let trusted = [keys.other_ca.verifying_key(), keys.ca.verifying_key()];
        assert_eq!(
            decoded.verify(&trusted, 15).unwrap(),
            &keys.ca.verifying_key()
        );
        decoded
            .matches(SERIAL, &keys.device.verifying_key().to_sec1_bytes())
            .unwrap();
        // Longest serial and widest window.
        let long = "S".repeat(MAX_SERIAL_LEN);
        let wide =
            DeviceCertificate::issue(&keys.ca, &long, &keys.device.verifying_key(), 0, u64::MAX)
                .unwrap();
        assert_eq!(wide.to_bytes().len(), FIXED_LEN + MAX_SERIAL_LEN);
        assert_eq!(DeviceCertificate::decode(&wide.to_bytes()).unwrap(), wide);
    }

    #[test]
    fn the_validity_window_includes_both_ends() {
        let keys = keys();
        let certificate = issued(&keys);
        let trusted = [keys.ca.verifying_key()];
        assert_eq!(
            certificate.verify(&trusted, 9),
            Err(CertificateError::NotYetValid {
                now: 9,
                not_before: 10
            })
        );
        assert!(certificate.verify(&trusted, 10).is_ok());
        assert!(certificate.verify(&trusted, 20).is_ok());
        assert_eq!(
            certificate.verify(&trusted, 21),
            Err(CertificateError::Expired {
                now: 21,
                not_after: 20
            })
        );
        assert!(!certificate.is_valid_at(21) && certificate.is_valid_at(15));
        assert_eq!(
            DeviceCertificate::issue(&keys.ca, SERIAL, &keys.device.verifying_key(), 21, 20),
            Err(CertificateError::EmptyValidity {
                not_before: 21,
                not_after: 20
            })
        );
    }

    #[test]
    fn another_ca_is_refused() {
        let keys = keys();
        let certificate = issued(&keys);
        let unknown = CertificateError::UnknownIssuer {
            key_id: key_id(&keys.ca.verifying_key()),
        };
        assert_eq!(
            certificate.verify_signature(&keys.other_ca.verifying_key()),
            Err(unknown.clone())
        );
        assert_eq!(
            certificate.verify(&[keys.other_ca.verifying_key()], 15),
            Err(unknown.clone())
        );
        assert_eq!(certificate.verify(&[], 15), Err(unknown));
        assert!(
            certificate
                .verify_signature(&keys.other_ca.verifying_key())
                .unwrap_err()
                .to_string()
                .contains(&hex::encode(key_id(&keys.ca.verifying_key())))
        );
        // Another CA that copies the real CA's key id still fails on the signature.
        let mut forged =
            DeviceCertificate::issue(&keys.other_ca, SERIAL, &keys.device.verifying_key(), 10, 20)
                .unwrap();
        forged.issuer_key_id = key_id(&keys.ca.verifying_key());
        assert_eq!(
            forged.verify_signature(&keys.ca.verifying_key()),
            Err(CertificateError::BadSignature(
                EcdsaError::VerificationFailed
            ))
        );
    }

    #[test]
    fn any_changed_signed_byte_breaks_the_signature() {
        let keys = keys();
        let bytes = issued(&keys).to_bytes();
        let ca = keys.ca.verifying_key();
        // Serial, not before, not after (the key and key id have their own refusals).
        for at in [6, 12, 80, 85, 88, 93] {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            let error = DeviceCertificate::decode(&changed)
                .and_then(|c| c.verify_signature(&ca))
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    CertificateError::BadSignature(_) | CertificateError::EmptyValidity { .. }
                ),
                "byte {at}: {error:?}"
            );
        }
        let mut changed = bytes.clone();
        changed[94] ^= 0x01; // issuer key id
        assert!(matches!(
            DeviceCertificate::decode(&changed)
                .unwrap()
                .verify_signature(&ca),
            Err(CertificateError::UnknownIssuer { .. })
        ));
        let mut changed = bytes;
        changed[130] ^= 0x01; // signature r
        assert!(matches!(
            DeviceCertificate::decode(&changed)
                .unwrap()
                .verify_signature(&ca),
            Err(CertificateError::BadSignature(_))
        ));
    }

    #[test]
    fn malformed_bytes_are_refused_with_what_is_wrong() {
        let keys = keys();
        let bytes = issued(&keys).to_bytes();
        let with = |at: usize, value: u8| {
            let mut changed = bytes.clone();
            changed[at] = value;
            DeviceCertificate::decode(&changed)
        };
        assert_eq!(
            DeviceCertificate::decode(&[]),
            Err(CertificateError::TooShort { len: 0 })
        );
        assert_eq!(
            DeviceCertificate::decode(b"PBDC\x01"),
            Err(CertificateError::TooShort { len: 5 })
        );
        assert_eq!(
            with(0, b'X'),
            Err(CertificateError::BadMagic { found: *b"XBDC" })
        );
        assert_eq!(
            with(4, 2),
            Err(CertificateError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(with(5, 0), Err(CertificateError::SerialLength { len: 0 }));
        assert_eq!(with(5, 33), Err(CertificateError::SerialLength { len: 33 }));
        assert_eq!(
            with(5, 8),
            Err(CertificateError::Length {
                len: 166,
                expected: 167
            })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            DeviceCertificate::decode(&long),
            Err(CertificateError::Length {
                len: 167,
                expected: 166
            })
        );
        assert_eq!(
            DeviceCertificate::decode(&bytes[..bytes.len() - 1]),
            Err(CertificateError::Length {
                len: 165,
                expected: 166
            })
        );
        assert_eq!(with(6, 0xFF), Err(CertificateError::SerialNotUtf8));
        assert_eq!(
            with(13, 0x02),
            Err(CertificateError::PublicKey(
                PublicKeyError::NotUncompressed { prefix: 0x02 }
            ))
        );
        let mut off_curve = bytes.clone();
        off_curve[14..78].fill(0x11);
        assert_eq!(
            DeviceCertificate::decode(&off_curve),
            Err(CertificateError::PublicKey(PublicKeyError::NotOnCurve))
        );
        // not before (offset 78) raised above not after (20).
        assert_eq!(
            with(85, 21),
            Err(CertificateError::EmptyValidity {
                not_before: 21,
                not_after: 20
            })
        );
    }

    #[test]
    fn issuing_refuses_serials_that_do_not_fit() {
        let keys = keys();
        let key = keys.device.verifying_key();
        assert_eq!(
            DeviceCertificate::issue(&keys.ca, "", &key, 0, 1),
            Err(CertificateError::SerialLength { len: 0 })
        );
        let long = "S".repeat(MAX_SERIAL_LEN + 1);
        assert_eq!(
            DeviceCertificate::issue(&keys.ca, &long, &key, 0, 1),
            Err(CertificateError::SerialLength { len: 33 })
        );
    }

    #[test]
    fn matches_names_the_field_that_differs() {
        let keys = keys();
        let certificate = issued(&keys);
        assert_eq!(
            certificate.matches("PP-0002", &keys.device.verifying_key().to_sec1_bytes()),
            Err(CertificateError::SerialMismatch {
                certified: SERIAL.into(),
                presented: "PP-0002".into()
            })
        );
        assert_eq!(
            certificate.matches(SERIAL, &keys.ca.verifying_key().to_sec1_bytes()),
            Err(CertificateError::PublicKeyMismatch)
        );
        assert_eq!(
            certificate.matches(SERIAL, &[0x04; 3]),
            Err(CertificateError::PublicKeyMismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = DeviceCertificate::decode(&bytes);
        }

        #[test]
        fn any_truncation_or_extension_is_a_length_error(cut in 0usize..166, extra in 1usize..40) {
            let keys = keys();
            let bytes = issued(&keys).to_bytes();
            proptest::prop_assert!(DeviceCertificate::decode(&bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.extend(core::iter::repeat_n(0u8, extra));
            proptest::prop_assert_eq!(
                DeviceCertificate::decode(&longer),
                Err(CertificateError::Length { len: 166 + extra, expected: 166 })
            );
        }

        #[test]
        fn round_trip_any_serial_and_window(
            serial in "[A-Za-z0-9-]{1,32}",
            not_before in proptest::num::u64::ANY,
            span in proptest::num::u64::ANY,
        ) {
            let keys = keys();
            let not_after = not_before.saturating_add(span);
            let certificate = DeviceCertificate::issue(
                &keys.ca, &serial, &keys.device.verifying_key(), not_before, not_after,
            ).unwrap();
            let decoded = DeviceCertificate::decode(&certificate.to_bytes()).unwrap();
            proptest::prop_assert_eq!(&decoded, &certificate);
            proptest::prop_assert!(decoded.verify(&[keys.ca.verifying_key()], not_before).is_ok());
        }
    }
}
