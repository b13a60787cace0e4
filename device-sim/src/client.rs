//! A minimal blocking host for the simulator's TCP link: a thin driver over
//! firmware-protocol's [`HostLink`] machine (INIT, MSG with acknowledged delivery and
//! retransmission, KEEPALIVE, CANCEL all live there). For tests and tools; the desktop app's
//! session drives the same machine asynchronously. The raw methods (`send_frame`, `send_raw`,
//! `next_packet`, `next_frame`) bypass the machine, for tests that misbehave on purpose.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use firmware_protocol::link::{
    Body, ChannelId, ErrorCode, Frame, HostEvent, HostLink, HostLinkConfig, InitFailure,
    KeepaliveStatus, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, RequestFailure, Role,
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
    /// The device's INIT answer does not fit this host (version, MTU).
    #[error("INIT refused: {0:?}")]
    Init(InitFailure),
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
    link: HostLink,
    /// Frames for the raw methods, outside the machine.
    raw: Reassembler,
    clock: Instant,
    /// Keepalive statuses seen during the last exchange, in order (each change once).
    pub keepalives: Vec<KeepaliveStatus>,
    /// How long to wait without any packet from the device.
    pub timeout: Duration,
}

impl LinkClient {
    /// Connects (no channel yet: call [`LinkClient::init`]).
    pub fn connect(address: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mtu = Mtu::SIM;
        // Seeds the INIT nonces: only our answer must echo them, so time and process id do.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id()) << 32;
        Ok(Self {
            stream,
            link: HostLink::new(HostLinkConfig::new(mtu), seed),
            raw: Reassembler::new(ReassemblerConfig::new(mtu, Role::Host)),
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
        self.link.channel()
    }

    /// Sends one frame, outside the machine.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), ClientError> {
        for packet in frame.to_packets(self.link.mtu())? {
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
        let mut packet = vec![0u8; self.link.mtu().get()];
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

    /// The next complete frame outside the machine, or `None` after one read timeout (20 ms)
    /// or a packet that completed nothing.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        let Some(packet) = self.next_packet()? else {
            return Ok(None);
        };
        let now = self.now_ms();
        match self.raw.push(&packet, now) {
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

    /// INIT on broadcast: gets a channel (§2.6.2, retried by the machine).
    pub fn init(&mut self) -> Result<ChannelId, ClientError> {
        self.link.open(self.now_ms());
        self.initialise()
    }

    /// Drives the INIT in progress to its end.
    fn initialise(&mut self) -> Result<ChannelId, ClientError> {
        loop {
            self.flush()?;
            while let Some(event) = self.link.poll_event() {
                match event {
                    HostEvent::Ready { channel, .. } => {
                        self.raw.open_channel(channel)?;
                        return Ok(channel);
                    }
                    HostEvent::InitFailed(InitFailure::NoAnswer {
                        attempts,
                        timeout_ms,
                    }) => {
                        return Err(ClientError::Timeout(Duration::from_millis(
                            timeout_ms * u64::from(attempts),
                        )));
                    }
                    HostEvent::InitFailed(failure) => return Err(ClientError::Init(failure)),
                    HostEvent::Progress(_) | HostEvent::Answer(_) | HostEvent::Failed(_) => {}
                }
            }
            if !self.link.is_initialising() {
                return Ok(self.link.channel());
            }
            self.step()?;
        }
    }

    /// Sends a message-layer request and returns the device's answer, acknowledging it.
    /// `on_keepalive` runs on each new keepalive status (a test types the PIN there).
    pub fn request_with(
        &mut self,
        message: &[u8],
        mut on_keepalive: impl FnMut(KeepaliveStatus) -> AfterKeepalive,
    ) -> Result<Vec<u8>, ClientError> {
        self.keepalives.clear();
        if !self.link.is_ready() {
            if !self.link.is_initialising() {
                self.link.resync(self.now_ms());
            }
            self.initialise()?;
        }
        self.link.send(self.now_ms(), message.to_vec())?;
        let mut last_sign_of_life = Instant::now();
        loop {
            self.flush()?;
            while let Some(event) = self.link.poll_event() {
                match event {
                    HostEvent::Progress(status) => {
                        self.keepalives.push(status);
                        if on_keepalive(status) == AfterKeepalive::Cancel {
                            self.link.cancel(self.now_ms());
                        }
                    }
                    HostEvent::Answer(answer) => {
                        self.flush()?;
                        return Ok(answer);
                    }
                    HostEvent::Failed(failure) => {
                        self.flush()?;
                        // A resync the machine started is best effort here; the next
                        // request retries it.
                        if self.link.is_initialising() {
                            let _ = self.initialise();
                        }
                        return Err(match failure {
                            RequestFailure::Busy => ClientError::Device(ErrorCode::ChannelBusy),
                            RequestFailure::ChannelInvalid => {
                                ClientError::Device(ErrorCode::InvalidChannel)
                            }
                            RequestFailure::Refused(code) => ClientError::Device(code),
                            RequestFailure::Cancelled { confirmed: true } => {
                                ClientError::Device(ErrorCode::Cancelled)
                            }
                            RequestFailure::Cancelled { confirmed: false } => ClientError::Timeout(
                                Duration::from_millis(self.link.config().cancel_grace_ms),
                            ),
                            RequestFailure::DeliveryFailed { .. } => ClientError::GaveUp,
                            RequestFailure::DeviceSilent { idle_ms } => {
                                ClientError::Timeout(Duration::from_millis(idle_ms))
                            }
                        });
                    }
                    HostEvent::Ready { .. } | HostEvent::InitFailed(_) => {}
                }
            }
            if self.step()? {
                last_sign_of_life = Instant::now();
            } else if last_sign_of_life.elapsed() > self.timeout {
                return Err(ClientError::Timeout(self.timeout));
            }
        }
    }

    /// [`LinkClient::request_with`] without a keepalive callback.
    pub fn request(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.request_with(message, |_| AfterKeepalive::Wait)
    }

    /// Sends CANCEL on the channel (between requests: a stray one, as a test may want).
    pub fn cancel(&mut self) -> Result<(), ClientError> {
        if !self.link.cancel(self.now_ms()) {
            let channel = self.link.channel();
            self.send_frame(&Frame::new(channel, Body::Cancel))?;
        }
        self.flush()
    }

    /// One packet (or a 20 ms read timeout) into the machine, then its timers. Returns
    /// whether a packet arrived.
    fn step(&mut self) -> Result<bool, ClientError> {
        let packet = self.next_packet()?;
        let now = self.now_ms();
        if let Some(packet) = &packet {
            self.link.handle_packet(now, packet);
        }
        self.link.handle_timeout(now);
        Ok(packet.is_some())
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        while let Some(packet) = self.link.poll_transmit() {
            self.stream.write_all(&packet)?;
        }
        Ok(())
    }
}
