//! Demo data for `bank-sandbox seed`: staff of every role, two customers with accounts, a
//! payee account at another bank.

use serde_json::{Value, json};

use crate::bank::{Bank, Role};
use crate::error::{BankError, BankResult};

/// Demo staff: (user name, password, role). Sandbox only: the passwords are public.
pub const DEMO_STAFF: &[(&str, &str, Role)] = &[
    ("admin", "admin-password", Role::Admin),
    ("teller", "teller-password", Role::Teller),
    ("operator", "operator-password", Role::Operator),
    ("terminal", "terminal-password", Role::Terminal),
];

/// Demo customers: (customer id, name, PIN account number, account, balance in cents).
pub const DEMO_CUSTOMERS: &[(&str, &str, &str, &str, i64)] = &[
    (
        "alice",
        "Alice Example",
        "4000001234567899",
        "DE89370400440532013000",
        1_000_000,
    ),
    (
        "bob",
        "Bob Example",
        "4000009876543210",
        "DE02120300000000202051",
        250_000,
    ),
];

fn ignore_existing(result: BankResult<()>) -> BankResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(BankError {
            code: "staff_exists" | "customer_exists" | "account_exists",
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the demo data that is missing; returns what exists afterwards.
pub async fn seed(bank: &Bank) -> BankResult<Value> {
    for (username, password, role) in DEMO_STAFF {
        ignore_existing(bank.create_staff(username, password, *role).await)?;
    }
    for (id, name, pan, account, balance) in DEMO_CUSTOMERS {
        ignore_existing(bank.create_customer(id, name, pan).await)?;
        ignore_existing(
            bank.create_account(
                account,
                Some(id),
                &format!("{name} current"),
                "EUR",
                2,
                *balance,
            )
            .await,
        )?;
    }
    ignore_existing(
        bank.create_account(
            "FR7630006000011234567890189",
            None,
            "Shop SARL (other bank)",
            "EUR",
            2,
            0,
        )
        .await,
    )?;
    Ok(json!({
        "staff": DEMO_STAFF.iter().map(|(u, p, r)| json!({"username": u, "password": p, "role": r})).collect::<Vec<_>>(),
        "customers": DEMO_CUSTOMERS.iter().map(|(id, name, pan, account, balance)| json!({
            "customer_id": id, "name": name, "pin_account_number": pan,
            "account_number": account, "balance_minor": balance, "currency": "EUR"
        })).collect::<Vec<_>>(),
        "payee_accounts": ["FR7630006000011234567890189"],
    }))
}
