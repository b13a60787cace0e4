//! Test support for the end-to-end tests: builds and locates the real binaries
//! (`bank-sandbox`, `pinpad-sim`, `pinbridge`), runs them as child processes on free loopback
//! ports, records every byte between `pinbridge` and its peers through forwarding proxies, and
//! scans bytes for a PIN. Nothing here is product code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The test PIN: used nowhere else in the project, so finding it anywhere is a leak. Six
/// digits, the most the bank's default enrolment lets the device keep: a longer test PIN
/// would be cut to its first six on the device, and a scan for the longer one would miss a
/// leak of the PIN in use (tests/security.rs plants it to prove the scan finds it).
pub const PIN: &str = "739164";
/// The device's serial.
pub const SERIAL: &str = "E2E-1";

/// The CLI's pairing-store passphrase in these tests (no OS key store on a test machine).
pub const KEYSTORE_PASSPHRASE: &str = "an e2e test passphrase";
/// How long one `pinbridge` command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// Paths of the three binaries under test.
#[derive(Debug)]
pub struct Binaries {
    pub bank: PathBuf,
    pub sim: PathBuf,
    pub pinbridge: PathBuf,
}

/// Builds the three binaries once (same target dir as this test) and returns their paths.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        // target/<profile>/deps/<test binary> -> target/<profile>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().unwrap().to_path_buf();
        if std::env::var_os("PINBRIDGE_E2E_NO_BUILD").is_none() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            // Cargo gives the test the variables of its own package; build scripts that read
            // them would see a changed environment and rebuild (and relink) for nothing.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("CARGO_PKG_")
                    || name.starts_with("CARGO_MANIFEST_")
                    || name.starts_with("CARGO_BIN_")
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "CARGO_RUSTC_CURRENT_DIR",
                        "OUT_DIR",
                    ]
                    .contains(&name.as_ref())
                {
                    build.env_remove(name.as_ref());
                }
            }
            build
                .args([
                    "build",
                    "-p",
                    "bank-sandbox",
                    "-p",
                    "device-sim",
                    "-p",
                    "companion",
                    "--bins",
                ])
                .env("CARGO_TARGET_DIR", &target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.file_name().is_some_and(|p| p == "release") {
                build.arg("--release");
            }
            let status = build
                .status()
                .expect("cannot run cargo to build the binaries");
            assert!(status.success(), "building the binaries failed: {status}");
        }
        let find = |name: &str| {
            let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            assert!(
                path.is_file(),
                "{} is missing: run `cargo build -p bank-sandbox -p device-sim -p companion \
                 --bins` with the same CARGO_TARGET_DIR",
                path.display()
            );
            path
        };
        Binaries {
            bank: find("bank-sandbox"),
            sim: find("pinpad-sim"),
            pinbridge: find("pinbridge"),
        }
    })
}

/// A child process killed (by its own PID, through its handle) and reaped on drop.
#[derive(Debug)]
pub struct Running {
    child: Mutex<Child>,
    /// Everything it printed on stderr so far (drained by a thread so the pipe never fills).
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

impl Running {
    /// Kills the process (SIGKILL, by its own PID) and reaps it.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a short command to completion and returns its stdout; fails the test on failure.
pub fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Starts a server and waits until one of its output lines (stdout or stderr) starts with
/// each prefix; returns the rest of those lines.
/// Waits up to `limit` for a line starting with `prefix`; returns it (every line read on the
/// way is in the panic message if none comes).
pub fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.trim_start().starts_with(prefix) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line starting {prefix:?} within {limit:?}; saw {seen:#?}"),
        }
    }
}

/// Starts `command` with its stdout and stderr lines sent to the receiver as they come.
fn spawn_lines(command: &mut Command) -> (Running, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let tx = lines_tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let err = child.stderr.take().unwrap();
    let stderr_copy = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            stderr_copy
                .lock()
                .unwrap()
                .extend_from_slice(line.as_bytes());
            stderr_copy.lock().unwrap().push(b'\n');
            let _ = lines_tx.send(line);
        }
    });
    (
        Running {
            child: Mutex::new(child),
            stderr,
        },
        lines_rx,
    )
}

/// Starts a server and waits (30 s at most) for a line starting with each of `prefixes`;
/// returns it with the rest of each such line.
pub fn spawn_server(command: &mut Command, prefixes: &[&str]) -> (Running, Vec<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let tx = lines_tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let err = child.stderr.take().unwrap();
    let stderr_copy = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            stderr_copy
                .lock()
                .unwrap()
                .extend_from_slice(line.as_bytes());
            stderr_copy.lock().unwrap().push(b'\n');
            let _ = lines_tx.send(line);
        }
    });
    let running = Running {
        child: Mutex::new(child),
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = vec![None; prefixes.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "{command:?} did not print {prefixes:?}; stderr: {}",
                String::from_utf8_lossy(&running.stderr.lock().unwrap())
            )
        });
        for (slot, prefix) in found.iter_mut().zip(prefixes) {
            if let Some(rest) = line.strip_prefix(prefix) {
                *slot = Some(rest.trim().to_owned());
            }
        }
    }
    (running, found.into_iter().map(Option::unwrap).collect())
}

/// Every byte that went through a [`Recorder`], by direction.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Client (pinbridge) to server.
    pub upstream: Vec<u8>,
    /// Server to client.
    pub downstream: Vec<u8>,
}

/// A TCP forwarding proxy on a free loopback port that records all bytes both ways.
#[derive(Debug)]
pub struct Recorder {
    pub address: SocketAddr,
    pub recorded: Arc<Mutex<Recorded>>,
}

impl Recorder {
    /// Forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Self {
        Self::start_rewriting(target, None)
    }

    /// Forwards every connection to `target`, replacing `(from, to)` (same length) in what
    /// the server sends: a compromised PC changing a message in transit. Records the bytes
    /// as the server sent them.
    pub fn start_rewriting(target: SocketAddr, rewrite: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let shared = recorded.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (mut from, mut to, up) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        true,
                    ),
                    (server, client, false),
                ] {
                    let shared = shared.clone();
                    let rewrite = rewrite.clone().filter(|_| !up);
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 4096];
                        loop {
                            let n = match from.read(&mut buffer) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            {
                                let mut recorded = shared.lock().unwrap();
                                let sink = if up {
                                    &mut recorded.upstream
                                } else {
                                    &mut recorded.downstream
                                };
                                sink.extend_from_slice(&buffer[..n]);
                            }
                            let mut chunk = buffer[..n].to_vec();
                            if let Some((old, new)) = &rewrite {
                                replace_all(&mut chunk, old, new);
                            }
                            if to.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Self { address, recorded }
    }

    /// A copy of everything recorded so far, both directions.
    pub fn bytes(&self) -> Vec<u8> {
        let recorded = self.recorded.lock().unwrap();
        [recorded.upstream.as_slice(), recorded.downstream.as_slice()].concat()
    }
}

/// The last HTTP/1.1 request in `stream` whose request line starts with `method_and_path`
/// and ends its path with `suffix`, rebuilt with `Connection: close`.
pub fn last_request(stream: &[u8], method_and_path: &str, suffix: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(stream);
    let mut found = None;
    let mut from = 0;
    while let Some(at) = text[from..].find(method_and_path) {
        let start = from + at;
        from = start + 1;
        let line_end = start + text[start..].find("\r\n")?;
        let path = text[start..line_end].split(' ').nth(1)?;
        if !path.ends_with(suffix) {
            continue;
        }
        let head_end = start + text[start..].find("\r\n\r\n")?;
        let mut length = 0usize;
        let mut head = String::new();
        for line in text[start..head_end].split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().ok()?;
            }
            if !lower.starts_with("connection:") {
                head.push_str(line);
                head.push_str("\r\n");
            }
        }
        head.push_str("connection: close\r\n\r\n");
        let body = text.get(head_end + 4..head_end + 4 + length)?;
        found = Some([head.as_bytes(), body.as_bytes()].concat());
    }
    found
}

/// Sends raw HTTP/1.1 `request` (with `Connection: close`) and returns the status and body.
pub fn send_raw(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Replaces every `from` in `bytes` by `to` (same length).
fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut at = 0;
    while at + from.len() <= bytes.len() {
        if &bytes[at..at + from.len()] == from {
            bytes[at..at + from.len()].copy_from_slice(to);
            at += from.len();
        } else {
            at += 1;
        }
    }
}

/// The encodings of [`PIN`] a leak could take: ASCII digits, packed BCD, and an ISO 9564
/// format-0 style length-prefixed field in ASCII and in BCD.
pub fn pin_encodings() -> Vec<(&'static str, Vec<u8>)> {
    let bcd = |digits: &str| -> Vec<u8> {
        digits
            .as_bytes()
            .chunks(2)
            .map(|pair| ((pair[0] - b'0') << 4) | (pair[1] - b'0'))
            .collect()
    };
    let field = format!("{:02}{PIN}", PIN.len());
    vec![
        ("ASCII", PIN.as_bytes().to_vec()),
        ("BCD", bcd(PIN)),
        ("format-0 field, ASCII", field.as_bytes().to_vec()),
        ("format-0 field, BCD", bcd(&field)),
    ]
}

/// The encodings of [`PIN`] found in `bytes`.
pub fn pin_leaks(bytes: &[u8]) -> Vec<&'static str> {
    pin_encodings()
        .into_iter()
        .filter(|(_, needle)| bytes.windows(needle.len()).any(|w| w == needle.as_slice()))
        .map(|(name, _)| name)
        .collect()
}

/// Every file under `dir`, recursively, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

/// The `pinbridge` binary's integrity measurement (companion::flows::app_build_hash: SHA-256
/// of the executable), registered in the bank's allow-list as a release step would.
pub fn app_build_hash() -> String {
    use sha2::Digest;
    let bytes = std::fs::read(&binaries().pinbridge).unwrap();
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A sandbox bank, one mock PIN pad, recording proxies in front of both, and a `pinbridge`
/// state directory.
#[derive(Debug)]
pub struct World {
    pub dir: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub database: PathBuf,
    pub control: String,
    /// The bank itself (not the proxy).
    pub bank_address: SocketAddr,
    pub bank_proxy: Recorder,
    pub link_proxy: Recorder,
    /// The servers, killed on drop.
    pub bank: Running,
    pub sim: Running,
}

/// The keypad's script at payments: types [`PIN`] at the first payment prompt.
pub fn pay_with_pin() -> String {
    payment_step(&format!("pin = \"{PIN}\""))
}

/// One scenario step run at the next payment PIN prompt, with `action` (TOML lines).
pub fn payment_step(action: &str) -> String {
    format!("[[device.step]]\non = \"pin\"\nafter_ms = 50\n{action}\n")
}

/// The scenario: the keypad types [`PIN`] at each of enrolment's two PIN prompts (as on a
/// real PIN pad, keys typed ahead of a prompt are not taken for it), confirms the pairing
/// code, then runs `payment_steps`.
fn scenario(payment_steps: &str) -> String {
    format!(
        r#"
[[device]]
index = 0
[[device.step]]
on = "pin"
after_ms = 50
pin = "{PIN}"
[[device.step]]
on = "pin"
after_ms = 50
pin = "{PIN}"
[[device.step]]
on = "confirm"
after_ms = 50
confirm = true
{payment_steps}"#
    )
}

impl World {
    /// [`World::start_with`] a keypad that types the right PIN at the payment.
    pub fn start() -> Self {
        Self::start_with(&pay_with_pin())
    }

    /// Manufactures the device, seeds and starts the bank, serves the device (its keypad
    /// scripted to enrol [`PIN`], confirm pairing, then run `payment_steps`), starts the
    /// proxies.
    pub fn start_with(payment_steps: &str) -> Self {
        Self::start_full(payment_steps, None)
    }

    /// [`World::start_with`], the bank proxy rewriting what the bank sends as `bank_rewrite`
    /// says.
    pub fn start_full(payment_steps: &str, bank_rewrite: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        let bins = binaries();
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let database = dir.path().join("bank.db");
        let db_url = format!("sqlite://{}", database.display());
        run_ok(Command::new(&bins.bank).args(["seed", "--database", &db_url]));
        let keys = run_ok(Command::new(&bins.bank).args(["keys", "--database", &db_url]));
        let bank_keys = dir.path().join("bank-keys.json");
        std::fs::write(&bank_keys, keys).unwrap();
        let ca_file = dir.path().join("ca.json");
        let ca = run_ok(
            Command::new(&bins.sim)
                .args(["ca", "new", "--out"])
                .arg(&ca_file),
        );
        let device = dir.path().join("device.json");
        run_ok(
            Command::new(&bins.sim)
                .args(["init", "--serial", SERIAL, "--state"])
                .arg(&device)
                .arg("--ca-key")
                .arg(&ca_file)
                .arg("--bank-keys")
                .arg(&bank_keys),
        );
        let info: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new(&bins.sim)
                .args(["info", "--state"])
                .arg(&device),
        ))
        .unwrap();
        let firmware = info["firmware_hash"].as_str().unwrap().to_owned();

        let (bank, bank_lines) = spawn_server(
            Command::new(&bins.bank)
                .args(["serve", "--database", &db_url, "--listen", "127.0.0.1:0"])
                .args(["--trust-ca", ca.trim(), "--allow-firmware", &firmware])
                .args(["--allow-app", &app_build_hash()]),
            &["bank-sandbox: listening on http://"],
        );
        let bank_address: SocketAddr = bank_lines[0].parse().unwrap();

        let scenario_file = dir.path().join("scenario.toml");
        std::fs::write(&scenario_file, scenario(payment_steps)).unwrap();
        let (sim, sim_lines) = spawn_server(
            Command::new(&bins.sim)
                .args(["serve", "--state"])
                .arg(&device)
                .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
                .arg("--scenario")
                .arg(&scenario_file),
            &["device 0 ", "control "],
        );
        let link: SocketAddr = sim_lines[0].rsplit(' ').next().unwrap().parse().unwrap();
        let control = sim_lines[1].clone();
        Self {
            bank_proxy: Recorder::start_rewriting(bank_address, bank_rewrite),
            link_proxy: Recorder::start(link),
            bank_address,
            dir,
            state,
            database,
            control,
            bank,
            sim,
        }
    }

    /// Runs `pinbridge ARGS` through the proxies as the teller; kills it after a timeout.
    pub fn pinbridge(&self, args: &[&str]) -> Output {
        self.pinbridge_env(args, &[])
    }

    /// [`World::pinbridge`] with environment changes: `(name, Some(value))` sets, `(name,
    /// None)` removes.
    pub fn pinbridge_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        let mut command = Command::new(&binaries().pinbridge);
        command
            .env(
                "PINBRIDGE_BANK_URL",
                format!("http://{}", self.bank_proxy.address),
            )
            .env(
                "PINBRIDGE_DEVICE",
                format!("sim:{}", self.link_proxy.address),
            )
            .env("PINBRIDGE_STATE_DIR", self.state.path())
            .env("PINBRIDGE_LOG_DIR", self.state.path().join("logs"))
            .env("PINBRIDGE_KEYSTORE_PASSPHRASE", KEYSTORE_PASSPHRASE)
            .env("PINBRIDGE_STAFF_USER", "teller")
            .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
            .env_remove("PINBRIDGE_BANK_CA")
            .env("RUST_LOG", "trace");
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("pinbridge {args:?} took longer than {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// Starts `pinbridge ARGS` (through the proxies, as the teller) and returns it with its
    /// output lines (stdout and stderr) as they come.
    pub fn pinbridge_spawn(&self, args: &[&str]) -> (Running, mpsc::Receiver<String>) {
        let mut command = Command::new(&binaries().pinbridge);
        command
            .env(
                "PINBRIDGE_BANK_URL",
                format!("http://{}", self.bank_proxy.address),
            )
            .env(
                "PINBRIDGE_DEVICE",
                format!("sim:{}", self.link_proxy.address),
            )
            .env("PINBRIDGE_STATE_DIR", self.state.path())
            .env("PINBRIDGE_LOG_DIR", self.state.path().join("logs"))
            .env("PINBRIDGE_KEYSTORE_PASSPHRASE", KEYSTORE_PASSPHRASE)
            .env("PINBRIDGE_STAFF_USER", "teller")
            .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
            .env_remove("PINBRIDGE_BANK_CA")
            .args(args);
        spawn_lines(&mut command)
    }

    /// Runs `pinbridge ARGS` and fails the test unless it succeeds.
    pub fn pinbridge_ok(&self, args: &[&str]) -> Output {
        let output = self.pinbridge(args);
        assert!(
            output.status.success(),
            "pinbridge {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Staff initialise, enrol alice, pair: the device is ready to log in.
    pub fn provision(&self) -> Vec<Output> {
        vec![
            self.pinbridge_ok(&["staff", "init"]),
            self.pinbridge_ok(&["staff", "enrol", "--customer", "alice"]),
            self.pinbridge_ok(&["pair", "--name", "E2E-PC"]),
        ]
    }

    /// Journal entries of a transaction, read from the bank's SQLite file with `sqlite3`.
    pub fn journal_entries(&self, transaction_id: &str) -> i64 {
        assert!(
            transaction_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{transaction_id}"
        );
        self.journal_query(&format!(
            "SELECT COUNT(*) FROM journal WHERE transaction_id = '{transaction_id}';"
        ))
    }

    /// Journal entries of every transaction.
    pub fn journal_total(&self) -> i64 {
        self.journal_query("SELECT COUNT(*) FROM journal;")
    }

    /// A count from the bank's SQLite file, read with the `sqlite3` command line tool (the
    /// bank serves no journal API, and linking sqlx here would rebuild it for one query).
    pub fn journal_query(&self, sql: &str) -> i64 {
        let output = Command::new("sqlite3")
            .arg("-readonly")
            .arg(&self.database)
            .arg(sql)
            .output()
            .expect("the `sqlite3` tool reads the bank's journal: apt-get install sqlite3");
        assert!(
            output.status.success(),
            "sqlite3 {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    }

    /// The PIN pad's state from the control API (`GET /devices/0`).
    pub fn device_state(&self) -> serde_json::Value {
        let (status, body) = self.control("GET", "/devices/0", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// What the PIN pad's screen shows now (`GET /devices/0/display`), one line per entry.
    pub fn device_display(&self) -> Vec<String> {
        let (status, body) = self.control("GET", "/devices/0/display", "");
        assert_eq!(status, 200, "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        value["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// POSTs JSON to the PIN pad's control API.
    pub fn control_post(&self, path: &str, body: &str) -> (u16, String) {
        self.control("POST", path, body)
    }

    /// Sends one request to the PIN pad's control API (loopback HTTP/1.1, one request per
    /// connection) and returns the status code and body.
    fn control(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let address = self.control.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

/// Arguments of the test payment.
pub const PAY: &[&str] = &[
    "--json",
    "pay",
    "--to",
    "FR7630006000011234567890189",
    "--payee-name",
    "Shop SARL",
    "--amount",
    "12.34",
    "--currency",
    "EUR",
];
