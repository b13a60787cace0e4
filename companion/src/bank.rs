//! HTTP client for the bank's API (the sandbox bank README, "The API the companion calls").
//!
//! HTTPS uses rustls with the bank's CA pinned from configuration: only that CA is trusted,
//! not the system's roots. Plain HTTP is accepted for loopback addresses only (the embedded
//! sandbox bank and tests). Refusals keep the bank's code and message.

use std::fmt;
use std::net::IpAddr;

use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

mod history;
pub use history::{HistoryPage, HistoryRecord};

/// Where the bank is and which CA signs its certificate.
#[derive(Clone, Debug, Default)]
pub struct BankSettings {
    /// Base URL, `https://bank.example:8443` (or `http://127.0.0.1:PORT` on loopback).
    pub url: String,
    /// PEM of the CA that issued the bank's TLS certificate (required for https).
    pub ca_pem: Option<Vec<u8>>,
}

/// A bearer token (staff or customer session): secret, zeroized, never printed.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Wraps a token the bank issued.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }

    /// The token for the `Authorization` header.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why a call to the bank failed.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The URL does not parse or has no host.
    #[error("bank URL {url:?} is not valid: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Plain HTTP to a non-loopback host: tokens and device messages would travel unprotected.
    #[error(
        "bank URL {url} uses plain http to a non-loopback host; use https with --bank-ca (plain http is allowed on 127.0.0.1 only)"
    )]
    InsecureUrl {
        /// The URL given.
        url: String,
    },
    /// https without a CA to pin.
    #[error("bank URL {url} is https but no bank CA certificate was configured (--bank-ca)")]
    MissingCa {
        /// The URL given.
        url: String,
    },
    /// The CA file is not a PEM certificate.
    #[error("the bank CA certificate is not valid PEM: {0}")]
    BadCa(String),
    /// Building the HTTP client failed.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The TLS handshake failed because the bank's certificate chain does not lead to the
    /// pinned CA (another CA, a self-signed certificate, or an interception proxy).
    #[error(
        "cannot reach the bank at {url}: the bank's certificate is not signed by the pinned CA ({reason}); check --bank-ca"
    )]
    UntrustedCertificate {
        /// The URL called.
        url: String,
        /// What the TLS layer said about the certificate.
        reason: String,
    },
    /// The bank answered with a redirect. The client follows none: a redirect could send
    /// staff credentials, tokens and device messages to another host.
    #[error(
        "the bank at {url} answered {status} redirecting to {location:?}; redirects are not followed (check the bank URL)"
    )]
    Redirected {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Where it pointed.
        location: String,
    },
    /// Network, TLS or HTTP failure before an answer arrived.
    #[error("cannot reach the bank at {url}: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What reqwest saw.
        source: reqwest::Error,
    },
    /// The bank refused the request with its error code and message.
    #[error("the bank refused ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The bank's refusal code (`device_revoked`, `bad_mac`, ...).
        code: String,
        /// The bank's words.
        message: String,
        /// The whole refusal body (e.g. `bank_command` to relay, `retry_after_ms`).
        details: Value,
    },
    /// The answer was not the JSON the API promises.
    #[error("the bank's answer to {what} is not what the API specifies: {reason}")]
    BadAnswer {
        /// The call.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// Classifies a failed request where it is born: a certificate the pinned CA did not sign
/// becomes [`BankError::UntrustedCertificate`], anything else [`BankError::Unreachable`]. The
/// rustls error sits inside `io::Error`s, whose `source()` skips the error they wrap, so an
/// `io::Error` in the chain is opened with `get_ref` instead.
fn unreachable(url: String, source: reqwest::Error) -> BankError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&source);
    while let Some(error) = next {
        if let Some(rustls::Error::InvalidCertificate(reason)) = error.downcast_ref() {
            return BankError::UntrustedCertificate {
                url,
                reason: format!("{reason:?}"),
            };
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        };
    }
    BankError::Unreachable { url, source }
}

impl BankError {
    /// The bank's refusal code, if the bank refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            BankError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl BankError {
    /// What kind of failure this is, from the bank's JSON error `code` (never its words) or
    /// the way the call failed; the app and the CLI report this kind.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        match self {
            BankError::BadUrl { .. }
            | BankError::InsecureUrl { .. }
            | BankError::MissingCa { .. }
            | BankError::BadCa(_)
            | BankError::Client(_)
            | BankError::UntrustedCertificate { .. }
            | BankError::Redirected { .. }
            | BankError::Unreachable { .. } => K::BankUnreachable,
            BankError::Refused { status, code, .. } => match code.as_str() {
                "device_revoked" => K::Revoked,
                "device_locked" | "device_locked_inactivity" | "pin_locked" => K::Locked,
                "device_not_bound" => K::NotBound,
                "device_not_trusted"
                | "integrity_report_invalid"
                | "firmware_hash_not_allowed"
                | "app_hash_not_allowed"
                | "firmware_and_app_hash_not_allowed" => K::IntegrityFailed,
                "kcv_mismatch" => K::KeyCheckFailed,
                "invalid_request" => K::InvalidInput,
                _ => match status {
                    401 => K::NotLoggedIn,
                    403 => K::StaffNotAllowed,
                    404 => K::NotFound,
                    _ => K::BankRejected,
                },
            },
            BankError::BadAnswer { .. } => K::BankRejected,
        }
    }
}

/// A staff sign-in: the token and the bank's role for it (`teller`, `operator`, ...).
#[derive(Clone, Debug)]
pub struct StaffLogin {
    /// The bearer token.
    pub token: BearerToken,
    /// The bank's role name.
    pub role: String,
}

/// One of a customer's accounts (`GET /v1/accounts`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Account {
    /// The account number.
    pub account_number: String,
    /// The holder's name.
    #[serde(default)]
    pub name: String,
}

/// A payment for the customer to confirm on the device, from a second terminal (a web shop):
/// `POST /v1/confirmations`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfirmationOrder {
    /// The customer who confirms it.
    pub customer_id: String,
    /// Their account.
    pub payer_account: String,
    /// Who is paid.
    pub payee_account: String,
    /// Their name.
    pub payee_name: String,
    /// Minor units.
    pub amount_minor: u64,
    /// ISO 4217.
    pub currency: String,
    /// The merchant's order id.
    pub reference: String,
    /// Makes a retried call create one request.
    pub idempotency_key: String,
}

/// One server-sent event from `GET /v1/events`.
#[derive(Clone, Debug, PartialEq)]
pub struct BankEvent {
    /// The event name (`confirmation`, `bank_command`).
    pub event: String,
    /// Its JSON data.
    pub data: Value,
}

/// The bank's API over HTTP(S).
#[derive(Clone, Debug)]
pub struct BankClient {
    http: reqwest::Client,
    base: String,
}

/// Whether `url` names a loopback host (plain HTTP allowed).
fn is_loopback_url(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

impl BankClient {
    /// A client for `settings`: pins the CA for https, refuses http beyond loopback.
    pub fn new(settings: &BankSettings) -> Result<Self, BankError> {
        let parsed = reqwest::Url::parse(&settings.url).map_err(|e| BankError::BadUrl {
            url: settings.url.clone(),
            reason: e.to_string(),
        })?;
        // No redirects: one could carry credentials and device messages to another host (in
        // clear, from a plain-http loopback bank); a 3xx is reported as BankError::Redirected.
        let mut builder = reqwest::Client::builder()
            .user_agent("pinbridge-companion")
            .redirect(reqwest::redirect::Policy::none());
        match parsed.scheme() {
            "https" => {
                let pem = settings
                    .ca_pem
                    .as_ref()
                    .ok_or_else(|| BankError::MissingCa {
                        url: settings.url.clone(),
                    })?;
                let cas = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| BankError::BadCa(e.to_string()))?;
                if cas.is_empty() {
                    return Err(BankError::BadCa("no CERTIFICATE block in the file".into()));
                }
                // Only the configured CA: the system's roots are not trusted for the bank.
                builder = builder
                    .use_rustls_tls()
                    .tls_built_in_root_certs(false)
                    .https_only(true);
                for ca in cas {
                    builder = builder.add_root_certificate(ca);
                }
            }
            "http" if is_loopback_url(&parsed) => {}
            "http" => {
                return Err(BankError::InsecureUrl {
                    url: settings.url.clone(),
                });
            }
            other => {
                return Err(BankError::BadUrl {
                    url: settings.url.clone(),
                    reason: format!("scheme {other} is neither https nor http"),
                });
            }
        }
        let http = builder
            .build()
            .map_err(|e| BankError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base: settings.url.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        token: Option<&BearerToken>,
    ) -> Result<Value, BankError> {
        let request = match token {
            Some(token) => request.bearer_auth(token.reveal()),
            None => request,
        };
        let url = format!("{}{}", self.base, what);
        let response = request
            .send()
            .await
            .map_err(|source| unreachable(url.clone(), source))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirected(url, &response));
        }
        let body = response
            .bytes()
            .await
            .map_err(|source| unreachable(url, source))?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| BankError::BadAnswer {
                what: what.to_owned(),
                reason: format!("HTTP {status}, not JSON: {e}"),
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(BankError::Refused {
            status: status.as_u16(),
            code: value["error"].as_str().unwrap_or("unknown").to_owned(),
            message: value["message"].as_str().unwrap_or("no message").to_owned(),
            details: value,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&BearerToken>,
        body: &Value,
    ) -> Result<Value, BankError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(path, request, token).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&BearerToken>) -> Result<Value, BankError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(path, request, token).await
    }

    /// `POST path` and read the answer as `T`.
    pub async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&BearerToken>,
        body: &Value,
    ) -> Result<T, BankError> {
        let value = self.post(path, token, body).await?;
        serde_json::from_value(value).map_err(|e| BankError::BadAnswer {
            what: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Staff login: a bearer token for the teller, operator, terminal or admin APIs.
    pub async fn staff_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<BearerToken, BankError> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let token: Token = self
            .post_as(
                "/v1/staff/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        Ok(BearerToken::new(token.token))
    }

    /// Staff sign-in with the role the bank gives the account (`POST /v1/staff/login`).
    pub async fn staff_sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<StaffLogin, BankError> {
        #[derive(Deserialize)]
        struct Answer {
            token: String,
            #[serde(default)]
            role: String,
        }
        let answer: Answer = self
            .post_as(
                "/v1/staff/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        Ok(StaffLogin {
            token: BearerToken::new(answer.token),
            role: answer.role,
        })
    }

    /// The logged-in customer's accounts (`GET /v1/accounts`).
    pub async fn accounts(&self, token: &BearerToken) -> Result<Vec<Account>, BankError> {
        #[derive(Deserialize)]
        struct Answer {
            accounts: Vec<Account>,
        }
        let value = self.get("/v1/accounts", Some(token)).await?;
        let answer: Answer = serde_json::from_value(value).map_err(|e| BankError::BadAnswer {
            what: "/v1/accounts".into(),
            reason: e.to_string(),
        })?;
        Ok(answer.accounts)
    }

    /// A terminal creates a payment the customer confirms on the device
    /// (`POST /v1/confirmations`); the bank's view of it (as its event stream sends it).
    pub async fn create_confirmation(
        &self,
        terminal: &BearerToken,
        order: &ConfirmationOrder,
    ) -> Result<Value, BankError> {
        let body = serde_json::to_value(order).map_err(|e| BankError::Client(e.to_string()))?;
        self.post("/v1/confirmations", Some(terminal), &body).await
    }

    /// Ends a customer session at the bank (`POST /v1/logout`): the token is revoked there.
    pub async fn logout(&self, token: &BearerToken) -> Result<Value, BankError> {
        self.post("/v1/logout", Some(token), &json!({})).await
    }

    /// Opens `GET /v1/events` and calls `on_event` for each event until the stream ends or
    /// `on_event` returns `false`.
    pub async fn watch_events(
        &self,
        token: &BearerToken,
        on_event: &mut (dyn FnMut(BankEvent) -> bool + Send),
    ) -> Result<(), BankError> {
        let url = format!("{}/v1/events", self.base);
        let response = self
            .http
            .get(&url)
            .header("accept", "text/event-stream")
            .bearer_auth(token.reveal())
            .send()
            .await
            .map_err(|source| unreachable(url.clone(), source))?;
        if response.status().is_redirection() {
            return Err(redirected(url, &response));
        }
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let value: Value = response.json().await.unwrap_or(Value::Null);
            return Err(BankError::Refused {
                status,
                code: value["error"].as_str().unwrap_or("unknown").to_owned(),
                message: value["message"].as_str().unwrap_or("no message").to_owned(),
                details: value,
            });
        }
        let mut parser = SseParser::default();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| unreachable(url.clone(), source))?;
            for event in parser.push(&chunk) {
                if !on_event(event) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn redirected(url: String, response: &reqwest::Response) -> BankError {
    BankError::Redirected {
        url,
        status: response.status().as_u16(),
        location: response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Incremental `text/event-stream` parser (WHATWG HTML "server-sent events"): `event:` and
/// `data:` fields, events ended by a blank line, comments (`:`) ignored.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: String,
    data: String,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them. Data that is not JSON is carried
    /// as a JSON string.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<BankEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    let data = serde_json::from_str(&self.data)
                        .unwrap_or_else(|_| Value::String(self.data.clone()));
                    let event = if self.event.is_empty() {
                        "message".to_owned()
                    } else {
                        std::mem::take(&mut self.event)
                    };
                    events.push(BankEvent { event, data });
                }
                self.event.clear();
                self.data.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = value.to_owned(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_beyond_loopback() {
        let remote = BankSettings {
            url: "http://bank.example:8443".into(),
            ca_pem: None,
        };
        assert!(matches!(
            BankClient::new(&remote),
            Err(BankError::InsecureUrl { .. })
        ));
        let local = BankSettings {
            url: "http://127.0.0.1:8443".into(),
            ca_pem: None,
        };
        assert!(BankClient::new(&local).is_ok());
    }

    #[test]
    fn https_needs_a_pinned_ca() {
        let settings = BankSettings {
            url: "https://bank.example".into(),
            ca_pem: None,
        };
        assert!(matches!(
            BankClient::new(&settings),
            Err(BankError::MissingCa { .. })
        ));
        let settings = BankSettings {
            url: "https://bank.example".into(),
            ca_pem: Some(b"not a certificate".to_vec()),
        };
        assert!(BankClient::new(&settings).is_err());
    }

    #[test]
    fn sse_events_are_split_on_blank_lines_across_chunks() {
        let mut parser = SseParser::default();
        assert!(parser.push(b": keepalive\n\nevent: confirm").is_empty());
        let events = parser.push(b"ation\ndata: {\"transaction_id\":\"T1\"}\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "confirmation");
        assert_eq!(events[0].data["transaction_id"], "T1");
    }

    /// A one-shot HTTP server on loopback that answers every request with `answer`; returns
    /// its URL and the requests it saw.
    async fn answering(
        answer: &'static str,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|e| panic!("address: {e}"))
        );
        let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = vec![0u8; 4096];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let _ = seen.send(String::from_utf8_lossy(&buffer[..n]).into_owned());
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn redirects_are_refused_not_followed() {
        // The "elsewhere" host records whether credentials ever reach it.
        let (elsewhere, mut stolen) = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"token\":\"00\"}",
        )
        .await;
        let redirect: &'static str = Box::leak(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/v1/staff/login\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let (bank_url, _) = answering(redirect).await;
        let client = BankClient::new(&BankSettings {
            url: bank_url,
            ca_pem: None,
        })
        .unwrap_or_else(|e| panic!("client: {e}"));
        let result = client.staff_login("teller", "teller-password").await;
        match result {
            Err(BankError::Redirected { location, .. }) => {
                assert!(location.starts_with(&elsewhere), "{location}")
            }
            other => panic!("a redirect was not refused: {other:?}"),
        }
        assert!(
            stolen.try_recv().is_err(),
            "the staff credentials were re-sent to the redirect target"
        );
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let token = BearerToken::new("s3cr3t-token");
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }
}
