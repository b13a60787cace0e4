//! The sandbox composition through Tauri's real IPC path (mock runtime): the embedded default
//! (the in-process sandbox bank and the mock PIN pad PB-SIM-0001, whose keypad the test drives
//! with `qa_key_press` as the on-screen keypad does), the QA commands, and the command wrappers
//! and progress channels. The core's flows themselves are plain async tests in
//! companion/tests/app_core.rs. Every wait is on the app's channel messages (no polling).

// The embedded default and the QA keypad exist in the sandbox flavour only.
#![cfg(feature = "sandbox")]
// Test harness helpers: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use pinbridge_app::ShellOptions;
use pinbridge_app::logs::LogRing;
use serde_json::{Value, json};
use tauri::test::MockRuntime;
use tauri::{App, WebviewWindow};

use support::{Captured, Messages, invoke, seed_settings, start_app};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEVICE: &str = "in-process:PB-SIM-0001";
/// The channel of the app-wide events (`events_subscribe`), subscribed at start.
const APP_EVENTS: u32 = 90;

struct Harness {
    _app: App<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    captured: Captured,
    /// Prompts the scripted keypad already pressed for.
    used_prompts: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    logs: LogRing,
    _dir: Option<tempfile::TempDir>,
}

fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    seed_settings(dir.path(), &[]);
    let mut h = start_at(dir.path());
    h._dir = Some(dir);
    h
}

/// The app over the settings and data in `dir` (a restart: the same directory again).
fn start_at(dir: &std::path::Path) -> Harness {
    let logs = shared_log();
    let options = ShellOptions {
        config_dir: Some(dir.to_owned()),
        logs: logs.clone(),
        device_poll_interval: Duration::from_millis(200),
        data_dir: Some(dir.join("data")),
        embedded_default: true,
        bank_profile: None,
    };
    let (app, main, captured) = start_app(options);
    let h = Harness {
        _app: app,
        main,
        captured,
        used_prompts: Default::default(),
        logs,
        _dir: None,
    };
    invoke(
        &h.main,
        "events_subscribe",
        json!({"onEvent": format!("__CHANNEL__:{APP_EVENTS}")}),
    )
    .unwrap();
    // The shell provisions PB-SIM-0001 (initialise + enrol C-1001) in the background and pushes
    // the device list when it is done.
    h.captured.wait_for(
        "the sandbox device, bound to C-1001",
        Duration::from_secs(120),
        |messages| {
            messages.iter().any(|(id, m)| {
                *id == APP_EVENTS
                    && m["type"] == "devices"
                    && m["devices"].as_array().is_some_and(|list| {
                        list.iter().any(|d| {
                            d["deviceId"] == DEVICE
                                && d["lifecycle"] == "bound"
                                && d["customerId"] == "C-1001"
                        })
                    })
            })
        },
    );
    h
}

/// The process-wide log ring (tracing has one global subscriber, as in the app).
fn shared_log() -> LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| {
        let ring = LogRing::new(LogRing::DEFAULT_CAPACITY);
        let _ = tracing_subscriber::registry().with(ring.layer()).try_init();
        ring
    })
    .clone()
}

impl Harness {
    fn on(&self, channel: u32) -> Vec<Value> {
        self.captured
            .lock()
            .iter()
            .filter(|(id, _)| *id == channel)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Presses `keys` on the mock keypad, from another thread (the command blocks until the
    /// device answers), as a person does: once a new prompt is on the app's copy of the
    /// device's display (a `deviceDisplay` event naming the prompt), for that prompt only
    /// (`promptId`, so no key can reach a prompt nobody saw), each digit after the last one
    /// showed on `channel`'s PIN count.
    fn keypad(&self, channel: u32, keys: &'static [&'static str]) -> std::thread::JoinHandle<()> {
        self.keypad_after(channel, keys, None)
    }

    /// [`Harness::keypad`], once `shown` is on the operation's progress channel (a person
    /// compares the code on the screen before confirming it on the device).
    fn keypad_after(
        &self,
        channel: u32,
        keys: &'static [&'static str],
        shown: Option<String>,
    ) -> std::thread::JoinHandle<()> {
        let main = self.main.clone();
        let captured = self.captured.clone();
        let used = self.used_prompts.clone();
        std::thread::spawn(move || {
            if let Some(shown) = shown {
                captured.wait_for(
                    &format!("{shown} on channel {channel}"),
                    Duration::from_secs(60),
                    |messages| {
                        messages.iter().any(|(id, m)| {
                            *id == channel
                                && m["type"] == "display"
                                && m["lines"].to_string().contains(&shown)
                        })
                    },
                );
            }
            let mut prompt = None;
            captured.wait_for(
                &format!("a new prompt on the device for channel {channel}"),
                Duration::from_secs(60),
                |messages| {
                    let used = used.lock().unwrap();
                    prompt = messages
                        .iter()
                        .rfind(|(id, m)| {
                            *id == APP_EVENTS
                                && m["type"] == "deviceDisplay"
                                && m["deviceId"] == DEVICE
                        })
                        .and_then(|(_, m)| m["promptId"].as_u64())
                        .filter(|p| !used.contains(p));
                    prompt.is_some()
                },
            );
            let prompt = prompt.unwrap();
            used.lock().unwrap().push(prompt);
            let mut digits = 0;
            for key in keys {
                invoke(
                    &main,
                    "qa_key_press",
                    json!({"deviceId": DEVICE, "key": key, "promptId": prompt}),
                )
                .unwrap();
                // Like a person watching the dots: the next key once this digit shows.
                if key.len() == 1 && key.as_bytes()[0].is_ascii_digit() {
                    digits += 1;
                    captured.wait_for(
                        "the digit count to grow",
                        Duration::from_secs(30),
                        |messages| {
                            messages.iter().any(|(id, m)| {
                                *id == channel && m["type"] == "pin" && m["entered"] == digits
                            })
                        },
                    );
                }
            }
        })
    }

    fn connect_pair_login(&self) -> Value {
        let status = invoke(&self.main, "device_connect", json!({"deviceId": DEVICE})).unwrap();
        assert_eq!(status["connected"], true);
        assert_eq!(status["serial"], "PB-SIM-0001");
        assert_eq!(status["mock"], true);
        assert_eq!(status["paired"], false);
        assert_eq!(status["customerId"], "C-1001");

        let start = invoke(&self.main, "pairing_begin", json!({"deviceId": DEVICE})).unwrap();
        let code = start["code"].as_str().unwrap();
        assert!(
            code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
            "{code}"
        );
        let keys = self.keypad_after(10, &["ok"], Some(code[..3].to_owned()));
        let paired = invoke(
            &self.main,
            "pairing_confirm",
            json!({"pairingId": start["pairingId"], "onProgress": "__CHANNEL__:10"}),
        )
        .unwrap();
        keys.join().unwrap();
        assert_eq!(paired["paired"], true);
        // The device's own display was forwarded on the channel, and it showed the code.
        let shown: Vec<String> = self
            .on(10)
            .iter()
            .filter(|m| m["type"] == "display")
            .map(|m| m["lines"].to_string())
            .collect();
        assert!(
            shown.iter().any(|l| l.contains(&code[..3])),
            "no display with the code {code}: {shown:?}"
        );

        let session = invoke(
            &self.main,
            "login",
            json!({"deviceId": DEVICE, "customerId": "C-1001", "onProgress": "__CHANNEL__:11"}),
        )
        .unwrap();
        assert_eq!(session["customerId"], "C-1001");
        assert_eq!(session["customerName"], "Li Wei");
        assert_eq!(session["accounts"], json!(["6222021000001234"]));
        let stages: Vec<Value> = self
            .on(11)
            .into_iter()
            .filter(|m| m["type"] == "stage")
            .map(|m| m["stage"].clone())
            .collect();
        assert!(stages.contains(&json!("contactingBank")), "{stages:?}");
        assert_eq!(stages.last(), Some(&json!("done")));
        session
    }

    fn prepare(&self, session: &Value, amount: &str) -> Value {
        invoke(
            &self.main,
            "payment_prepare",
            json!({"request": {
                "sessionId": session["sessionId"],
                "fromAccount": "6222021000001234",
                "payeeName": "Zhang San",
                "payeeAccount": "6222 0800 1234 8888",
                "amountMinor": amount,
                "currency": "CNY",
                "reference": "Rent March",
            }}),
        )
        .unwrap()
    }

    /// Prepares a payment and approves it with the sandbox PIN typed on the mock keypad.
    fn pay(&self, session: &Value, amount: &str, channel: u32) -> Value {
        let prepared = self.prepare(session, amount);
        let keys = self.keypad(channel, &["1", "2", "3", "4", "5", "6", "ok"]);
        let result = invoke(
            &self.main,
            "payment_approve",
            json!({"paymentId": prepared["paymentId"], "onProgress": format!("__CHANNEL__:{channel}")}),
        )
        .unwrap();
        keys.join().unwrap();
        result
    }

    fn assert_no_pin_anywhere(&self) {
        // The PIN's digits never travel as a string: not in a channel message, not in a log.
        for (_, message) in self.captured.lock().iter() {
            assert!(!message.to_string().contains("123456"), "{message}");
        }
        let log = self.logs.export().content;
        assert!(!log.contains("123456"));
        assert!(log.contains("key pressed (a digit)"), "{log}");
    }
}

/// The sandbox's mock PIN pad speaks the app's language (issue 17 item 7): switched to zh-CN
/// in Settings, its own screen is Chinese; back to English, English again.
#[test]
fn the_mock_pin_pad_follows_the_apps_language() {
    let h = start();
    let idle_line = |line: &'static str| {
        move |messages: &Messages| {
            messages.iter().any(|(id, m)| {
                *id == APP_EVENTS
                    && m["type"] == "deviceDisplay"
                    && m["deviceId"] == DEVICE
                    && m["lines"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|x| x == line))
            })
        }
    };
    let mut settings = invoke(&h.main, "settings_get", json!({})).unwrap();
    settings["language"] = json!("zh-CN");
    invoke(
        &h.main,
        "settings_set",
        json!({ "settings": settings.clone() }),
    )
    .unwrap();
    h.captured.wait_for(
        "the Chinese idle screen",
        Duration::from_secs(30),
        idle_line("就绪"),
    );
    h.captured.lock().clear();
    settings["language"] = json!("en");
    invoke(&h.main, "settings_set", json!({ "settings": settings })).unwrap();
    h.captured.wait_for(
        "the English idle screen",
        Duration::from_secs(30),
        idle_line("Ready"),
    );
}

#[test]
fn payment_input_follows_the_companion_parser() {
    let h = start();
    let session = h.connect_pair_login();
    let prepare = |account: &str, name: &str, currency: &str| {
        invoke(
            &h.main,
            "payment_prepare",
            json!({"request": {
                "sessionId": session["sessionId"],
                "fromAccount": "6222021000001234",
                "payeeName": name,
                "payeeAccount": account,
                "amountMinor": "1234",
                "currency": currency,
                "reference": "",
            }}),
        )
    };
    // A valid IBAN is accepted (the app refused every IBAN), in its electronic form.
    let prepared = prepare("DE89 3704 0044 0532 0130 00", "ACME", "CNY").unwrap();
    assert_eq!(prepared["payeeAccount"], "DE89370400440532013000");
    for (account, name, currency, says) in [
        ("DE88370400440532013000", "ACME", "CNY", "check digits"),
        ("12", "ACME", "CNY", "not an account number"),
        ("6222080011223344", "ACME", "XYZ", "ISO 4217"),
        ("6222080011223344", " ", "CNY", "payee's name"),
    ] {
        let refused = prepare(account, name, currency).unwrap_err();
        assert_eq!(refused["kind"], "invalidInput", "{refused}");
        assert!(refused.to_string().contains(says), "{says}: {refused}");
    }
}

#[test]
fn pair_login_and_pay_approved_with_the_pin_typed_on_the_mock_keypad() {
    let h = start();
    let info = invoke(&h.main, "app_info", json!({})).unwrap();
    assert_eq!(info["embedded"], true);
    let session = h.connect_pair_login();
    let prepared = h.prepare(&session, "12050");
    assert_eq!(prepared["amountMinor"], "12050");
    assert_eq!(prepared["payeeName"], "Zhang San");
    let payment_id = prepared["paymentId"].clone();

    let keys = h.keypad(20, &["1", "2", "3", "4", "5", "6", "ok"]);
    let result = invoke(
        &h.main,
        "payment_approve",
        json!({"paymentId": payment_id, "onProgress": "__CHANNEL__:20"}),
    )
    .unwrap();
    keys.join().unwrap();
    assert_eq!(result["outcome"], "approved", "{result}");
    assert_eq!(result["indicator"], "safe");
    assert_eq!(result["reason"], "none");
    assert_eq!(result["bankReference"], payment_id);
    // PIN entry was reported as a growing count of digits, never the digits.
    let counts: Vec<u64> = h
        .on(20)
        .iter()
        .filter(|m| m["type"] == "pin")
        .map(|m| m["entered"].as_u64().unwrap())
        .collect();
    assert!(counts.contains(&6), "{counts:?}");
    assert!(
        h.on(20)
            .iter()
            .any(|m| m["type"] == "indicator" && m["indicator"] == "safe")
    );
    // A payment is sent once.
    let again = invoke(
        &h.main,
        "payment_approve",
        json!({"paymentId": payment_id, "onProgress": "__CHANNEL__:21"}),
    )
    .unwrap_err();
    assert_eq!(again["kind"], "invalidInput");
    h.assert_no_pin_anywhere();
}

#[test]
fn a_wrong_pin_is_declined_by_the_bank_and_the_device_stays_safe() {
    let h = start();
    let session = h.connect_pair_login();
    let prepared = h.prepare(&session, "500");
    let keys = h.keypad(30, &["6", "5", "4", "3", "2", "1", "ok"]);
    let result = invoke(
        &h.main,
        "payment_approve",
        json!({"paymentId": prepared["paymentId"], "onProgress": "__CHANNEL__:30"}),
    )
    .unwrap();
    keys.join().unwrap();
    assert_eq!(result["outcome"], "declined", "{result}");
    assert_eq!(result["reason"], "wrongPin");
    assert_eq!(result["indicator"], "safe");
    assert_eq!(result["bankReference"], Value::Null);
}

#[test]
fn a_tampered_device_refuses_the_payment_in_danger() {
    let h = start();
    let session = h.connect_pair_login();
    let prepared = h.prepare(&session, "700");
    invoke(&h.main, "qa_trip_tamper", json!({"deviceId": DEVICE})).unwrap();
    let result = invoke(
        &h.main,
        "payment_approve",
        json!({"paymentId": prepared["paymentId"], "onProgress": "__CHANNEL__:40"}),
    )
    .unwrap();
    assert_eq!(result["outcome"], "refused", "{result}");
    assert_eq!(result["reason"], "tampered");
    assert_eq!(result["indicator"], "danger");
    let status = invoke(&h.main, "device_status", json!({"deviceId": DEVICE})).unwrap();
    assert_eq!(status["tamper"], "tampered");
    // A new login is refused too, as tampered.
    let refused = invoke(
        &h.main,
        "login",
        json!({"deviceId": DEVICE, "customerId": "C-1001", "onProgress": "__CHANNEL__:41"}),
    )
    .unwrap_err();
    assert_eq!(refused["kind"], "tampered", "{refused}");

    // An operator clears it with a bank-signed reset token; the device starts over, unkeyed.
    invoke(
        &h.main,
        "staff_sign_in",
        json!({"staffId": "op-01", "password": "operator-pass"}),
    )
    .unwrap();
    let reset = invoke(&h.main, "staff_tamper_reset", json!({"deviceId": DEVICE})).unwrap();
    assert_eq!(reset["action"], "tamperReset", "{reset}");
    let status = invoke(&h.main, "device_status", json!({"deviceId": DEVICE})).unwrap();
    assert_eq!(status["tamper"], "clear");
    assert_eq!(status["lifecycle"], "manufactured");
}

#[test]
fn staff_sign_in_maps_the_banks_roles_and_refuses_bad_passwords() {
    let h = start();
    let clerk = invoke(
        &h.main,
        "staff_sign_in",
        json!({"staffId": "clerk-01", "password": "clerk-pass"}),
    )
    .unwrap();
    assert_eq!(clerk["role"], "clerk");
    assert_eq!(clerk["displayName"], "Chen Jie");
    // A clerk may not reset a tampered device.
    invoke(&h.main, "device_connect", json!({"deviceId": DEVICE})).unwrap();
    let refused = invoke(&h.main, "staff_tamper_reset", json!({"deviceId": DEVICE})).unwrap_err();
    assert_eq!(refused["kind"], "staffNotAllowed");
    let wrong = invoke(
        &h.main,
        "staff_sign_in",
        json!({"staffId": "op-01", "password": "not-the-password"}),
    )
    .unwrap_err();
    assert_eq!(wrong["kind"], "staffAuthFailed");
    invoke(&h.main, "staff_sign_out", json!({})).unwrap();
    let none = invoke(
        &h.main,
        "staff_initialise",
        json!({"deviceId": DEVICE, "onProgress": "__CHANNEL__:50"}),
    )
    .unwrap_err();
    assert_eq!(none["kind"], "staffAuthRequired");
}

#[test]
fn login_needs_a_pairing_and_qa_keys_are_checked() {
    let h = start();
    invoke(&h.main, "device_connect", json!({"deviceId": DEVICE})).unwrap();
    let refused = invoke(
        &h.main,
        "login",
        json!({"deviceId": DEVICE, "customerId": "C-1001", "onProgress": "__CHANNEL__:60"}),
    )
    .unwrap_err();
    assert_eq!(refused["kind"], "notPaired");
    let bad = invoke(
        &h.main,
        "qa_key_press",
        json!({"deviceId": DEVICE, "key": "12"}),
    )
    .unwrap_err();
    assert_eq!(bad["kind"], "invalidInput");
    let missing = invoke(
        &h.main,
        "qa_key_press",
        json!({"deviceId": "in-process:nope", "key": "1"}),
    )
    .unwrap_err();
    assert_eq!(missing["kind"], "deviceNotFound");
}

#[test]
fn a_pushed_confirmation_is_signed_on_the_device_after_ok_on_its_keypad() {
    let h = start();
    let session = h.connect_pair_login();
    assert_eq!(session["customerId"], "C-1001");
    let pushed = invoke(&h.main, "qa_push_confirmation", json!({"deviceId": DEVICE})).unwrap();
    assert_eq!(pushed["payerAccount"], "6222021000001234");
    assert_eq!(pushed["currency"], "CNY");
    // It reaches the app over the bank's event stream, not from the QA command.
    h.captured.wait_for(
        "the confirmationPushed event",
        Duration::from_secs(10),
        |messages| {
            messages.iter().any(|(id, m)| {
                *id == APP_EVENTS
                    && m["type"] == "confirmationPushed"
                    && m["request"]["requestId"] == pushed["requestId"]
                    && m["request"]["amountMinor"] == pushed["amountMinor"]
            })
        },
    );
    let listed = invoke(&h.main, "confirmations_list", json!({})).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["requestId"], pushed["requestId"]);
    assert_eq!(listed[0]["payeeName"], "JD.com");
    let keys = h.keypad(71, &["ok"]);
    let result = invoke(
        &h.main,
        "confirmation_approve",
        json!({"requestId": pushed["requestId"], "deviceId": DEVICE, "onProgress": "__CHANNEL__:71"}),
    )
    .unwrap();
    keys.join().unwrap();
    assert_eq!(result["outcome"], "signed", "{result}");
    assert_eq!(result["indicator"], "safe");
    let listed = invoke(&h.main, "confirmations_list", json!({})).unwrap();
    assert_eq!(listed, json!([]));
}

/// Issue 17 item 4: a restart forgot the connected device and the pairing (the embedded bank,
/// the mock PIN pad and the pairing were new every run). Now the sandbox's bank, CA, mock PIN
/// pad and pairings are kept in the data directory, the app remembers the last device and
/// connects to it by itself at start: after a restart the device is connected and paired, and
/// the customer logs in (a login is not kept) and pays without pairing again.
#[test]
fn a_restart_keeps_the_device_and_the_pairing() {
    let dir = tempfile::tempdir().unwrap();
    seed_settings(dir.path(), &[]);
    {
        let h = start_at(dir.path());
        let session = h.connect_pair_login();
        let result = h.pay(&session, "1000", 20);
        assert_eq!(result["outcome"], "approved", "{result}");
    }
    let h = start_at(dir.path());
    h.captured.wait_for(
        "the last device connected again by itself, still paired",
        Duration::from_secs(60),
        |messages| {
            messages.iter().any(|(id, m)| {
                *id == APP_EVENTS
                    && m["type"] == "devices"
                    && m["devices"].as_array().is_some_and(|list| {
                        list.iter().any(|d| {
                            d["deviceId"] == DEVICE
                                && d["connected"] == true
                                && d["paired"] == true
                                && d["lifecycle"] == "bound"
                        })
                    })
            })
        },
    );
    let status = invoke(&h.main, "device_status", json!({"deviceId": DEVICE})).unwrap();
    assert_eq!(status["paired"], true, "{status}");
    assert_eq!(status["customerId"], "C-1001", "{status}");
    let session = invoke(
        &h.main,
        "login",
        json!({"deviceId": DEVICE, "customerId": "C-1001", "onProgress": "__CHANNEL__:11"}),
    )
    .unwrap();
    assert_eq!(session["customerId"], "C-1001");
    let result = h.pay(&session, "2000", 21);
    assert_eq!(result["outcome"], "approved", "{result}");
    // The sandbox's files are the user's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let sandbox = dir.path().join("data/embedded/sandbox");
        for file in [
            "bank.db",
            "bank.master-key",
            "device-ca.key",
            "devices/PB-SIM-0001.state",
        ] {
            let mode = std::fs::metadata(sandbox.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} is {mode:o}");
        }
    }
}
