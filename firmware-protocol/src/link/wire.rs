//! Packet geometry, channel ids, the command table and the message CRC.

use core::fmt;

use crc::{CRC_32_ISO_HDLC, Crc};

use super::error::LinkError;
use super::{
    CONTINUATION_HEADER_LEN, CRC_LEN, INIT_HEADER_LEN, MAX_CONTINUATION_PACKETS, MAX_PAYLOAD_LEN,
};

/// Packet size of a link: every packet on it is exactly this long.
///
/// 64 on USB and on the sim link; on BLE the negotiated ATT payload size (ATT_MTU - 3: 20 with
/// the default ATT MTU of 23, 244 typical with data length extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mtu(u16);

impl Mtu {
    /// Smallest supported packet size (BLE default).
    pub const MIN: Mtu = Mtu(20);
    /// Largest supported packet size.
    pub const MAX: Mtu = Mtu(512);
    /// USB full-speed interrupt/bulk packet size.
    pub const USB: Mtu = Mtu(64);
    /// The simulator link uses the USB size so the same packet code runs there.
    pub const SIM: Mtu = Mtu(64);
    /// BLE without an ATT MTU exchange.
    pub const BLE_MIN: Mtu = Mtu(20);
    /// BLE with a typical negotiated ATT MTU of 247.
    pub const BLE_TYPICAL: Mtu = Mtu(244);

    /// A packet size in 20..=512.
    pub const fn new(bytes: usize) -> Result<Mtu, LinkError> {
        if bytes < Mtu::MIN.0 as usize || bytes > Mtu::MAX.0 as usize {
            return Err(LinkError::InvalidMtu { mtu: bytes });
        }
        // In range, so the cast cannot truncate.
        Ok(Mtu(bytes as u16))
    }

    /// Packet size in bytes.
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// Message bytes an init packet carries (MTU - 7).
    pub const fn init_data_len(self) -> usize {
        self.get() - INIT_HEADER_LEN
    }

    /// Message bytes a continuation packet carries (MTU - 5).
    pub const fn continuation_data_len(self) -> usize {
        self.get() - CONTINUATION_HEADER_LEN
    }

    /// Largest payload a message may declare on this link: what one init and 128 continuation
    /// packets carry minus the CRC, capped at [`MAX_PAYLOAD_LEN`]. 1929 bytes at MTU 20,
    /// 4096 from MTU 37 up.
    pub const fn max_payload_len(self) -> usize {
        let capacity = self.init_data_len()
            + MAX_CONTINUATION_PACKETS * self.continuation_data_len()
            - CRC_LEN;
        if capacity < MAX_PAYLOAD_LEN {
            capacity
        } else {
            MAX_PAYLOAD_LEN
        }
    }

    /// Packets a message with a payload of `payload_len` bytes occupies.
    pub const fn packet_count(self, payload_len: usize) -> usize {
        let stream = payload_len + CRC_LEN;
        if stream <= self.init_data_len() {
            1
        } else {
            1 + (stream - self.init_data_len()).div_ceil(self.continuation_data_len())
        }
    }
}

impl fmt::Display for Mtu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A 32-bit channel id, big-endian on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// Channel 0: never used.
    pub const RESERVED: ChannelId = ChannelId(0);
    /// Channel 0xFFFFFFFF: `INIT` requests (and answers to them) before a channel exists.
    pub const BROADCAST: ChannelId = ChannelId(0xFFFF_FFFF);

    /// Whether this is the broadcast channel.
    pub const fn is_broadcast(self) -> bool {
        self.0 == ChannelId::BROADCAST.0
    }

    /// Whether a device may hand this id out (neither 0 nor broadcast).
    pub const fn is_assignable(self) -> bool {
        self.0 != ChannelId::RESERVED.0 && self.0 != ChannelId::BROADCAST.0
    }

    /// The four bytes on the wire.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// Which end of the link a state machine runs on; decides which commands it accepts and
/// whether it answers faults (a host never sends `ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The desktop side.
    Host,
    /// The PIN pad (or the mock device).
    Device,
}

/// The command byte of an init packet (top bit always set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// Echo: the device answers with the same payload.
    Ping = 0x81,
    /// A message-layer payload, preceded by its delivery sequence number.
    Msg = 0x83,
    /// Acknowledges the `MSG` with the sequence number it carries.
    Ack = 0x84,
    /// The last message on this channel arrived damaged: retransmit it now.
    Nack = 0x85,
    /// Channel allocation (on broadcast) or resynchronisation (on an open channel).
    Init = 0x86,
    /// Ask the device to identify itself (blink, beep). Optional.
    Wink = 0x88,
    /// Abort the transaction in progress on this channel.
    Cancel = 0x91,
    /// The device is still working on the request: status.
    Keepalive = 0xBB,
    /// The device refuses a message: error code.
    Error = 0xBF,
}

impl Command {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// Parses an init packet's command byte.
    pub const fn from_byte(byte: u8) -> Result<Self, LinkError> {
        Ok(match byte {
            0x81 => Command::Ping,
            0x83 => Command::Msg,
            0x84 => Command::Ack,
            0x85 => Command::Nack,
            0x86 => Command::Init,
            0x88 => Command::Wink,
            0x91 => Command::Cancel,
            0xBB => Command::Keepalive,
            0xBF => Command::Error,
            _ => return Err(LinkError::UnknownCommand { byte }),
        })
    }

    /// Whether an end playing `receiver` ever receives this command.
    pub const fn accepted_by(self, receiver: Role) -> bool {
        match self {
            Command::Ping
            | Command::Msg
            | Command::Ack
            | Command::Nack
            | Command::Init
            | Command::Wink => true,
            Command::Cancel => matches!(receiver, Role::Device),
            Command::Keepalive | Command::Error => matches!(receiver, Role::Host),
        }
    }

    /// Whether the command may travel on the broadcast channel.
    pub const fn allowed_on_broadcast(self) -> bool {
        matches!(self, Command::Init | Command::Error)
    }

    /// Commands that make a device start work, refused with `CHANNEL_BUSY` while another
    /// channel owns the transaction.
    pub(crate) const fn starts_work(self) -> bool {
        matches!(
            self,
            Command::Ping | Command::Msg | Command::Init | Command::Wink
        )
    }
}

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC over channel (4) | command (1) | length (2) | payload: the init packet's
/// header as sent, then the payload.
pub(crate) fn message_crc(
    channel: ChannelId,
    command: u8,
    declared_len: u16,
    payload: &[u8],
) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(&channel.to_bytes());
    digest.update(&[command]);
    digest.update(&declared_len.to_be_bytes());
    digest.update(payload);
    digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_the_catalogued_crc32_iso_hdlc() {
        // Check value from the CRC RevEng catalogue, entry CRC-32/ISO-HDLC:
        // crc("123456789") = 0xCBF43926.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn max_payload_follows_from_128_continuations_then_the_cap() {
        assert_eq!(Mtu::MIN.max_payload_len(), 13 + 128 * 15 - 4);
        assert_eq!(Mtu::MIN.max_payload_len(), 1929);
        assert_eq!(Mtu(36).max_payload_len(), 29 + 128 * 31 - 4);
        assert_eq!(Mtu(37).max_payload_len(), MAX_PAYLOAD_LEN);
        assert_eq!(Mtu::USB.max_payload_len(), MAX_PAYLOAD_LEN);
        for mtu in 20..=512 {
            let mtu = Mtu(mtu);
            assert!(mtu.packet_count(mtu.max_payload_len()) <= 1 + MAX_CONTINUATION_PACKETS);
        }
    }
}
