//! Field types shared by several messages: fixed-size byte strings, validated newtypes and
//! the one-byte enumerations. Nothing here is secret: keys travel only inside TR-31 blocks
//! and PINs only as enciphered PIN blocks, so these types need no zeroizing.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::MessageError;
use super::codec::{LengthLimit, Reader, Writer};
use super::limits;

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Size on the wire.
            pub const LEN: usize = $len;

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
                Ok(Self(r.array(field)?))
            }

            pub(crate) fn write(&self, w: &mut Writer) {
                w.raw(&self.0);
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                write_hex(f, &self.0)?;
                f.write_str(")")
            }
        }
    };
}

/// The 8-byte id the device gives a paired host (`PairResult.host_id`): the pairing's own type,
/// so the envelope and the MAC over it name a host the same way.
pub use crate::crypto::pairing::HostId;

impl HostId {
    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        Ok(Self::from_array(r.array(field)?))
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(self.as_bytes());
    }
}
fixed_bytes!(
    /// A 16-byte random value from a CSPRNG, used once.
    Nonce, 16
);
fixed_bytes!(
    /// The 16-byte id the bank gives a session when it loads session keys.
    SessionId, 16
);
fixed_bytes!(
    /// A 16-byte MAC. AES-CMAC fills it; an 8-byte TDES retail MAC (ISO 9797-1 algorithm 3)
    /// occupies the first 8 bytes and the last 8 are zero, and the verifier compares all 16.
    MacTag, 16
);
/// An ECDSA P-256 signature as raw `r || s`, 32 bytes each, big-endian: the crypto module's
/// own type, so what a message carries is what `crypto::ecdsa` verifies.
pub use crate::crypto::ecdsa::EcdsaSignature;

impl EcdsaSignature {
    /// Size on the wire.
    pub const LEN: usize = crate::crypto::ecdsa::SIGNATURE_LEN;

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        Ok(Self::from_array(r.array(field)?))
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(self.as_bytes());
    }
}
fixed_bytes!(
    /// A SHA-256 digest.
    Sha256Digest, 32
);

/// A P-256 public key in SEC1 uncompressed form: `0x04 || X (32) || Y (32)`. The decoder
/// checks the prefix; whether the point is on the curve is checked by whoever uses the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcPublicKey([u8; 65]);

impl EcPublicKey {
    /// Size on the wire.
    pub const LEN: usize = 65;

    /// Wraps SEC1 uncompressed bytes; refuses any other prefix than `0x04`.
    pub fn new(bytes: [u8; 65]) -> Result<Self, MessageError> {
        Self::checked("EcPublicKey", bytes)
    }

    fn checked(field: &'static str, bytes: [u8; 65]) -> Result<Self, MessageError> {
        if bytes[0] != 0x04 {
            return Err(MessageError::InvalidValue {
                field,
                reason: "not a SEC1 uncompressed point (first byte must be 0x04)",
            });
        }
        Ok(Self(bytes))
    }

    /// The 65 bytes.
    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.0
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        Self::checked(field, r.array(field)?)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl From<&crate::crypto::ecdsa::P256PublicKey> for EcPublicKey {
    /// The key on the wire (a validated key is always SEC1 uncompressed).
    fn from(key: &crate::crypto::ecdsa::P256PublicKey) -> Self {
        Self(key.to_sec1_bytes())
    }
}

impl fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcPublicKey(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// An ISO 4217 alphabetic currency code: three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// Parses `"EUR"`-style codes.
    pub fn new(code: &str) -> Result<Self, MessageError> {
        let bytes: [u8; 3] =
            code.as_bytes()
                .try_into()
                .map_err(|_| MessageError::InvalidValue {
                    field: "CurrencyCode",
                    reason: "an ISO 4217 code is three letters A-Z",
                })?;
        Self::checked("CurrencyCode", bytes)
    }

    fn checked(field: &'static str, bytes: [u8; 3]) -> Result<Self, MessageError> {
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MessageError::InvalidValue {
                field,
                reason: "an ISO 4217 code is three letters A-Z",
            });
        }
        Ok(Self(bytes))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only A-Z ever gets in, so this never falls back.
        core::str::from_utf8(&self.0).unwrap_or("???")
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        Self::checked(field, r.array(field)?)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrencyCode({})", self.as_str())
    }
}

/// A key check value: the leading bytes of a key's encryption of zeros (or of its CMAC),
/// 3 to 16 bytes as the key's algorithm and §4 define.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Kcv(Vec<u8>);

impl Kcv {
    /// Wraps check-value bytes; refuses lengths outside 3..=16.
    pub fn new(bytes: &[u8]) -> Result<Self, MessageError> {
        limits::KCV.check("Kcv", bytes.len())?;
        Ok(Self(bytes.to_vec()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        Ok(Self(r.bytes(field, limits::KCV)?))
    }

    pub(crate) fn write(&self, w: &mut Writer, field: &'static str) -> Result<(), MessageError> {
        w.bytes(field, &self.0, limits::KCV)
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kcv(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// A TR-31 key block as its ASCII text (printable characters `0x20..=0x7E`). The key inside
/// is enciphered and authenticated under a key the relaying host does not have.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyBlock(String);

impl KeyBlock {
    /// Wraps TR-31 text; refuses non-printable characters and lengths outside 16..=1024.
    pub fn new(text: &str) -> Result<Self, MessageError> {
        Self::checked("KeyBlock", text.as_bytes())
    }

    fn checked(field: &'static str, raw: &[u8]) -> Result<Self, MessageError> {
        limits::KEY_BLOCK.check(field, raw.len())?;
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(MessageError::InvalidValue {
                field,
                reason: "a TR-31 key block is printable ASCII (0x20..=0x7E)",
            });
        }
        let text = core::str::from_utf8(raw).map_err(|_| MessageError::InvalidUtf8 { field })?;
        Ok(Self(String::from(text)))
    }

    /// The key block text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        let len = usize::from(r.u16(field)?);
        limits::KEY_BLOCK.check(field, len)?;
        Self::checked(field, r.take(field, len)?)
    }

    pub(crate) fn write(&self, w: &mut Writer, field: &'static str) -> Result<(), MessageError> {
        w.bytes(field, self.0.as_bytes(), limits::KEY_BLOCK)
    }
}

impl fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text is ciphertext plus a clear header; showing the header (usage, algorithm)
        // is what helps when a block is refused.
        let header = self.0.get(..16).unwrap_or(&self.0);
        write!(f, "KeyBlock({header}..., {} chars)", self.0.len())
    }
}

/// A key in a TR-31 block with the check value the receiver must compute from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WrappedKey {
    /// The TR-31 block.
    pub key_block: KeyBlock,
    /// The expected check value of the key inside.
    pub kcv: Kcv,
}

impl WrappedKey {
    pub(crate) fn read(
        r: &mut Reader<'_>,
        block_field: &'static str,
        kcv_field: &'static str,
    ) -> Result<Self, MessageError> {
        Ok(Self {
            key_block: KeyBlock::read(r, block_field)?,
            kcv: Kcv::read(r, kcv_field)?,
        })
    }

    pub(crate) fn write(
        &self,
        w: &mut Writer,
        block_field: &'static str,
        kcv_field: &'static str,
    ) -> Result<(), MessageError> {
        self.key_block.write(w, block_field)?;
        self.kcv.write(w, kcv_field)
    }
}

/// Generates a one-byte wire enumeration from one table: each variant with its wire value and
/// its name in text (snake case, as JSON, logs and the app's screens spell it), so the byte,
/// the variant and the text cannot disagree and nobody else keeps a table of the names.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal, )* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The wire byte.
            pub const fn to_wire(self) -> u8 {
                match self {
                    $( $name::$variant => $value, )*
                }
            }

            /// The value for a wire byte, or `None` if undefined.
            pub const fn from_wire(value: u8) -> Option<Self> {
                match value {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The value's name in text, snake case (`LockedByBank` is `"locked_by_bank"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }

            pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
                let value = r.u8(field)?;
                Self::from_wire(value).ok_or(MessageError::InvalidEnumValue {
                    field,
                    value: u32::from(value),
                })
            }

            pub(crate) fn write(self, w: &mut Writer) {
                w.u8(self.to_wire());
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::message::UnknownName;

            /// Parses the text [`Self::as_str`] gives.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )*
                    _ => Err($crate::message::UnknownName { kind: stringify!($name) }),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum!(
    /// Where the device is in its life (see the lifecycle diagram in `PROTOCOL.md` §3).
    Lifecycle {
        /// Attestation key and certificate only; no bank keys. Also the state after an
        /// operator reset.
        Manufactured = 0 => "manufactured",
        /// The bank installed its key-block protection key.
        Initialised = 1 => "initialised",
        /// Enrolled and bound to a customer; pairing, login and payments possible.
        Bound = 2 => "bound",
        /// Wiped by a bank command; only an operator reset revives it.
        Revoked = 3 => "revoked",
    }
);

wire_enum!(
    /// Whether payment functions are locked.
    LockState {
        /// Not locked.
        Unlocked = 0 => "unlocked",
        /// Locked by the device itself: no successful bank contact for longer than T2.
        LockedInactivity = 1 => "locked_inactivity",
        /// Locked by a bank command (loss report).
        LockedByBank = 2 => "locked_by_bank",
        /// Locked by the device itself at power-on: it was off for longer than T1
        /// (PROTOCOL.md §6.11). Lifted like `LockedInactivity`, by a bank Unlock.
        LockedPowerOff = 3 => "locked_power_off",
        /// Locked by the device itself: its identifiers no longer match the activation
        /// record made at enrolment (§6.11). Held longer than T, the payment data is deleted.
        LockedIdentity = 4 => "locked_identity",
    }
);

wire_enum!(
    /// The security indicator LED, driven by the device's secure processor only.
    Indicator {
        /// Dark.
        Off = 0 => "off",
        /// Steady green: the last bank response was genuine.
        Safe = 1 => "safe",
        /// Fast-blinking red: tamper, failed host verification or a forged bank response.
        Danger = 2 => "danger",
    }
);

wire_enum!(
    /// What a signed bank command orders.
    BankCommandKind {
        /// Lock payment functions (loss report).
        Lock = 1 => "lock",
        /// Lift a bank lock or an inactivity lock.
        Unlock = 2 => "unlock",
        /// Wipe all bank keys, bindings and pairings; the device becomes `Revoked`.
        Wipe = 3 => "wipe",
        /// Forget every paired host (a lost or stolen computer): the customer pairs the
        /// computers they still have again. Binding, keys and lock are kept.
        ForgetHosts = 4 => "forget_hosts",
        /// Drop the session keys and any pending payment now: the bank ended the session
        /// (logout). Nothing else changes.
        EndSession = 5 => "end_session",
    }
);

wire_enum!(
    /// The bank's verdict on a payment, as carried in its MACed response.
    BankResult {
        /// Paid.
        Approved = 0 => "approved",
        /// Declined without a more specific reason.
        Declined = 1 => "declined",
        /// The PIN did not verify.
        PinIncorrect = 2 => "pin_incorrect",
        /// Not enough money.
        InsufficientFunds = 3 => "insufficient_funds",
        /// Over a limit.
        LimitExceeded = 4 => "limit_exceeded",
        /// The account is blocked.
        AccountBlocked = 5 => "account_blocked",
        /// The bank already journaled this payment.
        Duplicate = 6 => "duplicate",
        /// The bank failed; the payment was not made.
        SystemError = 7 => "system_error",
    }
);

wire_enum!(
    /// ISO 9564-1 PIN block format.
    PinBlockFormat {
        /// Format 0, 8 bytes, TDES.
        Iso0 = 0 => "iso0",
        /// Format 4, 16 bytes, AES.
        Iso4 = 4 => "iso4",
    }
);

/// An enciphered PIN block: 1 format byte, then 16 bytes. A format 0 block is 8 bytes and
/// is followed by 8 zero bytes, so the field has one size whatever the format.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinBlock {
    format: PinBlockFormat,
    block: [u8; 16],
}

impl PinBlock {
    /// Size on the wire (format byte included).
    pub const WIRE_LEN: usize = 17;

    /// Wraps an enciphered PIN block of the format's length (8 or 16 bytes).
    pub fn new(format: PinBlockFormat, enciphered: &[u8]) -> Result<Self, MessageError> {
        let expected = match format {
            PinBlockFormat::Iso0 => 8,
            PinBlockFormat::Iso4 => 16,
        };
        if enciphered.len() != expected {
            return Err(MessageError::LengthOutOfRange {
                field: "PinBlock",
                len: enciphered.len(),
                min: expected,
                max: expected,
            });
        }
        let mut block = [0u8; 16];
        block[..expected].copy_from_slice(enciphered);
        Ok(Self { format, block })
    }

    /// The format.
    pub fn format(&self) -> PinBlockFormat {
        self.format
    }

    /// The enciphered block, 8 or 16 bytes as the format says.
    pub fn enciphered(&self) -> &[u8] {
        match self.format {
            PinBlockFormat::Iso0 => &self.block[..8],
            PinBlockFormat::Iso4 => &self.block,
        }
    }

    /// The 16 bytes as they are on the wire after the format byte.
    pub fn wire_block(&self) -> &[u8; 16] {
        &self.block
    }

    pub(crate) fn read(
        r: &mut Reader<'_>,
        format_field: &'static str,
        block_field: &'static str,
    ) -> Result<Self, MessageError> {
        let format = PinBlockFormat::read(r, format_field)?;
        let block: [u8; 16] = r.array(block_field)?;
        if format == PinBlockFormat::Iso0 && block[8..] != [0u8; 8] {
            return Err(MessageError::InvalidValue {
                field: block_field,
                reason: "a format 0 PIN block is 8 bytes followed by 8 zero bytes",
            });
        }
        Ok(Self { format, block })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.format.write(w);
        w.raw(&self.block);
    }
}

impl fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinBlock({:?}, ", self.format)?;
        write_hex(f, self.enciphered())?;
        f.write_str(")")
    }
}

/// Device capability flags, a `u32` bit set. Unknown bits are kept, so a newer device's
/// flags survive a round trip through an older host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u32);

impl Capabilities {
    /// USB transport.
    pub const USB: u32 = 1 << 0;
    /// BLE transport.
    pub const BLE: u32 = 1 << 1;
    /// TR-31 key blocks version D (AES).
    pub const TR31_AES: u32 = 1 << 2;
    /// TR-31 key blocks version B (TDES).
    pub const TR31_TDES: u32 = 1 << 3;
    /// ISO 9564 PIN block format 4.
    pub const PIN_BLOCK_ISO4: u32 = 1 << 4;
    /// ISO 9564 PIN block format 0.
    pub const PIN_BLOCK_ISO0: u32 = 1 << 5;
    /// AES-CMAC.
    pub const MAC_AES_CMAC: u32 = 1 << 6;
    /// ISO 9797-1 MAC algorithm 3 (retail MAC).
    pub const MAC_RETAIL: u32 = 1 << 7;
    /// Out-of-band confirmation signing (`SignConfirmation`).
    pub const CONFIRMATION_SIGNING: u32 = 1 << 8;
    /// Integrity reports (`GetIntegrityReport`).
    pub const INTEGRITY_REPORT: u32 = 1 << 9;
    /// A bank-card reader.
    pub const CARD_READER: u32 = 1 << 10;

    /// Whether every bit of `flags` is set.
    pub const fn contains(self, flags: u32) -> bool {
        self.0 & flags == flags
    }
}

/// The canonical payment the bank prepared, as the device shows it and as both MACs cover
/// it. Shared by `ApprovePayment` and `SignConfirmation`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaymentDetails {
    /// Payer account (IBAN or domestic number), 1..=34 bytes.
    pub payer_account: String,
    /// Payee account, 1..=34 bytes.
    pub payee_account: String,
    /// Payee name as the device shows it, 1..=140 bytes.
    pub payee_name: String,
    /// Amount in minor units of the currency (cents for EUR).
    pub amount_minor: u64,
    /// ISO 4217 alphabetic code.
    pub currency: CurrencyCode,
    /// ISO 4217 minor-unit exponent (2 for EUR, 0 for JPY, 3 for BHD), 0..=4, so the device
    /// places the decimal point without a currency table of its own.
    pub currency_exponent: u8,
    /// Free-text reference, 0..=140 bytes.
    pub reference: String,
    /// The bank's transaction id, 1..=64 bytes.
    pub bank_transaction_id: String,
}

impl PaymentDetails {
    /// The amount as the device shows it: [`crate::display::format_amount`] of
    /// `amount_minor` and `currency_exponent`.
    pub fn amount_text(&self) -> String {
        crate::display::format_amount(self.amount_minor, self.currency_exponent)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let payer_account = r.string("PaymentDetails.payer_account", limits::ACCOUNT)?;
        let payee_account = r.string("PaymentDetails.payee_account", limits::ACCOUNT)?;
        let payee_name = r.string("PaymentDetails.payee_name", limits::PAYEE_NAME)?;
        let amount_minor = r.u64("PaymentDetails.amount_minor")?;
        let currency = CurrencyCode::read(r, "PaymentDetails.currency")?;
        let currency_exponent = r.u8("PaymentDetails.currency_exponent")?;
        check_exponent(currency_exponent)?;
        let reference = r.string("PaymentDetails.reference", limits::REFERENCE)?;
        let bank_transaction_id =
            r.string("PaymentDetails.bank_transaction_id", limits::TRANSACTION_ID)?;
        Ok(Self {
            payer_account,
            payee_account,
            payee_name,
            amount_minor,
            currency,
            currency_exponent,
            reference,
            bank_transaction_id,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "PaymentDetails.payer_account",
            &self.payer_account,
            limits::ACCOUNT,
        )?;
        w.string(
            "PaymentDetails.payee_account",
            &self.payee_account,
            limits::ACCOUNT,
        )?;
        w.string(
            "PaymentDetails.payee_name",
            &self.payee_name,
            limits::PAYEE_NAME,
        )?;
        w.u64(self.amount_minor);
        self.currency.write(w);
        check_exponent(self.currency_exponent)?;
        w.u8(self.currency_exponent);
        w.string(
            "PaymentDetails.reference",
            &self.reference,
            limits::REFERENCE,
        )?;
        w.string(
            "PaymentDetails.bank_transaction_id",
            &self.bank_transaction_id,
            limits::TRANSACTION_ID,
        )
    }
}

fn check_exponent(exponent: u8) -> Result<(), MessageError> {
    if exponent > limits::MAX_CURRENCY_EXPONENT {
        return Err(MessageError::InvalidValue {
            field: "PaymentDetails.currency_exponent",
            reason: "ISO 4217 minor-unit exponents are 0..=4",
        });
    }
    Ok(())
}

/// Checks an account number used in PIN blocks: 12..=19 ASCII digits (ISO 9564 PAN rule).
pub(crate) fn check_pin_account(field: &'static str, value: &str) -> Result<(), MessageError> {
    check_limit_and_digits(field, value, limits::PIN_ACCOUNT)
}

fn check_limit_and_digits(
    field: &'static str,
    value: &str,
    limit: LengthLimit,
) -> Result<(), MessageError> {
    limit.check(field, value.len())?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MessageError::InvalidValue {
            field,
            reason: "must be ASCII digits 0-9",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;

    use super::super::{PinChangeResult, UnknownName};
    use super::*;

    /// `LockedByBank` -> `locked_by_bank`: what every table's text must be.
    fn snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    macro_rules! check_names {
        ($($name:ident),*) => {$(
            for value in $name::ALL {
                assert_eq!(value.as_str(), snake(&format!("{value:?}")));
                assert_eq!(value.as_str().parse::<$name>(), Ok(*value));
                assert_eq!(format!("{value}"), value.as_str());
            }
            assert_eq!(
                "no such value".parse::<$name>(),
                Err(UnknownName { kind: stringify!($name) })
            );
        )*};
    }

    #[test]
    fn every_wire_enum_value_has_a_snake_case_name_that_parses_back() {
        check_names!(
            Lifecycle,
            LockState,
            Indicator,
            BankCommandKind,
            BankResult,
            PinBlockFormat,
            PinChangeResult
        );
        assert_eq!(LockState::LockedByBank.as_str(), "locked_by_bank");
    }
}
