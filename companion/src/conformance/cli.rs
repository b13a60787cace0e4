//! `pinbridge conformance`: the command line of the kit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::hook::TestHook;
use super::testbank::TestBank;
use super::{Options, run};
use crate::devices::{DeviceManager, DiscoveryConfig};
use crate::transport::Transport;
use crate::transport::sim::SimTransport;

/// `pinbridge conformance [--bank-keys FILE] [--sim-control URL] [--json FILE]` (the device
/// is the global `--device`), or `pinbridge conformance new-test-bank --out FILE`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConformanceArgs {
    /// The test bank's keys (from `new-test-bank`): runs the initialise, pairing and tamper
    /// cases. THE DEVICE IS RESET AND INITIALISED: use a test unit.
    #[arg(long, value_name = "FILE")]
    pub bank_keys: Option<PathBuf>,
    /// The device's test hook: pinpad-sim's control API (`http://127.0.0.1:PORT`), which
    /// presses keys and opens the tamper switch.
    #[arg(long, value_name = "URL")]
    pub sim_control: Option<String>,
    /// Run only the cases whose id starts with this (repeatable: `--case link.busy --case
    /// pair.`), with the cases they build on.
    #[arg(long = "case", value_name = "ID_PREFIX")]
    pub only: Vec<String>,
    /// How late a device timer (keepalive, retransmission, reassembly timeout) may be, as
    /// measured here, before its case fails: transport and scheduling delay.
    #[arg(long, value_name = "MS", default_value_t = super::DEFAULT_TOLERANCE_MS)]
    pub tolerance_ms: u64,
    /// Also write the report as JSON to this file.
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Option<ConformanceAction>,
}

/// Helpers around a run.
#[derive(Debug, Subcommand)]
pub enum ConformanceAction {
    /// Make a test bank profile (signing keys; 0600). Manufacture the test unit with it:
    /// `pinpad-sim init --bank-keys FILE` reads its public keys.
    NewTestBank {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

const DEVICE_WAIT: Duration = Duration::from_secs(30);

async fn open(wanted: &str, ble_adapter: Option<String>) -> Result<Box<dyn Transport>, String> {
    if let Some(address) = wanted.strip_prefix("sim:") {
        let address = address
            .parse()
            .map_err(|e| format!("--device {wanted}: not HOST:PORT ({e})"))?;
        return Ok(Box::new(
            SimTransport::connect(address)
                .await
                .map_err(|e| e.to_string())?,
        ));
    }
    let mut config = DiscoveryConfig::for_device(wanted);
    config.ble_adapter = ble_adapter;
    let manager = DeviceManager::with_platform_sources(&config);
    let info = manager
        .wait_for_matching(wanted, DEVICE_WAIT, Duration::from_millis(250), || {
            eprintln!("pinbridge: waiting for the PIN pad {wanted} (up to 30 s)");
        })
        .await
        .map_err(|e| e.to_string())?;
    manager.open(info.id()).await.map_err(|e| e.to_string())
}

/// Runs the subcommand; exit status 1 if any case failed, 2 if the kit could not run.
pub fn main(
    args: ConformanceArgs,
    device: Option<String>,
    ble_adapter: Option<String>,
    json: bool,
) -> ExitCode {
    if let Some(ConformanceAction::NewTestBank { out }) = &args.action {
        let mut seed = [0u8; 32];
        if let Err(error) = getrandom::fill(&mut seed) {
            eprintln!("pinbridge conformance: no OS entropy: {error}");
            return ExitCode::from(2);
        }
        let bank = TestBank::generate(&mut ChaCha20Rng::from_seed(seed));
        return match bank.save(out) {
            Ok(()) => {
                println!("test bank written to {}", out.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pinbridge conformance: {error}");
                ExitCode::from(2)
            }
        };
    }
    let setup = || -> Result<(String, Options), String> {
        let wanted = device.clone().ok_or(
            "no PIN pad: give --device (sim:HOST:PORT, usb:ADDRESS, ble:ADDRESS or a serial)",
        )?;
        let bank = args
            .bank_keys
            .as_deref()
            .map(TestBank::load)
            .transpose()
            .map_err(|e| e.to_string())?;
        let hook = args
            .sim_control
            .as_deref()
            .map(TestHook::sim_control)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((
            wanted.clone(),
            Options {
                address: wanted,
                bank,
                hook,
                only: args.only.clone(),
                tolerance_ms: args.tolerance_ms,
            },
        ))
    };
    let (wanted, options) = match setup() {
        Ok(setup) => setup,
        Err(error) => {
            eprintln!("pinbridge conformance: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pinbridge conformance: {error}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        let transport = open(&wanted, ble_adapter).await?;
        Ok::<_, String>(run(transport, options).await)
    });
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("pinbridge conformance: {error}");
            return ExitCode::from(2);
        }
    };
    let as_json = match serde_json::to_string_pretty(&report) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("pinbridge conformance: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.report
        && let Err(error) = std::fs::write(path, format!("{as_json}\n"))
    {
        eprintln!("pinbridge conformance: {}: {error}", path.display());
        return ExitCode::from(2);
    }
    if json {
        println!("{as_json}");
    } else {
        print!("{}", report.to_text());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
