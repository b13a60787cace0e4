//! The command line keeps its bank session between commands (issue 17 item 6): a second
//! command does not log in again; `pinbridge logout` ends the session at both ends and deletes
//! it; an expired or revoked session is replaced by a fresh login; the stored file is 0600 and
//! holds no PIN.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::path::Path;

use flows_support::World;

const PAY: [&str; 10] = [
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

/// Logins the bank completed (each leaves a session row that reached a token).
async fn logins(world: &World) -> i64 {
    let store = world.bank.store();
    let row =
        sqlx::query(&store.q("SELECT COUNT(*) AS n FROM sessions WHERE token_hash IS NOT NULL"))
            .fetch_one(store.reader())
            .await
            .unwrap();
    sqlx::Row::try_get::<i64, _>(&row, "n").unwrap()
}

async fn paired(world: &World) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    world.run_cli(state.path(), &["staff", "init"]).await;
    world
        .run_cli(state.path(), &["staff", "enrol", "--customer", "alice"])
        .await;
    world
        .run_cli(state.path(), &["pair", "--name", "CLI-TEST"])
        .await;
    state
}

fn stored(state: &Path) -> std::path::PathBuf {
    state.join("session.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_command_uses_the_stored_session_without_logging_in() {
    let world = World::start().await;
    let state = paired(&world).await;
    assert_eq!(logins(&world).await, 0);

    let login = world.run_cli(state.path(), &["--json", "login"]).await;
    let login: serde_json::Value = serde_json::from_slice(&login.stdout).unwrap();
    assert_eq!(login["session"], "new", "{login}");
    assert_eq!(logins(&world).await, 1);

    let pay = world.run_cli(state.path(), &PAY).await;
    let pay: serde_json::Value = serde_json::from_slice(&pay.stdout).unwrap();
    assert_eq!(pay["payment"]["bankResult"], "approved", "{pay}");
    world.run_cli(state.path(), &PAY).await;
    let again = world.run_cli(state.path(), &["--json", "login"]).await;
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["session"], "kept from an earlier command", "{again}");
    assert_eq!(logins(&world).await, 1, "pay and login ran the login again");

    // The file: the user's alone, a token but no PIN.
    let file = stored(state.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(flows_support::PIN), "{text}");
    assert!(text.contains("\"token\""));
    assert!(text.contains("PB-TEST-1") && text.contains("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_at_both_ends_and_forgets_it() {
    let world = World::start().await;
    let state = paired(&world).await;
    world.run_cli(state.path(), &["login"]).await;
    assert!(world.device.view().state.session_active);

    let out = world.run_cli(state.path(), &["--json", "logout"]).await;
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["loggedOut"], true, "{out}");
    assert!(!stored(state.path()).exists());
    assert!(!world.device.view().state.session_active);
    let store = world.bank.store();
    let row = sqlx::query(&store.q("SELECT COUNT(*) AS n FROM sessions WHERE stage = 'active'"))
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&row, "n").unwrap(), 0);

    // The next command logs in again.
    world.run_cli(state.path(), &PAY).await;
    assert_eq!(logins(&world).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_revoked_session_is_replaced_by_a_fresh_login() {
    let world = World::start().await;
    let state = paired(&world).await;
    world.run_cli(state.path(), &["login"]).await;
    assert_eq!(logins(&world).await, 1);

    // Expired (as far as the file says): not used.
    let file = stored(state.path());
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    value["expires_at_ms"] = serde_json::json!(1);
    std::fs::write(&file, value.to_string()).unwrap();
    world.run_cli(state.path(), &PAY).await;
    assert_eq!(logins(&world).await, 2);

    // Revoked at the bank (ended from elsewhere): the bank refuses the token, the PIN pad
    // still holds the keys; the command logs in afresh.
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = companion::bank::BearerToken::new(value["token"].as_str().unwrap());
    world.client.logout(&token).await.unwrap();
    assert!(world.device.view().state.session_active);
    let pay = world.run_cli(state.path(), &PAY).await;
    let pay: serde_json::Value = serde_json::from_slice(&pay.stdout).unwrap();
    assert_eq!(pay["payment"]["bankResult"], "approved", "{pay}");
    assert_eq!(logins(&world).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_pad_holding_another_session_pays_after_a_fresh_login() {
    let mut world = World::start().await;
    let state = paired(&world).await;
    world.run_cli(state.path(), &["login"]).await;
    assert_eq!(logins(&world).await, 1);
    // Another computer logs in with the same PIN pad: its keys replace the stored session's,
    // which the bank still accepts. Only the PIN pad can tell (SessionMismatch, before any
    // prompt): the payment logs in afresh and is paid once.
    let mut sink = world.sink();
    let mut other = companion::flows::pair(&mut world.session, "OTHER-PC", &mut sink)
        .await
        .unwrap();
    world.login(&mut other).await;
    assert_eq!(logins(&world).await, 2);

    let pay = world.run_cli(state.path(), &PAY).await;
    let pay: serde_json::Value = serde_json::from_slice(&pay.stdout).unwrap();
    assert_eq!(pay["payment"]["bankResult"], "approved", "{pay}");
    assert_eq!(logins(&world).await, 3);
    let transaction = pay["payment"]["transactionId"].as_str().unwrap();
    assert_eq!(world.journal_entries(transaction).await, 1);
}
