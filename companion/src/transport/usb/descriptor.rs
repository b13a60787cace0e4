//! Which interface and endpoints of a USB device carry PinBridge packets, decided from its
//! descriptors alone (a pure function, so it is tested without a device).

/// Interface class code of a vendor-specific interface.
pub const VENDOR_SPECIFIC_CLASS: u8 = 0xFF;

/// Direction of an endpoint, from the host's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointDirection {
    /// Device to host.
    In,
    /// Host to device.
    Out,
}

/// Transfer type of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointTransfer {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

/// What an endpoint descriptor says, as far as packet transfers care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointSummary {
    /// Endpoint address (bit 7 set for IN).
    pub address: u8,
    /// Direction.
    pub direction: EndpointDirection,
    /// Transfer type.
    pub transfer: EndpointTransfer,
    /// wMaxPacketSize.
    pub max_packet_size: u16,
}

/// One alternate setting of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSummary {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt_setting: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// Its endpoints.
    pub endpoints: Vec<EndpointSummary>,
}

/// The transfer type both packet endpoints use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketTransfer {
    /// Interrupt IN/OUT (guaranteed polling interval; the usual choice for 64-byte reports).
    Interrupt,
    /// Bulk IN/OUT.
    Bulk,
}

/// The interface to claim and the endpoint pair to move packets on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorInterface {
    /// Interface number to claim.
    pub number: u8,
    /// Alternate setting to select (0 needs no request).
    pub alt_setting: u8,
    /// Endpoint address packets arrive on.
    pub in_endpoint: u8,
    /// Endpoint address packets are sent to.
    pub out_endpoint: u8,
    /// Transfer type of both.
    pub transfer: PacketTransfer,
}

/// Why no interface qualified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoVendorInterface {
    /// No interface has class 0xFF.
    NoVendorClass,
    /// Vendor interfaces exist, but none has an IN and an OUT endpoint of the same bulk or
    /// interrupt type.
    NoEndpointPair,
}

impl NoVendorInterface {
    /// Plain words for error messages.
    pub const fn reason(self) -> &'static str {
        match self {
            NoVendorInterface::NoVendorClass => "it has no vendor-specific (class 0xFF) interface",
            NoVendorInterface::NoEndpointPair => {
                "its vendor-specific interface has no IN/OUT endpoint pair of the same bulk or interrupt type"
            }
        }
    }
}

/// Picks the first vendor-specific interface (lowest number, then lowest alternate setting)
/// with an IN and an OUT endpoint of one transfer type, interrupt preferred over bulk.
pub fn select_vendor_interface(
    interfaces: &[InterfaceSummary],
) -> Result<VendorInterface, NoVendorInterface> {
    let mut vendor: Vec<&InterfaceSummary> = interfaces
        .iter()
        .filter(|interface| interface.class == VENDOR_SPECIFIC_CLASS)
        .collect();
    if vendor.is_empty() {
        return Err(NoVendorInterface::NoVendorClass);
    }
    vendor.sort_by_key(|interface| (interface.number, interface.alt_setting));
    vendor
        .into_iter()
        .find_map(|interface| {
            [
                (EndpointTransfer::Interrupt, PacketTransfer::Interrupt),
                (EndpointTransfer::Bulk, PacketTransfer::Bulk),
            ]
            .into_iter()
            .find_map(|(endpoint_type, transfer)| {
                let find = |direction| {
                    interface
                        .endpoints
                        .iter()
                        .find(|e| e.transfer == endpoint_type && e.direction == direction)
                        .map(|e| e.address)
                };
                Some(VendorInterface {
                    number: interface.number,
                    alt_setting: interface.alt_setting,
                    in_endpoint: find(EndpointDirection::In)?,
                    out_endpoint: find(EndpointDirection::Out)?,
                    transfer,
                })
            })
        })
        .ok_or(NoVendorInterface::NoEndpointPair)
}

/// The display address of a USB device: bus and port path (`1-4.2`), stable while it stays in
/// the same socket, as Linux sysfs names it.
pub fn usb_address(bus: u8, ports: &[u8]) -> String {
    if ports.is_empty() {
        return format!("{bus}");
    }
    let path: Vec<String> = ports.iter().map(u8::to_string).collect();
    format!("{bus}-{}", path.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(address: u8, transfer: EndpointTransfer) -> EndpointSummary {
        EndpointSummary {
            address,
            direction: if address & 0x80 != 0 {
                EndpointDirection::In
            } else {
                EndpointDirection::Out
            },
            transfer,
            max_packet_size: 64,
        }
    }

    fn interface(number: u8, class: u8, endpoints: Vec<EndpointSummary>) -> InterfaceSummary {
        InterfaceSummary {
            number,
            alt_setting: 0,
            class,
            endpoints,
        }
    }

    #[test]
    fn picks_the_vendor_interrupt_pair_beside_a_hid_interface() {
        let hid = interface(0, 0x03, vec![endpoint(0x81, EndpointTransfer::Interrupt)]);
        let vendor = interface(
            1,
            VENDOR_SPECIFIC_CLASS,
            vec![
                endpoint(0x02, EndpointTransfer::Interrupt),
                endpoint(0x82, EndpointTransfer::Interrupt),
            ],
        );
        assert_eq!(
            select_vendor_interface(&[hid, vendor]),
            Ok(VendorInterface {
                number: 1,
                alt_setting: 0,
                in_endpoint: 0x82,
                out_endpoint: 0x02,
                transfer: PacketTransfer::Interrupt,
            })
        );
    }

    #[test]
    fn accepts_a_bulk_pair_and_prefers_interrupt_when_both_exist() {
        let bulk_only = interface(
            0,
            VENDOR_SPECIFIC_CLASS,
            vec![
                endpoint(0x81, EndpointTransfer::Bulk),
                endpoint(0x01, EndpointTransfer::Bulk),
            ],
        );
        let chosen = select_vendor_interface(std::slice::from_ref(&bulk_only)).unwrap();
        assert_eq!(chosen.transfer, PacketTransfer::Bulk);
        assert_eq!((chosen.in_endpoint, chosen.out_endpoint), (0x81, 0x01));

        let mut both = bulk_only;
        both.endpoints
            .push(endpoint(0x83, EndpointTransfer::Interrupt));
        both.endpoints
            .push(endpoint(0x03, EndpointTransfer::Interrupt));
        let chosen = select_vendor_interface(&[both]).unwrap();
        assert_eq!(chosen.transfer, PacketTransfer::Interrupt);
        assert_eq!((chosen.in_endpoint, chosen.out_endpoint), (0x83, 0x03));
    }

    #[test]
    fn never_mixes_a_bulk_in_with_an_interrupt_out() {
        let mixed = interface(
            0,
            VENDOR_SPECIFIC_CLASS,
            vec![
                endpoint(0x81, EndpointTransfer::Bulk),
                endpoint(0x01, EndpointTransfer::Interrupt),
                endpoint(0x82, EndpointTransfer::Isochronous),
                endpoint(0x02, EndpointTransfer::Isochronous),
            ],
        );
        assert_eq!(
            select_vendor_interface(&[mixed]),
            Err(NoVendorInterface::NoEndpointPair)
        );
    }

    #[test]
    fn a_device_without_a_vendor_interface_is_refused() {
        let cdc = interface(
            0,
            0x0A,
            vec![
                endpoint(0x81, EndpointTransfer::Bulk),
                endpoint(0x01, EndpointTransfer::Bulk),
            ],
        );
        assert_eq!(
            select_vendor_interface(&[cdc]),
            Err(NoVendorInterface::NoVendorClass)
        );
        assert_eq!(
            select_vendor_interface(&[]),
            Err(NoVendorInterface::NoVendorClass)
        );
    }

    #[test]
    fn lowest_interface_and_alternate_setting_win() {
        let pair = vec![
            endpoint(0x81, EndpointTransfer::Interrupt),
            endpoint(0x01, EndpointTransfer::Interrupt),
        ];
        let mut alt1 = interface(2, VENDOR_SPECIFIC_CLASS, pair.clone());
        alt1.alt_setting = 1;
        let empty_alt0 = interface(2, VENDOR_SPECIFIC_CLASS, vec![]);
        let later = interface(3, VENDOR_SPECIFIC_CLASS, pair);
        let chosen = select_vendor_interface(&[later, alt1, empty_alt0]).unwrap();
        assert_eq!((chosen.number, chosen.alt_setting), (2, 1));
    }

    #[test]
    fn addresses_follow_the_sysfs_bus_port_path() {
        assert_eq!(usb_address(1, &[4, 2]), "1-4.2");
        assert_eq!(usb_address(3, &[1]), "3-1");
        assert_eq!(usb_address(2, &[]), "2");
    }
}
