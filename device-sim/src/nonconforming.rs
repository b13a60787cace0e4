//! Deliberately non-conforming devices, for QA of conformance tools (`pinbridge conformance`).
//!
//! `pinpad-sim serve --nonconforming SCENARIO` serves a device that breaks one rule of
//! PROTOCOL.md §2 the way a firmware bug would, and keeps every other rule. A conformance kit
//! run against it must fail the cases that check that rule and only those. The scenarios act
//! on whole link packets between the device's link engine and the TCP stream, so the device
//! core and its link engine stay the reference implementation.
//!
//! Every frame a scenario touches (ERROR, KEEPALIVE, CANCEL) fits one init packet at the sim
//! link's MTU, so looking at the init packet's command byte is enough.

use std::fmt;
use std::str::FromStr;

use firmware_protocol::link::{Command, ErrorCode, INIT_HEADER_LEN};

/// One way to break the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonconformity {
    /// ERROR frames carry a wrong CRC-32 (§2.3), as from an error path that forgot to cover
    /// the header: hosts drop them, so every refusal is lost.
    WrongCrc,
    /// CHANNEL_BUSY is never sent (§2.10): a second request during a transaction, on the
    /// owner channel or another, gets no answer at all.
    IgnoreBusy,
    /// No KEEPALIVE while a request is processed or a prompt is up (§2.10 rule 3).
    NoKeepalive,
    /// Link CANCEL is ignored (§2.10): a prompt stays up until the user or a timeout ends it.
    IgnoreCancel,
}

impl Nonconformity {
    /// Every scenario.
    pub const ALL: [Nonconformity; 4] = [
        Nonconformity::WrongCrc,
        Nonconformity::IgnoreBusy,
        Nonconformity::NoKeepalive,
        Nonconformity::IgnoreCancel,
    ];

    /// The name on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Nonconformity::WrongCrc => "wrong-crc",
            Nonconformity::IgnoreBusy => "ignore-busy",
            Nonconformity::NoKeepalive => "no-keepalive",
            Nonconformity::IgnoreCancel => "ignore-cancel",
        }
    }

    /// A packet the device is about to send: the packet to send instead, or `None` to send
    /// nothing.
    pub fn outbound(self, mut packet: Vec<u8>) -> Option<Vec<u8>> {
        let command = packet.get(4).copied();
        match self {
            Nonconformity::WrongCrc if command == Some(Command::Error.byte()) => {
                // ERROR payload is 1 byte; the CRC follows it.
                if let Some(byte) = packet.get_mut(INIT_HEADER_LEN + 1) {
                    *byte ^= 0xFF;
                }
                Some(packet)
            }
            Nonconformity::IgnoreBusy
                if command == Some(Command::Error.byte())
                    && packet.get(INIT_HEADER_LEN) == Some(&(ErrorCode::ChannelBusy as u8)) =>
            {
                None
            }
            Nonconformity::NoKeepalive if command == Some(Command::Keepalive.byte()) => None,
            _ => Some(packet),
        }
    }

    /// Whether a packet from a host reaches the device.
    pub fn inbound(self, packet: &[u8]) -> bool {
        !(self == Nonconformity::IgnoreCancel && packet.get(4) == Some(&Command::Cancel.byte()))
    }
}

impl fmt::Display for Nonconformity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario name that is not one of [`Nonconformity::ALL`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown non-conforming scenario {0:?} (use wrong-crc, ignore-busy, no-keepalive, ignore-cancel)"
)]
pub struct UnknownScenario(pub String);

impl FromStr for Nonconformity {
    type Err = UnknownScenario;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Nonconformity::ALL
            .into_iter()
            .find(|scenario| scenario.as_str() == name)
            .ok_or_else(|| UnknownScenario(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_protocol::link::{Body, ChannelId, Frame, KeepaliveStatus, Mtu};

    fn packet(body: Body) -> Vec<u8> {
        Frame::new(ChannelId(0x1a2b_3c4d), body)
            .to_packets(Mtu::SIM)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn each_scenario_touches_only_its_frames() {
        let busy = packet(Body::Error(ErrorCode::ChannelBusy));
        let cancelled = packet(Body::Error(ErrorCode::Cancelled));
        let keepalive = packet(Body::Keepalive(KeepaliveStatus::Processing));
        let ack = packet(Body::Ack { seq: 3 });
        let cancel = packet(Body::Cancel);

        let crc = Nonconformity::WrongCrc;
        assert_ne!(crc.outbound(cancelled.clone()), Some(cancelled.clone()));
        assert_eq!(crc.outbound(ack.clone()), Some(ack.clone()));
        assert_eq!(Nonconformity::IgnoreBusy.outbound(busy.clone()), None);
        assert_eq!(
            Nonconformity::IgnoreBusy.outbound(cancelled.clone()),
            Some(cancelled)
        );
        assert_eq!(Nonconformity::NoKeepalive.outbound(keepalive), None);
        assert!(!Nonconformity::IgnoreCancel.inbound(&cancel));
        assert!(Nonconformity::IgnoreCancel.inbound(&ack));
        assert!(Nonconformity::NoKeepalive.inbound(&cancel));
    }

    #[test]
    fn names_round_trip() {
        for scenario in Nonconformity::ALL {
            assert_eq!(scenario.as_str().parse(), Ok(scenario));
        }
        assert!("late-ack".parse::<Nonconformity>().is_err());
    }
}
