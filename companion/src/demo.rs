//! `pinbridge demo`: the embedded default.
//!
//! Until the mock device (device-sim) and the sandbox bank (bank-sandbox) exist as processes,
//! the demo plays both ends in-process with fixed example keys and walks the cryptography a
//! pairing, a login and a payment use, printing what each side does and what crosses the PC.
//! Every check it prints is a real check that can fail: the run stops with an error if one
//! does not come out as the protocol requires.

use firmware_protocol::crypto::host_auth::{HostAuthError, HostSigner, HostVerifier};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyBlockProtectionKey, MacKey, PinKey};
use firmware_protocol::crypto::mac::{self, MacAlgorithm};
use firmware_protocol::crypto::pairing::{DevicePairing, HostPairing};
use firmware_protocol::crypto::pinblock::{self, Pan, Pin, PinBlockFormat};
use firmware_protocol::crypto::tr31::{self, Header};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

use crate::crypto_tool::{Output, ToolError};

/// Demo keys and data: fixed so the transcript is the same on every run.
const KBPK: &str = "88e1ab2a2e3dd38c1fa039a536500cc8a87ab9d62dc92c01058fa79f44657de6";
const SESSION_PIN_KEY: &str = "1273671ea26ac29afa4d1084127652a1";
const SESSION_MAC_KEY: &str = "4a8b2f0c6d91e3a7b5c2d8f01e6a9b37";
const DEMO_PAN: &str = "4111111111111111";
/// The PIN the "customer" types on the simulated device keypad. It stays on the device side
/// of this program and is never printed.
const DEVICE_KEYPAD_PIN: &str = "271828";

struct Transcript {
    lines: Vec<String>,
    steps: Vec<serde_json::Value>,
}

impl Transcript {
    fn step(&mut self, actor: &str, what: impl Into<String>) {
        let what = what.into();
        self.lines
            .push(format!("[{:>2}] {actor:<7} {what}", self.steps.len() + 1));
        self.steps.push(json!({ "actor": actor, "what": what }));
    }
}

fn demo_error(message: &'static str) -> ToolError {
    ToolError::Missing(message)
}

fn hex_key(hex_text: &str) -> Result<Vec<u8>, ToolError> {
    hex::decode(hex_text).map_err(|reason| ToolError::Hex {
        field: "demo key",
        reason,
    })
}

/// Runs the walk-through.
pub fn run() -> Result<Output, ToolError> {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut t = Transcript {
        lines: vec!["PinBridge demo: sandbox bank and mock device in-process, no hardware".into()],
        steps: Vec::new(),
    };

    // Pairing: host and device agree on a host key; a person compares the codes.
    let host = HostPairing::start(&mut rng);
    let device = DevicePairing::respond(&mut rng, *host.public_key(), host.commitment());
    let device_public = *device.public_key();
    let device_nonce = *device.nonce();
    let host_nonce = *host.nonce();
    let host_outcome = host.finish(&device_public, &device_nonce);
    let device_outcome = device
        .finish(&host_nonce)
        .map_err(|_| demo_error("pairing failed on the device side"))?;
    t.step(
        "pair",
        format!(
            "ECDH P-256: app shows {}, device shows {}: the customer confirms on the device",
            host_outcome.comparison_code(),
            device_outcome.comparison_code()
        ),
    );
    host_outcome
        .check_device_confirmation(device_outcome.device_confirmation())
        .map_err(|_| demo_error("device confirmation did not verify"))?;
    t.step(
        "pair",
        format!(
            "paired as host {}; the host key is stored by the app, never in plaintext",
            hex::encode(host_outcome.host_id().as_bytes())
        ),
    );

    // Host verification: every request carries a MAC and a counter; replays are refused.
    let mut signer = HostSigner::new(host_outcome.host_id(), host_outcome.host_pairing_key());
    let mut verifier = HostVerifier::new();
    verifier
        .add_host(
            device_outcome.host_id(),
            device_outcome.host_pairing_key().clone(),
        )
        .map_err(|_| demo_error("device could not record the paired host"))?;
    let request = b"GetStatus";
    let auth = signer
        .sign(request)
        .map_err(|_| demo_error("host could not sign"))?;
    verifier
        .verify(&auth.host_id, auth.counter, request, &auth.mac)
        .map_err(|_| demo_error("device refused a genuine request"))?;
    t.step(
        "device",
        format!("accepted host request #{} (MAC verified)", auth.counter),
    );
    match verifier.verify(&auth.host_id, auth.counter, request, &auth.mac) {
        Err(HostAuthError::Replay { last, got }) => t.step(
            "device",
            format!("refused the same request replayed (counter {got} <= last {last})"),
        ),
        _ => return Err(demo_error("device accepted a replayed request")),
    }

    // Login: the bank sends session keys as TR-31 blocks under the device's KBPK.
    let kbpk = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &hex_key(KBPK)?)?;
    let pin_key_bank = PinKey::new(KeyAlgorithm::Aes, &hex_key(SESSION_PIN_KEY)?)?;
    let mac_key_bank = MacKey::new(KeyAlgorithm::Aes, &hex_key(SESSION_MAC_KEY)?)?;
    let pin_block_header = Header::parse("D0000P0AE00E0000")?;
    let mac_block_header = Header::parse("D0000M6AC00E0000")?;
    let pin_key_block = tr31::wrap(
        &kbpk,
        &pin_block_header,
        pin_key_bank.material(),
        tr31::KeyLengthMasking::AlgorithmMaximum,
        &mut rng,
    )?;
    let mac_key_block = tr31::wrap(
        &kbpk,
        &mac_block_header,
        mac_key_bank.material(),
        tr31::KeyLengthMasking::AlgorithmMaximum,
        &mut rng,
    )?;
    t.step(
        "bank",
        format!("session PIN key as TR-31 block {}…", &pin_key_block[..24]),
    );
    t.step(
        "bank",
        format!("session MAC key as TR-31 block {}…", &mac_key_block[..24]),
    );
    let pin_key: PinKey = tr31::unwrap(&kbpk, &pin_key_block)?.into_key()?;
    let mac_key: MacKey = tr31::unwrap(&kbpk, &mac_key_block)?.into_key()?;
    let pin_kcv = kcv::compute(pin_key.material(), KcvMethod::Cmac);
    let bank_pin_kcv = kcv::compute(pin_key_bank.material(), KcvMethod::Cmac);
    if pin_kcv != bank_pin_kcv {
        return Err(demo_error("PIN key KCV mismatch"));
    }
    t.step(
        "device",
        format!(
            "unwrapped both keys; PIN key KCV {} matches the bank's",
            hex::encode_upper(pin_kcv.as_bytes())
        ),
    );
    match tr31::unwrap(&kbpk, &mac_key_block)?
        .into_key::<firmware_protocol::crypto::keys::PinEncryption>()
    {
        Err(error) => t.step(
            "device",
            format!("refused the MAC key block offered as a PIN key: {error}"),
        ),
        Ok(_) => return Err(demo_error("a MAC key block was accepted as a PIN key")),
    }

    // Payment: the device shows the payment, takes the PIN on its keypad, and returns only
    // a format 4 PIN block and a MAC.
    let payment = "payee=6222020200112233445|amount=12.34|currency=CNY|ref=INV-2026-1124";
    t.step("bank", format!("payment to approve: {payment}"));
    t.step("device", "display: PAY 12.34 CNY TO ...3445  [enter PIN]");
    let pin = Pin::new(DEVICE_KEYPAD_PIN)?;
    let pan = Pan::new(DEMO_PAN)?;
    let pin_block =
        pinblock::encrypt_pin(PinBlockFormat::Iso4, &pin, Some(&pan), &pin_key, &mut rng)?;
    drop(pin);
    let mut mac_input = payment.as_bytes().to_vec();
    mac_input.extend_from_slice(pin_block.as_bytes());
    let payment_mac = mac::compute(&mac_key, MacAlgorithm::AesCmac, &mac_input)?;
    t.step(
        "pc",
        format!(
            "relays PIN block {} and MAC {} (ciphertext only)",
            hex::encode_upper(pin_block.as_bytes()),
            hex::encode_upper(&payment_mac)
        ),
    );
    mac::verify(
        &mac_key_bank,
        MacAlgorithm::AesCmac,
        &mac_input,
        &payment_mac,
    )?;
    let bank_pin = pinblock::decrypt_pin(&pin_block, Some(&pan), &pin_key_bank)?;
    t.step(
        "bank",
        format!(
            "MAC verified; HSM recovered a {}-digit PIN and checks it against its PIN verification value",
            bank_pin.digit_count()
        ),
    );
    drop(bank_pin);

    let tampered = mac_input
        .iter()
        .map(|&b| if b == b'1' { b'9' } else { b })
        .collect::<Vec<u8>>();
    match mac::verify(
        &mac_key_bank,
        MacAlgorithm::AesCmac,
        &tampered,
        &payment_mac,
    ) {
        Err(_) => t.step(
            "bank",
            "a copy with the amount changed by the PC is rejected: MAC mismatch",
        ),
        Ok(()) => return Err(demo_error("a tampered payment verified")),
    }
    t.step(
        "device",
        "bank response MAC verified: indicator steady green, \"Approved\"",
    );

    let text = t.lines.join("\n");
    Ok(Output::default()
        .with("steps", serde_json::Value::Array(t.steps))
        .with("result", "approved")
        .with_text(text))
}
