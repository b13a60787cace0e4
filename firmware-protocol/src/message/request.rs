//! Requests: host to device. Each struct is one message body; its fields are on the wire in
//! declaration order, with the encodings `PROTOCOL.md` §3 tabulates.

use alloc::string::String;
use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::owner::{ChangePin, VerifyPinChange, WipeDevice, check_pin_lengths};
use super::types::{
    BankCommandKind, BankResult, EcPublicKey, EcdsaSignature, HostId, MacTag, Nonce,
    PaymentDetails, SessionId, Sha256Digest, WrappedKey, check_pin_account,
};
use super::{MessageError, WireBody, limits, message_type};

/// Asks for the device's identity and capabilities (answered by `Info`). Empty body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GetInfo;

impl WireBody for GetInfo {
    fn read(_: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self)
    }
    fn write(&self, _: &mut Writer) -> Result<(), MessageError> {
        Ok(())
    }
}

/// Asks for the device's current state (answered by `Status`). Empty body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GetStatus;

impl WireBody for GetStatus {
    fn read(_: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self)
    }
    fn write(&self, _: &mut Writer) -> Result<(), MessageError> {
        Ok(())
    }
}

/// Liveness check; the device echoes the payload in `Pong`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ping {
    /// Echoed unchanged, 0..=1024 bytes.
    pub payload: Vec<u8>,
}

impl WireBody for Ping {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            payload: r.bytes("Ping.payload", limits::PING_PAYLOAD)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.bytes("Ping.payload", &self.payload, limits::PING_PAYLOAD)
    }
}

/// Cancels the request in progress whose request id is `target_request_id`. The device
/// first answers that request with `Error(HostCancelled)`, then this one with
/// `CancelResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cancel {
    /// Request id of the request to cancel.
    pub target_request_id: u32,
}

impl WireBody for Cancel {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            target_request_id: r.u32("Cancel.target_request_id")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.u32(self.target_request_id);
        Ok(())
    }
}

/// Starts pairing: the host's ephemeral ECDH key and its commitment to its nonce (answered by
/// `PairChallenge`). The host reveals the nonce only in `PairConfirm`, after it has seen the
/// device's key and nonce, so a man in the middle cannot search for a matching code (§4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairBegin {
    /// Host's ephemeral P-256 ECDH public key.
    pub host_public_key: EcPublicKey,
    /// `crypto::pairing::HostCommitment` over the host public key and host nonce.
    pub host_commitment: Sha256Digest,
    /// Name the device shows and lists for this host ("LAPTOP-ALICE"), 0..=32 bytes.
    pub host_name: String,
}

impl WireBody for PairBegin {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            host_public_key: EcPublicKey::read(r, "PairBegin.host_public_key")?,
            host_commitment: Sha256Digest::read(r, "PairBegin.host_commitment")?,
            host_name: r.string("PairBegin.host_name", limits::HOST_NAME)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.host_public_key.write(w);
        self.host_commitment.write(w);
        w.string("PairBegin.host_name", &self.host_name, limits::HOST_NAME)
    }
}

/// Reveals the host nonce. The device checks it against `PairBegin.host_commitment`, derives
/// the comparison code, shows it, waits for the user to confirm it on its keypad and answers
/// `PairResult` with its key-confirmation tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairConfirm {
    /// The host's 16-byte pairing nonce committed to in `PairBegin`.
    pub host_nonce: Nonce,
}

impl WireBody for PairConfirm {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            host_nonce: Nonce::read(r, "PairConfirm.host_nonce")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.host_nonce.write(w);
        Ok(())
    }
}

/// Removes a paired host (answered by `Status`). Needs the host-verified envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unpair {
    /// The host to forget (the sender itself or another).
    pub host_id: HostId,
}

impl WireBody for Unpair {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            host_id: HostId::read(r, "Unpair.host_id")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.host_id.write(w);
        Ok(())
    }
}

/// The host-verification envelope (DESIGN §2 layer 3): a complete encoded request, MACed
/// by a paired host under the key derived from its pairing key, with a per-host counter.
/// The device checks host id, counter and MAC *before* it decodes `inner` (see
/// [`HostVerified::open`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostVerified {
    /// The sender's host id from pairing.
    pub host_id: HostId,
    /// Strictly greater than the last counter the device accepted from this host.
    pub counter: u64,
    /// The inner request exactly as it would be sent unwrapped: header (same request id as
    /// the envelope) and body. 7..=4054 bytes.
    pub inner: Vec<u8>,
    /// MAC over [`HostVerified::mac_input`].
    pub mac: MacTag,
}

impl WireBody for HostVerified {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            host_id: HostId::read(r, "HostVerified.host_id")?,
            counter: r.u64("HostVerified.counter")?,
            inner: r.bytes("HostVerified.inner", limits::ENVELOPE_INNER)?,
            mac: MacTag::read(r, "HostVerified.mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.host_id.write(w);
        w.u64(self.counter);
        w.bytes("HostVerified.inner", &self.inner, limits::ENVELOPE_INNER)?;
        self.mac.write(w);
        Ok(())
    }
}

/// Bank initialisation: installs the device's key-block protection key (KBPK), wrapped in
/// a TR-31 block under a KEK from ECDH(bank ephemeral key, device attestation key), and
/// signed by the bank's management key. Answered by `Initialised`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Initialise {
    /// The serial of the device this is for, 1..=32 bytes.
    pub device_serial: String,
    /// Bank sequence number, strictly greater than the last the device accepted.
    pub sequence: u64,
    /// The bank's ephemeral P-256 ECDH public key.
    pub bank_public_key: EcPublicKey,
    /// The KBPK as a TR-31 block (usage `K1`) and its expected check value.
    pub kbpk: WrappedKey,
    /// ECDSA over [`Initialise::signed_bytes`] by the bank management key.
    pub signature: EcdsaSignature,
}

impl WireBody for Initialise {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_serial: r.string("Initialise.device_serial", limits::SERIAL)?,
            sequence: r.u64("Initialise.sequence")?,
            bank_public_key: EcPublicKey::read(r, "Initialise.bank_public_key")?,
            kbpk: WrappedKey::read(r, "Initialise.kbpk_block", "Initialise.kbpk_kcv")?,
            signature: EcdsaSignature::read(r, "Initialise.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "Initialise.device_serial",
            &self.device_serial,
            limits::SERIAL,
        )?;
        w.u64(self.sequence);
        self.bank_public_key.write(w);
        self.kbpk
            .write(w, "Initialise.kbpk_block", "Initialise.kbpk_kcv")?;
        self.signature.write(w);
        Ok(())
    }
}

/// Enrolment and binding: the bank binds the device to a customer and gives it the PIN key
/// for this enrolment. The device asks for the new PIN twice on its own keypad and answers
/// `Enrolled` with the PIN enciphered under that key. The clear PIN never leaves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Enrol {
    /// The serial of the device this is for.
    pub device_serial: String,
    /// Bank sequence number, strictly greater than the last the device accepted.
    pub sequence: u64,
    /// The bank's customer id the device is bound to, 1..=64 bytes.
    pub customer_id: String,
    /// The account number that goes into the PIN block's PAN field, 12..=19 ASCII digits;
    /// the device keeps it with the binding and uses it for payment PIN blocks too.
    pub pin_account_number: String,
    /// Fewest PIN digits the bank accepts, 4..=12.
    pub pin_length_min: u8,
    /// Most PIN digits the bank accepts, `pin_length_min..=12`.
    pub pin_length_max: u8,
    /// The PIN encryption key (TR-31 usage `P0`, under the KBPK) and its check value.
    pub pin_key: WrappedKey,
    /// ECDSA over [`Enrol::signed_bytes`] by the bank management key.
    pub signature: EcdsaSignature,
}

impl WireBody for Enrol {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let device_serial = r.string("Enrol.device_serial", limits::SERIAL)?;
        let sequence = r.u64("Enrol.sequence")?;
        let customer_id = r.string("Enrol.customer_id", limits::CUSTOMER_ID)?;
        let pin_account_number = r.string("Enrol.pin_account_number", limits::PIN_ACCOUNT)?;
        check_pin_account("Enrol.pin_account_number", &pin_account_number)?;
        let pin_length_min = r.u8("Enrol.pin_length_min")?;
        let pin_length_max = r.u8("Enrol.pin_length_max")?;
        check_pin_lengths("Enrol.pin_length_max", pin_length_min, pin_length_max)?;
        Ok(Self {
            device_serial,
            sequence,
            customer_id,
            pin_account_number,
            pin_length_min,
            pin_length_max,
            pin_key: WrappedKey::read(r, "Enrol.pin_key_block", "Enrol.pin_key_kcv")?,
            signature: EcdsaSignature::read(r, "Enrol.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string("Enrol.device_serial", &self.device_serial, limits::SERIAL)?;
        w.u64(self.sequence);
        w.string("Enrol.customer_id", &self.customer_id, limits::CUSTOMER_ID)?;
        check_pin_account("Enrol.pin_account_number", &self.pin_account_number)?;
        w.string(
            "Enrol.pin_account_number",
            &self.pin_account_number,
            limits::PIN_ACCOUNT,
        )?;
        check_pin_lengths(
            "Enrol.pin_length_max",
            self.pin_length_min,
            self.pin_length_max,
        )?;
        w.u8(self.pin_length_min);
        w.u8(self.pin_length_max);
        self.pin_key
            .write(w, "Enrol.pin_key_block", "Enrol.pin_key_kcv")?;
        self.signature.write(w);
        Ok(())
    }
}

/// Operator reset of a tampered or revoked device, authorised by a token signed with the
/// bank operator key. Wipes everything but the attestation identity and the bank sequence;
/// the device returns to `Manufactured` and answers `Status`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OperatorReset {
    /// The serial of the device this is for.
    pub device_serial: String,
    /// Bank sequence number, strictly greater than the last the device accepted.
    pub sequence: u64,
    /// The operator who authorised it (kept in the device's log), 1..=32 bytes.
    pub operator_id: String,
    /// ECDSA over [`OperatorReset::signed_bytes`] by the bank operator key.
    pub signature: EcdsaSignature,
}

impl WireBody for OperatorReset {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_serial: r.string("OperatorReset.device_serial", limits::SERIAL)?,
            sequence: r.u64("OperatorReset.sequence")?,
            operator_id: r.string("OperatorReset.operator_id", limits::OPERATOR_ID)?,
            signature: EcdsaSignature::read(r, "OperatorReset.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "OperatorReset.device_serial",
            &self.device_serial,
            limits::SERIAL,
        )?;
        w.u64(self.sequence);
        w.string(
            "OperatorReset.operator_id",
            &self.operator_id,
            limits::OPERATOR_ID,
        )?;
        self.signature.write(w);
        Ok(())
    }
}

/// A bank command (lock, unlock, wipe) signed by the bank management key. Answered by
/// `Status`. Needs no host verification: a loss report must reach the device through
/// whatever host it is plugged into.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BankCommand {
    /// The serial of the device this is for.
    pub device_serial: String,
    /// Bank sequence number, strictly greater than the last the device accepted.
    pub sequence: u64,
    /// What to do.
    pub command: BankCommandKind,
    /// Text the device shows ("Reported lost"), 0..=64 bytes.
    pub reason: String,
    /// ECDSA over [`BankCommand::signed_bytes`] by the bank management key.
    pub signature: EcdsaSignature,
}

impl WireBody for BankCommand {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_serial: r.string("BankCommand.device_serial", limits::SERIAL)?,
            sequence: r.u64("BankCommand.sequence")?,
            command: BankCommandKind::read(r, "BankCommand.command")?,
            reason: r.string("BankCommand.reason", limits::COMMAND_REASON)?,
            signature: EcdsaSignature::read(r, "BankCommand.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "BankCommand.device_serial",
            &self.device_serial,
            limits::SERIAL,
        )?;
        w.u64(self.sequence);
        self.command.write(w);
        w.string("BankCommand.reason", &self.reason, limits::COMMAND_REASON)?;
        self.signature.write(w);
        Ok(())
    }
}

/// Asks for the firmware measurement signed by the attestation key, fresh for the bank's
/// nonce (answered by `IntegrityReport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GetIntegrityReport {
    /// The bank's nonce, covered by the signature.
    pub nonce: Nonce,
}

impl WireBody for GetIntegrityReport {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            nonce: Nonce::read(r, "GetIntegrityReport.nonce")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.nonce.write(w);
        Ok(())
    }
}

/// Login: fresh session keys from the bank, each a TR-31 block under the KBPK with its
/// check value. The device checks all three (usage, KCV, distinctness) and installs all or
/// none: a failed check is an intrusion, refused with the old keys kept. Answered by
/// `KeysLoaded`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoadSessionKeys {
    /// The session these keys belong to; later session messages name it.
    pub session_id: SessionId,
    /// PIN encryption key (usage `P0`).
    pub pin_key: WrappedKey,
    /// Device-to-bank MAC key (usage `M*`): `ChallengeResponse`, `PaymentApproved`.
    pub mac_key: WrappedKey,
    /// Bank-to-device MAC key (usage `M*`): `ApprovePayment`, `VerifyBankResponse`.
    pub response_key: WrappedKey,
}

impl WireBody for LoadSessionKeys {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "LoadSessionKeys.session_id")?,
            pin_key: WrappedKey::read(
                r,
                "LoadSessionKeys.pin_key_block",
                "LoadSessionKeys.pin_key_kcv",
            )?,
            mac_key: WrappedKey::read(
                r,
                "LoadSessionKeys.mac_key_block",
                "LoadSessionKeys.mac_key_kcv",
            )?,
            response_key: WrappedKey::read(
                r,
                "LoadSessionKeys.response_key_block",
                "LoadSessionKeys.response_key_kcv",
            )?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        self.pin_key.write(
            w,
            "LoadSessionKeys.pin_key_block",
            "LoadSessionKeys.pin_key_kcv",
        )?;
        self.mac_key.write(
            w,
            "LoadSessionKeys.mac_key_block",
            "LoadSessionKeys.mac_key_kcv",
        )?;
        self.response_key.write(
            w,
            "LoadSessionKeys.response_key_block",
            "LoadSessionKeys.response_key_kcv",
        )
    }
}

/// Login: the bank's random challenge (answered by `ChallengeResponse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BankChallenge {
    /// The current session.
    pub session_id: SessionId,
    /// The bank's nonce.
    pub bank_nonce: Nonce,
}

impl WireBody for BankChallenge {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "BankChallenge.session_id")?,
            bank_nonce: Nonce::read(r, "BankChallenge.bank_nonce")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        self.bank_nonce.write(w);
        Ok(())
    }
}

/// Payment: the canonical payment the bank prepared, MACed by the bank under the session
/// response key. The device shows it, takes the PIN on its keypad and answers
/// `PaymentApproved`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApprovePayment {
    /// The current session.
    pub session_id: SessionId,
    /// What the device shows and both MACs cover.
    pub payment: PaymentDetails,
    /// The bank's payment counter: strictly greater than the last the device accepted.
    pub counter: u64,
    /// MAC over [`ApprovePayment::mac_input`] under the session response key.
    pub bank_mac: MacTag,
}

impl WireBody for ApprovePayment {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "ApprovePayment.session_id")?,
            payment: PaymentDetails::read(r)?,
            counter: r.u64("ApprovePayment.counter")?,
            bank_mac: MacTag::read(r, "ApprovePayment.bank_mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        self.payment.write(w)?;
        w.u64(self.counter);
        self.bank_mac.write(w);
        Ok(())
    }
}

/// Payment: the bank's MACed verdict on the payment the device approved. The device checks
/// it and sets its indicator (answered by `IndicatorSet`, or by `Error(BadBankMac)` with the
/// indicator at danger).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerifyBankResponse {
    /// The current session.
    pub session_id: SessionId,
    /// The pending payment's bank transaction id.
    pub bank_transaction_id: String,
    /// The device counter of the `PaymentApproved` this answers.
    pub device_counter: u64,
    /// The bank's verdict.
    pub result: BankResult,
    /// MAC over [`VerifyBankResponse::mac_input`] under the session response key.
    pub bank_mac: MacTag,
}

impl WireBody for VerifyBankResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "VerifyBankResponse.session_id")?,
            bank_transaction_id: r.string(
                "VerifyBankResponse.bank_transaction_id",
                limits::TRANSACTION_ID,
            )?,
            device_counter: r.u64("VerifyBankResponse.device_counter")?,
            result: BankResult::read(r, "VerifyBankResponse.result")?,
            bank_mac: MacTag::read(r, "VerifyBankResponse.bank_mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        w.string(
            "VerifyBankResponse.bank_transaction_id",
            &self.bank_transaction_id,
            limits::TRANSACTION_ID,
        )?;
        w.u64(self.device_counter);
        self.result.write(w);
        self.bank_mac.write(w);
        Ok(())
    }
}

/// Out-of-band confirmation (patent 8446183): a payment started elsewhere, pushed by the
/// bank. The device shows it and, once the user approves, signs
/// [`SignConfirmation::signed_bytes`] with its attestation key (answered by
/// `ConfirmationSignature`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignConfirmation {
    /// What the device shows and signs.
    pub payment: PaymentDetails,
    /// The bank's nonce for this confirmation.
    pub nonce: Nonce,
}

impl WireBody for SignConfirmation {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            payment: PaymentDetails::read(r)?,
            nonce: Nonce::read(r, "SignConfirmation.nonce")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.payment.write(w)?;
        self.nonce.write(w);
        Ok(())
    }
}

super::message_enum! {
    /// A request, host to device. Types `0x0001..=0x6FFF`; `0x7000..=0x7FFF` is the vendor
    /// range.
    Request, vendor: [message_type::VENDOR_REQUEST_FIRST, message_type::VENDOR_REQUEST_LAST], {
        /// `0x0001`
        GetInfo(GetInfo) = message_type::GET_INFO,
        /// `0x0002`
        GetStatus(GetStatus) = message_type::GET_STATUS,
        /// `0x0003`
        Ping(Ping) = message_type::PING,
        /// `0x0004`
        Cancel(Cancel) = message_type::CANCEL,
        /// `0x0010`
        PairBegin(PairBegin) = message_type::PAIR_BEGIN,
        /// `0x0011`
        PairConfirm(PairConfirm) = message_type::PAIR_CONFIRM,
        /// `0x0012`
        Unpair(Unpair) = message_type::UNPAIR,
        /// `0x0020`
        HostVerified(HostVerified) = message_type::HOST_VERIFIED,
        /// `0x0030`
        Initialise(Initialise) = message_type::INITIALISE,
        /// `0x0031`
        Enrol(Enrol) = message_type::ENROL,
        /// `0x0032`
        OperatorReset(OperatorReset) = message_type::OPERATOR_RESET,
        /// `0x0033`
        BankCommand(BankCommand) = message_type::BANK_COMMAND,
        /// `0x0034`
        WipeDevice(WipeDevice) = message_type::WIPE_DEVICE,
        /// `0x0040`
        GetIntegrityReport(GetIntegrityReport) = message_type::GET_INTEGRITY_REPORT,
        /// `0x0041`
        LoadSessionKeys(LoadSessionKeys) = message_type::LOAD_SESSION_KEYS,
        /// `0x0042`
        BankChallenge(BankChallenge) = message_type::BANK_CHALLENGE,
        /// `0x0050`
        ApprovePayment(ApprovePayment) = message_type::APPROVE_PAYMENT,
        /// `0x0051`
        VerifyBankResponse(VerifyBankResponse) = message_type::VERIFY_BANK_RESPONSE,
        /// `0x0052`
        SignConfirmation(SignConfirmation) = message_type::SIGN_CONFIRMATION,
        /// `0x0053`
        ChangePin(ChangePin) = message_type::CHANGE_PIN,
        /// `0x0054`
        VerifyPinChange(VerifyPinChange) = message_type::VERIFY_PIN_CHANGE,
    }
}

impl Request {
    /// Whether the device accepts this request only inside a [`HostVerified`] envelope
    /// (sent bare, it is refused with `NotPaired`). The envelope itself is `false`.
    pub fn requires_host_verification(&self) -> bool {
        requires_host_verification(self.message_type())
    }
}

/// Whether requests of `message_type` must come inside a [`HostVerified`] envelope: the
/// session, payment and PIN-change requests (a paired app only may drive a bank session) and
/// `Unpair`. `WipeDevice` is not among them: the keypad confirmation is the owner's consent,
/// and an owner who lost the paired computer must still be able to wipe the device.
pub const fn requires_host_verification(message_type: u16) -> bool {
    matches!(
        message_type,
        message_type::UNPAIR
            | message_type::LOAD_SESSION_KEYS
            | message_type::BANK_CHALLENGE
            | message_type::APPROVE_PAYMENT
            | message_type::VERIFY_BANK_RESPONSE
            | message_type::SIGN_CONFIRMATION
            | message_type::CHANGE_PIN
            | message_type::VERIFY_PIN_CHANGE
    )
}
