//! Round trips of one-packet requests to a PIN pad, for the real-stack rig's figures
//! (docs/BENCHMARKS.md, "Real USB / BLE stacks"): `real_stack_ping DEVICE COUNT` opens DEVICE
//! as `pinbridge --device` does (a serial, `usb:ADDRESS`, `sim:HOST:PORT`), sends COUNT Ping
//! requests whose encoded message fits one 64-byte packet (request MSG, device ACK, answer
//! MSG, host ACK: two packets each way), and prints one JSON line with p50/p90/max in
//! microseconds.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use companion::devices::{DeviceManager, DiscoveryConfig};
use companion::session::Session;
use companion::transport::Transport;
use companion::transport::sim::SimTransport;
use firmware_protocol::message::{Ping, Request};

type Failure = Box<dyn std::error::Error>;

async fn open(wanted: &str) -> Result<Box<dyn Transport>, Failure> {
    if let Some(address) = wanted.strip_prefix("sim:") {
        return Ok(Box::new(SimTransport::connect(address.parse()?).await?));
    }
    let manager = DeviceManager::with_platform_sources(&DiscoveryConfig::for_device(wanted));
    let info = manager
        .wait_for_matching(
            wanted,
            Duration::from_secs(30),
            Duration::from_millis(250),
            || {},
        )
        .await?;
    Ok(manager.open(info.id()).await?)
}

fn percentile(sorted: &[Duration], q: f64) -> u128 {
    let index = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(index).map_or(0, Duration::as_micros)
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let wanted = args.next().ok_or("usage: real_stack_ping DEVICE COUNT")?;
    let count: usize = args.next().unwrap_or_else(|| "50".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let result = ping(&wanted, count).await;
        // Leaves no BLE link behind for the next program (see `finish_disconnects`).
        companion::transport::ble::finish_disconnects(Duration::from_secs(3)).await;
        result
    })
}

async fn ping(wanted: &str, count: usize) -> Result<(), Failure> {
    let mut session = Session::open(open(wanted).await?).await?;
    let ping = Request::Ping(Ping {
        payload: vec![0x5A; 16],
    });
    // The first one pays for lazy set-up on both sides.
    session.request(&ping).await?;
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        session.request(&ping).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "{{\"device\":\"{wanted}\",\"count\":{count},\"p50_us\":{},\"p90_us\":{},\"max_us\":{}}}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 1.0)
    );
    Ok(())
}
