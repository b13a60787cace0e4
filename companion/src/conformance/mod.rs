//! The conformance kit for PIN pad vendors: runs the normative rules of
//! `firmware-protocol/PROTOCOL.md` against a connected device and reports, case by case,
//! which the device keeps (what FIDO's conformance tools are to authenticators).
//!
//! Cases are data: [`CASES`] is one table, each row with its id, its PROTOCOL.md section,
//! what the section requires, the cases it builds on, and the function that drives the
//! device. The table's order is the run order: a case that changes the device (initialise,
//! pair) comes before the cases that need that state, and a case whose prerequisite did not
//! pass is SKIP. After a failed case the kit resynchronises its channel (INIT, §2.6.3) so
//! the next case starts clean.
//!
//! What a case needs beyond the link: the test bank ([`testbank`], bank-signed requests and
//! session keys) and a test hook ([`hook`], keypad and tamper switch). Without them those
//! cases are SKIP with the reason.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use firmware_protocol::crypto::host_auth::HostSigner;
use firmware_protocol::crypto::keys::KeyBlockProtectionKey;
use firmware_protocol::link::ChannelId;
use firmware_protocol::message::{self, Answer, Command, Info, Request, Response, StatusCode};

mod bank_command_cases;
pub mod cli;
pub mod hook;
mod link_cases;
mod message_cases;
mod owner_cases;
mod payment_cases;
mod probe;
pub mod report;
mod session_cases;
mod tamper_cases;
pub mod testbank;

use hook::TestHook;
use probe::{Chan, Exchange, ExchangeError, Probe, UserScript};
use report::{CaseResult, DeviceSummary, Report, Verdict};
use testbank::TestBank;

use crate::transport::Transport;

/// What a run has besides the device.
#[derive(Debug, Default)]
pub struct Options {
    /// The device as named (`sim:127.0.0.1:7000`), for the report.
    pub address: String,
    /// The test bank's keys: initialise, pairing state, login and payment cases.
    pub bank: Option<TestBank>,
    /// The keypad and tamper switch.
    pub hook: Option<TestHook>,
    /// Run only the cases whose id starts with one of these (and the cases they build on);
    /// empty: every case.
    pub only: Vec<String>,
    /// How late a device timer may be, as measured from the host, before it fails
    /// ([`DEFAULT_TOLERANCE_MS`] when 0).
    pub tolerance_ms: u64,
}

/// Allowance for transport and scheduling delay on top of a timer PROTOCOL.md states (the
/// kit measures the device's timers from the outside).
pub const DEFAULT_TOLERANCE_MS: u64 = 100;

/// Why a case did not pass.
#[derive(Debug)]
pub(crate) enum Why {
    Fail(String),
    Skip(String),
}

impl From<ExchangeError> for Why {
    fn from(error: ExchangeError) -> Self {
        Why::Fail(error.to_string())
    }
}

impl Why {
    /// What a failing case saw, after the step that went well (a skip stays as it is).
    pub(crate) fn after(self, step: &str) -> Self {
        match self {
            Why::Fail(seen) => Why::Fail(format!("{step}, then {seen}")),
            skip => skip,
        }
    }
}

pub(crate) fn fail<T>(seen: impl Into<String>) -> Result<T, Why> {
    Err(Why::Fail(seen.into()))
}

/// What a case returns: what was seen (PASS) or why not.
pub(crate) type Outcome = Result<String, Why>;

type BoxFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
type CaseFn = for<'a> fn(&'a mut Ctx) -> BoxFuture<'a>;

/// One row of the table.
pub(crate) struct Case {
    pub id: &'static str,
    pub section: &'static str,
    pub title: &'static str,
    pub expected: &'static str,
    /// Cases that must have passed first (they put the device in the state this one needs).
    pub after: &'static [&'static str],
    pub run: CaseFn,
}

/// Wraps an `async fn(&mut Ctx) -> Outcome` into a table entry.
macro_rules! case_fn {
    ($f:path) => {{
        fn run(ctx: &mut $crate::conformance::Ctx) -> $crate::conformance::BoxFutureOf<'_> {
            Box::pin($f(ctx))
        }
        run
    }};
}
pub(crate) use case_fn;

pub(crate) type BoxFutureOf<'a> = BoxFuture<'a>;

/// A host paired by the kit.
pub(crate) struct Paired {
    pub signer: HostSigner,
}

/// Keys the kit, as the test bank, gave the device.
#[derive(Default)]
pub(crate) struct BankState {
    /// The KBPK installed by `bank.initialise`.
    pub kbpk: Option<KeyBlockProtectionKey>,
    /// The last bank sequence the device accepted.
    pub last_sequence: Option<u64>,
    /// A signed command already accepted (for the replay case).
    pub used_reset: Option<Vec<u8>>,
}

/// What cases share: the link, the device's identity, what earlier cases set up.
pub(crate) struct Ctx {
    pub probe: Probe,
    pub chan: Chan,
    pub bank: Option<TestBank>,
    pub hook: Option<TestHook>,
    pub info: Option<Info>,
    pub paired: Option<Paired>,
    pub bank_state: BankState,
    pub flow: payment_cases::FlowState,
    pub tolerance_ms: u64,
    next_request_id: u32,
}

impl Ctx {
    pub fn request_id(&mut self) -> u32 {
        self.next_request_id = self.next_request_id.wrapping_add(1).max(1);
        self.next_request_id
    }

    /// The test bank, or SKIP.
    pub fn bank(&self) -> Result<&TestBank, Why> {
        self.bank.as_ref().ok_or_else(|| {
            Why::Skip("needs the test bank's keys (--bank-keys, see `new-test-bank`)".into())
        })
    }

    /// The test hook, or SKIP.
    pub fn hook(&self) -> Result<&TestHook, Why> {
        self.hook.as_ref().ok_or_else(|| {
            Why::Skip("needs a user at the keypad: give a test hook (--sim-control)".into())
        })
    }

    /// Sends raw message bytes, returns the answer's request id and response.
    pub async fn exchange_raw(
        &mut self,
        bytes: &[u8],
        user: &UserScript,
    ) -> Result<(u32, Response, Exchange), Why> {
        let hook = self.hook.clone();
        let exchange = self
            .probe
            .transact(&mut self.chan, bytes, hook.as_ref(), user)
            .await?;
        let (request_id, response) = message::decode_response(&exchange.answer)
            .map_err(|e| Why::Fail(format!("an answer that does not decode: {e}")))?;
        Ok((request_id, response, exchange))
    }

    /// One request, its response (request id checked).
    pub async fn ask_with(
        &mut self,
        request: &Request,
        user: &UserScript,
    ) -> Result<(Response, Exchange), Why> {
        let id = self.request_id();
        let bytes = request
            .encode(id)
            .map_err(|e| Why::Fail(format!("cannot encode {}: {e}", request.name())))?;
        let (answer_id, response, exchange) = self.exchange_raw(&bytes, user).await?;
        if answer_id != id {
            return fail(format!(
                "{} answered with request id {answer_id}, not {id}",
                response.name()
            ));
        }
        Ok((response, exchange))
    }

    pub async fn ask(&mut self, request: &Request) -> Result<Response, Why> {
        Ok(self.ask_with(request, &UserScript::default()).await?.0)
    }

    /// Wraps `inner` in a HostVerified envelope of the kit's pairing.
    pub fn envelope(&mut self, inner: &Request) -> Result<(u32, Request), Why> {
        let id = self.request_id();
        let paired = self
            .paired
            .as_mut()
            .ok_or_else(|| Why::Skip("needs the kit's pairing (pair.confirm)".into()))?;
        let envelope = message::HostVerified::sign(id, inner, &mut paired.signer)
            .map_err(|e| Why::Fail(format!("cannot wrap {}: {e}", inner.name())))?;
        Ok((id, Request::HostVerified(envelope)))
    }

    /// `inner` inside the kit's envelope; the response.
    pub async fn ask_verified_with(
        &mut self,
        inner: &Request,
        user: &UserScript,
    ) -> Result<(Response, Exchange), Why> {
        let (id, envelope) = self.envelope(inner)?;
        let bytes = envelope
            .encode(id)
            .map_err(|e| Why::Fail(format!("cannot encode the envelope: {e}")))?;
        let (answer_id, response, exchange) = self.exchange_raw(&bytes, user).await?;
        if answer_id != id {
            return fail(format!("answered with request id {answer_id}, not {id}"));
        }
        Ok((response, exchange))
    }

    pub async fn status(&mut self) -> Result<message::Status, Why> {
        let response = self.ask(&Request::GetStatus(message::GetStatus)).await?;
        expect::<message::GetStatus>(response)
    }

    /// After a failed case: resynchronise the channel (aborting whatever it owns), or open
    /// a new one.
    async fn recover(&mut self) {
        if let Ok((Some(init), _)) = self.probe.init(self.chan.id).await {
            self.chan.tx = 0;
            self.chan.rx = 0;
            self.chan.init = init;
            return;
        }
        if let Ok(chan) = self.probe.open().await {
            self.chan = chan;
        }
    }
}

/// A response in words: its name, and for an Error its status.
pub(crate) fn describe_response(response: &Response) -> String {
    match response {
        Response::Error(error) => format!("Error({:?})", error.status),
        other => other.name().to_owned(),
    }
}

/// The answer command `C` names (PROTOCOL.md §3.3), or the case fails saying what came.
pub(crate) fn expect<C: Command>(response: Response) -> Result<C::Response, Why> {
    match C::answer(response) {
        Answer::Done(done) => Ok(done),
        Answer::Refused(error) => fail(format!("Error({:?}) to {}", error.status, C::NAME)),
        Answer::Unexpected(unexpected) => fail(unexpected.to_string()),
    }
}

/// PASS if `response` is `Error(status)`.
pub(crate) fn expect_status(response: &Response, status: StatusCode) -> Outcome {
    match response {
        Response::Error(error) if error.status == status => Ok(format!("Error({status:?})")),
        other => fail(describe_response(other)),
    }
}

/// The table: link layer, message layer, then what needs the bank and the hook.
pub(crate) fn cases() -> Vec<Case> {
    let mut all = link_cases::cases();
    all.extend(message_cases::cases());
    all.extend(session_cases::cases());
    all.extend(payment_cases::cases());
    // While the kit's session and pairing hold (host.unpair, among the bank commands, ends
    // the pairing).
    all.extend(owner_cases::pin_cases());
    all.extend(bank_command_cases::cases());
    // The owner's wipe erases what the cases before use.
    all.extend(owner_cases::wipe_cases());
    // Last: a tamper wipes what the cases before set up.
    all.extend(tamper_cases::cases());
    all
}

/// Runs every case against the device behind `transport`.
pub async fn run(transport: Box<dyn Transport>, options: Options) -> Report {
    let mtu = transport.mtu().get();
    let mut seed = [0u8; 32];
    // Without OS entropy the nonces are still distinct per run thanks to the clock.
    if getrandom::fill(&mut seed).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        seed[..16].copy_from_slice(&now.to_be_bytes());
    }
    let mut probe = Probe::new(transport, seed);
    let mut device = DeviceSummary {
        address: options.address.clone(),
        mtu,
        ..DeviceSummary::default()
    };
    let table = selected(cases(), &options.only);
    let chan = match probe.open().await {
        Ok(chan) => chan,
        Err(error) => {
            // Without a channel nothing can run: every case fails on the first one's reason.
            let results = table
                .iter()
                .map(|case| CaseResult {
                    id: case.id,
                    section: case.section,
                    title: case.title,
                    verdict: if case.id == "link.init.allocate" {
                        Verdict::Fail
                    } else {
                        Verdict::Skip
                    },
                    expected: case.expected,
                    seen: if case.id == "link.init.allocate" {
                        error.to_string()
                    } else {
                        "needs link.init.allocate, which did not pass".into()
                    },
                    duration_ms: 0,
                })
                .collect();
            probe.close().await;
            return Report::new(device, results);
        }
    };
    let mut ctx = Ctx {
        probe,
        chan,
        bank: options.bank,
        hook: options.hook,
        info: None,
        paired: None,
        bank_state: BankState::default(),
        flow: payment_cases::FlowState::default(),
        tolerance_ms: if options.tolerance_ms == 0 {
            DEFAULT_TOLERANCE_MS
        } else {
            options.tolerance_ms
        },
        next_request_id: 0,
    };
    let mut passed: HashSet<&'static str> = HashSet::new();
    let mut results = Vec::new();
    for case in &table {
        let started = Instant::now();
        let missing = case.after.iter().find(|id| !passed.contains(**id));
        let outcome = match missing {
            Some(id) => Err(Why::Skip(format!("needs {id}, which did not pass"))),
            None => (case.run)(&mut ctx).await,
        };
        let (verdict, seen) = match outcome {
            Ok(seen) => {
                passed.insert(case.id);
                (Verdict::Pass, seen)
            }
            Err(Why::Fail(seen)) => {
                ctx.recover().await;
                (Verdict::Fail, seen)
            }
            Err(Why::Skip(reason)) => (Verdict::Skip, reason),
        };
        tracing::info!(
            case = case.id,
            verdict = verdict.as_str(),
            "conformance case"
        );
        results.push(CaseResult {
            id: case.id,
            section: case.section,
            title: case.title,
            verdict,
            expected: case.expected,
            seen,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
    if let Some(info) = &ctx.info {
        device.serial = Some(info.serial.clone());
        device.firmware_version = Some(info.firmware_version.clone());
    }
    ctx.probe.close().await;
    Report::new(device, results)
}

/// The cases `only` selects (id prefixes), with the cases they build on; all when empty.
fn selected(table: Vec<Case>, only: &[String]) -> Vec<Case> {
    if only.is_empty() {
        return table;
    }
    // Opening the channel is every run's first check.
    let mut needed: HashSet<&'static str> = HashSet::from(["link.init.allocate"]);
    // Prerequisites come earlier in the table, so one pass from the end finds them all.
    for case in table.iter().rev() {
        if needed.contains(case.id)
            || only
                .iter()
                .any(|prefix| case.id.starts_with(prefix.as_str()))
        {
            needed.insert(case.id);
            needed.extend(case.after.iter().copied());
        }
    }
    table
        .into_iter()
        .filter(|case| needed.contains(case.id))
        .collect()
}

/// Channel ids the device never assigned to this kit, for the refusal cases.
pub(crate) fn foreign_channel(own: ChannelId) -> ChannelId {
    let candidate = ChannelId(own.0 ^ 0x5A5A_5A5A);
    if candidate.is_assignable() {
        candidate
    } else {
        ChannelId(0x0102_0304)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_case_has_a_unique_id_and_names_a_section_of_protocol_md() {
        let protocol = include_str!("../../../firmware-protocol/PROTOCOL.md");
        let headings: HashSet<&str> = protocol
            .lines()
            .filter(|line| line.starts_with('#'))
            .filter_map(|line| line.trim_start_matches('#').split_whitespace().next())
            .map(|number| number.trim_end_matches('.'))
            .collect();
        let table = cases();
        let mut ids = HashSet::new();
        for case in &table {
            assert!(ids.insert(case.id), "{} twice", case.id);
            assert!(
                headings.contains(case.section),
                "{}: PROTOCOL.md has no section {}",
                case.id,
                case.section
            );
            assert!(
                !case.expected.is_empty() && !case.title.is_empty(),
                "{}",
                case.id
            );
        }
        // A prerequisite comes earlier in the table (cases run in table order).
        let mut earlier = HashSet::new();
        for case in &table {
            for after in case.after {
                assert!(earlier.contains(after), "{} runs before {after}", case.id);
            }
            earlier.insert(case.id);
        }
    }

    #[test]
    fn a_selection_keeps_the_cases_it_builds_on_in_order() {
        let ids = |only: &[&str]| -> Vec<&'static str> {
            let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
            selected(cases(), &only).iter().map(|c| c.id).collect()
        };
        assert_eq!(ids(&[]).len(), cases().len());
        assert_eq!(
            ids(&["host.replay"]),
            [
                "link.init.allocate",
                "msg.getstatus",
                "pair.confirm",
                "host.replay"
            ]
        );
        assert!(
            ids(&["link.msg."])
                .iter()
                .all(|id| id.starts_with("link.msg.") || *id == "link.init.allocate")
        );
    }

    #[test]
    fn the_text_report_has_one_line_per_case_with_expected_and_seen_on_failure() {
        let case = |id, verdict, seen: &str| CaseResult {
            id,
            section: "2.8",
            title: "bad CRC from the host",
            verdict,
            expected: "NACK CRC_MISMATCH",
            seen: seen.into(),
            duration_ms: 3,
        };
        let report = Report::new(
            DeviceSummary {
                address: "sim:127.0.0.1:7000".into(),
                mtu: 64,
                serial: Some("PB-1".into()),
                firmware_version: Some("1.0".into()),
            },
            vec![
                case("link.crc.bad", Verdict::Pass, "NACK"),
                case("link.crc.other", Verdict::Fail, "nothing"),
                case("bank.login", Verdict::Skip, "needs the test bank's keys"),
            ],
        );
        assert!(!report.passed());
        let text = report.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[1].starts_with("PASS link.crc.bad"), "{text}");
        assert!(lines[1].contains("§2.8"), "{text}");
        assert!(
            lines[2].ends_with("expected NACK CRC_MISMATCH; seen nothing"),
            "{text}"
        );
        assert!(lines[3].starts_with("SKIP bank.login"), "{text}");
        assert_eq!(lines[4], "1 passed, 1 failed, 1 skipped");
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["cases"][1]["verdict"], "fail");
        assert_eq!(json["summary"]["skip"], 1);
    }

    #[test]
    fn the_test_bank_file_round_trips_privately_and_refuses_mismatched_keys() {
        let dir = std::env::temp_dir().join(format!("pb-testbank-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("bank.json");
        let bank = TestBank::generate(
            &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([7; 32]),
        );
        assert!(bank.save(&path).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let loaded = TestBank::load(&path);
        assert!(
            loaded.is_ok_and(|l| l.management.verifying_key() == bank.management.verifying_key())
        );
        // Someone swapped a public key: refused rather than signing for the wrong anchor.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let other = TestBank::generate(
            &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([8; 32]),
        );
        let swapped = text.replace(
            &hex::encode(bank.operator.verifying_key().to_sec1_bytes()),
            &hex::encode(other.operator.verifying_key().to_sec1_bytes()),
        );
        assert!(std::fs::write(&path, swapped).is_ok());
        assert!(matches!(
            TestBank::load(&path),
            Err(testbank::TestBankError::Invalid { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_sim_hook_is_loopback_http_only() {
        assert!(TestHook::sim_control("http://127.0.0.1:7001").is_ok());
        assert!(TestHook::sim_control("http://[::1]:7001/devices/2").is_ok());
        assert!(TestHook::sim_control("http://localhost:7001").is_ok());
        assert!(TestHook::sim_control("http://192.168.1.10:7001").is_err());
        assert!(TestHook::sim_control("https://127.0.0.1:7001").is_err());
        assert!(TestHook::sim_control("127.0.0.1:7001").is_err());
    }
}
