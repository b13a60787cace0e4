//! The soft HSM: every secret key the bank holds lives here or, outside it, only as a TR-31
//! key block under the master key.
//!
//! - The **master key** (AES-256, from a file or the `PINBRIDGE_BANK_MASTER_KEY` variable) is a
//!   key-block protection key. Every stored key is a TR-31 version D block under it, whose
//!   authenticated header carries the usage, so a key stored as a MAC key can only come back
//!   as a [`MacKey`] ([`SoftHsm::open`] goes through `UnwrappedKey::into_key`).
//! - The bank's ECDSA keys (management key, operator key) are stored the same way, in blocks
//!   with the proprietary usage codes `90` and `91` (firmware-protocol's TR-31 has no
//!   elliptic-curve algorithm, so the 32-byte scalar travels as AES-256-sized material; the
//!   block is still AES-CBC encrypted and CMAC authenticated, and the usage code keeps it from
//!   being taken for anything else).
//! - **PIN verification values** are made and checked here: the enciphered PIN block is
//!   deciphered, the PIN turned into an AES-CMAC under the bank's PIN verification key, and
//!   the clear PIN is zeroized before the function returns. Nothing else sees it.

use std::fmt;
use std::path::Path;

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{
    Key, KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, PinKey, PinVerificationKey, Usage,
};
use firmware_protocol::crypto::pinblock::{self, EncipheredPinBlock, Pan};
use firmware_protocol::crypto::primitives::BlockCipher;
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyContext, KeyLengthMasking, KeyUsageCode, KeyVersion,
    ModeOfUse, ProprietaryCode, Version,
};
use firmware_protocol::message::{self, PinBlock, WrappedKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::util::{self, EntropyError};

/// Environment variable holding the master key as 64 hex digits.
pub const MASTER_KEY_ENV: &str = "PINBRIDGE_BANK_MASTER_KEY";

/// Length of a PIN verification value.
pub const PVV_LEN: usize = 16;

/// Domain tag of the PIN verification value input.
const PVV_TAG: &[u8] = b"PinBridge/bank/pvv";

/// Proprietary TR-31 usage of the stored bank management (signing) key.
const MANAGEMENT_KEY_USAGE: u8 = 90;
/// Proprietary TR-31 usage of the stored bank operator (signing) key.
const OPERATOR_KEY_USAGE: u8 = 91;

/// What went wrong inside the HSM. Messages never contain key or PIN material.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The master key is missing or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A stored key block did not unwrap under the master key (wrong master key or corrupt).
    #[error("stored key block rejected: {0}")]
    StoredKeyRejected(tr31::Tr31Error),
    /// A key block could not be built.
    #[error("key block: {0}")]
    Wrap(tr31::Tr31Error),
    /// A stored ECDSA key block carries another usage or an invalid scalar.
    #[error("stored signing key is not a {expected} key")]
    WrongSigningKey {
        /// Which key was expected.
        expected: &'static str,
    },
    /// A message field could not be built (length limits).
    #[error("message: {0}")]
    Message(#[from] message::MessageError),
    /// No entropy.
    #[error(transparent)]
    Entropy(#[from] EntropyError),
    /// A PIN block is not format 4, or did not decipher into a valid PIN.
    #[error("the PIN block did not decipher into a PIN")]
    PinBlockInvalid,
    /// The PIN account number is not a valid PAN.
    #[error("the PIN account number is not a valid PAN")]
    InvalidPan,
}

/// A key sealed under the master key: TR-31 text, safe to store (not to log).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(pub String);

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} chars)", self.0.len())
    }
}

/// A PIN verification value: AES-CMAC of the PIN under the bank's PIN verification key.
#[derive(Clone, PartialEq, Eq)]
pub struct Pvv(pub [u8; PVV_LEN]);

impl fmt::Debug for Pvv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pvv(<redacted>)")
    }
}

/// The master key: an AES-256 key-block protection key.
pub struct MasterKey(KeyBlockProtectionKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, HsmError> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| HsmError::MasterKey("not hexadecimal".into()))?,
        );
        if bytes.len() != 32 {
            return Err(HsmError::MasterKey(format!(
                "must be 32 bytes (64 hex digits), got {} bytes",
                bytes.len()
            )));
        }
        KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &bytes)
            .map(Self)
            .map_err(|e| HsmError::MasterKey(e.to_string()))
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Self, HsmError> {
        let bytes = Zeroizing::new(util::random_bytes::<32>()?);
        KeyBlockProtectionKey::new(KeyAlgorithm::Aes, bytes.as_slice())
            .map(Self)
            .map_err(|e| HsmError::MasterKey(e.to_string()))
    }

    /// The key as 64 hex digits, for writing a new key file.
    fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.material().reveal_bytes()))
    }

    /// The key from the environment variable if set, else from `path`; if neither exists
    /// and `create` is true, a new key is written to `path` (mode 0600) and returned.
    pub fn load(path: &Path, create: bool) -> Result<Self, HsmError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::from_hex(&text);
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = Self::generate()?;
                write_secret_file(path, key.to_hex().as_bytes())
                    .map_err(|e| HsmError::MasterKey(format!("{}: {e}", path.display())))?;
                Ok(key)
            }
            Err(e) => Err(HsmError::MasterKey(format!("{}: {e}", path.display()))),
        }
    }
}

fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// How a key block for the device is labelled: its TR-31 usage and mode of use.
#[derive(Clone, Copy, Debug)]
pub struct BlockUsage {
    /// TR-31 key usage.
    pub code: KeyUsageCode,
    /// TR-31 mode of use.
    pub mode: ModeOfUse,
}

impl BlockUsage {
    /// A device's key-block protection key: `K1`, encrypt/decrypt.
    pub const KBPK: Self = Self {
        code: KeyUsageCode::K1,
        mode: ModeOfUse::EncryptDecrypt,
    };
    /// A PIN encryption key the device encrypts with: `P0`, encrypt only.
    pub const DEVICE_PIN: Self = Self {
        code: KeyUsageCode::P0,
        mode: ModeOfUse::EncryptOnly,
    };
    /// The device → bank MAC key: `M6` (CMAC), generate only on the device.
    pub const DEVICE_MAC: Self = Self {
        code: KeyUsageCode::M6,
        mode: ModeOfUse::MacGenerateOnly,
    };
    /// The bank → device response key: `M6` (CMAC), verify only on the device.
    pub const DEVICE_RESPONSE: Self = Self {
        code: KeyUsageCode::M6,
        mode: ModeOfUse::MacVerifyOnly,
    };
    /// Storage of any symmetric key inside the bank: its usage, no restriction on mode.
    const fn stored(code: KeyUsageCode) -> Self {
        Self {
            code,
            mode: ModeOfUse::NoRestrictions,
        }
    }
}

/// The soft HSM.
pub struct SoftHsm {
    master: MasterKey,
    management: EcdsaSigningKey,
    operator: EcdsaSigningKey,
    pin_verification: PinVerificationKey,
}

impl fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftHsm")
            .field("management_public_key", &self.management.verifying_key())
            .field("operator_public_key", &self.operator.verifying_key())
            .finish_non_exhaustive()
    }
}

/// The bank's long-lived keys as the store keeps them (sealed under the master key).
#[derive(Clone, Debug)]
pub struct SealedBankKeys {
    /// Bank management signing key (Initialise, Enrol, BankCommand).
    pub management: SealedKey,
    /// Bank operator signing key (OperatorReset).
    pub operator: SealedKey,
    /// PIN verification key.
    pub pin_verification: SealedKey,
}

fn header(code: KeyUsageCode, mode: ModeOfUse, exportability: Exportability) -> Header {
    Header::new(
        Version::D,
        code,
        Algorithm::Aes,
        mode,
        KeyVersion::UNUSED,
        exportability,
    )
}

fn proprietary(code: u8) -> Result<KeyUsageCode, HsmError> {
    ProprietaryCode::new(code)
        .map(KeyUsageCode::Proprietary)
        .ok_or(HsmError::WrongSigningKey {
            expected: "two-digit proprietary usage",
        })
}

/// A fresh AES-256 key of usage `U`.
pub fn generate_key<U: Usage>() -> Result<Key<U>, HsmError> {
    let bytes = Zeroizing::new(util::random_bytes::<32>()?);
    Key::new(KeyAlgorithm::Aes, bytes.as_slice()).map_err(|e| HsmError::MasterKey(e.to_string()))
}

/// The standard check value of `key` (AES: CMAC, 5 bytes).
pub fn check_value(key: &KeyMaterial) -> Vec<u8> {
    kcv::compute(key, KcvMethod::standard_for(key.algorithm()))
        .as_bytes()
        .to_vec()
}

/// Compares two check values (or MACs) in constant time; different lengths never match.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl SoftHsm {
    /// Opens the bank keys sealed under `master`.
    pub fn open_bank_keys(master: MasterKey, sealed: &SealedBankKeys) -> Result<Self, HsmError> {
        let management = open_signing(&master, &sealed.management, MANAGEMENT_KEY_USAGE)?;
        let operator = open_signing(&master, &sealed.operator, OPERATOR_KEY_USAGE)?;
        let pin_verification = open_with(&master, &sealed.pin_verification)?;
        Ok(Self {
            master,
            management,
            operator,
            pin_verification,
        })
    }

    /// Generates new bank keys and seals them under `master`: first start of a bank.
    pub fn generate_bank_keys(master: &MasterKey) -> Result<SealedBankKeys, HsmError> {
        let management = util::with_rng(EcdsaSigningKey::generate)?;
        let operator = util::with_rng(EcdsaSigningKey::generate)?;
        let pvk: PinVerificationKey = generate_key()?;
        Ok(SealedBankKeys {
            management: seal_signing(master, &management, MANAGEMENT_KEY_USAGE)?,
            operator: seal_signing(master, &operator, OPERATOR_KEY_USAGE)?,
            pin_verification: seal_with(master, &pvk, BlockUsage::stored(KeyUsageCode::V0))?,
        })
    }

    /// The bank management public key, installed in devices at manufacture.
    pub fn management_public_key(&self) -> EcdsaVerifyingKey {
        self.management.verifying_key()
    }

    /// The bank operator public key, installed in devices at manufacture.
    pub fn operator_public_key(&self) -> EcdsaVerifyingKey {
        self.operator.verifying_key()
    }

    /// Signs a bank-signed request's `signed_bytes()` (Initialise, Enrol, BankCommand) with
    /// the management key, in the request's `SIGNATURE_DOMAIN` (firmware-protocol's rule).
    pub fn sign_management(
        &self,
        domain: SignatureDomain,
        signed_bytes: &[u8],
    ) -> message::EcdsaSignature {
        self.management.sign(domain, signed_bytes)
    }

    /// Signs an OperatorReset's `signed_bytes()` with the operator key, in
    /// `OperatorReset::SIGNATURE_DOMAIN`.
    pub fn sign_operator(&self, signed_bytes: &[u8]) -> message::EcdsaSignature {
        self.operator
            .sign(message::OperatorReset::SIGNATURE_DOMAIN, signed_bytes)
    }

    /// Seals a key for storage, labelled with its usage.
    pub fn seal<U: Usage>(&self, key: &Key<U>, code: KeyUsageCode) -> Result<SealedKey, HsmError> {
        seal_with(&self.master, key, BlockUsage::stored(code))
    }

    /// Opens a stored key as usage `U`; a block of another usage is refused.
    pub fn open<U: Usage>(&self, sealed: &str) -> Result<Key<U>, HsmError> {
        open_with(&self.master, &SealedKey(sealed.to_owned()))
    }

    /// Wraps `key` for a device under its key-block protection key, with the check value
    /// the device must compute.
    pub fn wrap_for_device<U: Usage>(
        &self,
        kbpk: &KeyBlockProtectionKey,
        key: &Key<U>,
        usage: BlockUsage,
    ) -> Result<WrappedKey, HsmError> {
        let block = util::with_rng(|rng| {
            tr31::wrap(
                kbpk,
                &header(usage.code, usage.mode, Exportability::NonExportable)
                    .with_key_context(KeyContext::ExchangeOnly),
                key.material(),
                KeyLengthMasking::AlgorithmMaximum,
                rng,
            )
        })?
        .map_err(HsmError::Wrap)?;
        Ok(WrappedKey {
            key_block: message::KeyBlock::new(&block)?,
            kcv: message::Kcv::new(&check_value(key.material()))?,
        })
    }

    /// Deciphers a format 4 PIN block under `pin_key` and returns the PIN's verification
    /// value. `salt` binds the value to one binding (the same PIN on two bindings gives two
    /// values).
    pub fn pin_verification_value(
        &self,
        pin_key: &PinKey,
        block: &PinBlock,
        pin_account_number: &str,
        salt: &[u8],
    ) -> Result<Pvv, HsmError> {
        if block.format() != message::PinBlockFormat::Iso4 {
            return Err(HsmError::PinBlockInvalid);
        }
        let pan = Pan::new(pin_account_number).map_err(|_| HsmError::InvalidPan)?;
        let enciphered =
            EncipheredPinBlock::from_bytes(pinblock::PinBlockFormat::Iso4, block.enciphered())
                .map_err(|_| HsmError::PinBlockInvalid)?;
        let pin = pinblock::decrypt_pin(&enciphered, Some(&pan), pin_key)
            .map_err(|_| HsmError::PinBlockInvalid)?;
        let mut input = Zeroizing::new(Vec::with_capacity(64));
        input.extend_from_slice(PVV_TAG);
        input.push(0);
        input.extend_from_slice(&(salt.len() as u16).to_be_bytes());
        input.extend_from_slice(salt);
        input.extend_from_slice(pan.digits().as_bytes());
        input.push(0);
        input.extend_from_slice(pin.reveal_digits().as_bytes());
        let mac = BlockCipher::new(self.pin_verification.material()).cmac(&input);
        let mut pvv = [0u8; PVV_LEN];
        pvv.copy_from_slice(mac.get(..PVV_LEN).ok_or(HsmError::PinBlockInvalid)?);
        Ok(Pvv(pvv))
    }

    /// Whether the PIN in `block` has the verification value `expected` (constant time).
    /// A block that does not decipher into a PIN is a wrong PIN, not a distinct answer, so
    /// the outcome is no oracle on the block's format.
    pub fn verify_pin(
        &self,
        pin_key: &PinKey,
        block: &PinBlock,
        pin_account_number: &str,
        salt: &[u8],
        expected: &[u8],
    ) -> bool {
        match self.pin_verification_value(pin_key, block, pin_account_number, salt) {
            Ok(pvv) => same_bytes(&pvv.0, expected),
            Err(_) => false,
        }
    }
}

fn seal_with<U: Usage>(
    master: &MasterKey,
    key: &Key<U>,
    usage: BlockUsage,
) -> Result<SealedKey, HsmError> {
    seal_material(master, key.material(), usage)
}

fn seal_material(
    master: &MasterKey,
    material: &KeyMaterial,
    usage: BlockUsage,
) -> Result<SealedKey, HsmError> {
    util::with_rng(|rng| {
        tr31::wrap(
            &master.0,
            &header(usage.code, usage.mode, Exportability::Sensitive)
                .with_key_context(KeyContext::StorageOnly),
            material,
            KeyLengthMasking::AlgorithmMaximum,
            rng,
        )
    })?
    .map(SealedKey)
    .map_err(HsmError::Wrap)
}

fn open_with<U: Usage>(master: &MasterKey, sealed: &SealedKey) -> Result<Key<U>, HsmError> {
    tr31::unwrap(&master.0, &sealed.0)
        .and_then(|unwrapped| unwrapped.into_key::<U>())
        .map_err(HsmError::StoredKeyRejected)
}

fn seal_signing(
    master: &MasterKey,
    key: &EcdsaSigningKey,
    code: u8,
) -> Result<SealedKey, HsmError> {
    let scalar = key.reveal_bytes();
    let material = KeyMaterial::new(KeyAlgorithm::Aes, scalar.as_slice())
        .map_err(|e| HsmError::MasterKey(e.to_string()))?;
    seal_material(
        master,
        &material,
        BlockUsage {
            code: proprietary(code)?,
            mode: ModeOfUse::SignatureOnly,
        },
    )
}

fn open_signing(
    master: &MasterKey,
    sealed: &SealedKey,
    code: u8,
) -> Result<EcdsaSigningKey, HsmError> {
    let expected = if code == MANAGEMENT_KEY_USAGE {
        "bank management"
    } else {
        "bank operator"
    };
    let unwrapped = tr31::unwrap(&master.0, &sealed.0).map_err(HsmError::StoredKeyRejected)?;
    if unwrapped.header.key_usage() != proprietary(code)? {
        return Err(HsmError::WrongSigningKey { expected });
    }
    EcdsaSigningKey::from_bytes(unwrapped.material.reveal_bytes())
        .map_err(|_| HsmError::WrongSigningKey { expected })
}
