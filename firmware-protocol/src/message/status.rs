//! Status codes: what went wrong, precisely enough for the app to tell the user without logs.

use core::fmt;

/// First status code of the vendor range; codes from here to `0xFFFF` are vendor-defined.
pub const VENDOR_STATUS_FIRST: u16 = 0xF000;

macro_rules! status_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// The reason a request failed, `u16` big-endian on the wire (`Error.status`).
        ///
        /// Codes are grouped by their high byte: `0x00` protocol and user, `0x01` device
        /// condition, `0x02` host pairing and verification, `0x03` keys, `0x04` bank
        /// authentication, `0x05` PIN entry; `0xF000..=0xFFFF` is the vendor range.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StatusCode {
            $( $(#[$doc])* $name, )*
            /// A vendor-defined code in `0xF000..=0xFFFF`.
            Vendor(u16),
        }

        impl StatusCode {
            /// Every defined (non-vendor) code, in wire order.
            pub const ALL: &'static [StatusCode] = &[ $( StatusCode::$name, )* ];

            /// The wire value.
            pub const fn code(self) -> u16 {
                match self {
                    $( StatusCode::$name => $code, )*
                    StatusCode::Vendor(code) => code,
                }
            }

            /// The code for a wire value, or `None` if it is neither defined nor vendor.
            pub const fn from_code(code: u16) -> Option<Self> {
                match code {
                    $( $code => Some(StatusCode::$name), )*
                    VENDOR_STATUS_FIRST..=u16::MAX => Some(StatusCode::Vendor(code)),
                    _ => None,
                }
            }

            /// The code's name as PROTOCOL.md §3.5 spells it (`"KcvMismatch"`); `"Vendor"` for
            /// any vendor code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( StatusCode::$name => stringify!($name), )*
                    StatusCode::Vendor(_) => "Vendor",
                }
            }

            /// One line for people: what the device refused and why.
            pub const fn description(self) -> &'static str {
                match self {
                    $( StatusCode::$name => $text, )*
                    StatusCode::Vendor(_) => "vendor-defined status",
                }
            }
        }

        impl core::str::FromStr for StatusCode {
            type Err = super::UnknownName;

            /// Parses a defined code's name as [`StatusCode::as_str`] gives it (vendor codes
            /// have no name of their own, so `"Vendor"` is refused).
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( stringify!($name) => Ok(StatusCode::$name), )*
                    _ => Err(super::UnknownName { kind: "StatusCode" }),
                }
            }
        }
    };
}

status_codes! {
    /// Success. Never sent in an `Error` response (the decoder refuses it there); listed so
    /// status fields elsewhere (link-layer keepalives, logs) have a value for success.
    Ok = 0x0000, "success";
    /// The header's version byte is not supported.
    UnsupportedVersion = 0x0001, "unsupported protocol version";
    /// The message type is unknown to the device.
    UnknownMessage = 0x0002, "unknown message type";
    /// The message did not decode (truncated, over a length limit, bad enum value, ...).
    MalformedMessage = 0x0003, "malformed message";
    /// Another request is in progress (on this or another channel).
    Busy = 0x0004, "device busy with another request";
    /// The request is not allowed in the device's current lifecycle state.
    WrongState = 0x0005, "request not allowed in the device's current state";
    /// The host cancelled the request (a `Cancel` request or a link-layer CANCEL).
    HostCancelled = 0x0006, "cancelled by the host";
    /// The user pressed Cancel on the device.
    UserCancelled = 0x0007, "cancelled by the user on the device";
    /// The user did not act on the device in time.
    UserTimeout = 0x0008, "timed out waiting for the user";
    /// The device lacks a capability the request needs (see `Info.capabilities`).
    Unsupported = 0x0009, "capability not supported by this device";
    /// The device failed internally; the request had no effect.
    InternalError = 0x000A, "internal device error";
    /// The tamper switch fired: keys wiped, refused until an operator reset.
    Tampered = 0x0100, "device tampered: keys wiped, operator reset required";
    /// A temporary lock: no bank contact within T2, or powered off for longer than T1. Only
    /// the bank unlocks it, after it verified the device again.
    Locked = 0x0101, "device locked: too long without bank contact or powered off";
    /// Locked by a bank command.
    LockedByBank = 0x0102, "device locked by the bank";
    /// No key-block protection key yet: the bank must initialise the device.
    NotInitialised = 0x0103, "device not initialised by the bank";
    /// Not enrolled and bound to a customer.
    NotBound = 0x0104, "device not bound to a customer";
    /// Wiped by the bank (lost or replaced); only an operator reset revives it.
    Revoked = 0x0105, "device revoked by the bank";
    /// The firmware's self-measurement failed; payment functions are disabled.
    IntegrityFailure = 0x0106, "firmware integrity check failed";
    /// No session keys are loaded (log in first).
    NoSession = 0x0107, "no bank session";
    /// A bank-signed payload names another device's serial.
    WrongDevice = 0x0108, "payload is for another device";
    /// The device's identifiers differ from its activation record: payment functions are
    /// locked (`LockState::LockedIdentity`) until the bank unlocks them.
    IdentityMismatch = 0x0109, "device identity differs from its activation record";
    /// The request needs the host-verified envelope and came without it.
    NotPaired = 0x0200, "host not paired: request needs host verification";
    /// The envelope's host id is not in the device's pairing table.
    UnknownHost = 0x0201, "unknown host id";
    /// The envelope's MAC does not verify.
    BadHostMac = 0x0202, "host verification MAC invalid";
    /// The envelope's counter is not greater than the last one accepted from that host.
    ReplayedCounter = 0x0203, "replayed host counter";
    /// The envelope is inconsistent (inner request id differs, nested envelope, bad inner).
    BadEnvelope = 0x0204, "malformed host-verified envelope";
    /// The user said the pairing codes shown on device and host differ.
    PairingCodeMismatch = 0x0205, "pairing codes did not match";
    /// The host's pairing key-confirmation tag is wrong.
    PairingConfirmationFailed = 0x0206, "pairing key confirmation failed";
    /// No room for another paired host.
    PairingTableFull = 0x0207, "pairing table full";
    /// A TR-31 key block did not parse or did not authenticate.
    KeyBlockRejected = 0x0300, "key block rejected";
    /// A key block's usage header is not the one this field needs.
    WrongKeyUsage = 0x0301, "key block has the wrong key usage";
    /// The key's check value differs from the expected one; the old keys are kept.
    KcvMismatch = 0x0302, "key check value mismatch";
    /// Two keys that must be distinct (PIN, MAC, response) are equal.
    KeysNotDistinct = 0x0303, "session keys are not distinct";
    /// A key's algorithm or length is not supported.
    UnsupportedKeyAlgorithm = 0x0304, "unsupported key algorithm";
    /// A bank MAC does not verify; the indicator is now danger.
    BadBankMac = 0x0400, "bank MAC invalid";
    /// A bank or operator signature does not verify.
    BadSignature = 0x0401, "signature invalid";
    /// A bank sequence number or payment counter is not greater than the last accepted.
    StaleBankCounter = 0x0402, "stale bank sequence or counter";
    /// The payload's session id is not the current session's.
    SessionMismatch = 0x0403, "payload is for another session";
    /// The bank response does not match the pending payment (transaction id or counter).
    TransactionMismatch = 0x0404, "bank response does not match the pending payment";
    /// The two PIN entries at enrolment differ.
    PinMismatch = 0x0500, "the two PIN entries differ";
    /// The PIN entered breaks the bank's PIN policy (length).
    PinPolicy = 0x0501, "PIN does not meet the PIN policy";
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04x})", self.description(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_codes_are_unique() {
        for (index, status) in StatusCode::ALL.iter().enumerate() {
            assert_eq!(StatusCode::from_code(status.code()), Some(*status));
            for other in &StatusCode::ALL[index + 1..] {
                assert_ne!(status.code(), other.code(), "{status:?} and {other:?}");
            }
        }
        assert_eq!(
            StatusCode::from_code(0xF00D),
            Some(StatusCode::Vendor(0xF00D))
        );
        assert_eq!(StatusCode::from_code(0x0099), None);
    }

    #[test]
    fn every_name_parses_back_and_names_are_the_variants() {
        for status in StatusCode::ALL {
            assert_eq!(status.as_str().parse::<StatusCode>(), Ok(*status));
            assert_eq!(alloc::format!("{status:?}"), status.as_str());
        }
        assert_eq!(StatusCode::Vendor(0xF00D).as_str(), "Vendor");
        assert!("Vendor".parse::<StatusCode>().is_err());
        assert!("kcv_mismatch".parse::<StatusCode>().is_err());
    }
}
