//! USB failures in words a user can act on, mapped from libusb's error codes.

use std::fmt;

use super::descriptor::NoVendorInterface;
use super::{PRODUCT_ID, UDEV_RULE_PATH, VENDOR_ID};

/// What the transport was doing when libusb failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbOperation {
    /// Listing the devices on the bus.
    Enumerate,
    /// Opening a device.
    Open,
    /// Reading a descriptor.
    ReadDescriptor,
    /// Detaching a kernel driver from the interface.
    DetachKernelDriver,
    /// Claiming the interface.
    ClaimInterface,
    /// Selecting the interface's alternate setting.
    SetAlternateSetting,
    /// Receiving a packet.
    Read,
    /// Sending a packet.
    Write,
    /// Registering for hotplug notifications.
    Hotplug,
}

impl fmt::Display for UsbOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsbOperation::Enumerate => "listing USB devices",
            UsbOperation::Open => "opening the device",
            UsbOperation::ReadDescriptor => "reading its descriptors",
            UsbOperation::DetachKernelDriver => "detaching the kernel driver",
            UsbOperation::ClaimInterface => "claiming its interface",
            UsbOperation::SetAlternateSetting => "selecting the interface setting",
            UsbOperation::Read => "receiving a packet",
            UsbOperation::Write => "sending a packet",
            UsbOperation::Hotplug => "watching for USB devices",
        })
    }
}

/// How to grant access on this platform, for the permission-denied message.
const PERMISSION_HINT: &str = if cfg!(target_os = "linux") {
    "Install the udev rule that ships with PinBridge, which gives the logged-in user access to \
     PinBridge PIN pads: `sudo install -m 0644 packaging/linux/70-pinbridge.rules \
     /etc/udev/rules.d/ && sudo udevadm control --reload-rules && sudo udevadm trigger`, then \
     unplug the PIN pad and plug it in again."
} else if cfg!(target_os = "windows") {
    "Windows should bind the WinUSB driver from the device's Microsoft OS 2.0 descriptors; \
     check in Device Manager that no other driver claimed it."
} else {
    "Check that no other program has the PIN pad open."
};

/// A USB failure.
#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    /// The operating system refused access (on Linux: the udev rule is missing).
    #[error("permission denied {operation} for the PIN pad {device} (USB {vid:04x}:{pid:04x}). {hint} The rule file is {rule}.", vid = VENDOR_ID, pid = PRODUCT_ID, hint = PERMISSION_HINT, rule = UDEV_RULE_PATH)]
    PermissionDenied {
        /// The device, as displayed.
        device: String,
        /// What was refused.
        operation: UsbOperation,
    },
    /// Another program (or a kernel driver that could not be detached) holds the interface.
    #[error(
        "the PIN pad {device} is in use by another program (its interface is already claimed); close that program and try again"
    )]
    InterfaceBusy {
        /// The device, as displayed.
        device: String,
    },
    /// The device was unplugged.
    #[error(
        "the PIN pad {device} was unplugged; plug it in again and retry (an operation it was doing was cancelled on the PIN pad)"
    )]
    Disconnected {
        /// The device, as displayed.
        device: String,
    },
    /// The device is on the bus but not fully enumerated yet (its serial cannot be read):
    /// right after a plug-in, before the operating system finished with it.
    #[error("the PIN pad {device} is still being set up by the system (no serial number yet)")]
    Enumerating {
        /// The device, as displayed.
        device: String,
    },
    /// A different PIN pad came back than the one that was unplugged.
    #[error(
        "the PIN pad plugged in ({found}) is not the one that was unplugged ({expected}); plug that one in"
    )]
    OtherDevice {
        /// The serial of the one that was connected.
        expected: String,
        /// The serial of the one found.
        found: String,
    },
    /// No matching device is plugged in.
    #[error("no PinBridge PIN pad ({wanted}) is plugged in")]
    NotFound {
        /// What was looked for (serial, address, or any).
        wanted: String,
    },
    /// The device has our ids but not the interface we speak.
    #[error("{device} is not a PinBridge PIN pad we can talk to: {}", reason.reason())]
    NoVendorInterface {
        /// The device, as displayed.
        device: String,
        /// What is missing.
        reason: NoVendorInterface,
    },
    /// A transfer did not complete in time.
    #[error("the PIN pad {device} timed out {operation}")]
    Timeout {
        /// The device, as displayed.
        device: String,
        /// What timed out.
        operation: UsbOperation,
    },
    /// The endpoint stalled (the device refused the transfer).
    #[error("the PIN pad {device} stalled while {operation}")]
    Stalled {
        /// The device, as displayed.
        device: String,
        /// What stalled.
        operation: UsbOperation,
    },
    /// The device sent more than a packet.
    #[error("the PIN pad {device} sent more data than one packet")]
    Overflow {
        /// The device, as displayed.
        device: String,
    },
    /// Fewer bytes than a packet were sent.
    #[error("only {written} of {expected} bytes of a packet reached the PIN pad {device}")]
    ShortWrite {
        /// The device, as displayed.
        device: String,
        /// Bytes sent.
        written: usize,
        /// Packet size.
        expected: usize,
    },
    /// The platform's libusb cannot do this.
    #[error("{operation} is not supported by libusb on this platform")]
    Unsupported {
        /// What is unsupported.
        operation: UsbOperation,
    },
    /// The background thread doing blocking USB calls stopped.
    #[error("the USB worker for {device} stopped unexpectedly")]
    WorkerStopped {
        /// The device, as displayed.
        device: String,
    },
    /// Any other libusb failure.
    #[error("USB error {operation} for {device}: {error}")]
    Libusb {
        /// The device, as displayed.
        device: String,
        /// What failed.
        operation: UsbOperation,
        /// libusb's code.
        error: rusb::Error,
    },
}

impl UsbError {
    /// Retrying cannot help: the user has to act (install the udev rule, use another device).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            UsbError::PermissionDenied { .. } | UsbError::NoVendorInterface { .. }
        )
    }
}

/// Maps a libusb error during `operation` on `device` to what it means for the user.
pub fn map_libusb_error(error: rusb::Error, operation: UsbOperation, device: &str) -> UsbError {
    let device = device.to_owned();
    match error {
        rusb::Error::Access => UsbError::PermissionDenied { device, operation },
        rusb::Error::Busy if operation == UsbOperation::ClaimInterface => {
            UsbError::InterfaceBusy { device }
        }
        rusb::Error::NoDevice => UsbError::Disconnected { device },
        rusb::Error::Timeout => UsbError::Timeout { device, operation },
        rusb::Error::Pipe => UsbError::Stalled { device, operation },
        rusb::Error::Overflow => UsbError::Overflow { device },
        rusb::Error::NotSupported => UsbError::Unsupported { operation },
        error => UsbError::Libusb {
            device,
            operation,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_explains_the_udev_rule_and_how_to_load_it() {
        let error = map_libusb_error(rusb::Error::Access, UsbOperation::Open, "usb:1-4");
        assert!(matches!(error, UsbError::PermissionDenied { .. }));
        assert!(error.is_permanent());
        let text = error.to_string();
        assert!(text.contains("usb:1-4"), "{text}");
        assert!(
            text.contains("packaging/linux/70-pinbridge.rules"),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            assert!(text.contains("udevadm control --reload-rules"), "{text}");
            assert!(text.contains("udevadm trigger"), "{text}");
        }
    }

    #[test]
    fn busy_when_claiming_means_another_program_has_it() {
        let error = map_libusb_error(rusb::Error::Busy, UsbOperation::ClaimInterface, "d");
        assert!(matches!(error, UsbError::InterfaceBusy { .. }));
        assert!(error.to_string().contains("another program"));
        // Busy elsewhere is not about the interface.
        assert!(matches!(
            map_libusb_error(rusb::Error::Busy, UsbOperation::Write, "d"),
            UsbError::Libusb {
                error: rusb::Error::Busy,
                ..
            }
        ));
    }

    #[test]
    fn every_libusb_code_maps_to_a_specific_error() {
        let cases = [
            (rusb::Error::NoDevice, "unplugged"),
            (rusb::Error::Timeout, "timed out"),
            (rusb::Error::Pipe, "stalled"),
            (rusb::Error::Overflow, "more data than one packet"),
            (rusb::Error::NotSupported, "not supported"),
            (rusb::Error::Io, "Input/Output"),
        ];
        for (code, words) in cases {
            let text = map_libusb_error(code, UsbOperation::Read, "d").to_string();
            assert!(text.contains(words), "{code:?}: {text}");
        }
        assert!(matches!(
            map_libusb_error(rusb::Error::NoDevice, UsbOperation::Read, "d"),
            UsbError::Disconnected { .. }
        ));
    }

    #[test]
    fn only_user_action_errors_are_permanent() {
        assert!(
            UsbError::NoVendorInterface {
                device: "d".into(),
                reason: NoVendorInterface::NoVendorClass
            }
            .is_permanent()
        );
        assert!(!UsbError::Disconnected { device: "d".into() }.is_permanent());
        assert!(
            !UsbError::NotFound {
                wanted: "any".into()
            }
            .is_permanent()
        );
    }
}
