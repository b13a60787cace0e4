//! Provisioning by the bank (PROTOCOL.md §4.3, §6): manufacture, Initialise (the key-block
//! protection key), Enrol (binding and the customer's PIN), the bank's signed commands and the
//! integrity report, with the checks every bank-signed request passes (serial, signature,
//! sequence).

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::host_auth::HostVerifier;
use firmware_protocol::crypto::keys::PinKey;
use firmware_protocol::crypto::pinblock::Pan;
use firmware_protocol::device_side::{self, PayloadError};
use firmware_protocol::message::{
    self, BankCommand, BankCommandKind, EcdsaSignature, Enrol, Enrolled, GetIntegrityReport,
    Indicator, Initialise, Initialised, Lifecycle, LockState, Response, StatusCode,
};

use super::texts::Text;
use super::{
    Binding, DEFAULT_LINK_MTU, DEFAULT_LOCK_AFTER_SECONDS, DEFAULT_USER_TIMEOUT_SECONDS, Device,
    DeviceError, FIRMWARE_VERSION, Operation, PinEntry, Refusal, Step, Volatile,
    firmware_image_hash, internal, refuse,
};
use crate::certificate::CaKey;
use crate::hardware::{EventKind, Hardware};

/// Settings fixed at manufacture.
#[derive(Clone, Debug)]
pub struct Manufacture {
    /// Device serial, 1..=32 bytes of text.
    pub serial: String,
    /// Bank management public key (verifies Initialise, Enrol, BankCommand).
    pub bank_management_key: Option<EcdsaVerifyingKey>,
    /// Bank operator public key (verifies OperatorReset).
    pub bank_operator_key: Option<EcdsaVerifyingKey>,
    /// T2, seconds.
    pub lock_after_seconds: u64,
    /// T1: powered off for longer than this, the device locks at power-on (0: never).
    pub power_off_lock_seconds: u64,
    /// T: an identity lock held this long deletes the payment data.
    pub identity_wipe_seconds: u64,
    /// SHA-256 of the firmware image installed at manufacture: the reference the device
    /// compares its start-up measurement with (default: [`firmware_image_hash`]).
    pub firmware_hash: [u8; 32],
    /// How long the user has to act on a prompt, seconds.
    pub user_timeout_seconds: u64,
    /// The display language it leaves the factory with (changed later on the device).
    pub display_language: super::Language,
    /// Certificate validity start, Unix seconds.
    pub certificate_not_before: u64,
    /// Certificate validity end, Unix seconds.
    pub certificate_not_after: u64,
}

/// How long a certificate issued at manufacture is valid.
pub const CERTIFICATE_VALIDITY_SECONDS: u64 = 20 * 365 * 24 * 3600;

impl Manufacture {
    /// Defaults for everything but the serial; the certificate is valid from a day before
    /// now (clock skew between the factory and the bank) for 20 years.
    pub fn new(serial: impl Into<String>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let not_before = now.saturating_sub(24 * 3600);
        Self {
            serial: serial.into(),
            bank_management_key: None,
            bank_operator_key: None,
            lock_after_seconds: DEFAULT_LOCK_AFTER_SECONDS,
            power_off_lock_seconds: firmware_protocol::lifecycle::REFERENCE_T1_SECONDS,
            identity_wipe_seconds: firmware_protocol::lifecycle::REFERENCE_T_SECONDS,
            firmware_hash: firmware_image_hash(FIRMWARE_VERSION),
            user_timeout_seconds: DEFAULT_USER_TIMEOUT_SECONDS,
            display_language: super::Language::En,
            certificate_not_before: not_before,
            certificate_not_after: not_before.saturating_add(CERTIFICATE_VALIDITY_SECONDS),
        }
    }
}

/// A bank payload the device refuses (firmware-protocol's device side), as the refusal it
/// answers with.
pub(super) fn payload_refusal(error: PayloadError) -> Refusal {
    refuse(error.status_code(), error.to_string())
}

/// A request the bank (or its operator) signs for one device: Initialise, Enrol, BankCommand,
/// OperatorReset.
pub(super) trait BankSigned {
    fn device_serial(&self) -> &str;
    fn sequence(&self) -> u64;
    fn domain(&self) -> SignatureDomain;
    fn signed(&self) -> Result<Vec<u8>, message::MessageError>;
    fn signature(&self) -> &EcdsaSignature;
}

macro_rules! bank_signed {
    ($($request:ty),+) => {$(
        impl BankSigned for $request {
            fn device_serial(&self) -> &str {
                &self.device_serial
            }
            fn sequence(&self) -> u64 {
                self.sequence
            }
            fn domain(&self) -> SignatureDomain {
                <$request>::SIGNATURE_DOMAIN
            }
            fn signed(&self) -> Result<Vec<u8>, message::MessageError> {
                self.signed_bytes()
            }
            fn signature(&self) -> &EcdsaSignature {
                &self.signature
            }
        }
    )+};
}
bank_signed!(Initialise, Enrol, BankCommand, message::OperatorReset);

impl Device {
    /// Manufactures a device: a fresh attestation key, a certificate from `ca`, the bank's
    /// public keys, lifecycle Manufactured.
    pub fn manufacture(
        settings: &Manufacture,
        ca: &CaKey,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, DeviceError> {
        let attestation = EcdsaSigningKey::generate(rng);
        let certificate = ca.issue(
            &settings.serial,
            &attestation.verifying_key(),
            settings.certificate_not_before,
            settings.certificate_not_after,
        )?;
        let reference = settings.firmware_hash;
        Ok(Self {
            serial: settings.serial.clone(),
            firmware_version: FIRMWARE_VERSION.into(),
            firmware_reference_hash: reference,
            measured_firmware_hash: reference,
            attestation,
            certificate: certificate.to_bytes(),
            bank_management_key: settings.bank_management_key,
            bank_operator_key: settings.bank_operator_key,
            lock_after_ms: settings.lock_after_seconds.saturating_mul(1000),
            power_off_lock_ms: settings.power_off_lock_seconds.saturating_mul(1000),
            identity_wipe_ms: settings.identity_wipe_seconds.saturating_mul(1000),
            user_timeout_ms: settings.user_timeout_seconds.saturating_mul(1000),
            language: settings.display_language,
            link_mtu: DEFAULT_LINK_MTU,
            bank_sequence: 0,
            tampered: false,
            lifecycle: Lifecycle::Manufactured,
            lock: LockState::Unlocked,
            kbpk: None,
            binding: None,
            hosts: HostVerifier::new(),
            host_names: Vec::new(),
            last_payment_counter: 0,
            device_counter: 0,
            last_bank_contact_ms: 0,
            activation_record: None,
            locked_since_ms: 0,
            last_alive_ms: 0,
            indicator: Indicator::Off,
            volatile: Volatile::default(),
        })
    }

    /// What every bank- or operator-signed request passes first, in this order: made for this
    /// device (`WrongDevice`), signed by `key` in the request's domain (`BadSignature`), a bank
    /// sequence above the last accepted one (`StaleBankCounter`).
    pub(super) fn check_bank_signed(
        &self,
        key: Option<&EcdsaVerifyingKey>,
        request: &impl BankSigned,
    ) -> Result<(), Refusal> {
        let serial = request.device_serial();
        if serial != self.serial {
            return Err(refuse(
                StatusCode::WrongDevice,
                format!("signed for device {serial}, this is {}", self.serial),
            ));
        }
        let key = key.ok_or_else(|| {
            refuse(
                StatusCode::BadSignature,
                "no bank public key was installed at manufacture",
            )
        })?;
        let signed = request.signed().map_err(internal)?;
        key.verify(request.domain(), &signed, request.signature())
            .map_err(|e| refuse(StatusCode::BadSignature, e.to_string()))?;
        let sequence = request.sequence();
        if sequence <= self.bank_sequence {
            return Err(refuse(
                StatusCode::StaleBankCounter,
                format!(
                    "bank sequence {sequence} is not above the last accepted {}",
                    self.bank_sequence
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn initialise<H: Hardware>(
        &mut self,
        request: Initialise,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_bank_signed(self.bank_management_key.as_ref(), &request)?;
        let kbpk =
            device_side::unwrap_kbpk(&self.attestation, &request).map_err(payload_refusal)?;
        let kcv = device_side::kcv_of(kbpk.material()).map_err(payload_refusal)?;
        self.kbpk = Some(kbpk);
        self.lifecycle = Lifecycle::Initialised;
        self.lock = LockState::Unlocked;
        self.bank_sequence = request.sequence;
        self.bank_contact(hw);
        self.outcome(vec![self.say(Text::Initialised)], hw);
        hw.record(EventKind::State {
            change: "initialised".into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Initialised(Initialised { kcv })))
    }

    pub(super) fn enrol<H: Hardware>(
        &mut self,
        request_id: u32,
        request: Enrol,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_bank_signed(self.bank_management_key.as_ref(), &request)?;
        let kbpk = self
            .kbpk
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotInitialised, "no key-block protection key"))?;
        let pin_key: PinKey =
            device_side::unwrap_key(kbpk, &request.pin_key, "pin_key").map_err(payload_refusal)?;
        self.bank_contact(hw);
        let max = request.pin_length_max;
        let prompt = vec![
            self.say(Text::EnrolmentFor(&request.customer_id)),
            self.say(Text::ChoosePin(request.pin_length_min, max)),
            self.say(Text::PinLine),
            self.say(Text::KeysEnter),
        ];
        self.start(
            request_id,
            Operation::Enrol {
                request: Box::new(request),
                pin_key,
                first: None,
                entry: PinEntry::new(max),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    pub(super) fn bank_command<H: Hardware>(
        &mut self,
        request: BankCommand,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_bank_signed(self.bank_management_key.as_ref(), &request)?;
        self.bank_sequence = request.sequence;
        self.bank_contact(hw);
        let change = match request.command {
            BankCommandKind::Lock => {
                self.lock_payments(LockState::LockedByBank, hw);
                "locked by the bank"
            }
            BankCommandKind::Unlock => {
                self.lock = LockState::Unlocked;
                "unlocked by the bank"
            }
            BankCommandKind::Wipe => {
                self.wipe_bank_data();
                self.lifecycle = Lifecycle::Revoked;
                self.lock = LockState::Unlocked;
                "wiped by the bank: revoked"
            }
            BankCommandKind::ForgetHosts => {
                // A lost computer: its pairing (and every other) goes; the session the lost
                // one may hold goes with it.
                self.hosts = HostVerifier::new();
                self.host_names.clear();
                self.volatile.pairing = None;
                self.volatile.session = None;
                self.volatile.pending_payment = None;
                self.volatile.pending_pin_change = None;
                "paired computers forgotten by the bank"
            }
            BankCommandKind::EndSession => {
                self.volatile.session = None;
                self.volatile.pending_payment = None;
                self.volatile.pending_pin_change = None;
                "session ended by the bank (logout)"
            }
        };
        // The bank's reason stays as long as the state it explains. An EndSession without
        // one changes nothing on the screen (§6.11 "nothing else changes"): the logout relayed
        // right after a payment or PIN change must not erase that outcome's screen (§6.1).
        if !request.reason.is_empty() {
            self.volatile.banner = vec![request.reason.clone()];
            self.volatile.banner_until_ms = None;
        } else if request.command != BankCommandKind::EndSession {
            self.volatile.banner = Vec::new();
            self.volatile.banner_until_ms = None;
        }
        hw.record(EventKind::State {
            change: change.into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }

    pub(super) fn integrity_report(&self, request: GetIntegrityReport) -> Result<Step, Refusal> {
        let report = device_side::integrity_report(
            &self.attestation,
            &request,
            self.serial.clone(),
            self.firmware_version.clone(),
            self.measured_firmware_hash,
        )
        .map_err(payload_refusal)?;
        Ok(Step::Respond(Response::IntegrityReport(report)))
    }

    pub(super) fn finish_enrol<H: Hardware>(
        &mut self,
        request: &Enrol,
        pin_key: &PinKey,
        entry: &PinEntry,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let pin = entry.pin()?;
        let pan = Pan::new(&request.pin_account_number).map_err(internal)?;
        let pin_block =
            device_side::iso4_pin_block(pin_key, &pin, &pan, hw.rng()).map_err(payload_refusal)?;
        self.binding = Some(Binding {
            customer_id: request.customer_id.clone(),
            pin_account_number: request.pin_account_number.clone(),
            pin_length_min: request.pin_length_min,
            pin_length_max: request.pin_length_max,
        });
        self.lifecycle = Lifecycle::Bound;
        self.record_activation(hw);
        self.bank_sequence = self.bank_sequence.max(request.sequence);
        self.last_payment_counter = 0;
        self.device_counter = 0;
        self.bank_contact(hw);
        self.outcome(vec![self.say(Text::BoundTo(&request.customer_id))], hw);
        hw.record(EventKind::State {
            change: "enrolled and bound".into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Response::Enrolled(Enrolled { pin_block }))
    }
}
