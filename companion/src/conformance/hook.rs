//! Test hooks: how the kit plays the user at the keypad and opens the tamper switch.
//!
//! A PIN pad under test offers what its vendor built for QA (pinpad-sim: its control API on
//! loopback, `pinpad-sim serve --control`). Cases that need a key press or the tamper switch
//! are SKIP without a hook. The hook never sees a key or PIN of a real customer: it types the
//! kit's own test PIN on a test unit.

use std::time::Duration;

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
}

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
        Ok(TestHook { device_url, client })
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

    /// Presses keys (`0`-`9`, `enter`, `cancel`, `clear`) on the keypad.
    pub async fn press(&self, keys: &[String]) -> Result<(), HookError> {
        self.post("keys", "a key press", serde_json::json!({ "keys": keys }))
            .await
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
