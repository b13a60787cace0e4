//! An in-process link: two connected ends, each a [`Transport`]. One end goes to the session,
//! the other to a device running in the same process (the embedded demo's mock device, or a
//! test's fake device). Dropping or closing one end disconnects the other.

use std::time::Duration;

use async_trait::async_trait;
use firmware_protocol::link::Mtu;
use tokio::sync::mpsc;

use super::queue::{Incoming, PacketQueue};
use super::{DeviceIdentity, Transport, TransportError, TransportKind, check_packet_size};

/// One end of an in-process link.
#[derive(Debug)]
pub struct MemoryTransport {
    identity: DeviceIdentity,
    mtu: Mtu,
    peer: Option<mpsc::Sender<Incoming>>,
    queue: PacketQueue,
}

impl MemoryTransport {
    /// Two connected ends of a link of `mtu`-byte packets: `(host end, device end)`. The host
    /// end's identity is `in-process:<name>`.
    pub fn pair(mtu: Mtu, name: &str) -> (MemoryTransport, MemoryTransport) {
        let host_identity = DeviceIdentity::new(TransportKind::InProcess, name);
        let device_identity = DeviceIdentity::new(TransportKind::InProcess, format!("{name}/host"));
        let (to_host, host_queue) = PacketQueue::new(mtu, host_identity.to_string());
        let (to_device, device_queue) = PacketQueue::new(mtu, device_identity.to_string());
        (
            MemoryTransport {
                identity: host_identity,
                mtu,
                peer: Some(to_device),
                queue: host_queue,
            },
            MemoryTransport {
                identity: device_identity,
                mtu,
                peer: Some(to_host),
                queue: device_queue,
            },
        )
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    fn mtu(&self) -> Mtu {
        self.mtu
    }

    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet_size(self.mtu, packet)?;
        let Some(peer) = &self.peer else {
            return Err(TransportError::Closed {
                device: self.identity.to_string(),
            });
        };
        peer.send(Ok(packet.to_vec()))
            .await
            .map_err(|_| TransportError::Disconnected {
                device: self.identity.to_string(),
            })
    }

    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        if self.peer.is_none() {
            return Err(TransportError::Closed {
                device: self.identity.to_string(),
            });
        }
        self.queue.next(timeout).await
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        Err(TransportError::ReconnectUnsupported {
            kind: TransportKind::InProcess,
        })
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.peer = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn packets_cross_in_both_directions_in_order() {
        let (mut host, mut device) = MemoryTransport::pair(Mtu::USB, "pad");
        host.send_packet(&[1; 64]).await.unwrap();
        host.send_packet(&[2; 64]).await.unwrap();
        device.send_packet(&[3; 64]).await.unwrap();
        assert_eq!(
            device.receive_packet(WAIT).await.unwrap(),
            Some(vec![1; 64])
        );
        assert_eq!(
            device.receive_packet(WAIT).await.unwrap(),
            Some(vec![2; 64])
        );
        assert_eq!(host.receive_packet(WAIT).await.unwrap(), Some(vec![3; 64]));
        assert_eq!(
            host.receive_packet(Duration::from_millis(5)).await.unwrap(),
            None
        );
        assert_eq!(host.identity().to_string(), "in-process:pad");
    }

    #[tokio::test]
    async fn dropping_one_end_disconnects_the_other() {
        let (mut host, device) = MemoryTransport::pair(Mtu::USB, "pad");
        drop(device);
        assert!(host.receive_packet(WAIT).await.unwrap_err().is_disconnect());
        assert!(
            host.send_packet(&[0; 64])
                .await
                .unwrap_err()
                .is_disconnect()
        );
    }

    #[tokio::test]
    async fn closing_an_end_disconnects_the_peer_and_refuses_further_use() {
        let (mut host, mut device) = MemoryTransport::pair(Mtu::USB, "pad");
        host.close().await.unwrap();
        assert!(matches!(
            host.send_packet(&[0; 64]).await,
            Err(TransportError::Closed { .. })
        ));
        assert!(
            device
                .receive_packet(WAIT)
                .await
                .unwrap_err()
                .is_disconnect()
        );
    }

    #[tokio::test]
    async fn wrong_sized_packets_are_refused() {
        let (mut host, _device) = MemoryTransport::pair(Mtu::MIN, "pad");
        assert!(matches!(
            host.send_packet(&[0; 64]).await,
            Err(TransportError::WrongPacketSize {
                expected: 20,
                actual: 64
            })
        ));
    }
}
