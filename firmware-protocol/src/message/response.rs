//! Responses: device to host. Every failure is the one generic [`ErrorResponse`]; the other
//! responses are successes and carry no status field.

use alloc::string::String;
use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::owner::{DeviceWiped, PinChangeEntered};
use super::status::StatusCode;
use super::types::{
    BankCommandKind, BankResult, Capabilities, EcPublicKey, EcdsaSignature, HostId, Indicator, Kcv,
    Lifecycle, LockState, MacTag, Nonce, PinBlock, SessionId, Sha256Digest,
};
use super::{MessageError, WireBody, limits, message_type};

/// Any failure, for any request. `indicator` is the LED state after the failure, so the app
/// can show what the device decided (a bad bank MAC or host MAC turns it to danger) without
/// another round trip.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ErrorResponse {
    /// What went wrong; never [`StatusCode::Ok`].
    pub status: StatusCode,
    /// The indicator now.
    pub indicator: Indicator,
    /// Extra words for logs and support, never secrets, 0..=128 bytes.
    pub detail: String,
}

fn check_error_status(status: StatusCode) -> Result<(), MessageError> {
    if status == StatusCode::Ok {
        return Err(MessageError::InvalidValue {
            field: "Error.status",
            reason: "an Error response cannot carry status Ok",
        });
    }
    Ok(())
}

impl WireBody for ErrorResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let code = r.u16("Error.status")?;
        let status = StatusCode::from_code(code).ok_or(MessageError::InvalidEnumValue {
            field: "Error.status",
            value: u32::from(code),
        })?;
        check_error_status(status)?;
        Ok(Self {
            status,
            indicator: Indicator::read(r, "Error.indicator")?,
            detail: r.string("Error.detail", limits::ERROR_DETAIL)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        check_error_status(self.status)?;
        w.u16(self.status.code());
        self.indicator.write(w);
        w.string("Error.detail", &self.detail, limits::ERROR_DETAIL)
    }
}

/// The device's identity and abilities (answer to `GetInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Info {
    /// Highest protocol version the device speaks (1).
    pub protocol_version: u8,
    /// Capability bits.
    pub capabilities: Capabilities,
    /// Largest message the device accepts, at most 4095 (`MAX_MESSAGE_LEN`).
    pub max_message_len: u16,
    /// Link packet size on the transport this request came over (64 on USB, the ATT MTU
    /// on BLE).
    pub link_mtu: u16,
    /// Serial number, 1..=32 bytes.
    pub serial: String,
    /// Firmware version text ("1.4.2"), 1..=32 bytes.
    pub firmware_version: String,
    /// SHA-256 of the firmware image.
    pub firmware_hash: Sha256Digest,
    /// The attestation public key (ECDSA and ECDH, P-256).
    pub attestation_public_key: EcPublicKey,
    /// The certificate the issuing CA made for the attestation key, 1..=2048 bytes.
    pub certificate: Vec<u8>,
}

impl WireBody for Info {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            protocol_version: r.u8("Info.protocol_version")?,
            capabilities: Capabilities(r.u32("Info.capabilities")?),
            max_message_len: r.u16("Info.max_message_len")?,
            link_mtu: r.u16("Info.link_mtu")?,
            serial: r.string("Info.serial", limits::SERIAL)?,
            firmware_version: r.string("Info.firmware_version", limits::FIRMWARE_VERSION)?,
            firmware_hash: Sha256Digest::read(r, "Info.firmware_hash")?,
            attestation_public_key: EcPublicKey::read(r, "Info.attestation_public_key")?,
            certificate: r.bytes("Info.certificate", limits::CERTIFICATE)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.u8(self.protocol_version);
        w.u32(self.capabilities.0);
        w.u16(self.max_message_len);
        w.u16(self.link_mtu);
        w.string("Info.serial", &self.serial, limits::SERIAL)?;
        w.string(
            "Info.firmware_version",
            &self.firmware_version,
            limits::FIRMWARE_VERSION,
        )?;
        self.firmware_hash.write(w);
        self.attestation_public_key.write(w);
        w.bytes("Info.certificate", &self.certificate, limits::CERTIFICATE)
    }
}

/// The device's state (answer to `GetStatus`, `Unpair`, `OperatorReset`, `BankCommand`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// The sticky tamper flag: set by the tamper switch, cleared only by an operator reset.
    pub tampered: bool,
    /// Lock state.
    pub lock: LockState,
    /// The indicator LED.
    pub indicator: Indicator,
    /// Number of paired hosts.
    pub paired_hosts: u8,
    /// Whether session keys are loaded.
    pub session_active: bool,
    /// The last bank sequence number the device accepted (0 if none), so the bank can
    /// resynchronise.
    pub bank_sequence: u64,
    /// Seconds until the inactivity lock (T2) engages unless the bank is contacted; absent
    /// when already locked or when no T2 policy applies.
    pub locks_in_seconds: Option<u32>,
}

impl Status {
    /// Whether this state shows `command` in force (PROTOCOL.md §3.4 BankCommand): the one
    /// reading of a relayed command's result, for the app that relayed it and for the bank
    /// it reports to. An unsigned status, so a claim, not a proof (docs/SECURITY.md).
    pub fn shows_in_force(&self, command: BankCommandKind) -> bool {
        match command {
            BankCommandKind::Wipe => self.lifecycle == Lifecycle::Revoked,
            BankCommandKind::Lock => self.lock != LockState::Unlocked,
            BankCommandKind::Unlock => self.lock == LockState::Unlocked,
            BankCommandKind::ForgetHosts => self.paired_hosts == 0,
            BankCommandKind::EndSession => !self.session_active,
        }
    }
}

impl WireBody for Status {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            lifecycle: Lifecycle::read(r, "Status.lifecycle")?,
            tampered: r.flag("Status.tampered")?,
            lock: LockState::read(r, "Status.lock")?,
            indicator: Indicator::read(r, "Status.indicator")?,
            paired_hosts: r.u8("Status.paired_hosts")?,
            session_active: r.flag("Status.session_active")?,
            bank_sequence: r.u64("Status.bank_sequence")?,
            locks_in_seconds: if r.flag("Status.locks_in_seconds")? {
                Some(r.u32("Status.locks_in_seconds")?)
            } else {
                None
            },
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.lifecycle.write(w);
        w.flag(self.tampered);
        self.lock.write(w);
        self.indicator.write(w);
        w.u8(self.paired_hosts);
        w.flag(self.session_active);
        w.u64(self.bank_sequence);
        w.flag(self.locks_in_seconds.is_some());
        if let Some(seconds) = self.locks_in_seconds {
            w.u32(seconds);
        }
        Ok(())
    }
}

/// Answer to `Ping`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pong {
    /// The ping's payload, unchanged.
    pub payload: Vec<u8>,
}

impl WireBody for Pong {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            payload: r.bytes("Pong.payload", limits::PING_PAYLOAD)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.bytes("Pong.payload", &self.payload, limits::PING_PAYLOAD)
    }
}

/// Answer to `Cancel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CancelResult {
    /// The request id the cancel named.
    pub target_request_id: u32,
    /// Whether that request was in progress and is now cancelled (false: nothing to cancel).
    pub cancelled: bool,
}

impl WireBody for CancelResult {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            target_request_id: r.u32("CancelResult.target_request_id")?,
            cancelled: r.flag("CancelResult.cancelled")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.u32(self.target_request_id);
        w.flag(self.cancelled);
        Ok(())
    }
}

/// Answer to `PairBegin`: the device's ephemeral ECDH key and nonce. The device now shows
/// the 6-digit code the pairing KDF derives; the host shows the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairChallenge {
    /// Device's ephemeral P-256 ECDH public key.
    pub device_public_key: EcPublicKey,
    /// Device's 16 random bytes for the pairing KDF.
    pub device_nonce: Nonce,
}

impl WireBody for PairChallenge {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_public_key: EcPublicKey::read(r, "PairChallenge.device_public_key")?,
            device_nonce: Nonce::read(r, "PairChallenge.device_nonce")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.device_public_key.write(w);
        self.device_nonce.write(w);
        Ok(())
    }
}

/// Answer to `PairConfirm`: the commitment matched and the user confirmed the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairResult {
    /// The id this host uses in `HostVerified` envelopes from now on.
    pub host_id: HostId,
    /// Device key-confirmation tag, computed as `crypto::pairing` (§4) defines.
    pub device_confirmation: MacTag,
}

impl WireBody for PairResult {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            host_id: HostId::read(r, "PairResult.host_id")?,
            device_confirmation: MacTag::read(r, "PairResult.device_confirmation")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.host_id.write(w);
        self.device_confirmation.write(w);
        Ok(())
    }
}

/// Answer to `Initialise`: the check value the device computed from the installed KBPK.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Initialised {
    /// KCV of the installed KBPK.
    pub kcv: Kcv,
}

impl WireBody for Initialised {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            kcv: Kcv::read(r, "Initialised.kcv")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.kcv.write(w, "Initialised.kcv")
    }
}

/// Answer to `Enrol`: the new PIN, entered twice on the device, enciphered under the
/// enrolment PIN key with the bound account number. The bank's HSM turns it into a PIN
/// verification value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Enrolled {
    /// The enciphered PIN block.
    pub pin_block: PinBlock,
}

impl WireBody for Enrolled {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            pin_block: PinBlock::read(r, "Enrolled.pin_block_format", "Enrolled.pin_block")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.pin_block.write(w);
        Ok(())
    }
}

/// Answer to `GetIntegrityReport`: the firmware measurement, signed by the attestation key
/// over [`IntegrityReport::signed_bytes`] (which covers the bank's nonce).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IntegrityReport {
    /// The device's serial.
    pub device_serial: String,
    /// Firmware version text.
    pub firmware_version: String,
    /// SHA-256 of the firmware image, measured at start-up.
    pub firmware_hash: Sha256Digest,
    /// ECDSA by the attestation key.
    pub signature: EcdsaSignature,
}

impl WireBody for IntegrityReport {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_serial: r.string("IntegrityReport.device_serial", limits::SERIAL)?,
            firmware_version: r
                .string("IntegrityReport.firmware_version", limits::FIRMWARE_VERSION)?,
            firmware_hash: Sha256Digest::read(r, "IntegrityReport.firmware_hash")?,
            signature: EcdsaSignature::read(r, "IntegrityReport.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "IntegrityReport.device_serial",
            &self.device_serial,
            limits::SERIAL,
        )?;
        w.string(
            "IntegrityReport.firmware_version",
            &self.firmware_version,
            limits::FIRMWARE_VERSION,
        )?;
        self.firmware_hash.write(w);
        self.signature.write(w);
        Ok(())
    }
}

/// Answer to `LoadSessionKeys`: all three keys passed their checks and are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeysLoaded {
    /// The session now active.
    pub session_id: SessionId,
}

impl WireBody for KeysLoaded {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "KeysLoaded.session_id")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        Ok(())
    }
}

/// Answer to `BankChallenge`: the device's nonce and a MAC under the session MAC key over
/// [`ChallengeResponse::mac_input`] (both nonces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChallengeResponse {
    /// The device's nonce.
    pub device_nonce: Nonce,
    /// The MAC.
    pub mac: MacTag,
}

impl WireBody for ChallengeResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_nonce: Nonce::read(r, "ChallengeResponse.device_nonce")?,
            mac: MacTag::read(r, "ChallengeResponse.mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.device_nonce.write(w);
        self.mac.write(w);
        Ok(())
    }
}

/// Answer to `ApprovePayment`: the user entered the PIN on the device. The PIN block is
/// enciphered under the session PIN key; the MAC under the session MAC key covers the whole
/// payment request, the PIN block and the device counter ([`PaymentApproved::mac_input`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PaymentApproved {
    /// The enciphered PIN block.
    pub pin_block: PinBlock,
    /// The device's approval counter, one more than its previous approval.
    pub device_counter: u64,
    /// The MAC.
    pub mac: MacTag,
}

impl WireBody for PaymentApproved {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            pin_block: PinBlock::read(
                r,
                "PaymentApproved.pin_block_format",
                "PaymentApproved.pin_block",
            )?,
            device_counter: r.u64("PaymentApproved.device_counter")?,
            mac: MacTag::read(r, "PaymentApproved.mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.pin_block.write(w);
        w.u64(self.device_counter);
        self.mac.write(w);
        Ok(())
    }
}

/// Answer to `VerifyBankResponse` when the bank's MAC verified: the indicator is now safe
/// and the display shows the bank's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndicatorSet {
    /// The indicator now.
    pub indicator: Indicator,
    /// The verdict the device accepted.
    pub result: BankResult,
    /// What the device's display shows ("Approved"), 0..=64 bytes.
    pub display_text: String,
}

impl WireBody for IndicatorSet {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            indicator: Indicator::read(r, "IndicatorSet.indicator")?,
            result: BankResult::read(r, "IndicatorSet.result")?,
            display_text: r.string("IndicatorSet.display_text", limits::DISPLAY_TEXT)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.indicator.write(w);
        self.result.write(w);
        w.string(
            "IndicatorSet.display_text",
            &self.display_text,
            limits::DISPLAY_TEXT,
        )
    }
}

/// Answer to `SignConfirmation`: the attestation key's signature over
/// [`super::SignConfirmation::signed_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfirmationSignature {
    /// ECDSA P-256, raw `r || s`.
    pub signature: EcdsaSignature,
}

impl WireBody for ConfirmationSignature {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            signature: EcdsaSignature::read(r, "ConfirmationSignature.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.signature.write(w);
        Ok(())
    }
}

super::message_enum! {
    /// A response, device to host. Types `0x8000..=0xEFFF`; `0xF000..=0xFFFF` is the vendor
    /// range.
    Response, vendor: [message_type::VENDOR_RESPONSE_FIRST, message_type::VENDOR_RESPONSE_LAST], {
        /// `0x8000`, to any request
        Error(ErrorResponse) = message_type::ERROR,
        /// `0x8001`, to `GetInfo`
        Info(Info) = message_type::INFO,
        /// `0x8002`, to `GetStatus`, `Unpair`, `OperatorReset`, `BankCommand`
        Status(Status) = message_type::STATUS,
        /// `0x8003`, to `Ping`
        Pong(Pong) = message_type::PONG,
        /// `0x8004`, to `Cancel`
        CancelResult(CancelResult) = message_type::CANCEL_RESULT,
        /// `0x8010`, to `PairBegin`
        PairChallenge(PairChallenge) = message_type::PAIR_CHALLENGE,
        /// `0x8011`, to `PairConfirm`
        PairResult(PairResult) = message_type::PAIR_RESULT,
        /// `0x8030`, to `Initialise`
        Initialised(Initialised) = message_type::INITIALISED,
        /// `0x8031`, to `Enrol`
        Enrolled(Enrolled) = message_type::ENROLLED,
        /// `0x8034`, to `WipeDevice`
        DeviceWiped(DeviceWiped) = message_type::DEVICE_WIPED,
        /// `0x8040`, to `GetIntegrityReport`
        IntegrityReport(IntegrityReport) = message_type::INTEGRITY_REPORT,
        /// `0x8041`, to `LoadSessionKeys`
        KeysLoaded(KeysLoaded) = message_type::KEYS_LOADED,
        /// `0x8042`, to `BankChallenge`
        ChallengeResponse(ChallengeResponse) = message_type::CHALLENGE_RESPONSE,
        /// `0x8050`, to `ApprovePayment`
        PaymentApproved(PaymentApproved) = message_type::PAYMENT_APPROVED,
        /// `0x8051`, to `VerifyBankResponse` and `VerifyPinChange`
        IndicatorSet(IndicatorSet) = message_type::INDICATOR_SET,
        /// `0x8052`, to `SignConfirmation`
        ConfirmationSignature(ConfirmationSignature) = message_type::CONFIRMATION_SIGNATURE,
        /// `0x8053`, to `ChangePin`
        PinChangeEntered(PinChangeEntered) = message_type::PIN_CHANGE_ENTERED,
    }
}
