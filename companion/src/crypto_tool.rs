//! The operator's crypto tool behind `pinbridge crypto`: bank staff and QA check keys, PIN
//! blocks, MACs and key blocks by hand. Each function takes the operator's text input, does
//! one operation of `firmware_protocol::crypto`, and returns an [`Output`] the CLI prints as
//! text or JSON.
//!
//! The tool deliberately prints key material the operator asked for (an unwrapped key, a
//! derived DUKPT key): that is its job, on the operator's own terminal. It never logs.

use firmware_protocol::crypto::dukpt::{self, DukptScheme, DukptUsage};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{
    BaseDerivationKey, KeyAlgorithm, KeyBlockProtectionKey, KeyError, KeyMaterial, MacKey, PinKey,
};
use firmware_protocol::crypto::mac::{self, MacAlgorithm, Padding};
use firmware_protocol::crypto::pinblock::{
    self, ClearPinBlock, EncipheredPinBlock, ExplicitFill, Pan, Pin, PinBlockFormat,
};
use firmware_protocol::crypto::tr31::{self, Header, KeyLengthMasking};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// What went wrong, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A hex argument did not parse.
    #[error("--{field}: not valid hex ({reason})")]
    Hex {
        /// The argument.
        field: &'static str,
        /// What hex::decode said.
        reason: hex::FromHexError,
    },
    /// The key algorithm cannot be told from the key alone.
    #[error("{0}")]
    Ambiguous(&'static str),
    /// An argument that the operation needs was not given.
    #[error("{0}")]
    Missing(&'static str),
    /// Key length or usage.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// PIN block encoding or decoding.
    #[error("PIN block: {0}")]
    PinBlock(#[from] pinblock::PinBlockError),
    /// MAC computation.
    #[error("MAC: {0}")]
    Mac(#[from] mac::MacError),
    /// TR-31 key block.
    #[error("TR-31: {0}")]
    Tr31(#[from] tr31::Tr31Error),
    /// DUKPT derivation.
    #[error("DUKPT: {0}")]
    Dukpt(#[from] dukpt::DukptError),
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed: {0}")]
    Entropy(getrandom::Error),
}

impl ToolError {
    /// A stable, machine-readable name for the error class.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::Hex { .. } => "invalid_hex",
            ToolError::Ambiguous(_) => "ambiguous_algorithm",
            ToolError::Missing(_) => "missing_argument",
            ToolError::Key(_) => "key",
            ToolError::PinBlock(_) => "pin_block",
            ToolError::Mac(_) => "mac",
            ToolError::Tr31(_) => "tr31",
            ToolError::Dukpt(_) => "dukpt",
            ToolError::Entropy(_) => "entropy",
        }
    }
}

/// The JSON form of an error, for `--json`.
pub fn error_json(error: &ToolError) -> String {
    json!({ "error": { "kind": error.kind(), "message": error.to_string() } }).to_string()
}

/// A result: labelled values in order. Text output prints a lone value bare (so scripts can
/// capture it) and several as `label: value` lines; JSON prints an object.
#[derive(Debug, Default)]
pub struct Output {
    fields: Vec<(&'static str, Value)>,
    text: Option<String>,
}

impl Output {
    /// Adds a labelled value.
    pub fn with(mut self, label: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((label, value.into()));
        self
    }

    /// Prints `text` on a terminal instead of the fields (JSON still carries the fields).
    pub fn with_text(mut self, text: String) -> Self {
        self.text = Some(text);
        self
    }

    /// The value under `label`, if any.
    pub fn get(&self, label: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| v)
    }

    /// Text for a terminal.
    pub fn to_text(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        let show = |value: &Value| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self.fields.as_slice() {
            [(_, only)] => show(only),
            fields => fields
                .iter()
                .map(|(label, value)| format!("{label}: {}", show(value)))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// JSON for scripts.
    pub fn to_json(&self) -> String {
        let map: Map<String, Value> = self
            .fields
            .iter()
            .map(|(label, value)| ((*label).to_owned(), value.clone()))
            .collect();
        Value::Object(map).to_string()
    }
}

/// Which MAC the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacChoice {
    /// ISO 9797-1 algorithm 1.
    Iso9797Alg1,
    /// ISO 9797-1 algorithm 3.
    Iso9797Alg3,
    /// AES-CMAC.
    AesCmac,
    /// TDES-CMAC.
    TdesCmac,
}

/// A key algorithm named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgChoice {
    /// AES.
    Aes,
    /// TDES.
    Tdes,
}

impl From<AlgChoice> for KeyAlgorithm {
    fn from(choice: AlgChoice) -> Self {
        match choice {
            AlgChoice::Aes => KeyAlgorithm::Aes,
            AlgChoice::Tdes => KeyAlgorithm::Tdes,
        }
    }
}

/// Which DUKPT working key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DukptChoice {
    /// PIN encryption.
    Pin,
    /// MAC generation.
    Mac,
    /// Data encryption.
    Data,
}

fn parse_hex(field: &'static str, text: &str) -> Result<Zeroizing<Vec<u8>>, ToolError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(compact)
        .map(Zeroizing::new)
        .map_err(|reason| ToolError::Hex { field, reason })
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// A CSPRNG seeded from the operating system, for random PIN-block fill and TR-31 padding.
fn os_rng() -> Result<ChaCha20Rng, ToolError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(ToolError::Entropy)?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

fn pin_key_for(format: PinBlockFormat, key_hex: &str) -> Result<PinKey, ToolError> {
    let algorithm = match format {
        PinBlockFormat::Iso4 => KeyAlgorithm::Aes,
        _ => KeyAlgorithm::Tdes,
    };
    Ok(PinKey::new(algorithm, &parse_hex("key", key_hex)?)?)
}

/// `pinbridge crypto pinblock encode`.
pub fn pinblock_encode(
    format: u8,
    pin: &str,
    pan: Option<&str>,
    key: Option<&str>,
    fill: Option<&str>,
) -> Result<Output, ToolError> {
    let format = PinBlockFormat::from_number(format)?;
    let pin = Pin::new(pin)?;
    let pan = pan.map(Pan::new).transpose()?;
    let clear = match fill {
        Some(fill) => {
            pinblock::encode_with_fill(format, &pin, pan.as_ref(), &ExplicitFill::from_hex(fill)?)?
        }
        None => pinblock::encode(format, &pin, pan.as_ref(), &mut os_rng()?)?,
    };
    let output = Output::default();
    Ok(match key {
        Some(key) => {
            let key = pin_key_for(format, key)?;
            let block = pinblock::encipher(&clear, pan.as_ref(), &key)?;
            output.with("pin_block", upper_hex(block.as_bytes()))
        }
        None => output.with("clear_pin_block", upper_hex(clear.reveal_bytes())),
    })
}

/// `pinbridge crypto pinblock decode`.
pub fn pinblock_decode(
    format: u8,
    pan: Option<&str>,
    key: Option<&str>,
    block: &str,
) -> Result<Output, ToolError> {
    let format = PinBlockFormat::from_number(format)?;
    let pan = pan.map(Pan::new).transpose()?;
    let bytes = parse_hex("block", block)?;
    let pin = match key {
        Some(key) => {
            let key = pin_key_for(format, key)?;
            let block = EncipheredPinBlock::from_bytes(format, &bytes)?;
            pinblock::decrypt_pin(&block, pan.as_ref(), &key)?
        }
        None => pinblock::decode(&ClearPinBlock::from_bytes(format, &bytes)?, pan.as_ref())?,
    };
    Ok(Output::default().with("pin", pin.reveal_digits().to_owned()))
}

/// `pinbridge crypto mac`.
pub fn mac(choice: MacChoice, padding: u8, key: &str, data: &str) -> Result<Output, ToolError> {
    let (algorithm, key_algorithm) = match choice {
        MacChoice::Iso9797Alg1 => (
            MacAlgorithm::Iso9797Alg1(Padding::from_number(padding)?),
            KeyAlgorithm::Tdes,
        ),
        MacChoice::Iso9797Alg3 => (
            MacAlgorithm::Iso9797Alg3(Padding::from_number(padding)?),
            KeyAlgorithm::Tdes,
        ),
        MacChoice::AesCmac => (MacAlgorithm::AesCmac, KeyAlgorithm::Aes),
        MacChoice::TdesCmac => (MacAlgorithm::TdesCmac, KeyAlgorithm::Tdes),
    };
    let key = MacKey::new(key_algorithm, &parse_hex("key", key)?)?;
    let data = parse_hex("data", data)?;
    let mac = mac::compute(&key, algorithm, &data)?;
    Ok(Output::default().with("mac", upper_hex(&mac)))
}

/// `pinbridge crypto kcv`.
pub fn kcv(key: &str, algorithm: Option<AlgChoice>, legacy_ecb: bool) -> Result<Output, ToolError> {
    let bytes = parse_hex("key", key)?;
    let algorithm = match (algorithm, bytes.len()) {
        (Some(choice), _) => choice.into(),
        (None, 8 | 24) => KeyAlgorithm::Tdes,
        (None, 32) => KeyAlgorithm::Aes,
        (None, _) => {
            return Err(ToolError::Ambiguous(
                "a 16-byte key may be AES-128 or 2-key TDES: name it with --alg aes|tdes",
            ));
        }
    };
    let material = KeyMaterial::new(algorithm, &bytes)?;
    let method = if legacy_ecb {
        KcvMethod::Ecb
    } else {
        KcvMethod::standard_for(algorithm)
    };
    let kcv = kcv::compute(&material, method);
    Ok(Output::default().with("kcv", upper_hex(kcv.as_bytes())))
}

fn kbpk_for_version(version: char, kbpk: &str) -> Result<KeyBlockProtectionKey, ToolError> {
    let algorithm = match version {
        'D' => KeyAlgorithm::Aes,
        _ => KeyAlgorithm::Tdes,
    };
    Ok(KeyBlockProtectionKey::new(
        algorithm,
        &parse_hex("kbpk", kbpk)?,
    )?)
}

fn wrapped_key_algorithm(header_algorithm: char) -> KeyAlgorithm {
    match header_algorithm {
        'A' => KeyAlgorithm::Aes,
        _ => KeyAlgorithm::Tdes,
    }
}

/// `pinbridge crypto tr31 wrap`.
pub fn tr31_wrap(
    kbpk: &str,
    header: &str,
    key: &str,
    random: Option<&str>,
) -> Result<Output, ToolError> {
    let header_text = header.trim();
    let parsed = Header::parse(header_text)?;
    let version = header_text.chars().next().unwrap_or('D');
    let algorithm_code = header_text.chars().nth(7).unwrap_or('A');
    let kbpk = kbpk_for_version(version, kbpk)?;
    let key = KeyMaterial::new(
        wrapped_key_algorithm(algorithm_code),
        &parse_hex("key", key)?,
    )?;
    let block = match random {
        Some(padding) => {
            tr31::wrap_with_padding(&kbpk, &parsed, &key, &parse_hex("random", padding)?)?
        }
        None => tr31::wrap(
            &kbpk,
            &parsed,
            &key,
            KeyLengthMasking::AlgorithmMaximum,
            &mut os_rng()?,
        )?,
    };
    Ok(Output::default().with("key_block", block))
}

/// `pinbridge crypto tr31 unwrap`.
pub fn tr31_unwrap(kbpk: &str, block: &str) -> Result<Output, ToolError> {
    let block = block.trim();
    let version = block.chars().next().unwrap_or('D');
    let kbpk = kbpk_for_version(version, kbpk)?;
    let unwrapped = tr31::unwrap(&kbpk, block)?;
    let header = &unwrapped.header;
    let kcv = kcv::compute(
        &unwrapped.material,
        KcvMethod::standard_for(unwrapped.material.algorithm()),
    );
    Ok(Output::default()
        .with("key", upper_hex(unwrapped.material.reveal_bytes()))
        .with("kcv", upper_hex(kcv.as_bytes()))
        .with("version", header.version().to_string())
        .with("key_usage", header.key_usage().to_string())
        .with("algorithm", header.algorithm().to_string())
        .with("mode_of_use", header.mode_of_use().to_string())
        .with("key_version", header.key_version().to_string())
        .with("exportability", header.exportability().to_string()))
}

/// `pinbridge crypto dukpt`.
pub fn dukpt(
    bdk: &str,
    ksn: &str,
    scheme: AlgChoice,
    usage: DukptChoice,
) -> Result<Output, ToolError> {
    let scheme = match scheme {
        AlgChoice::Aes => DukptScheme::Aes,
        AlgChoice::Tdes => DukptScheme::Tdes,
    };
    let usage = match usage {
        DukptChoice::Pin => DukptUsage::PinEncryption,
        DukptChoice::Mac => DukptUsage::MacGeneration,
        DukptChoice::Data => DukptUsage::DataEncryption,
    };
    let bdk = BaseDerivationKey::new(scheme.key_algorithm(), &parse_hex("bdk", bdk)?)?;
    let ksn = parse_hex("ksn", ksn)?;
    let key = dukpt::derive_working_key(scheme, &bdk, &ksn, usage)?;
    let kcv = kcv::compute(
        key.material(),
        KcvMethod::standard_for(key.material().algorithm()),
    );
    Ok(Output::default()
        .with("working_key", upper_hex(key.material().reveal_bytes()))
        .with("kcv", upper_hex(kcv.as_bytes())))
}
