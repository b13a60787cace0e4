//! Acknowledged delivery of `MSG` frames: stop-and-wait with an 8-bit sequence number per
//! channel and direction, `ACK`/`NACK`, retransmission and duplicate detection.

use alloc::vec::Vec;

use super::error::LinkError;
use super::frame::{Body, Frame};
use super::wire::{ChannelId, Mtu};
use super::{
    BLE_RETRANSMIT_BASE_MS, MAX_RETRANSMISSIONS, RETRANSMIT_BASE_MS, RETRANSMIT_PER_PACKET_MS,
};

/// When to retransmit and when to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitPolicy {
    /// Retransmission timeout, fixed part.
    pub base_timeout_ms: u64,
    /// Retransmission timeout, added per packet of the message.
    pub per_packet_ms: u64,
    /// Retransmissions after the first transmission before giving up.
    pub max_retransmissions: u8,
}

impl RetransmitPolicy {
    /// §2.11's policy: USB and the simulator link.
    pub const STANDARD: RetransmitPolicy = RetransmitPolicy {
        base_timeout_ms: RETRANSMIT_BASE_MS,
        per_packet_ms: RETRANSMIT_PER_PACKET_MS,
        max_retransmissions: MAX_RETRANSMISSIONS,
    };

    /// Bluetooth LE's (§2.1.1): a longer base, the same per-packet time and retransmissions.
    pub const BLE: RetransmitPolicy = RetransmitPolicy {
        base_timeout_ms: BLE_RETRANSMIT_BASE_MS,
        ..RetransmitPolicy::STANDARD
    };

    /// Time to wait for the `ACK` of a message of `packets` packets after (re)sending it.
    pub const fn timeout_ms(&self, packets: usize) -> u64 {
        self.base_timeout_ms
            .saturating_add(self.per_packet_ms.saturating_mul(packets as u64))
    }
}

impl Default for RetransmitPolicy {
    /// [`RETRANSMIT_BASE_MS`] + [`RETRANSMIT_PER_PACKET_MS`] per packet,
    /// [`MAX_RETRANSMISSIONS`] retransmissions.
    fn default() -> Self {
        RetransmitPolicy::STANDARD
    }
}

/// What a [`ReliableSender`] wants done now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderAction {
    /// Nothing outstanding.
    Idle,
    /// Send this `MSG` frame (packetize it and send every packet) now.
    Transmit(Frame),
    /// Waiting for the `ACK`; poll again at this time (or when a frame arrives).
    WaitUntil(u64),
    /// No `ACK` after every retransmission: the message may or may not have arrived. The
    /// sender refuses new messages until [`ReliableSender::reset`] (after `INIT` resync).
    GaveUp {
        /// Sequence number of the lost message.
        seq: u8,
    },
}

#[derive(Clone, Debug)]
struct Outstanding {
    frame: Frame,
    packets: usize,
    transmissions: u8,
    /// `None`: transmit at the next poll.
    deadline_ms: Option<u64>,
}

/// Sending side of acknowledged delivery on one channel: one `MSG` in flight at a time.
///
/// `send` queues a message; `poll(now)` says when to (re)transmit it; `on_ack` / `on_nack`
/// feed back what the peer answered. Sequence numbers start at 0 after `INIT` and advance by
/// one (mod 256) per acknowledged message.
#[derive(Clone, Debug)]
pub struct ReliableSender {
    channel: ChannelId,
    mtu: Mtu,
    policy: RetransmitPolicy,
    next_seq: u8,
    outstanding: Option<Outstanding>,
    needs_resync: bool,
    /// The message given up on last, until an `INIT` or proof of its delivery.
    lost: Option<u8>,
}

impl ReliableSender {
    /// A sender on `channel` with the default [`RetransmitPolicy`].
    pub fn new(channel: ChannelId, mtu: Mtu) -> Self {
        Self::with_policy(channel, mtu, RetransmitPolicy::default())
    }

    /// A sender with a custom policy.
    pub fn with_policy(channel: ChannelId, mtu: Mtu, policy: RetransmitPolicy) -> Self {
        ReliableSender {
            channel,
            mtu,
            policy,
            next_seq: 0,
            outstanding: None,
            needs_resync: false,
            lost: None,
        }
    }

    /// The channel it sends on.
    pub const fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Queues `message` (message-layer bytes) for delivery; the next [`poll`](Self::poll)
    /// transmits it. Returns the sequence number it travels under.
    pub fn send(&mut self, message: Vec<u8>) -> Result<u8, LinkError> {
        if self.needs_resync {
            return Err(LinkError::SenderNeedsResync);
        }
        if let Some(outstanding) = &self.outstanding {
            return Err(LinkError::SenderBusy {
                seq: outstanding_seq(outstanding),
            });
        }
        let payload_len = 1 + message.len();
        let max = self.mtu.max_payload_len();
        if payload_len > max {
            return Err(LinkError::MessageTooLarge {
                len: payload_len,
                max,
            });
        }
        let seq = self.next_seq;
        self.outstanding = Some(Outstanding {
            frame: Frame::new(self.channel, Body::Msg { seq, message }),
            packets: self.mtu.packet_count(payload_len),
            transmissions: 0,
            deadline_ms: None,
        });
        Ok(seq)
    }

    /// What to do at `now_ms`. A `Transmit` starts the retransmission timer at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) -> SenderAction {
        let Some(outstanding) = &mut self.outstanding else {
            return SenderAction::Idle;
        };
        match outstanding.deadline_ms {
            Some(deadline) if now_ms < deadline => SenderAction::WaitUntil(deadline),
            _ if outstanding.transmissions > self.policy.max_retransmissions => {
                let seq = outstanding_seq(outstanding);
                self.outstanding = None;
                self.needs_resync = true;
                self.lost = Some(seq);
                SenderAction::GaveUp { seq }
            }
            _ => {
                outstanding.transmissions = outstanding.transmissions.saturating_add(1);
                outstanding.deadline_ms =
                    Some(now_ms.saturating_add(self.policy.timeout_ms(outstanding.packets)));
                SenderAction::Transmit(outstanding.frame.clone())
            }
        }
    }

    /// When [`poll`](Self::poll) next has something to do: the retransmission deadline while
    /// waiting for the `ACK`, 0 when a (re)transmission is due at once, `None` when idle.
    pub fn deadline(&self) -> Option<u64> {
        self.outstanding
            .as_ref()
            .map(|outstanding| outstanding.deadline_ms.unwrap_or(0))
    }

    /// Transmissions of the outstanding message so far (0 when idle or not yet sent).
    pub fn transmissions(&self) -> u8 {
        self.outstanding
            .as_ref()
            .map_or(0, |outstanding| outstanding.transmissions)
    }

    /// An `ACK` arrived on this channel. Returns whether it acknowledged the outstanding
    /// message (an `ACK` for anything else is stale and ignored).
    pub fn on_ack(&mut self, seq: u8) -> bool {
        match &self.outstanding {
            Some(outstanding) if outstanding_seq(outstanding) == seq => {
                self.outstanding = None;
                self.next_seq = self.next_seq.wrapping_add(1);
                true
            }
            _ => false,
        }
    }

    /// A `NACK` arrived on this channel: retransmit at the next poll (it counts as one of the
    /// retransmissions). Returns whether a message was outstanding.
    pub fn on_nack(&mut self) -> bool {
        match &mut self.outstanding {
            Some(outstanding) => {
                outstanding.deadline_ms = None;
                true
            }
            None => false,
        }
    }

    /// Stops trying to deliver the outstanding message (the peer answered `ERROR`, or the
    /// transaction was cancelled) and returns its sequence number. Since the peer never
    /// acknowledged it, the next message reuses that sequence number.
    pub fn abandon(&mut self) -> Option<u8> {
        self.outstanding.take().map(|o| outstanding_seq(&o))
    }

    /// After `INIT` on this channel (either end): nothing outstanding, sequence back to 0.
    pub fn reset(&mut self) {
        self.outstanding = None;
        self.next_seq = 0;
        self.needs_resync = false;
        self.lost = None;
    }

    /// The peer proved it has the message this sender gave up on (a device's given-up
    /// answer, followed by the host's next request: §2.9.3): it counts as acknowledged, the
    /// sequence numbers are trusted again and the next message takes the next number.
    /// Returns whether there was such a message.
    pub fn delivered_late(&mut self) -> bool {
        match self.lost.take() {
            Some(seq) if self.needs_resync => {
                self.next_seq = seq.wrapping_add(1);
                self.needs_resync = false;
                true
            }
            _ => false,
        }
    }

    /// Whether no message is waiting for its `ACK`.
    pub const fn is_idle(&self) -> bool {
        self.outstanding.is_none()
    }

    /// Sequence number the next message will use.
    pub const fn next_seq(&self) -> u8 {
        self.next_seq
    }
}

fn outstanding_seq(outstanding: &Outstanding) -> u8 {
    match outstanding.frame.body {
        Body::Msg { seq, .. } => seq,
        // Only MSG frames are ever stored.
        _ => 0,
    }
}

/// What a received `MSG` means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// A new message: send `ack`, hand `message` to the message layer.
    New {
        /// The `ACK` frame to send.
        ack: Frame,
        /// The message-layer bytes.
        message: Vec<u8>,
    },
    /// The previous message again (its `ACK` was lost): send `ack` again, deliver nothing.
    Duplicate {
        /// The `ACK` frame to send.
        ack: Frame,
    },
    /// Neither the expected nor the previous sequence number: an old copy delayed by the
    /// link, or a peer out of sync. No `ACK`, nothing delivered.
    Stale {
        /// The sequence number received.
        seq: u8,
    },
}

/// Receiving side of acknowledged delivery on one channel: acknowledges and de-duplicates.
#[derive(Clone, Debug, Default)]
pub struct ReliableReceiver {
    expected: u8,
}

impl ReliableReceiver {
    /// Expects sequence number 0 (as after `INIT`).
    pub const fn new() -> Self {
        ReliableReceiver { expected: 0 }
    }

    /// Classifies a `MSG` with sequence number `seq` and message bytes `message` that arrived
    /// on `channel`.
    pub fn receive(&mut self, channel: ChannelId, seq: u8, message: Vec<u8>) -> Receipt {
        let ack = Frame::new(channel, Body::Ack { seq });
        if seq == self.expected {
            self.expected = self.expected.wrapping_add(1);
            Receipt::New { ack, message }
        } else if seq == self.expected.wrapping_sub(1) {
            Receipt::Duplicate { ack }
        } else {
            Receipt::Stale { seq }
        }
    }

    /// Sequence number of the next new message.
    pub const fn expected_seq(&self) -> u8 {
        self.expected
    }

    /// After `INIT` on this channel: expect 0 again.
    pub fn reset(&mut self) {
        self.expected = 0;
    }
}
