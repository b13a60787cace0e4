//! What a request is doing while the device works on it, and how to stop it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use firmware_protocol::link::KeepaliveStatus;
use tokio::sync::watch;

/// Progress of a request, from the device's keepalives and the session's own retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The device is working; nothing for the user to do.
    Processing,
    /// The device waits for the user to confirm on it.
    WaitingForUser,
    /// The user is typing the PIN on the device: how many digits so far, never which.
    PinEntry {
        /// Digits entered.
        entered: u8,
        /// Most digits the PIN may have.
        max: u8,
    },
    /// The device is busy with another program's request; the session retries.
    DeviceBusy {
        /// The retry about to be made (1 = first retry).
        retry: u32,
        /// How long the session waits before it.
        after: Duration,
    },
    /// The request is being cancelled (by the caller, or because it took too long).
    Cancelling,
}

impl Progress {
    /// The progress a keepalive status reports.
    pub fn from_keepalive(status: KeepaliveStatus) -> Self {
        match status {
            KeepaliveStatus::Processing => Progress::Processing,
            KeepaliveStatus::AwaitingUser => Progress::WaitingForUser,
            KeepaliveStatus::PinEntry(progress) => Progress::PinEntry {
                entered: progress.entered(),
                max: progress.max(),
            },
        }
    }
}

/// PIN entry progress as dots: one filled per digit entered, one hollow per digit still
/// possible (`3` of `4` is `●●●○`). Counts above `max` are clamped.
pub fn pin_dots(entered: u8, max: u8) -> String {
    let entered = entered.min(max);
    let mut dots = "●".repeat(usize::from(entered));
    dots.push_str(&"○".repeat(usize::from(max - entered)));
    dots
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Progress::Processing => f.write_str("the PIN pad is working"),
            Progress::WaitingForUser => f.write_str("confirm on the PIN pad"),
            Progress::PinEntry { entered, max } => {
                write!(
                    f,
                    "enter your PIN on the PIN pad {}",
                    pin_dots(entered, max)
                )
            }
            Progress::DeviceBusy { retry, after } => write!(
                f,
                "the PIN pad is busy with another program; retry {retry} in {} ms",
                after.as_millis()
            ),
            Progress::Cancelling => f.write_str("cancelling"),
        }
    }
}

/// Cancels the request a session is working on, from any task or thread.
///
/// A cancel while no request is in progress does nothing (it does not cancel the next one).
#[derive(Clone, Debug)]
pub struct CancelHandle {
    generation: Arc<watch::Sender<u64>>,
}

impl CancelHandle {
    pub(crate) fn new() -> (Self, watch::Receiver<u64>) {
        let (sender, receiver) = watch::channel(0);
        (
            CancelHandle {
                generation: Arc::new(sender),
            },
            receiver,
        )
    }

    /// Asks the session to cancel the request in progress: it sends the link CANCEL and the
    /// request ends with [`SessionError::Cancelled`](super::SessionError::Cancelled) (or with
    /// the device's answer, if the device had already answered).
    pub fn cancel(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_protocol::link::PinProgress;

    #[test]
    fn pin_dots_show_a_count_only() {
        assert_eq!(pin_dots(3, 4), "●●●○");
        assert_eq!(pin_dots(0, 6), "○○○○○○");
        assert_eq!(pin_dots(12, 12), "●".repeat(12));
        assert_eq!(pin_dots(9, 4), "●●●●");
    }

    #[test]
    fn keepalives_become_progress() {
        assert_eq!(
            Progress::from_keepalive(KeepaliveStatus::Processing),
            Progress::Processing
        );
        assert_eq!(
            Progress::from_keepalive(KeepaliveStatus::AwaitingUser),
            Progress::WaitingForUser
        );
        let pin =
            Progress::from_keepalive(KeepaliveStatus::PinEntry(PinProgress::new(2, 4).unwrap()));
        assert_eq!(pin, Progress::PinEntry { entered: 2, max: 4 });
        assert_eq!(pin.to_string(), "enter your PIN on the PIN pad ●●○○");
    }

    #[test]
    fn cancel_bumps_the_generation_every_time() {
        let (handle, receiver) = CancelHandle::new();
        let clone = handle.clone();
        handle.cancel();
        clone.cancel();
        assert_eq!(*receiver.borrow(), 2);
    }
}
