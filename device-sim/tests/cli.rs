//! The `pinpad-sim` binary as QA runs it: `ca new`, `init`, `info`, and `serve --count 3`
//! with a control API and a scenario, reached over TCP and HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use device_sim::certificate::DeviceCertificate;
use device_sim::client::LinkClient;
use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};
use firmware_protocol::message::{GetInfo, Request, Response, decode_response};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

fn pinpad_sim() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("pinpad-sim"))
}

fn run(args: &[&str]) -> String {
    let output = pinpad_sim().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "pinpad-sim {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn http(address: &str, method: &str, path: &str, body: Option<&str>) -> Value {
    let mut stream = TcpStream::connect(address).unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ca_init_info_and_serving_three_devices_with_a_scenario() {
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str| folder.path().join(name).display().to_string();
    let ca_public = run(&["ca", "new", "--out", &path("ca.json")]);
    let ca_public =
        EcdsaVerifyingKey::from_sec1_bytes(&hex::decode(ca_public.trim()).unwrap()).unwrap();
    assert_eq!(
        run(&["ca", "show", "--ca-key", &path("ca.json")]).trim(),
        hex::encode(ca_public.to_sec1_bytes())
    );
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let management = hex::encode(
        EcdsaSigningKey::generate(&mut rng)
            .verifying_key()
            .to_sec1_bytes(),
    );
    let operator = hex::encode(
        EcdsaSigningKey::generate(&mut rng)
            .verifying_key()
            .to_sec1_bytes(),
    );
    std::fs::write(
        path("bank-keys.json"),
        format!(r#"{{"management_public_key":"{management}","operator_public_key":"{operator}"}}"#),
    )
    .unwrap();

    run(&[
        "init",
        "--state",
        &path("one.json"),
        "--serial",
        "QA-ONE",
        "--ca-key",
        &path("ca.json"),
        "--bank-management-key",
        &management,
        "--bank-operator-key",
        &operator,
    ]);
    let info: Value = serde_json::from_str(&run(&["info", "--state", &path("one.json")])).unwrap();
    assert_eq!(info["serial"], "QA-ONE");
    assert_eq!(info["state"]["lifecycle"], "manufactured");
    let certificate = hex::decode(info["certificate"].as_str().unwrap()).unwrap();
    let certificate = DeviceCertificate::decode(&certificate).unwrap();
    certificate.verify_signature(&ca_public).unwrap();
    assert_eq!(certificate.serial, "QA-ONE");
    // An existing state file is not overwritten by accident.
    let refused = pinpad_sim()
        .args([
            "init",
            "--state",
            &path("one.json"),
            "--ca-key",
            &path("ca.json"),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path("one.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the state file is private");
    }

    run(&[
        "init",
        "--state",
        &path("devices"),
        "--count",
        "3",
        "--serial",
        "QA",
        "--ca-key",
        &path("ca.json"),
        "--bank-keys",
        &path("bank-keys.json"),
    ]);
    assert!(Path::new(&path("devices/device-2.json")).exists());
    std::fs::write(
        path("scenario.toml"),
        "[[device]]\nindex = 1\n[[device.step]]\non = \"start\"\ntamper = true\n\n\
         [[device]]\nindex = 2\n[[device.step]]\non = \"start\"\nfaults = { drop_nth = 2 }\n",
    )
    .unwrap();

    let mut child = pinpad_sim()
        .args([
            "serve",
            "--state",
            &path("devices"),
            "--count",
            "3",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--scenario",
            &path("scenario.toml"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut links = Vec::new();
    let control = loop {
        let line = lines.next().expect("serve prints its addresses").unwrap();
        if let Some(url) = line.strip_prefix("control http://") {
            break url.to_string();
        }
        let address: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
        links.push(address);
    };
    assert_eq!(links.len(), 3);

    for (k, link) in links.iter().enumerate() {
        let mut client = LinkClient::connect(*link).unwrap();
        client.init().unwrap_or_else(|e| panic!("device {k}: {e}"));
        let answer = client
            .request(&Request::GetInfo(GetInfo).encode(1).unwrap())
            .unwrap_or_else(|e| panic!("device {k}: {e}"));
        match decode_response(&answer).unwrap().1 {
            Response::Info(info) => assert_eq!(info.serial, format!("QA-{k:04}")),
            other => panic!("{other:?}"),
        }
    }

    let devices = http(&control, "GET", "/devices", None);
    assert_eq!(devices.as_array().unwrap().len(), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let device = http(&control, "GET", "/devices/1", None);
        if device["tampered"] == true {
            assert_eq!(device["indicator"], "danger");
            assert!(device["display"].to_string().contains("TAMPERED"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scenario trips device 1's tamper switch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let faults = http(&control, "GET", "/devices/2/faults", None);
    assert_eq!(faults["drop_nth"], 2);
    let display = http(&control, "GET", "/devices/0/display", None);
    assert_eq!(display["lines"][1], "Not initialised");
    let pressed = http(
        &control,
        "POST",
        "/devices/0/keys",
        Some(r#"{"keys":["enter"]}"#),
    );
    assert_eq!(pressed["pressed"], 1);
}

fn start_serving(state: &str) -> (Server, String) {
    let mut child = pinpad_sim()
        .args([
            "serve",
            "--state",
            state,
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("control http://") {
            return (server, url.to_string());
        }
    }
    panic!("serve printed no control address");
}

#[test]
fn the_tamper_flag_survives_a_restart_of_the_simulator() {
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str| folder.path().join(name).display().to_string();
    run(&["ca", "new", "--out", &path("ca.json")]);
    run(&[
        "init",
        "--state",
        &path("pad.json"),
        "--ca-key",
        &path("ca.json"),
    ]);

    let (server, control) = start_serving(&path("pad.json"));
    let tripped = http(
        &control,
        "POST",
        "/devices/0/tamper",
        Some(r#"{"open":true}"#),
    );
    assert_eq!(tripped["state"]["tampered"], true);
    drop(server);

    let (_server, control) = start_serving(&path("pad.json"));
    let device = http(&control, "GET", "/devices/0", None);
    assert_eq!(device["tampered"], true, "{device}");
    assert_eq!(device["indicator"], "danger");
    let indicator = http(&control, "GET", "/devices/0/indicator", None);
    assert_eq!(
        indicator["indicator"], "danger",
        "the LED blinks red again after the restart"
    );
    let info: Value = serde_json::from_str(&run(&["info", "--state", &path("pad.json")])).unwrap();
    assert_eq!(info["state"]["tampered"], true);
}

/// `--listen` beyond loopback puts the device link on the network: allowed (a QA rig may need
/// it), but never silently.
#[test]
fn a_non_loopback_link_address_is_warned_about() {
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str| folder.path().join(name).display().to_string();
    run(&["ca", "new", "--out", &path("ca.json")]);
    run(&[
        "init",
        "--state",
        &path("pad.json"),
        "--ca-key",
        &path("ca.json"),
    ]);
    let mut child = pinpad_sim()
        .args([
            "serve",
            "--state",
            &path("pad.json"),
            "--listen",
            "0.0.0.0:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    // Serving has begun once the device's address is printed; then the warning is out.
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("device 0 "));
    assert!(listening, "serve printed no device address");
    let _ = server.0.kill();
    let _ = server.0.wait();
    let mut warning = String::new();
    stderr.read_to_string(&mut warning).unwrap();
    assert!(
        warning.contains("WARNING") && warning.contains("0.0.0.0"),
        "no warning for a link on every interface: {warning:?}"
    );
}
