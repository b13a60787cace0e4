//! The receive side every transport shares: a background reader (thread, task or
//! notification stream) pushes packets into a channel, and `receive_packet` takes them out.
//! Receiving from a channel is cancel-safe, which the session relies on.

use std::time::Duration;

use firmware_protocol::link::Mtu;
use tokio::sync::mpsc;

use super::TransportError;

/// What a background reader delivers: a packet, or the error that ended it.
pub(crate) type Incoming = Result<Vec<u8>, TransportError>;

/// Packets a reader may queue before it waits for the session to catch up. A frame is at most
/// 129 packets, so this holds the largest frame plus keepalives.
pub(crate) const QUEUE_DEPTH: usize = 256;

/// The receiving end of a background reader.
#[derive(Debug)]
pub(crate) struct PacketQueue {
    receiver: mpsc::Receiver<Incoming>,
    mtu: Mtu,
    device: String,
    /// Set once the reader reported its final error, so later calls keep failing the same way.
    ended: bool,
}

impl PacketQueue {
    /// A queue and the sender its reader pushes into.
    pub(crate) fn new(mtu: Mtu, device: String) -> (mpsc::Sender<Incoming>, Self) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            sender,
            PacketQueue {
                receiver,
                mtu,
                device,
                ended: false,
            },
        )
    }

    /// The next packet of exactly one MTU, waiting at most `timeout`. Packets of another
    /// length are dropped (PROTOCOL.md §2.1) and do not end the wait.
    pub(crate) async fn next(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        if self.ended {
            return Err(self.disconnected());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Err(_elapsed) => return Ok(None),
                Ok(None) => {
                    self.ended = true;
                    return Err(self.disconnected());
                }
                Ok(Some(Err(error))) => {
                    self.ended = true;
                    return Err(error);
                }
                Ok(Some(Ok(packet))) if packet.len() == self.mtu.get() => {
                    return Ok(Some(packet));
                }
                Ok(Some(Ok(packet))) => {
                    tracing::warn!(
                        device = %self.device,
                        len = packet.len(),
                        mtu = self.mtu.get(),
                        "dropping a packet whose length is not the link MTU"
                    );
                }
            }
        }
    }

    fn disconnected(&self) -> TransportError {
        TransportError::Disconnected {
            device: self.device.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_packets_and_times_out_when_none_come() {
        let (sender, mut queue) = PacketQueue::new(Mtu::MIN, "test".into());
        sender.send(Ok(vec![7; 20])).await.unwrap();
        assert_eq!(
            queue.next(Duration::from_millis(10)).await.unwrap(),
            Some(vec![7; 20])
        );
        assert_eq!(queue.next(Duration::from_millis(10)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn drops_wrong_length_packets_and_keeps_waiting() {
        let (sender, mut queue) = PacketQueue::new(Mtu::MIN, "test".into());
        sender.send(Ok(vec![1; 19])).await.unwrap();
        sender.send(Ok(vec![2; 21])).await.unwrap();
        sender.send(Ok(vec![3; 20])).await.unwrap();
        assert_eq!(
            queue.next(Duration::from_millis(10)).await.unwrap(),
            Some(vec![3; 20])
        );
    }

    #[tokio::test]
    async fn a_finished_reader_is_a_disconnect_and_stays_one() {
        let (sender, mut queue) = PacketQueue::new(Mtu::MIN, "dev".into());
        drop(sender);
        for _ in 0..2 {
            let error = queue.next(Duration::from_millis(10)).await.unwrap_err();
            assert!(error.is_disconnect(), "{error}");
        }
    }

    #[tokio::test]
    async fn a_reader_error_is_returned_once_then_reads_as_disconnect() {
        let (sender, mut queue) = PacketQueue::new(Mtu::MIN, "dev".into());
        sender
            .send(Err(TransportError::SendTimeout {
                device: "dev".into(),
                timeout_ms: 5,
            }))
            .await
            .unwrap();
        assert!(matches!(
            queue.next(Duration::from_millis(10)).await,
            Err(TransportError::SendTimeout { .. })
        ));
        assert!(
            queue
                .next(Duration::from_millis(10))
                .await
                .unwrap_err()
                .is_disconnect()
        );
    }
}
