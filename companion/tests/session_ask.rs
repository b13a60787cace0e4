//! Typed requests end to end: `Session::ask` over a scripted link-layer device returns the
//! response the command names, and a device that answers with another type gives the one
//! typed error naming both types (issue 15 item 3).

mod common;

use std::time::Duration;

use common::{Plan, echo, spawn_device};
use companion::session::{Session, SessionConfig, SessionError};
use companion::transport::memory::MemoryTransport;
use firmware_protocol::link::Mtu;
use firmware_protocol::message::{
    ErrorResponse, GetInfo, Indicator, Ping, Pong, Response, StatusCode, UnexpectedAnswer,
};

fn config() -> SessionConfig {
    SessionConfig {
        init_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(600),
        request_timeout: Some(Duration::from_secs(10)),
        ..SessionConfig::default()
    }
}

#[tokio::test]
async fn ask_returns_the_response_the_command_names() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), config())
        .await
        .unwrap();
    let pong: Pong = session
        .ask(Ping {
            payload: vec![7, 8],
        })
        .await
        .unwrap();
    assert_eq!(pong.payload, [7, 8]);
}

#[tokio::test]
async fn a_device_answering_with_another_type_gives_one_typed_error() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    // A faulty device: whatever it is asked, it answers Pong.
    let (_device, _log) = spawn_device(device, |_| {
        Plan::respond(Response::Pong(Pong { payload: vec![] }))
    });
    let mut session = Session::open_with_config(Box::new(host), config())
        .await
        .unwrap();
    let error = session.ask(GetInfo).await.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::UnexpectedAnswer(UnexpectedAnswer {
                request: "GetInfo",
                expected: "Info",
                got: "Pong",
                got_type: 0x8003,
            })
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the PIN pad answered GetInfo with Pong (type 0x8003), not Info"
    );
}

#[tokio::test]
async fn a_refusal_stays_a_refusal() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |_| {
        Plan::respond(Response::Error(ErrorResponse {
            status: StatusCode::Tampered,
            indicator: Indicator::Danger,
            detail: String::new(),
        }))
    });
    let mut session = Session::open_with_config(Box::new(host), config())
        .await
        .unwrap();
    let error = session.ask(GetInfo).await.unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::Tampered), "{error:?}");
}
