//! The simulator's BLE peripheral offers exactly the service the companion looks for (the
//! library itself never names the mock device: DESIGN.md §1, `flows_architecture.rs`).

#[cfg(target_os = "linux")]
#[test]
fn the_simulator_s_peripheral_offers_this_service() {
    use companion::transport::ble;
    use device_sim::ble_peripheral as sim;
    assert_eq!(sim::SERVICE_UUID, ble::SERVICE_UUID);
    assert_eq!(sim::CONTROL_POINT_UUID, ble::CONTROL_POINT_UUID);
    assert_eq!(sim::STATUS_UUID, ble::STATUS_UUID);
    assert_eq!(
        sim::CONTROL_POINT_LENGTH_UUID,
        ble::CONTROL_POINT_LENGTH_UUID
    );
    assert_eq!(sim::SERVICE_REVISION_UUID, ble::SERVICE_REVISION_UUID);
    assert_eq!(sim::NAME_PREFIX, ble::NAME_PREFIX);
}
