//! Test hooks: how the kit plays the user at the keypad and opens the tamper switch.
//!
//! A PIN pad under test offers what its vendor built for QA (pinpad-sim: its control API on
//! loopback, `pinpad-sim serve --control`). Cases that need a key press or the tamper switch
//! are SKIP without a hook. The hook never sees a key or PIN of a real customer: it types the
//! kit's own test PIN on a test unit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a hook action failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook's address is not a loopback `http://HOST:PORT` URL.
    #[error("--sim-control {0}: give the control API's loopback URL, e.g. http://127.0.0.1:7001")]
    BadUrl(String),
    /// The control API did not answer.
    #[error("the control API at {url} did not answer: {source}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The device showed no new prompt to press keys for.
    #[error("the device showed no prompt within {waited_ms} ms")]
    NoPrompt {
        /// How long the hook waited.
        waited_ms: u64,
    },
    /// The control API refused the action.
    #[error("the control API refused {action}: HTTP {status}")]
    Refused {
        /// What was asked.
        action: &'static str,
        /// HTTP status.
        status: u16,
    },
}

/// pinpad-sim's control API (device 0 unless the URL names `/devices/N`).
#[derive(Clone, Debug)]
pub struct TestHook {
    device_url: String,
    client: reqwest::Client,
    /// The last prompt keys were pressed for: the next press waits for another one.
    last_prompt: Arc<Mutex<Option<u64>>>,
}

/// How long a press waits for the device to show the next prompt.
const PROMPT_WAIT: Duration = Duration::from_secs(5);
/// How often the control API is asked meanwhile (it has no wait of its own).
const PROMPT_POLL: Duration = Duration::from_millis(20);

impl TestHook {
    /// The control API at `url` (`http://127.0.0.1:PORT` or `.../devices/N`); loopback only,
    /// as the simulator serves it.
    pub fn sim_control(url: &str) -> Result<Self, HookError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| HookError::BadUrl(url.to_owned()))?;
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if parsed.scheme() != "http" || !loopback {
            return Err(HookError::BadUrl(url.to_owned()));
        }
        let base = url.trim_end_matches('/');
        let device_url = if base.contains("/devices/") {
            base.to_owned()
        } else {
            format!("{base}/devices/0")
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|source| HookError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        Ok(TestHook {
            device_url,
            client,
            last_prompt: Arc::new(Mutex::new(None)),
        })
    }

    async fn post(
        &self,
        path: &str,
        action: &'static str,
        body: serde_json::Value,
    ) -> Result<(), HookError> {
        let url = format!("{}/{path}", self.device_url);
        let response = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|source| HookError::Unreachable { url, source })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(HookError::Refused {
                action,
                status: response.status().as_u16(),
            })
        }
    }

    /// The prompt on the screen now, if any.
    async fn prompt(&self) -> Result<Option<u64>, HookError> {
        let url = self.device_url.clone();
        let response =
            self.client
                .get(&url)
                .send()
                .await
                .map_err(|source| HookError::Unreachable {
                    url: url.clone(),
                    source,
                })?;
        if !response.status().is_success() {
            return Err(HookError::Refused {
                action: "reading the device",
                status: response.status().as_u16(),
            });
        }
        let view: serde_json::Value = response
            .json()
            .await
            .map_err(|source| HookError::Unreachable { url, source })?;
        Ok(view["prompt_id"].as_u64())
    }

    /// Presses keys (`0`-`9`, `enter`, `cancel`, `clear`) for the next prompt the device
    /// shows (not the one keys were last pressed for): a real user reads the screen first,
    /// and the device discards keys pressed before its prompt (§6.1).
    pub async fn press(&self, keys: &[String]) -> Result<(), HookError> {
        let deadline = Instant::now() + PROMPT_WAIT;
        let last = *self
            .last_prompt
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            match self.prompt().await? {
                Some(prompt) if Some(prompt) != last => {
                    let body = serde_json::json!({ "keys": keys, "prompt_id": prompt });
                    match self.post("keys", "a key press", body).await {
                        // 409: the prompt went away meanwhile; look again.
                        Err(HookError::Refused { status: 409, .. }) => {}
                        other => {
                            *self
                                .last_prompt
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(prompt);
                            return other;
                        }
                    }
                }
                _ if Instant::now() >= deadline => {
                    return Err(HookError::NoPrompt {
                        waited_ms: u64::try_from(PROMPT_WAIT.as_millis()).unwrap_or(u64::MAX),
                    });
                }
                _ => tokio::time::sleep(PROMPT_POLL).await,
            }
        }
    }

    /// Presses keys for the prompt keys were last pressed for (the rest of a PIN typed one
    /// key at a time).
    pub async fn press_again(&self, keys: &[String]) -> Result<(), HookError> {
        let last = *self
            .last_prompt
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let body = serde_json::json!({ "keys": keys, "prompt_id": last });
        self.post("keys", "a key press", body).await
    }

    /// Opens (trips) or closes the tamper switch.
    pub async fn tamper(&self, open: bool) -> Result<(), HookError> {
        self.post(
            "tamper",
            "the tamper switch",
            serde_json::json!({ "open": open }),
        )
        .await
    }
}
