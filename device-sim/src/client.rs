//! A minimal blocking host for the simulator's TCP link, made from firmware-protocol's link
//! layer: INIT, MSG with acknowledged delivery and retransmission, KEEPALIVE, CANCEL. For
//! tests and tools; the desktop app has its own transport.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use firmware_protocol::link::{
    Body, ChannelId, ErrorCode, Frame, KeepaliveStatus, Mtu, Reassembler, ReassemblerConfig,
    ReassemblyEvent, Receipt, ReliableReceiver, ReliableSender, Role, SenderAction,
};

/// Why a link exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection failed or closed.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The device answered ERROR.
    #[error("device answered ERROR {0:?}")]
    Device(ErrorCode),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The sender gave up after every retransmission.
    #[error("MSG not acknowledged after every retransmission")]
    GaveUp,
    /// A link-layer value was refused.
    #[error("link: {0}")]
    Link(#[from] firmware_protocol::link::LinkError),
}

/// What to do after a KEEPALIVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterKeepalive {
    /// Keep waiting for the answer.
    Wait,
    /// Send CANCEL (the device answers ERROR CANCELLED).
    Cancel,
}

/// One host program on one TCP connection to a simulated device.
#[derive(Debug)]
pub struct LinkClient {
    stream: TcpStream,
    mtu: Mtu,
    reassembler: Reassembler,
    channel: ChannelId,
    sender: ReliableSender,
    receiver: ReliableReceiver,
    clock: Instant,
    /// Keepalives seen during the last exchange, in order.
    pub keepalives: Vec<KeepaliveStatus>,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

impl LinkClient {
    /// Connects (no channel yet: call [`LinkClient::init`]).
    pub fn connect(address: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mtu = Mtu::SIM;
        Ok(Self {
            stream,
            mtu,
            reassembler: Reassembler::new(ReassemblerConfig::new(mtu, Role::Host)),
            channel: ChannelId::BROADCAST,
            sender: ReliableSender::new(ChannelId::BROADCAST, mtu),
            receiver: ReliableReceiver::new(),
            clock: Instant::now(),
            keepalives: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The channel the device assigned.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Sends one frame.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), ClientError> {
        for packet in frame.to_packets(self.mtu)? {
            self.stream.write_all(&packet)?;
        }
        Ok(())
    }

    /// Sends raw bytes (one packet or a damaged one).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// The next raw packet, or `None` after one read timeout (20 ms).
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        let mut packet = vec![0u8; self.mtu.get()];
        let mut filled = 0;
        while filled < packet.len() {
            match self.stream.read(&mut packet[filled..]) {
                Ok(0) => {
                    return Err(ClientError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "device closed the connection",
                    )));
                }
                Ok(n) => filled += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if filled == 0 {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(packet))
    }

    /// The next complete frame, or `None` after one read timeout (20 ms) or a packet that
    /// completed nothing.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        let Some(packet) = self.next_packet()? else {
            return Ok(None);
        };
        let now = self.now_ms();
        match self.reassembler.push(&packet, now) {
            ReassemblyEvent::Complete(frame) => Ok(Some(frame)),
            event @ ReassemblyEvent::Reject { .. } => {
                if let Some(reply) = event.reply() {
                    self.send_frame(&reply)?;
                }
                Ok(None)
            }
            ReassemblyEvent::Pending | ReassemblyEvent::Ignored(_) => Ok(None),
        }
    }

    /// INIT on broadcast: gets a channel.
    pub fn init(&mut self) -> Result<ChannelId, ClientError> {
        let nonce: [u8; 8] = (self.now_ms() as u32 ^ 0x5EED_1234)
            .to_be_bytes()
            .into_iter()
            .chain(std::process::id().to_be_bytes())
            .collect::<Vec<u8>>()
            .try_into()
            .unwrap_or([7; 8]);
        // PROTOCOL.md 2.6.2: resend after 1000 ms, 5 attempts in all.
        let attempt_time = Duration::from_millis(firmware_protocol::link::INIT_TIMEOUT_MS);
        for _ in 0..firmware_protocol::link::INIT_ATTEMPTS {
            let sent = Instant::now();
            self.send_frame(&Frame::new(
                ChannelId::BROADCAST,
                Body::InitRequest { nonce },
            ))?;
            while sent.elapsed() < attempt_time {
                if let Some(Frame {
                    body: Body::InitResponse(answer),
                    ..
                }) = self.next_frame()?
                    && answer.nonce == nonce
                {
                    self.channel = answer.channel;
                    self.reassembler.open_channel(answer.channel)?;
                    self.sender = ReliableSender::new(answer.channel, self.mtu);
                    self.receiver = ReliableReceiver::new();
                    return Ok(answer.channel);
                }
            }
        }
        Err(ClientError::Timeout(attempt_time * 5))
    }

    /// Sends a message-layer request and returns the device's answer, acknowledging it.
    /// `on_keepalive` runs on every KEEPALIVE (a test types the PIN there).
    pub fn request_with(
        &mut self,
        message: &[u8],
        mut on_keepalive: impl FnMut(KeepaliveStatus) -> AfterKeepalive,
    ) -> Result<Vec<u8>, ClientError> {
        self.keepalives.clear();
        let sent_seq = self.sender.send(message.to_vec())?;
        let mut last_sign_of_life = Instant::now();
        loop {
            match self.sender.poll(self.now_ms()) {
                SenderAction::Transmit(frame) => self.send_frame(&frame)?,
                SenderAction::GaveUp { .. } => return Err(ClientError::GaveUp),
                SenderAction::Idle | SenderAction::WaitUntil(_) => {}
            }
            if last_sign_of_life.elapsed() > self.timeout {
                return Err(ClientError::Timeout(self.timeout));
            }
            let Some(frame) = self.next_frame()? else {
                continue;
            };
            if frame.channel != self.channel {
                continue;
            }
            last_sign_of_life = Instant::now();
            match frame.body {
                Body::Ack { seq } => {
                    self.sender.on_ack(seq);
                }
                Body::Nack { .. } => {
                    self.sender.on_nack();
                }
                Body::Keepalive(status) => {
                    self.keepalives.push(status);
                    if on_keepalive(status) == AfterKeepalive::Cancel {
                        self.cancel()?;
                    }
                }
                Body::Error(code) => {
                    self.sender.abandon();
                    return Err(ClientError::Device(code));
                }
                Body::Msg { seq, message } => {
                    match self.receiver.receive(self.channel, seq, message) {
                        Receipt::New { ack, message } => {
                            self.send_frame(&ack)?;
                            // The answer proves the request arrived, even if its ACK was lost.
                            self.sender.on_ack(sent_seq);
                            return Ok(message);
                        }
                        Receipt::Duplicate { ack } => self.send_frame(&ack)?,
                        Receipt::Stale { .. } => {}
                    }
                }
                _ => {}
            }
        }
    }

    /// [`LinkClient::request_with`] without a keepalive callback.
    pub fn request(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.request_with(message, |_| AfterKeepalive::Wait)
    }

    /// Sends CANCEL on the channel.
    pub fn cancel(&mut self) -> Result<(), ClientError> {
        let channel = self.channel;
        self.send_frame(&Frame::new(channel, Body::Cancel))
    }
}
