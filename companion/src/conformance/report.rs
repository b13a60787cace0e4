//! The conformance report: one result per case, as text (one line each) and as JSON.

use serde::Serialize;

/// A case's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The device did what PROTOCOL.md requires.
    Pass,
    /// It did not.
    Fail,
    /// Not run (what it needs is missing, or a case it depends on failed).
    Skip,
}

impl Verdict {
    /// `PASS`, `FAIL`, `SKIP`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Stable case id (`link.crc.bad`).
    pub id: &'static str,
    /// The PROTOCOL.md section the rule is in (`2.8`).
    pub section: &'static str,
    /// What the case checks.
    pub title: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What PROTOCOL.md requires.
    pub expected: &'static str,
    /// What the device did (PASS/FAIL), or why the case did not run (SKIP).
    pub seen: String,
    /// How long the case took.
    pub duration_ms: u64,
}

/// Counts of each verdict.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

/// The device as the kit saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeviceSummary {
    /// `sim:127.0.0.1:7000`, `usb:...`, `ble:...`.
    pub address: String,
    /// Link MTU.
    pub mtu: usize,
    /// From Info, when GetInfo worked.
    pub serial: Option<String>,
    /// From Info.
    pub firmware_version: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `pinbridge conformance`.
    pub tool: &'static str,
    /// The kit's version (the companion's).
    pub kit_version: &'static str,
    /// The protocol version checked.
    pub protocol: &'static str,
    /// The device.
    pub device: DeviceSummary,
    /// Counts.
    pub summary: Summary,
    /// Every case, in the order run.
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub(crate) fn new(device: DeviceSummary, cases: Vec<CaseResult>) -> Self {
        let mut summary = Summary::default();
        for case in &cases {
            match case.verdict {
                Verdict::Pass => summary.pass += 1,
                Verdict::Fail => summary.fail += 1,
                Verdict::Skip => summary.skip += 1,
            }
        }
        Report {
            tool: "pinbridge conformance",
            kit_version: env!("CARGO_PKG_VERSION"),
            protocol: "PinBridge device protocol version 1 (firmware-protocol/PROTOCOL.md)",
            device,
            summary,
            cases,
        }
    }

    /// Whether no case failed.
    pub fn passed(&self) -> bool {
        self.summary.fail == 0
    }

    /// The human summary: a header, one line per case, a total.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "PinBridge conformance: {} (MTU {}){}\n",
            self.device.address,
            self.device.mtu,
            match (&self.device.serial, &self.device.firmware_version) {
                (Some(serial), Some(version)) => format!(", serial {serial}, firmware {version}"),
                (Some(serial), None) => format!(", serial {serial}"),
                _ => String::new(),
            }
        );
        let width = self.cases.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for case in &self.cases {
            let section = format!("§{}", case.section);
            let detail = match case.verdict {
                Verdict::Pass => case.seen.clone(),
                Verdict::Fail => format!("expected {}; seen {}", case.expected, case.seen),
                Verdict::Skip => case.seen.clone(),
            };
            out.push_str(&format!(
                "{} {:<width$} {:<7} {}: {}\n",
                case.verdict.as_str(),
                case.id,
                section,
                case.title,
                detail
            ));
        }
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped\n",
            self.summary.pass, self.summary.fail, self.summary.skip
        ));
        out
    }
}
