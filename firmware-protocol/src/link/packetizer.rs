//! Frame -> packets.

use alloc::vec;
use alloc::vec::Vec;

use super::error::LinkError;
use super::frame::{Body, Frame};
use super::wire::{ChannelId, Mtu, message_crc};
use super::{CONTINUATION_HEADER_LEN, INIT_HEADER_LEN};

/// Splits one frame into the packets that carry it on a link of a given MTU: an init packet,
/// then continuation packets with sequence 0, 1, ... Every packet is exactly MTU bytes long,
/// unused tail bytes zero.
///
/// The message stream split across the packets is payload | CRC-32 (big-endian), the CRC taken
/// over channel | command | length | payload.
#[derive(Clone, Debug)]
pub struct Packetizer {
    mtu: Mtu,
    channel: ChannelId,
    command: u8,
    declared_len: u16,
    stream: Vec<u8>,
    /// Bytes of `stream` already placed in packets; `None` until the init packet is out.
    sent: Option<usize>,
    next_sequence: u8,
}

impl Packetizer {
    /// Checks the frame against the channel rules and the MTU's size limit.
    pub fn new(frame: &Frame, mtu: Mtu) -> Result<Self, LinkError> {
        let command = frame.body.command();
        if frame.channel == ChannelId::RESERVED {
            return Err(LinkError::ReservedChannel);
        }
        if frame.channel.is_broadcast() && !command.allowed_on_broadcast() {
            return Err(LinkError::BroadcastNotAllowed { command });
        }
        check_encodable(&frame.body)?;
        let mut stream = frame.body.encode_payload();
        let max = mtu.max_payload_len();
        let declared_len = match u16::try_from(stream.len()) {
            Ok(len) if stream.len() <= max => len,
            _ => {
                return Err(LinkError::MessageTooLarge {
                    len: stream.len(),
                    max,
                });
            }
        };
        let crc = message_crc(frame.channel, command.byte(), declared_len, &stream);
        stream.extend_from_slice(&crc.to_be_bytes());
        Ok(Packetizer {
            mtu,
            channel: frame.channel,
            command: command.byte(),
            declared_len,
            stream,
            sent: None,
            next_sequence: 0,
        })
    }

    fn remaining_packets(&self) -> usize {
        match self.sent {
            None => self.mtu.packet_count(usize::from(self.declared_len)),
            Some(sent) => (self.stream.len() - sent).div_ceil(self.mtu.continuation_data_len()),
        }
    }
}

/// Values a frame's type allows but the protocol does not.
fn check_encodable(body: &Body) -> Result<(), LinkError> {
    match body {
        Body::Nack { reason } if !reason.is_transient() => {
            Err(LinkError::InvalidNackReason { reason: *reason })
        }
        Body::InitResponse(response) if !response.channel.is_assignable() => {
            Err(LinkError::InvalidAssignedChannel {
                channel: response.channel,
            })
        }
        _ => Ok(()),
    }
}

impl Iterator for Packetizer {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut packet = vec![0u8; self.mtu.get()];
        let (start, data) = match self.sent {
            None => {
                let (header, data) = packet.split_at_mut(INIT_HEADER_LEN);
                header[..4].copy_from_slice(&self.channel.to_bytes());
                header[4] = self.command;
                header[5..].copy_from_slice(&self.declared_len.to_be_bytes());
                (0, data)
            }
            Some(sent) if sent < self.stream.len() => {
                let (header, data) = packet.split_at_mut(CONTINUATION_HEADER_LEN);
                header[..4].copy_from_slice(&self.channel.to_bytes());
                header[4] = self.next_sequence;
                self.next_sequence += 1;
                (sent, data)
            }
            Some(_) => return None,
        };
        let take = data.len().min(self.stream.len() - start);
        data[..take].copy_from_slice(&self.stream[start..start + take]);
        self.sent = Some(start + take);
        Some(packet)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining_packets();
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for Packetizer {}
