//! The harness both IPC test files share: the app as `run()` builds it, on Tauri's mock
//! runtime, with a seeded settings file and every channel message captured.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pinbridge_app::ShellOptions;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow};

/// Messages the app sent on channels: (channel id, the message as JSON), and a condition
/// variable woken by each one, so a test waits on the messages themselves (no polling).
#[derive(Clone, Default)]
pub struct Captured(Arc<(Mutex<Messages>, Condvar)>);

/// (channel id, message) in arrival order.
pub type Messages = Vec<(u32, Value)>;

impl Captured {
    /// The messages so far.
    pub fn lock(&self) -> MutexGuard<'_, Messages> {
        self.0.0.lock().unwrap()
    }

    fn push(&self, channel: u32, message: Value) {
        self.lock().push((channel, message));
        self.0.1.notify_all();
    }

    /// Blocks until the messages satisfy `condition`, re-checked at each new message; fails
    /// the test after `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut condition: impl FnMut(&Messages) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        let mut messages = self.lock();
        while !condition(&messages) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}"));
            messages = self.0.1.wait_timeout(messages, left).unwrap().0;
        }
    }
}

/// A first-run settings file (no bank configured) listing `sim_devices`.
pub fn seed_settings(dir: &Path, sim_devices: &[SocketAddr]) {
    let file = json!({
        "bankUrl": "",
        "bankCaPem": null,
        "language": "en",
        "theme": "system",
        "discovery": {"usb": false, "ble": false, "simDevices": sim_devices},
    });
    std::fs::write(dir.join("settings.json"), file.to_string()).unwrap();
}

/// Builds the app with `options`, runs its setup (which creates the `main` window from
/// tauri.conf.json) and captures every channel message into the returned list.
pub fn start_app(
    options: ShellOptions,
) -> (App<MockRuntime>, WebviewWindow<MockRuntime>, Captured) {
    let captured = Captured::default();
    let sink = captured.clone();
    let builder = mock_builder().channel_interceptor(move |_webview, channel, _index, body| {
        let message = match body {
            InvokeResponseBody::Json(text) => serde_json::from_str(text).unwrap(),
            InvokeResponseBody::Raw(bytes) => json!({ "raw": bytes.len() }),
        };
        sink.push(channel.0, message);
        true
    });
    let mut app = pinbridge_app::build(builder, options)
        .build(pinbridge_app::context())
        .unwrap();
    // Deprecated because looping on it busy-waits; one call is how a test runs the setup hook.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    let main = app
        .get_webview_window("main")
        .expect("main window from tauri.conf.json");
    (app, main, captured)
}

/// Invokes `cmd` as the page would; the command's answer or its serialised error.
pub fn invoke(
    webview: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(webview, request).map(|body| body.deserialize::<Value>().unwrap())
}
