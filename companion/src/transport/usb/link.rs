//! Packet I/O over a claimed interface: blocking libusb transfers on a dedicated reader thread
//! and on tokio's blocking pool for writes, behind the [`UsbPacketIo`] seam so the logic runs
//! against a fake in tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use firmware_protocol::link::Mtu;
use tokio::sync::mpsc;

use super::error::{UsbError, UsbOperation, map_libusb_error};
use crate::transport::TransportError;
use crate::transport::queue::{Incoming, PacketQueue};

/// How long one blocking read waits: bounds how quickly the reader thread notices `stop`.
pub const READ_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long the reader keeps reading after the last traffic (a packet sent, or a receive
/// ended) with nobody waiting for a packet. Long enough that a flow never parks the reader
/// between its steps (the bank's round trips between two device commands, a slow host):
/// while a flow runs, packets are read as they come, as by a reader that always reads; an
/// idle connected PIN pad parks it after this long. (One second was tried: under a loaded
/// machine a flow resumed after a replug then lost its answer in the rig.)
pub const READ_AFTER_TRAFFIC: Duration = Duration::from_secs(10);

/// How long a packet write may take before the device is considered stuck.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Blocking transfers of single packets on the chosen endpoint pair.
pub trait UsbPacketIo: Send + Sync + 'static {
    /// Reads one transfer into `buf`; `Err(Timeout)` when nothing came within `timeout`.
    fn read_packet(&self, buf: &mut [u8], timeout: Duration) -> rusb::Result<usize>;
    /// Writes one transfer; returns the bytes written.
    fn write_packet(&self, buf: &[u8], timeout: Duration) -> rusb::Result<usize>;
    /// Whether the device has left the bus. Asked after a transfer failed with a code that
    /// does not say (on Linux an unplug mid-transfer often completes as a plain I/O error or a
    /// stall, not as "no device"), so an unplug is reported as one.
    fn is_gone(&self) -> bool {
        false
    }
}

/// How long the reader pauses after a zero-length transfer before asking again. Some
/// devices (USB/IP exports among them) answer an IN request at once with a zero-length packet
/// when they have nothing to send; without a pause the reader would spin. One full-speed
/// frame: a device cannot answer an interrupt poll sooner anyway.
pub const ZERO_LENGTH_PAUSE: Duration = Duration::from_millis(1);

/// When the reader thread reads. A PIN pad never speaks unprompted and USB is polled by the
/// host (a device's packet waits in its endpoint until read), so the reader reads only while
/// someone waits for a packet or for [`READ_AFTER_TRAFFIC`] after the last traffic, and
/// otherwise sleeps on a condition
/// variable: an idle connected PIN pad costs no wake-ups (the synchronous libusb read can only
/// be stopped by its timeout, so a reader that always read would re-arm every
/// [`READ_POLL_INTERVAL`], waking libusb's event thread each time).
#[derive(Debug, Default)]
struct Demand {
    state: Mutex<DemandState>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct DemandState {
    /// `receive` calls waiting now.
    waiting: usize,
    /// Read at least until then (set by each send and each ended receive).
    until: Option<Instant>,
    stopped: bool,
}

/// What the reader does next.
#[derive(Debug, PartialEq, Eq)]
enum ReaderStep {
    Read,
    /// Sleep until a receive, a send or the stop wakes it.
    Sleep,
    Stop,
}

impl DemandState {
    /// Keeps reading for [`READ_AFTER_TRAFFIC`] from now.
    fn traffic(&mut self) {
        self.until = Some(Instant::now() + READ_AFTER_TRAFFIC);
    }

    fn step(&self, now: Instant) -> ReaderStep {
        if self.stopped {
            ReaderStep::Stop
        } else if self.waiting > 0 {
            ReaderStep::Read
        } else {
            match self.until {
                Some(until) if until > now => ReaderStep::Read,
                _ => ReaderStep::Sleep,
            }
        }
    }
}

impl Demand {
    fn lock(&self) -> MutexGuard<'_, DemandState> {
        // Plain counters: a poisoned lock still holds consistent values.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut DemandState)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    /// Blocks the reader until it should read (true) or stop (false).
    fn wait_for_reading(&self) -> bool {
        let mut state = self.lock();
        loop {
            match state.step(Instant::now()) {
                ReaderStep::Read => return true,
                ReaderStep::Stop => return false,
                ReaderStep::Sleep => {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }
}

/// Counts a waiting `receive` for as long as it waits (also when its future is dropped).
struct Waiting<'a>(&'a Demand);

impl<'a> Waiting<'a> {
    fn new(demand: &'a Demand) -> Self {
        demand.update(|state| state.waiting += 1);
        Waiting(demand)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.update(|state| {
            state.waiting = state.waiting.saturating_sub(1);
            state.traffic();
        });
    }
}

/// A running packet link over one claimed interface.
pub struct UsbLink {
    io: Arc<dyn UsbPacketIo>,
    device: String,
    stop: Arc<AtomicBool>,
    demand: Arc<Demand>,
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
        let demand = Arc::new(Demand::default());
        let reader_demand = Arc::clone(&demand);
        std::thread::Builder::new()
            .name(format!("usb-reader {device}"))
            .spawn(move || {
                read_loop(
                    &*reader_io,
                    &reader_stop,
                    &reader_demand,
                    &reader_device,
                    &sender,
                )
            })
            .map_err(|_| UsbError::WorkerStopped {
                device: device.clone(),
            })?;
        Ok(UsbLink {
            io,
            device,
            stop,
            demand,
            queue,
        })
    }

    /// Sends one packet (already checked to be one MTU).
    pub async fn send(&self, packet: &[u8]) -> Result<(), TransportError> {
        // The answer may start before anyone asks for it: read for a while from now.
        self.demand.update(DemandState::traffic);
        let io = Arc::clone(&self.io);
        let data = packet.to_vec();
        let written = tokio::task::spawn_blocking(move || io.write_packet(&data, WRITE_TIMEOUT))
            .await
            .map_err(|_| UsbError::WorkerStopped {
                device: self.device.clone(),
            })?
            .map_err(|error| transfer_error(&*self.io, error, UsbOperation::Write, &self.device))?;
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
        let _waiting = Waiting::new(&self.demand);
        self.queue.next(timeout).await
    }
}

impl Drop for UsbLink {
    /// The reader thread exits within [`READ_POLL_INTERVAL`]; the interface is released when
    /// the last reference to the I/O object goes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.demand.update(|state| state.stopped = true);
    }
}

/// Maps a failed transfer: an unplug is [`UsbError::Disconnected`] whatever code libusb
/// reported for it; anything else as [`map_libusb_error`] says.
fn transfer_error(
    io: &dyn UsbPacketIo,
    error: rusb::Error,
    operation: UsbOperation,
    device: &str,
) -> UsbError {
    match error {
        rusb::Error::NoDevice => map_libusb_error(error, operation, device),
        // Our own timeouts are not unplugs; anything else may be.
        rusb::Error::Timeout | rusb::Error::Interrupted => {
            map_libusb_error(error, operation, device)
        }
        _ if io.is_gone() => UsbError::Disconnected {
            device: device.to_owned(),
        },
        _ => map_libusb_error(error, operation, device),
    }
}

fn read_loop(
    io: &dyn UsbPacketIo,
    stop: &AtomicBool,
    demand: &Demand,
    device: &str,
    sender: &mpsc::Sender<Incoming>,
) {
    let mut zero_length = 0u64;
    while !stop.load(Ordering::Relaxed) && demand.wait_for_reading() {
        let mut packet = vec![0u8; Mtu::USB.get()];
        let outcome = match io.read_packet(&mut packet, READ_POLL_INTERVAL) {
            // "Nothing to send" from a device that answers every poll: not a packet, not worth
            // a log line each (one, at the first), and no reason to ask again at once.
            Ok(0) => {
                zero_length += 1;
                if zero_length == 1 {
                    tracing::debug!(
                        device,
                        "the device answers polls with zero-length packets; ignoring them"
                    );
                }
                std::thread::sleep(ZERO_LENGTH_PAUSE);
                continue;
            }
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
            Err(error) => Err(transfer_error(io, error, UsbOperation::Read, device).into()),
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
        /// What `is_gone` answers.
        pub(crate) gone: std::sync::atomic::AtomicBool,
        /// Once the scripted reads are used up: answer zero-length packets (a USB/IP device)
        /// instead of timing out.
        pub(crate) zero_length_when_idle: std::sync::atomic::AtomicBool,
        /// How many reads were made.
        pub(crate) read_calls: std::sync::atomic::AtomicUsize,
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
            self.read_calls.fetch_add(1, Ordering::Relaxed);
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
                None if self.zero_length_when_idle.load(Ordering::Relaxed) => Ok(0),
                None => {
                    std::thread::sleep(timeout.min(Duration::from_millis(5)));
                    Err(rusb::Error::Timeout)
                }
            }
        }

        fn is_gone(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
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
    async fn zero_length_transfers_are_skipped_without_spinning() {
        // A USB/IP device answers every IN poll at once with a zero-length packet.
        let io = FakeIo::with_reads(vec![Ok(vec![]), Ok(vec![]), Ok(vec![4; 64])]);
        io.zero_length_when_idle.store(true, Ordering::Relaxed);
        let mut link = UsbLink::start(io.clone(), "usb:1-1".into()).unwrap();
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![4; 64]));
        let before = io.read_calls.load(Ordering::Relaxed);
        let waited = std::time::Instant::now();
        assert_eq!(
            link.receive(Duration::from_millis(100)).await.unwrap(),
            None
        );
        let reads = io.read_calls.load(Ordering::Relaxed) - before;
        // At most one poll per ZERO_LENGTH_PAUSE (a spinning reader makes tens of thousands).
        let most = waited.elapsed().as_millis() / ZERO_LENGTH_PAUSE.as_millis() + 10;
        assert!(
            reads as u128 <= most,
            "{reads} reads in {:?}",
            waited.elapsed()
        );
    }

    #[tokio::test]
    async fn an_unplug_that_fails_as_an_io_error_is_reported_as_an_unplug() {
        // Linux completes a transfer cut short by an unplug as LIBUSB_ERROR_IO or a stall.
        for code in [rusb::Error::Io, rusb::Error::Pipe, rusb::Error::Other] {
            let io = FakeIo::with_reads(vec![Err(code)]);
            io.gone.store(true, Ordering::Relaxed);
            let mut link = UsbLink::start(io.clone(), "usb:1-1".into()).unwrap();
            let error = link.receive(WAIT).await.unwrap_err();
            assert!(error.is_disconnect(), "{code:?}: {error}");
            assert!(error.to_string().contains("unplugged"), "{error}");
            *io.write_result.lock().unwrap() = Some(Err(code));
            let error = link.send(&[1; 64]).await.unwrap_err();
            assert!(error.is_disconnect(), "{code:?}: {error}");
        }
        // The same code from a device still on the bus is what it says.
        let io = FakeIo::with_reads(vec![Err(rusb::Error::Io)]);
        let mut link = UsbLink::start(io, "usb:1-1".into()).unwrap();
        let error = link.receive(WAIT).await.unwrap_err();
        assert!(!error.is_disconnect(), "{error}");
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

    #[test]
    fn the_reader_reads_only_while_a_packet_is_awaited_or_after_traffic() {
        let now = Instant::now();
        let idle = DemandState::default();
        assert_eq!(idle.step(now), ReaderStep::Sleep);
        let waiting = DemandState { waiting: 1, ..idle };
        assert_eq!(waiting.step(now), ReaderStep::Read);
        let just_sent = DemandState {
            until: Some(now + READ_AFTER_TRAFFIC),
            ..idle
        };
        assert_eq!(just_sent.step(now), ReaderStep::Read);
        assert_eq!(just_sent.step(now + READ_AFTER_TRAFFIC), ReaderStep::Sleep);
        let stopped = DemandState {
            stopped: true,
            ..waiting
        };
        assert_eq!(stopped.step(now), ReaderStep::Stop);
    }

    #[tokio::test]
    async fn an_idle_link_makes_no_reads() {
        // A connected PIN pad nobody talks to: no transfer is armed (each would wake the
        // machine every READ_POLL_INTERVAL), until a receive asks for a packet.
        let io = FakeIo::with_reads(vec![Ok(vec![7; 64])]);
        let mut link = UsbLink::start(io.clone(), "usb:1-1".into()).unwrap();
        // The reader is parked: the demand is idle and nothing was read.
        assert_eq!(link.demand.lock().step(Instant::now()), ReaderStep::Sleep);
        assert_eq!(io.read_calls.load(Ordering::Relaxed), 0);
        assert_eq!(link.receive(WAIT).await.unwrap(), Some(vec![7; 64]));
        assert!(io.read_calls.load(Ordering::Relaxed) >= 1);
        assert_eq!(link.demand.lock().waiting, 0);
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
