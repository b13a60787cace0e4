//! The simulator link: TCP to `pinpad-sim`, link packets of [`Mtu::SIM`] (64) bytes back to
//! back with no extra framing, exactly as they would travel as USB transfers.
//!
//! Unlike USB and BLE, whose libraries deliver packets from a thread or a notification
//! stream, a TCP socket can be read in the caller's task: `receive_packet` reads the socket
//! itself (no background reader, no channel), so a packet reaches the session without a task
//! switch. Reading stays cancel-safe, which the session relies on: bytes read before a
//! cancelled wait are kept in the transport and complete the packet on the next call.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use firmware_protocol::link::Mtu;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::backoff::{ReconnectPolicy, retry};
use super::{DeviceIdentity, Transport, TransportError, TransportKind, check_packet_size};

/// Default time to wait for the simulator to accept a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes asked of the socket per read: a whole multi-packet answer (an ACK and a MSG of a
/// few packets) usually arrives in one read.
const READ_CHUNK: usize = 16 * 64;

/// Simulator-link failures.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Nothing accepted the connection.
    #[error(
        "could not reach pinpad-sim at {addr}: {source}; is `pinpad-sim serve --listen {addr}` running?"
    )]
    Connect {
        /// Where we tried.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Connecting took longer than the timeout.
    #[error("pinpad-sim at {addr} did not accept the connection within {timeout_ms} ms")]
    ConnectTimeout {
        /// Where we tried.
        addr: SocketAddr,
        /// The timeout.
        timeout_ms: u64,
    },
    /// Reading or writing the socket failed.
    #[error("simulator link to {addr} failed: {source}")]
    Io {
        /// The simulator's address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

/// The receiving half of the socket and the bytes read but not yet returned as packets.
#[derive(Debug)]
struct PacketReader {
    socket: OwnedReadHalf,
    /// Bytes read from the socket, oldest first; whole packets are taken from the front.
    buffered: Vec<u8>,
    /// Set once the socket ended or failed, so later calls keep failing the same way.
    ended: bool,
}

impl PacketReader {
    fn new(socket: OwnedReadHalf) -> Self {
        Self {
            socket,
            buffered: Vec::with_capacity(READ_CHUNK),
            ended: false,
        }
    }

    fn take_packet(&mut self) -> Option<Vec<u8>> {
        let size = Mtu::SIM.get();
        if self.buffered.len() < size {
            return None;
        }
        let rest = self.buffered.split_off(size);
        Some(std::mem::replace(&mut self.buffered, rest))
    }
}

/// A TCP connection to one simulated PIN pad.
#[derive(Debug)]
pub struct SimTransport {
    identity: DeviceIdentity,
    addr: SocketAddr,
    connect_timeout: Duration,
    reconnect_policy: ReconnectPolicy,
    /// `None` after close.
    writer: Option<OwnedWriteHalf>,
    reader: PacketReader,
}

impl SimTransport {
    /// Connects to `pinpad-sim` listening on `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, TransportError> {
        Self::connect_with_timeout(addr, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connects, waiting at most `timeout` for the simulator to accept.
    pub async fn connect_with_timeout(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let stream = open_stream(addr, timeout).await?;
        let mut transport = Self::from_stream(stream, addr);
        transport.connect_timeout = timeout;
        Ok(transport)
    }

    /// Wraps an already connected stream (either end: the simulator can serve its side of the
    /// link with the same type). `addr` names the peer for display.
    pub fn from_stream(stream: TcpStream, addr: SocketAddr) -> Self {
        let identity = DeviceIdentity::new(TransportKind::Sim, addr.to_string());
        let (read_half, write_half) = stream.into_split();
        SimTransport {
            identity,
            addr,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_policy: ReconnectPolicy::default(),
            writer: Some(write_half),
            reader: PacketReader::new(read_half),
        }
    }

    /// Sets how [`Transport::reconnect`] retries.
    pub fn set_reconnect_policy(&mut self, policy: ReconnectPolicy) {
        self.reconnect_policy = policy;
    }

    /// The simulator's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn disconnected(&self) -> TransportError {
        TransportError::Disconnected {
            device: self.identity.to_string(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> TransportError {
        if is_disconnect(&source) {
            self.disconnected()
        } else {
            SimError::Io {
                addr: self.addr,
                source,
            }
            .into()
        }
    }
}

async fn open_stream(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, SimError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| SimError::ConnectTimeout {
            addr,
            timeout_ms: timeout.as_millis() as u64,
        })?
        .map_err(|source| SimError::Connect { addr, source })?;
    // One packet is one round trip's worth of latency: never wait to coalesce.
    stream
        .set_nodelay(true)
        .map_err(|source| SimError::Io { addr, source })?;
    Ok(stream)
}

fn is_disconnect(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

#[async_trait]
impl Transport for SimTransport {
    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    fn mtu(&self) -> Mtu {
        Mtu::SIM
    }

    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet_size(Mtu::SIM, packet)?;
        let Some(writer) = &mut self.writer else {
            return Err(TransportError::Closed {
                device: self.identity.to_string(),
            });
        };
        match writer.write_all(packet).await {
            Ok(()) => Ok(()),
            Err(source) => Err(self.io_error(source)),
        }
    }

    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        if self.writer.is_none() {
            return Err(TransportError::Closed {
                device: self.identity.to_string(),
            });
        }
        // Packets already read go first, even after the socket ended.
        if let Some(packet) = self.reader.take_packet() {
            return Ok(Some(packet));
        }
        if self.reader.ended {
            return Err(self.disconnected());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            // `read` is cancel-safe: if this wait is dropped, no byte has been taken from the
            // socket that is not already in `buffered`.
            let read = tokio::time::timeout_at(deadline, self.reader.socket.read(&mut chunk)).await;
            match read {
                Err(_elapsed) => return Ok(None),
                Ok(Ok(0)) => {
                    self.reader.ended = true;
                    return Err(self.disconnected());
                }
                Ok(Ok(n)) => {
                    self.reader
                        .buffered
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    if let Some(packet) = self.reader.take_packet() {
                        return Ok(Some(packet));
                    }
                }
                Ok(Err(source)) => {
                    self.reader.ended = true;
                    return Err(self.io_error(source));
                }
            }
        }
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        self.writer = None;
        let (addr, timeout) = (self.addr, self.connect_timeout);
        let stream = retry(
            &self.reconnect_policy,
            || open_stream(addr, timeout),
            |_| false,
        )
        .await?;
        let (read_half, write_half) = stream.into_split();
        self.writer = Some(write_half);
        self.reader = PacketReader::new(read_half);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        if let Some(mut writer) = self.writer.take() {
            // The peer sees end-of-stream; failing to say goodbye politely changes nothing.
            let _ = writer.shutdown().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const WAIT: Duration = Duration::from_secs(2);

    async fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    #[tokio::test]
    async fn packets_travel_back_to_back_without_framing() {
        let (listener, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut two = [0u8; 128];
            socket.read_exact(&mut two).await.unwrap();
            // Answer with two packets in one write, split oddly: framing is by length only.
            let mut reply = vec![0xAA; 64];
            reply.extend_from_slice(&[0xBB; 64]);
            socket.write_all(&reply[..30]).await.unwrap();
            socket.write_all(&reply[30..]).await.unwrap();
            two
        });
        let mut transport = SimTransport::connect(addr).await.unwrap();
        transport.send_packet(&[1; 64]).await.unwrap();
        transport.send_packet(&[2; 64]).await.unwrap();
        assert_eq!(
            transport.receive_packet(WAIT).await.unwrap(),
            Some(vec![0xAA; 64])
        );
        assert_eq!(
            transport.receive_packet(WAIT).await.unwrap(),
            Some(vec![0xBB; 64])
        );
        let received = server.await.unwrap();
        assert_eq!(&received[..64], &[1; 64]);
        assert_eq!(&received[64..], &[2; 64]);
        assert_eq!(transport.identity().id.to_string(), format!("sim:{addr}"));
    }

    #[tokio::test]
    async fn a_wait_that_ends_mid_packet_keeps_the_bytes_read() {
        let (listener, addr) = listener().await;
        let (half_sent, send_rest) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(&[0xC1; 40]).await.unwrap();
            send_rest.await.unwrap();
            let mut rest = vec![0xC1; 24];
            rest.extend_from_slice(&[0xC2; 64]);
            socket.write_all(&rest).await.unwrap();
            socket
        });
        let mut transport = SimTransport::connect(addr).await.unwrap();
        // The first 40 bytes arrive, then the wait times out: no packet, nothing lost.
        assert_eq!(
            transport
                .receive_packet(Duration::from_millis(50))
                .await
                .unwrap(),
            None
        );
        // A wait dropped by the caller (the session's select!) loses nothing either.
        let dropped =
            tokio::time::timeout(Duration::from_millis(20), transport.receive_packet(WAIT)).await;
        assert!(dropped.is_err());
        half_sent.send(()).unwrap();
        assert_eq!(
            transport.receive_packet(WAIT).await.unwrap(),
            Some(vec![0xC1; 64])
        );
        assert_eq!(
            transport.receive_packet(WAIT).await.unwrap(),
            Some(vec![0xC2; 64])
        );
        let socket = server.await.unwrap();
        drop(socket);
        assert!(
            transport
                .receive_packet(WAIT)
                .await
                .unwrap_err()
                .is_disconnect()
        );
    }

    #[tokio::test]
    async fn the_simulator_closing_the_socket_is_a_disconnect() {
        let (listener, addr) = listener().await;
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        });
        let mut transport = SimTransport::connect(addr).await.unwrap();
        let error = transport.receive_packet(WAIT).await.unwrap_err();
        assert!(error.is_disconnect(), "{error}");
    }

    #[tokio::test]
    async fn nothing_listening_says_how_to_start_the_simulator() {
        let (listener, addr) = listener().await;
        drop(listener);
        let error = SimTransport::connect(addr).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("pinpad-sim serve --listen"), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
    }

    #[tokio::test]
    async fn reconnect_reaches_a_restarted_simulator() {
        let (listener, addr) = listener().await;
        let first = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
            listener
        });
        let mut transport = SimTransport::connect(addr).await.unwrap();
        let listener = first.await.unwrap();
        assert!(
            transport
                .receive_packet(WAIT)
                .await
                .unwrap_err()
                .is_disconnect()
        );
        let second = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(&[9; 64]).await.unwrap();
            socket
        });
        transport.reconnect().await.unwrap();
        assert_eq!(
            transport.receive_packet(WAIT).await.unwrap(),
            Some(vec![9; 64])
        );
        drop(second.await.unwrap());
    }
}
