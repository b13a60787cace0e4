//! The control API in process (axum router, no socket): keys, PIN, display, indicator,
//! tamper, clock, faults, event log; and nothing secret in any answer. Also the signals the
//! adapters wait on: the keypad interrupt and the core's activity.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request as HttpRequest, StatusCode as HttpStatus};
use device_sim::control::router;
use device_sim::hardware::KeyPress;
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::link::Mtu;
use firmware_protocol::message::{Request, Response, decode_response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::Rig;
use tower::ServiceExt;

const PIN: &str = "907531";

struct Api {
    handle: SimHandle,
    app: axum::Router,
    runtime: tokio::runtime::Runtime,
    transcript: String,
}

impl Api {
    fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> (HttpStatus, Value) {
        let request = HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(match &body {
                Some(body) => Body::from(body.to_string()),
                None => Body::empty(),
            })
            .unwrap();
        let app = self.app.clone();
        let (status, bytes) = self.runtime.block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        });
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.transcript.push_str(&text);
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn get(&mut self, path: &str) -> Value {
        let (status, value) = self.call(Method::GET, path, None);
        assert_eq!(status, HttpStatus::OK, "{path}: {value}");
        value
    }

    fn post(&mut self, path: &str, body: Value) -> Value {
        let (status, value) = self.call(Method::POST, path, Some(body));
        assert_eq!(status, HttpStatus::OK, "{path}: {value}");
        value
    }
}

/// A logged-in device behind the control API, with the rig's bank and host kept to make
/// requests.
fn api() -> (Api, Rig) {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    rig.pair();
    rig.login();
    let device = std::mem::replace(
        &mut rig.device,
        device_sim::device::Device::manufacture(
            &rig.bank.manufacture_settings("SPARE"),
            &rig.bank.ca,
            &mut rig.host_rng,
        )
        .unwrap(),
    );
    let hw = std::mem::replace(
        &mut rig.hw,
        device_sim::hardware::VirtualHardware::new([0; 32], 0),
    );
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    let api = Api {
        app: router(vec![handle.clone()]),
        handle,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        transcript: String::new(),
    };
    (api, rig)
}

#[test]
fn a_payment_driven_from_the_control_api_leaks_no_pin_or_key() {
    let (mut api, mut rig) = api();
    let payment = rig.bank.payment(2_500, "TX-API");
    let id = rig.id();
    let envelope = rig.envelope(id, &Request::ApprovePayment(payment));
    let outcome = {
        let mut core = api.handle.lock();
        let core = &mut *core;
        core.device
            .handle(&envelope.encode(id).unwrap(), &mut core.hw)
    };
    assert!(outcome.is_pending());

    let display = api.get("/devices/0/display");
    let lines = display["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l == "Pay EUR 25.00"), "{display}");
    let view = api.get("/devices/0");
    assert_eq!(view["waiting_for"], "pin");

    api.post("/devices/0/pin", json!({ "pin": PIN }));
    let outcome = {
        let mut core = api.handle.lock();
        let core = &mut *core;
        core.device.poll(&mut core.hw)
    };
    let (_, answer) = decode_response(outcome.answer().unwrap()).unwrap();
    assert!(matches!(answer, Response::PaymentApproved(_)), "{answer:?}");
    let view = api.get("/devices/0");
    assert_eq!(view["busy"], false);

    let events = api.get("/devices/0/events");
    let keys: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "key")
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    // Enrolment (twice) and pairing happened on this hardware before; the payment is last.
    assert!(
        keys.ends_with(&[
            "digit", "digit", "digit", "digit", "digit", "digit", "enter"
        ]),
        "{keys:?}"
    );
    api.get("/devices/0/indicator");
    api.get("/devices/0/faults");
    api.get("/devices");

    let session = rig.bank.session();
    let secrets = [
        PIN.to_string(),
        hex::encode(rig.bank.kbpk.as_ref().unwrap().material().reveal_bytes()),
        hex::encode(session.pin_key.material().reveal_bytes()),
        hex::encode(session.mac_key.material().reveal_bytes()),
        hex::encode(session.response_key.material().reveal_bytes()),
        hex::encode(
            *rig.pairing
                .as_ref()
                .unwrap()
                .host_pairing_key()
                .reveal_bytes(),
        ),
    ];
    for secret in &secrets {
        assert!(
            !api.transcript.contains(secret.as_str()),
            "secret in the control API"
        );
    }
    assert!(
        api.transcript.contains("\"digit\""),
        "the transcript is the real one"
    );
}

#[test]
fn tamper_clock_faults_and_errors() {
    let (mut api, _rig) = api();
    let tampered = api.post("/devices/0/tamper", json!({ "open": true }));
    assert_eq!(tampered["state"]["tampered"], true);
    assert_eq!(tampered["state"]["indicator"], "danger");
    let indicator = api.get("/devices/0/indicator");
    assert_eq!(indicator["indicator"], "danger");
    assert_eq!(indicator["history"][0]["indicator"], "danger");

    let before = api.get("/devices/0/events")["events"]
        .as_array()
        .unwrap()
        .len();
    api.post("/devices/0/clock", json!({ "advance_ms": 5000 }));
    let since = api.get(&format!("/devices/0/events?since={before}"));
    assert_eq!(since["since"], before);

    let (status, faults) = api.call(
        Method::PUT,
        "/devices/0/faults",
        Some(json!({ "drop_every": 3, "delay_ms": 20, "direction": "both", "busy_next": 2 })),
    );
    assert_eq!(status, HttpStatus::OK, "{faults}");
    assert_eq!(api.get("/devices/0/faults")["drop_every"], 3);
    let (status, _) = api.call(Method::PUT, "/devices/0/faults", Some(json!({ "drop": 1 })));
    assert!(status.is_client_error(), "unknown fault fields are refused");

    let (status, _) = api.call(Method::GET, "/devices/7", None);
    assert_eq!(status, HttpStatus::NOT_FOUND);
    let (status, _) = api.call(
        Method::POST,
        "/devices/0/keys",
        Some(json!({ "keys": ["launch"] })),
    );
    assert_eq!(status, HttpStatus::BAD_REQUEST);
    let (status, _) = api.call(
        Method::POST,
        "/devices/0/pin",
        Some(json!({ "pin": "12ab" })),
    );
    assert_eq!(status, HttpStatus::BAD_REQUEST);
    let pressed = api.post(
        "/devices/0/keys",
        json!({ "keys": ["1", "clear", "enter", "cancel"] }),
    );
    assert_eq!(pressed["pressed"], 4);

    let modified = api.post("/devices/0/firmware", json!({ "modified": true }));
    assert_eq!(modified["state"]["integrity_ok"], false);
}

#[test]
fn a_key_press_raises_the_keypad_interrupt_once_even_when_nobody_waits() {
    let (api, _rig) = api();
    let handle = api.handle.clone();
    api.runtime.block_on(async {
        let quiet = tokio::time::timeout(Duration::from_millis(20), handle.keys_pressed()).await;
        assert!(quiet.is_err(), "no key was pressed yet");
        handle.press(&[KeyPress::Digit(1), KeyPress::Enter]);
        tokio::time::timeout(Duration::from_secs(5), handle.keys_pressed())
            .await
            .expect("the press made before anyone waited is kept");
        let again = tokio::time::timeout(Duration::from_millis(20), handle.keys_pressed()).await;
        assert!(again.is_err(), "one press wakes the adapter once");
    });
}

#[test]
fn activity_changes_each_time_the_adapter_runs_the_core() {
    let (api, _rig) = api();
    let mut activity = api.handle.activity();
    assert!(!activity.has_changed().unwrap());
    api.handle.tick(1);
    assert!(activity.has_changed().unwrap());
    activity.mark_unchanged();
    // A control action alone does not run the link: no activity until the adapter ticks.
    api.handle.press(&[KeyPress::Enter]);
    assert!(!activity.has_changed().unwrap());
    api.handle.tick(2);
    assert!(activity.has_changed().unwrap());
}

impl Api {
    /// A request with the given headers and no body, as a web page's `fetch` or form makes it.
    fn raw(&mut self, method: Method, path: &str, headers: &[(&str, &str)]) -> (HttpStatus, Value) {
        let mut request = HttpRequest::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).unwrap();
        let app = self.app.clone();
        let (status, bytes) = self.runtime.block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        });
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn key_events(&mut self) -> usize {
        self.get("/devices/0/events")["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "key")
            .count()
    }
}

/// Any web page open on a QA machine can send a bodyless POST to loopback (a form, or
/// `fetch` in no-cors mode), and a DNS-rebinding page can even name its own host: the control
/// API refuses both, so no page can press a key on a mock PIN pad.
#[test]
fn cross_site_requests_press_no_key() {
    let (mut api, _rig) = api();
    let before = api.key_events();
    for headers in [
        vec![
            ("host", "127.0.0.1:7000"),
            ("origin", "https://evil.example"),
        ],
        vec![("host", "127.0.0.1:7000"), ("sec-fetch-site", "cross-site")],
        vec![("host", "127.0.0.1:7000"), ("origin", "null")],
        vec![("host", "rebound.evil.example:7000")],
    ] {
        let (status, body) = api.raw(Method::POST, "/devices/0/confirm", &headers);
        assert_eq!(status, HttpStatus::FORBIDDEN, "{headers:?}: {body}");
        assert_eq!(body["error"], "cross_site_request", "{headers:?}: {body}");
        let (status, _) = api.raw(Method::GET, "/devices/0", &headers);
        assert_eq!(status, HttpStatus::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(
        api.key_events(),
        before,
        "a cross-site request pressed a key"
    );

    // The tools the API is for (curl, reqwest, a page served from the loopback API itself)
    // still work.
    for headers in [
        vec![("host", "127.0.0.1:7000")],
        vec![
            ("host", "localhost:7000"),
            ("origin", "http://localhost:7000"),
        ],
        vec![("host", "[::1]:7000"), ("sec-fetch-site", "same-origin")],
    ] {
        let (status, body) = api.raw(Method::POST, "/devices/0/confirm", &headers);
        assert_eq!(status, HttpStatus::OK, "{headers:?}: {body}");
        assert_eq!(body["pressed"], "enter", "{body}");
    }
}
