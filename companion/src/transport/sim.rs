//! The simulator link: TCP to `pinpad-sim`, link packets of [`Mtu::SIM`] (64) bytes back to
//! back with no extra framing, exactly as they would travel as USB transfers.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use firmware_protocol::link::Mtu;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backoff::{ReconnectPolicy, retry};
use super::queue::{Incoming, PacketQueue};
use super::{DeviceIdentity, Transport, TransportError, TransportKind, check_packet_size};

/// Default time to wait for the simulator to accept a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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

/// A TCP connection to one simulated PIN pad.
#[derive(Debug)]
pub struct SimTransport {
    identity: DeviceIdentity,
    addr: SocketAddr,
    connect_timeout: Duration,
    reconnect_policy: ReconnectPolicy,
    /// `None` after close.
    writer: Option<OwnedWriteHalf>,
    queue: PacketQueue,
    reader: JoinHandle<()>,
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
        let (writer, queue, reader) = start(stream, addr, identity.to_string());
        SimTransport {
            identity,
            addr,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_policy: ReconnectPolicy::default(),
            writer: Some(writer),
            queue,
            reader,
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
}

impl Drop for SimTransport {
    fn drop(&mut self) {
        self.reader.abort();
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

fn start(
    stream: TcpStream,
    addr: SocketAddr,
    device: String,
) -> (OwnedWriteHalf, PacketQueue, JoinHandle<()>) {
    let (read_half, write_half) = stream.into_split();
    let (sender, queue) = PacketQueue::new(Mtu::SIM, device.clone());
    let reader = tokio::spawn(read_packets(read_half, addr, device, sender));
    (write_half, queue, reader)
}

/// Reads 64-byte packets until the socket ends or the queue is dropped.
async fn read_packets(
    mut socket: OwnedReadHalf,
    addr: SocketAddr,
    device: String,
    sender: mpsc::Sender<Incoming>,
) {
    loop {
        let mut packet = vec![0u8; Mtu::SIM.get()];
        let outcome = match socket.read_exact(&mut packet).await {
            Ok(_) => Ok(packet),
            Err(error) if is_disconnect(&error) => Err(TransportError::Disconnected {
                device: device.clone(),
            }),
            Err(source) => Err(SimError::Io { addr, source }.into()),
        };
        let last = outcome.is_err();
        if sender.send(outcome).await.is_err() || last {
            return;
        }
    }
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
        writer.write_all(packet).await.map_err(|source| {
            if is_disconnect(&source) {
                TransportError::Disconnected {
                    device: self.identity.to_string(),
                }
            } else {
                SimError::Io {
                    addr: self.addr,
                    source,
                }
                .into()
            }
        })
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
        self.queue.next(timeout).await
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        self.reader.abort();
        self.writer = None;
        let (addr, timeout) = (self.addr, self.connect_timeout);
        let stream = retry(
            &self.reconnect_policy,
            || open_stream(addr, timeout),
            |_| false,
        )
        .await?;
        let (writer, queue, reader) = start(stream, addr, self.identity.to_string());
        self.writer = Some(writer);
        self.queue = queue;
        self.reader = reader;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.reader.abort();
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
