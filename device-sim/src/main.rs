//! `pinpad-sim`: the PinBridge PIN pad simulator (see README.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use device_sim::certificate::CaKey;
use device_sim::device::{
    DEFAULT_LOCK_AFTER_SECONDS, DEFAULT_USER_TIMEOUT_SECONDS, Device, FIRMWARE_VERSION, Manufacture,
};
use device_sim::hardware::{Clock, SecureStore, VirtualHardware, write_atomically};
use device_sim::scenario::Scenario;
use device_sim::server::ServedDevice;
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::link::Mtu;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "pinpad-sim",
    version,
    about = "The PinBridge PIN pad in software"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The issuing CA that certifies devices at manufacture.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Manufacture a device (or N): attestation key, CA certificate, bank public keys.
    Init(InitArgs),
    /// Serve devices' link packets over TCP, with an optional control API and scenario.
    Serve(ServeArgs),
    /// Show a device's public identity (serial, keys, certificate, firmware hash, state).
    Info {
        /// The device state file.
        #[arg(long)]
        state: PathBuf,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make a new CA key file (keep it private; give the bank its public key).
    New {
        /// Where to write the CA key file (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the CA public key (SEC1 hex) for the bank's trust store.
    Show {
        /// The CA key file.
        #[arg(long)]
        ca_key: PathBuf,
    },
}

#[derive(Args)]
struct InitArgs {
    /// The state file to create (with --count: a folder for device-0.json ...).
    #[arg(long)]
    state: PathBuf,
    /// Device serial (with --count: a prefix, "-0000" ... appended).
    #[arg(long, default_value = "PPSIM")]
    serial: String,
    /// The issuing CA key file (from `pinpad-sim ca new`).
    #[arg(long)]
    ca_key: PathBuf,
    /// Bank management public key, SEC1 uncompressed hex (verifies Initialise, Enrol,
    /// BankCommand).
    #[arg(long)]
    bank_management_key: Option<String>,
    /// Bank operator public key, SEC1 uncompressed hex (verifies OperatorReset).
    #[arg(long)]
    bank_operator_key: Option<String>,
    /// JSON file {"management_public_key": hex, "operator_public_key": hex}.
    #[arg(long)]
    bank_keys: Option<PathBuf>,
    /// T2: lock after this many seconds without a successful bank contact.
    #[arg(long, default_value_t = DEFAULT_LOCK_AFTER_SECONDS)]
    lock_after_seconds: u64,
    /// T1: a device powered off for longer than this locks at power-on until the bank
    /// verifies it (0: never).
    #[arg(long, default_value_t = firmware_protocol::lifecycle::REFERENCE_T1_SECONDS)]
    power_off_lock_seconds: u64,
    /// T: an identity lock (activation record mismatch) held this long deletes the payment
    /// data.
    #[arg(long, default_value_t = firmware_protocol::lifecycle::REFERENCE_T_SECONDS)]
    identity_wipe_seconds: u64,
    /// How long the user has to act on a prompt.
    #[arg(long, default_value_t = DEFAULT_USER_TIMEOUT_SECONDS)]
    user_timeout_seconds: u64,
    /// The firmware image the device is manufactured with (its SHA-256 is the reference the
    /// device checks at start-up and the hash for the bank's allow-list); default: this
    /// `pinpad-sim` executable.
    #[arg(long, value_name = "FILE")]
    firmware: Option<PathBuf>,
    /// The display language it leaves the factory with (`en`, `zh-CN`): a setting of the
    /// device, kept in its store (PROTOCOL.md §6.1).
    #[arg(long, default_value = "en")]
    language: device_sim::device::Language,
    /// Make N devices in the --state folder.
    #[arg(long)]
    count: Option<usize>,
    /// Overwrite existing state files.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// The device state file (with --count: the folder of device-0.json ...).
    #[arg(long)]
    state: PathBuf,
    /// Link address of the first device; device k listens on port + k (port 0: any).
    #[arg(long, required_unless_present_any = ["usb_gadget", "ble"])]
    listen: Option<SocketAddr>,
    /// Also serve the device as a real USB device (Linux, root) on this USB device controller
    /// (default: the first one; `modprobe dummy_hcd` makes a virtual one).
    #[arg(long, value_name = "UDC", num_args = 0..=1, default_missing_value = "")]
    usb_gadget: Option<String>,
    /// Also serve the device as a Bluetooth LE peripheral (Linux, BlueZ) on this adapter
    /// (default: BlueZ's default adapter).
    #[arg(long, value_name = "ADAPTER", num_args = 0..=1, default_missing_value = "")]
    ble: Option<String>,
    /// Control API address (loopback only).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Serve N devices from the --state folder.
    #[arg(long)]
    count: Option<usize>,
    /// Change the devices' display language setting (`en`, `zh-CN`) before serving, as on the
    /// device's own settings menu; kept in the state file. Default: the stored setting.
    #[arg(long)]
    language: Option<device_sim::device::Language>,
    /// A scenario file (TOML) that scripts the devices.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Seed the device RNG (hex, 64 digits) for reproducible runs; default: OS entropy.
    #[arg(long)]
    seed: Option<String>,
    /// QA of conformance tools: break one link rule on the sim link (wrong-crc, ignore-busy,
    /// no-keepalive, ignore-cancel). Never for anything but testing a conformance kit.
    #[arg(long, value_name = "SCENARIO")]
    nonconforming: Option<device_sim::nonconforming::Nonconformity>,
    /// The firmware image the device runs, measured (SHA-256) at start-up; default: this
    /// `pinpad-sim` executable. Not the image it was manufactured with: the device's
    /// payment functions stay off (`IntegrityFailure`) and its integrity report says so.
    #[arg(long, value_name = "FILE")]
    firmware: Option<PathBuf>,
    /// The board id the simulated hardware reports (PROTOCOL.md §6.11); default: the
    /// simulator's one board. Serving a store under another id is a store moved to another
    /// board: its payments lock.
    #[arg(long)]
    board_id: Option<String>,
}

#[derive(Deserialize)]
struct BankKeysFile {
    management_public_key: Option<String>,
    operator_public_key: Option<String>,
}

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Ca { command } => ca(command),
        Command::Init(args) => init(args),
        Command::Serve(args) => serve(args),
        Command::Info { state } => info(&state),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pinpad-sim: {error}");
            ExitCode::FAILURE
        }
    }
}

/// SHA-256 of the firmware image: `file`, or this executable (the simulator's firmware).
fn firmware_hash(file: Option<&Path>) -> Result<[u8; 32], Failure> {
    use sha2::Digest;
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
    };
    let image = std::fs::read(&path).map_err(|e| format!("firmware {}: {e}", path.display()))?;
    Ok(sha2::Sha256::digest(&image).into())
}

fn os_rng() -> Result<ChaCha20Rng, Failure> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| format!("no OS entropy: {e}"))?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

fn ca(command: CaCommand) -> Result<(), Failure> {
    match command {
        CaCommand::New { out, force } => {
            if out.exists() && !force {
                return Err(format!("{} exists (use --force to overwrite)", out.display()).into());
            }
            let ca = CaKey::generate(&mut os_rng()?);
            write_atomically(&out, ca.to_file_text().as_bytes())?;
            println!("{}", hex::encode(ca.public_key().to_sec1_bytes()));
            Ok(())
        }
        CaCommand::Show { ca_key } => {
            let ca = CaKey::load(&ca_key)?;
            println!("{}", hex::encode(ca.public_key().to_sec1_bytes()));
            Ok(())
        }
    }
}

fn public_key(hex_text: &str, what: &str) -> Result<EcdsaVerifyingKey, Failure> {
    let bytes = hex::decode(hex_text.trim()).map_err(|_| format!("{what} is not hex"))?;
    EcdsaVerifyingKey::from_sec1_bytes(&bytes).map_err(|e| format!("{what}: {e}").into())
}

fn state_files(state: &Path, count: Option<usize>) -> Vec<PathBuf> {
    match count {
        None => vec![state.to_path_buf()],
        Some(n) => (0..n)
            .map(|k| state.join(format!("device-{k}.json")))
            .collect(),
    }
}

fn init(args: InitArgs) -> Result<(), Failure> {
    let ca = CaKey::load(&args.ca_key)?;
    let (mut management, mut operator) = (
        args.bank_management_key.clone(),
        args.bank_operator_key.clone(),
    );
    if let Some(path) = &args.bank_keys {
        let file: BankKeysFile = serde_json::from_str(&std::fs::read_to_string(path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        management = management.or(file.management_public_key);
        operator = operator.or(file.operator_public_key);
    }
    let management = management
        .map(|k| public_key(&k, "bank management key"))
        .transpose()?;
    let operator = operator
        .map(|k| public_key(&k, "bank operator key"))
        .transpose()?;
    if let Some(_count) = args.count {
        std::fs::create_dir_all(&args.state)?;
    }
    let mut rng = os_rng()?;
    for (k, path) in state_files(&args.state, args.count).iter().enumerate() {
        if path.exists() && !args.force {
            return Err(format!("{} exists (use --force to overwrite)", path.display()).into());
        }
        let serial = match args.count {
            None => args.serial.clone(),
            Some(_) => format!("{}-{k:04}", args.serial),
        };
        let mut settings = Manufacture::new(serial.clone());
        settings.bank_management_key = management;
        settings.bank_operator_key = operator;
        settings.lock_after_seconds = args.lock_after_seconds;
        settings.power_off_lock_seconds = args.power_off_lock_seconds;
        settings.identity_wipe_seconds = args.identity_wipe_seconds;
        settings.firmware_hash = firmware_hash(args.firmware.as_deref())?;
        settings.user_timeout_seconds = args.user_timeout_seconds;
        settings.display_language = args.language;
        let device = Device::manufacture(&settings, &ca, &mut rng)?;
        write_atomically(path, &device.stored_state())?;
        println!(
            "{serial} {} attestation {}",
            path.display(),
            hex::encode(device.attestation_public_key().to_sec1_bytes())
        );
    }
    if management.is_none() || operator.is_none() {
        eprintln!(
            "pinpad-sim: warning: no bank management/operator key installed; signed bank \
             requests will be refused (BadSignature)"
        );
    }
    Ok(())
}

fn info(state: &Path) -> Result<(), Failure> {
    let bytes = Zeroizing::new(std::fs::read(state)?);
    let mut device = Device::restore(&bytes)?;
    // `state.integrity_ok` says whether `serve` with this executable as firmware would pass.
    device.set_measured_firmware_hash(firmware_hash(None)?);
    let snapshot = device.snapshot();
    let out = serde_json::json!({
        "serial": device.serial(),
        "attestation_public_key": hex::encode(device.attestation_public_key().to_sec1_bytes()),
        "certificate": hex::encode(device.certificate()),
        "firmware_version": FIRMWARE_VERSION,
        // The image it was manufactured with: the hash for the bank's allow-list.
        "firmware_hash": hex::encode(device.reference_firmware_hash()),
        "state": snapshot,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn seed_from(text: Option<&str>) -> Result<[u8; 32], Failure> {
    match text {
        Some(text) => {
            let bytes = hex::decode(text).map_err(|_| "--seed is not hex")?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| "--seed is 32 bytes (64 hex digits)".into())
        }
        None => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| format!("no OS entropy: {e}"))?;
            Ok(seed)
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    if let Some(control) = args.control
        && !control.ip().is_loopback()
    {
        return Err("the control API listens on loopback only (127.0.0.1 or ::1)".into());
    }
    if (args.usb_gadget.is_some() || args.ble.is_some()) && args.count.is_some_and(|n| n != 1) {
        return Err("--usb-gadget and --ble serve one device".into());
    }
    if let Some(listen) = args.listen
        && !listen.ip().is_loopback()
    {
        // The link carries no secret (PROTOCOL.md: PINs and keys travel enciphered or MACed),
        // but on the network anyone can drive the mock PIN pad's link: allowed, never silent.
        eprintln!(
            "WARNING: the device link listens on {}, which is not loopback: any machine that \
             can reach it can talk to this mock PIN pad. Use 127.0.0.1 unless the QA rig needs \
             the network.",
            listen
        );
        tracing::warn!(listen = %listen, "device link on a non-loopback address");
    }
    let scenario = args.scenario.as_deref().map(Scenario::load).transpose()?;
    let measured = firmware_hash(args.firmware.as_deref())?;
    let seed = seed_from(args.seed.as_deref())?;
    let mut cores = Vec::new();
    for (k, path) in state_files(&args.state, args.count).iter().enumerate() {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
        let mut device = Device::restore(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        device.set_measured_firmware_hash(measured);
        let mut device_seed = seed;
        device_seed[31] ^= u8::try_from(k % 256).unwrap_or(0);
        let mut hw = VirtualHardware::with(
            device_seed,
            Clock::System { offset_ms: 0 },
            SecureStore::File(path.clone()),
        );
        if let Some(board_id) = &args.board_id {
            hw.set_board_id(board_id.as_bytes().to_vec());
        }
        if let Some(language) = args.language {
            device
                .set_display_language(language, &mut hw)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        cores.push(SimCore::new(device, hw, Mtu::SIM));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut served = Vec::new();
        let mut handles = Vec::new();
        let mut _tickers = Vec::new();
        for (k, core) in cores.into_iter().enumerate() {
            let handle = SimHandle::new(core);
            let serial = handle.lock().device.serial().to_string();
            if let Some(mut address) = args.listen {
                if address.port() != 0 {
                    let port = u16::try_from(usize::from(address.port()) + k)
                        .map_err(|_| "port out of range")?;
                    address.set_port(port);
                }
                let listener = tokio::net::TcpListener::bind(address).await?;
                let device = ServedDevice::spawn_nonconforming(
                    handle.clone(),
                    listener,
                    args.nonconforming,
                )?;
                if let Some(scenario) = args.nonconforming {
                    eprintln!("WARNING: device {k} breaks PROTOCOL.md on purpose: {scenario}");
                }
                println!("device {k} {serial} link {}", device.address);
                served.push(device);
            } else {
                // The sim link's server ticks the core; without it the gadget needs a ticker.
                _tickers.push(AbortOnDrop(device_sim::server::spawn_ticker(
                    handle.clone(),
                )));
            }
            handles.push(handle);
        }
        let _gadget = match &args.usb_gadget {
            Some(udc) => Some(usb_gadget(handles.first(), udc)?),
            None => None,
        };
        let _peripheral = match &args.ble {
            Some(adapter) => Some(ble_peripheral(handles.first(), adapter).await?),
            None => None,
        };
        if let Some(control) = args.control {
            let listener = tokio::net::TcpListener::bind(control).await?;
            let (address, _task) = device_sim::control::spawn(handles.clone(), listener)?;
            println!("control http://{address}");
        }
        if let Some(scenario) = scenario {
            scenario.spawn(handles)?;
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        stop_signal().await?;
        Ok::<(), Failure>(())
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ctrl-C or SIGTERM: `serve` returns, and dropping the USB gadget unplugs it from its
/// controller and removes it from configfs (a killed process would leave it registered).
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(target_os = "linux")]
fn usb_gadget(
    handle: Option<&SimHandle>,
    udc: &str,
) -> Result<device_sim::usb_gadget::UsbGadgetDevice, Failure> {
    let handle = handle.ok_or("no device to serve over USB")?;
    let udc = (!udc.is_empty()).then_some(udc);
    let gadget = device_sim::usb_gadget::UsbGadgetDevice::spawn(handle.clone(), udc)?;
    let serial = handle.lock().device.serial().to_string();
    println!(
        "device 0 {serial} usb-gadget {} {:04x}:{:04x}",
        gadget.udc,
        device_sim::usb_gadget::VENDOR_ID,
        device_sim::usb_gadget::PRODUCT_ID
    );
    Ok(gadget)
}

#[cfg(target_os = "linux")]
async fn ble_peripheral(
    handle: Option<&SimHandle>,
    adapter: &str,
) -> Result<device_sim::ble_peripheral::BlePeripheral, Failure> {
    let handle = handle.ok_or("no device to serve over Bluetooth")?;
    let adapter = (!adapter.is_empty()).then_some(adapter);
    let peripheral =
        device_sim::ble_peripheral::BlePeripheral::spawn(handle.clone(), adapter).await?;
    let serial = handle.lock().device.serial().to_string();
    println!(
        "device 0 {serial} ble {} {:?}",
        peripheral.adapter, peripheral.name
    );
    Ok(peripheral)
}

#[cfg(not(target_os = "linux"))]
async fn ble_peripheral(
    _handle: Option<&SimHandle>,
    _adapter: &str,
) -> Result<std::convert::Infallible, Failure> {
    Err("--ble needs Linux (BlueZ)".into())
}

#[cfg(not(target_os = "linux"))]
fn usb_gadget(
    _handle: Option<&SimHandle>,
    _udc: &str,
) -> Result<std::convert::Infallible, Failure> {
    Err("--usb-gadget needs Linux (configfs + FunctionFS)".into())
}
