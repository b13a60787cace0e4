//! Packet I/O over a claimed interface: blocking libusb transfers on a dedicated reader thread
//! and on tokio's blocking pool for writes, behind the [`UsbPacketIo`] seam so the logic runs
//! against a fake in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use firmware_protocol::link::Mtu;
use tokio::sync::mpsc;

use super::error::{UsbError, UsbOperation, map_libusb_error};
use crate::transport::TransportError;
use crate::transport::queue::{Incoming, PacketQueue};

/// How long one blocking read waits: bounds how quickly the reader thread notices `stop`.
pub const READ_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long a packet write may take before the device is considered stuck.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Blocking transfers of single packets on the chosen endpoint pair.
pub trait UsbPacketIo: Send + Sync + 'static {
    /// Reads one transfer into `buf`; `Err(Timeout)` when nothing came within `timeout`.
    fn read_packet(&self, buf: &mut [u8], timeout: Duration) -> rusb::Result<usize>;
    /// Writes one transfer; returns the bytes written.
    fn write_packet(&self, buf: &[u8], timeout: Duration) -> rusb::Result<usize>;
}

/// A running packet link over one claimed interface.
pub struct UsbLink {
    io: Arc<dyn UsbPacketIo>,
    device: String,
    stop: Arc<AtomicBool>,
    queue: PacketQueue,
}

impl std::fmt::Debug for UsbLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbLink")
            .field("device", &self.device)
            .field("stopped", &self.stop.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl UsbLink {
    /// Starts the reader thread.
    pub fn start(io: Arc<dyn UsbPacketIo>, device: String) -> Result<Self, UsbError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, queue) = PacketQueue::new(Mtu::USB, device.clone());
        let reader_io = Arc::clone(&io);
        let reader_stop = Arc::clone(&stop);
        let reader_device = device.clone();
        std::thread::Builder::new()
            .name(format!("usb-reader {device}"))
            .spawn(move || read_loop(&*reader_io, &reader_stop, &reader_device, &sender))
            .map_err(|_| UsbError::WorkerStopped {
                device: device.clone(),
            })?;
        Ok(UsbLink {
            io,
            device,
            stop,
            queue,
        })
    }

    /// Sends one packet (already checked to be one MTU).
    pub async fn send(&self, packet: &[u8]) -> Result<(), TransportError> {
        let io = Arc::clone(&self.io);
        let data = packet.to_vec();
        let written = tokio::task::spawn_blocking(move || io.write_packet(&data, WRITE_TIMEOUT))
            .await
            .map_err(|_| UsbError::WorkerStopped {
                device: self.device.clone(),
            })?
            .map_err(|error| map_libusb_error(error, UsbOperation::Write, &self.device))?;
        if written != packet.len() {
            return Err(UsbError::ShortWrite {
                device: self.device.clone(),
                written,
                expected: packet.len(),
            }
            .into());
        }
        Ok(())
    }

    /// The next packet, waiting at most `timeout`.
    pub async fn receive(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, TransportError> {
        self.queue.next(timeout).await
    }
}

impl Drop for UsbLink {
    /// The reader thread exits within [`READ_POLL_INTERVAL`]; the interface is released when
    /// the last reference to the I/O object goes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_loop(
    io: &dyn UsbPacketIo,
    stop: &AtomicBool,
    device: &str,
    sender: &mpsc::Sender<Incoming>,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut packet = vec![0u8; Mtu::USB.get()];
        let outcome = match io.read_packet(&mut packet, READ_POLL_INTERVAL) {
            Ok(len) => {
                packet.truncate(len);
                Ok(packet)
            }
            // Nothing yet, or a signal: keep polling.
            Err(rusb::Error::Timeout | rusb::Error::Interrupted) => continue,
            Err(rusb::Error::Overflow) => {
                tracing::warn!(device, "dropping a transfer longer than one packet");
                continue;
            }
            Err(error) => Err(map_libusb_error(error, UsbOperation::Read, device).into()),
        };
        let last = outcome.is_err();
        if sender.blocking_send(outcome).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Scripted reads, recorded writes.
    #[derive(Default)]
    pub(crate) struct FakeIo {
        pub(crate) reads: Mutex<VecDeque<rusb::Result<Vec<u8>>>>,
        pub(crate) writes: Mutex<Vec<Vec<u8>>>,
        pub(crate) write_result: Mutex<Option<rusb::Result<usize>>>,
    }

    impl FakeIo {
        pub(crate) fn with_reads(reads: Vec<rusb::Result<Vec<u8>>>) -> Arc<Self> {
            Arc::new(FakeIo {
                reads: Mutex::new(reads.into()),
                ..FakeIo::default()
            })
        }
    }

    impl UsbPacketIo for FakeIo {
        fn read_packet(&self, buf: &mut [u8], timeout: Duration) -> rusb::Result<usize> {
            let next = self.reads.lock().unwrap().pop_front();
            match next {
                Some(Ok(data)) => {
                    if data.len() > buf.len() {
                        return Err(rusb::Error::Overflow);
                    }
                    buf[..data.len()].copy_from_slice(&data);
                    Ok(data.len())
                }
                Some(Err(error)) => Err(error),
                None => {
                    std::thread::sleep(timeout.min(Duration::from_millis(5)));
                    Err(rusb::Error::Timeout)
                }
            }
        }

        fn write_packet(&self, buf: &[u8], _timeout: Duration) -> rusb::Result<usize> {
            self.writes.lock().unwrap().push(buf.to_vec());
            self.write_result.lock().unwrap().unwrap_or(Ok(buf.len()))
        }
    }

    const WAIT: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn reads_skip_timeouts_and_signals_and_deliver_packets_in_order() {
        let io = FakeIo::with_reads(vec![
            Err(rusb::Error::Timeout),
            Ok(vec![1; 64]),
            Err(rusb::Error::Interrupted),
            Ok(vec![2; 64]),
        ]);
        let mut link = UsbLink::start(io, "usb:1-1".into()).unwrap();
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![1; 64]));
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![2; 64]));
        assert_eq!(link.receive(Duration::from_millis(20)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn short_and_oversized_transfers_are_dropped() {
        let io = FakeIo::with_reads(vec![Ok(vec![1; 10]), Ok(vec![2; 65]), Ok(vec![3; 64])]);
        let mut link = UsbLink::start(io, "usb:1-1".into()).unwrap();
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![3; 64]));
    }

    #[tokio::test]
    async fn unplugging_ends_the_link_with_a_disconnect() {
        let io = FakeIo::with_reads(vec![Ok(vec![1; 64]), Err(rusb::Error::NoDevice)]);
        let mut link = UsbLink::start(io, "usb:1-1".into()).unwrap();
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![1; 64]));
        let error = link.receive(WAIT).await.unwrap_err();
        assert!(error.is_disconnect(), "{error}");
        assert!(error.to_string().contains("unplugged"), "{error}");
    }

    #[tokio::test]
    async fn writes_go_out_whole_and_failures_are_typed() {
        let io = FakeIo::with_reads(vec![]);
        let link = UsbLink::start(io.clone(), "usb:1-1".into()).unwrap();
        link.send(&[5; 64]).await.unwrap();
        assert_eq!(io.writes.lock().unwrap().as_slice(), &[vec![5; 64]]);

        *io.write_result.lock().unwrap() = Some(Ok(40));
        assert!(matches!(
            link.send(&[5; 64]).await,
            Err(TransportError::Usb(UsbError::ShortWrite {
                written: 40,
                expected: 64,
                ..
            }))
        ));

        *io.write_result.lock().unwrap() = Some(Err(rusb::Error::Access));
        let error = link.send(&[5; 64]).await.unwrap_err();
        assert!(error.to_string().contains("70-pinbridge.rules"), "{error}");

        *io.write_result.lock().unwrap() = Some(Err(rusb::Error::Timeout));
        assert!(matches!(
            link.send(&[5; 64]).await,
            Err(TransportError::Usb(UsbError::Timeout {
                operation: UsbOperation::Write,
                ..
            }))
        ));
    }

    #[tokio::test]
    async fn dropping_the_link_stops_the_reader_thread() {
        let io = FakeIo::with_reads(vec![]);
        let link = UsbLink::start(io.clone(), "usb:1-1".into()).unwrap();
        drop(link);
        // The reader holds one reference until it notices the stop flag.
        let deadline = std::time::Instant::now() + WAIT;
        while Arc::strong_count(&io) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "reader thread still running"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
