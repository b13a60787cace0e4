//! The IPC contract can't drift: ui/src/api/generated.ts (the core's types as TypeScript, by
//! ts-rs) and ui/src/api/commands.ts (the command names, from src/command_table.rs) must be
//! what the Rust side generates now, and ui/README.md must name every command.
//!
//! After changing a type or the table: `PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p
//! pinbridge-app --test contract` rewrites both files; commit them with the change.

// Test harness: a file that cannot be written should fail the test loudly.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};

use companion::app::*;
use companion::error::ErrorKind;
use ts_rs::{Config, TS};

/// The command table's three lists.
macro_rules! command_table {
    (plain: [$($plain:ident),* $(,)?], flow: [$($flow:ident),* $(,)?], qa: [$($qa:ident),* $(,)?] $(,)?) => {
        const PLAIN: &[&str] = &[$(stringify!($plain)),*];
        const FLOW: &[&str] = &[$(stringify!($flow)),*];
        const QA: &[&str] = &[$(stringify!($qa)),*];
    };
}
include!("../src/command_table.rs");

fn ui(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ui/src/api")
        .join(file)
}

fn decl<T: TS>(cfg: &Config) -> String {
    format!("export {}\n", T::decl(cfg))
}

/// Every type the screens get from the core, as TypeScript.
fn generated_types() -> String {
    // Ids and counts are JSON numbers well inside 2^53 (prompt ids, milliseconds).
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// GENERATED from the Rust types of companion::app by src-tauri/tests/contract.rs (ts-rs).\n\
         // Do not edit: change the Rust type, then run\n\
         // PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p pinbridge-app --test contract\n\n",
    );
    for text in [
        decl::<TransportName>(&cfg),
        decl::<Lifecycle>(&cfg),
        decl::<TamperState>(&cfg),
        decl::<LockState>(&cfg),
        decl::<Indicator>(&cfg),
        decl::<Firmware>(&cfg),
        decl::<Genuine>(&cfg),
        decl::<DeviceStatus>(&cfg),
        decl::<Stage>(&cfg),
        decl::<DeviceProgress>(&cfg),
        decl::<ConfirmationRequest>(&cfg),
        decl::<LinkState>(&cfg),
        decl::<BankCommandKind>(&cfg),
        decl::<BankReach>(&cfg),
        decl::<CoreEvent>(&cfg),
        decl::<PairingStart>(&cfg),
        decl::<LoginSession>(&cfg),
        decl::<LogoutResult>(&cfg),
        decl::<PaymentRequest>(&cfg),
        decl::<PreparedPayment>(&cfg),
        decl::<Outcome>(&cfg),
        decl::<OutcomeReason>(&cfg),
        decl::<PaymentResult>(&cfg),
        decl::<HistoryOutcome>(&cfg),
        decl::<PaymentOrigin>(&cfg),
        decl::<PaymentRecord>(&cfg),
        decl::<PaymentHistory>(&cfg),
        decl::<ConfirmationResult>(&cfg),
        decl::<StaffRole>(&cfg),
        decl::<StaffSession>(&cfg),
        decl::<StaffAction>(&cfg),
        decl::<StaffActionResult>(&cfg),
        decl::<SerialAction>(&cfg),
        decl::<BankDevice>(&cfg),
        decl::<LossReport>(&cfg),
        decl::<DeviceCommandRecord>(&cfg),
        decl::<PinChangeVerdict>(&cfg),
        decl::<PinChangeResult>(&cfg),
        decl::<WipeResult>(&cfg),
        decl::<Fault>(&cfg),
        decl::<companion::keystore::PassphraseNeed>(&cfg),
        decl::<ErrorKind>(&cfg),
        decl::<AppError>(&cfg),
    ] {
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// The command names for the TypeScript client: `call()` takes only these.
fn generated_commands() -> String {
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("  '{n}',\n"))
            .collect::<String>()
    };
    format!(
        "// GENERATED from src-tauri/src/command_table.rs by src-tauri/tests/contract.rs.\n\
         // Do not edit: change the table, then run\n\
         // PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p pinbridge-app --test contract\n\n\
         /** Commands that need no bank. */\n\
         export const PLAIN_COMMANDS = [\n{}] as const;\n\n\
         /** Commands that start or drive a flow with the bank (refused with `noBankProfile` without one). */\n\
         export const FLOW_COMMANDS = [\n{}] as const;\n\n\
         /** The sandbox build's QA commands (absent from the production build). */\n\
         export const QA_COMMANDS = [\n{}] as const;\n\n\
         export type Command =\n  | (typeof PLAIN_COMMANDS)[number]\n  | (typeof FLOW_COMMANDS)[number]\n  | (typeof QA_COMMANDS)[number];\n",
        list(PLAIN),
        list(FLOW),
        list(QA)
    )
}

fn check(file: &str, want: &str) {
    let path = ui(file);
    if std::env::var_os("PINBRIDGE_UPDATE_CONTRACT").is_some() {
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the Rust side generates; run PINBRIDGE_UPDATE_CONTRACT=1 cargo test -p pinbridge-app --test contract and commit it",
        path.display()
    );
}

#[test]
fn the_typescript_types_are_the_rust_types() {
    check("generated.ts", &generated_types());
}

#[test]
fn the_typescript_command_names_are_the_command_table() {
    check("commands.ts", &generated_commands());
}

#[test]
fn the_readme_documents_every_command_of_the_table() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/README.md"))
            .unwrap_or_default();
    let missing: Vec<&&str> = PLAIN
        .iter()
        .chain(FLOW)
        .chain(QA)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "ui/README.md does not name {missing:?}");
}

#[test]
fn the_registered_lists_are_the_tables() {
    assert_eq!(pinbridge_app::FLOW_COMMANDS, FLOW);
    assert_eq!(pinbridge_app::QA_COMMANDS, QA);
    let all: Vec<&str> = PLAIN.iter().chain(FLOW).copied().collect();
    assert_eq!(pinbridge_app::COMMANDS, all.as_slice());
}
