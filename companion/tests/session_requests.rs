//! Session end to end against a scripted link-layer device over an in-memory link: channel
//! allocation, multi-packet messages, keepalive progress, BUSY handling, refusals.

mod common;

use std::time::Duration;

use common::{Plan, Step, echo, spawn_device};
use companion::session::{Progress, Session, SessionConfig, SessionError, pin_dots};
use companion::transport::backoff::ReconnectPolicy;
use companion::transport::memory::MemoryTransport;
use firmware_protocol::link::{
    Capabilities, ErrorCode, KeepaliveStatus, Mtu, PinProgress, RetransmitPolicy,
};
use firmware_protocol::message::{
    ErrorResponse, Indicator, Ping, Pong, Request, Response, StatusCode,
};

fn fast_config() -> SessionConfig {
    SessionConfig {
        init_timeout: Duration::from_millis(200),
        init_attempts: 3,
        idle_timeout: Duration::from_millis(600),
        request_timeout: Some(Duration::from_secs(10)),
        retransmit: RetransmitPolicy {
            base_timeout_ms: 80,
            per_packet_ms: 5,
            max_retransmissions: 5,
        },
        busy_retry: ReconnectPolicy {
            initial_delay: Duration::from_millis(20),
            multiplier: 2,
            max_delay: Duration::from_millis(80),
            max_attempts: 4,
        },
        cancel_grace: Duration::from_millis(500),
        cancel_repeat: Duration::from_millis(100),
    }
}

fn ping(payload: Vec<u8>) -> Request {
    Request::Ping(Ping { payload })
}

fn pong(payload: Vec<u8>) -> Response {
    Response::Pong(Pong { payload })
}

#[tokio::test]
async fn opens_a_channel_and_pings() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(session.channel(), log.lock().unwrap().channels[0]);
    assert!(session.capabilities().contains(Capabilities::KEYPAD));
    assert_eq!(session.mtu(), Mtu::USB);

    let answer = session.request(&ping(vec![1, 2, 3])).await.unwrap();
    assert_eq!(answer, pong(vec![1, 2, 3]));
    let answer = session.request(&ping(vec![4])).await.unwrap();
    assert_eq!(answer, pong(vec![4]));

    let log = log.lock().unwrap();
    assert_eq!(log.channel_allocations, 1);
    assert_eq!(log.requests.len(), 2);
    // Request ids count up from a random start.
    assert_eq!(log.requests[1].0, log.requests[0].0.wrapping_add(1));
}

#[tokio::test]
async fn multi_packet_messages_cross_both_ways_at_usb_and_ble_sizes() {
    for mtu in [Mtu::USB, Mtu::MIN, Mtu::BLE_TYPICAL] {
        let (host, device) = MemoryTransport::pair(mtu, "pad");
        let (_device, log) = spawn_device(device, echo);
        let mut session = Session::open_with_config(Box::new(host), fast_config())
            .await
            .unwrap();
        // 1024 bytes of payload: 17 packets at MTU 64, 71 at MTU 20, each way.
        let payload: Vec<u8> = (0..1024u32).map(|i| (i * 31 + 7) as u8).collect();
        let answer = session.request(&ping(payload.clone())).await.unwrap();
        assert_eq!(answer, pong(payload.clone()), "MTU {mtu}");
        assert_eq!(log.lock().unwrap().requests[0].1, ping(payload));
    }
}

#[tokio::test]
async fn keepalives_become_progress_events_with_pin_dots() {
    let pin = |entered| KeepaliveStatus::PinEntry(PinProgress::new(entered, 4).unwrap());
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, move |_request| {
        let mut steps = vec![
            Step::Keepalive(KeepaliveStatus::Processing),
            Step::Wait(Duration::from_millis(30)),
            Step::Keepalive(KeepaliveStatus::AwaitingUser),
            Step::Wait(Duration::from_millis(30)),
        ];
        for entered in 0..=4 {
            steps.push(Step::Keepalive(pin(entered)));
            // Longer than the device's keepalive repeat: the same status arrives again.
            steps.push(Step::Wait(Duration::from_millis(150)));
        }
        steps.push(Step::Respond(pong(vec![])));
        Plan::steps(steps)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let mut events = Vec::new();
    let answer = session
        .request_with_progress(&ping(vec![]), &mut |progress| events.push(progress))
        .await
        .unwrap();
    assert_eq!(answer, pong(vec![]));
    let mut expected = vec![Progress::Processing, Progress::WaitingForUser];
    expected.extend((0..=4).map(|entered| Progress::PinEntry { entered, max: 4 }));
    // Each status once, in order, although repeated keepalives carried it several times.
    assert_eq!(events, expected);
    let dots: Vec<String> = events
        .iter()
        .filter_map(|p| match p {
            Progress::PinEntry { entered, max } => Some(pin_dots(*entered, *max)),
            _ => None,
        })
        .collect();
    assert_eq!(dots, ["○○○○", "●○○○", "●●○○", "●●●○", "●●●●"]);
}

#[tokio::test]
async fn channel_busy_is_retried_with_backoff_then_succeeds() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let mut refusals = 2;
    let (_device, log) = spawn_device(device, move |request| {
        if refusals > 0 {
            refusals -= 1;
            return Plan::refuse(ErrorCode::ChannelBusy);
        }
        echo(request)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let mut events = Vec::new();
    let answer = session
        .request_with_progress(&ping(vec![9]), &mut |progress| events.push(progress))
        .await
        .unwrap();
    assert_eq!(answer, pong(vec![9]));
    assert_eq!(
        events,
        [
            Progress::DeviceBusy {
                retry: 1,
                after: Duration::from_millis(20)
            },
            Progress::DeviceBusy {
                retry: 2,
                after: Duration::from_millis(40)
            },
        ]
    );
    let log = log.lock().unwrap();
    assert_eq!(log.refused, 2);
    assert_eq!(log.requests.len(), 1);
    // A refused MSG does not consume its sequence number: no resync was needed.
    assert_eq!(log.resyncs, 0);
}

#[tokio::test]
async fn message_level_busy_is_retried_under_a_new_request_id() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let mut first = true;
    let (_device, log) = spawn_device(device, move |request| {
        if std::mem::take(&mut first) {
            return Plan::respond(Response::Error(ErrorResponse {
                status: StatusCode::Busy,
                indicator: Indicator::Off,
                detail: "enrolment in progress".into(),
            }));
        }
        echo(request)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(
        session.request(&ping(vec![1])).await.unwrap(),
        pong(vec![1])
    );
    let log = log.lock().unwrap();
    assert_eq!(log.requests.len(), 2);
    assert_ne!(log.requests[0].0, log.requests[1].0);
}

#[tokio::test]
async fn a_device_that_stays_busy_gives_a_clear_error() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, log) = spawn_device(device, |_| Plan::refuse(ErrorCode::ChannelBusy));
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(
        matches!(error, SessionError::DeviceBusy { attempts: 4 }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("busy with another program"),
        "{error}"
    );
    assert_eq!(log.lock().unwrap().refused, 4);
}

#[tokio::test]
async fn an_error_answer_is_a_typed_refusal_with_the_status_in_words() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |_| {
        Plan::respond(Response::Error(ErrorResponse {
            status: StatusCode::Tampered,
            indicator: Indicator::Danger,
            detail: String::new(),
        }))
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(matches!(
        error,
        SessionError::Refused {
            status: StatusCode::Tampered,
            indicator: Indicator::Danger,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "the PIN pad refused Ping: device tampered: keys wiped, operator reset required (0x0100)"
    );
    // The session is still usable after a refusal: the next request is answered too.
    assert_eq!(
        session.request(&ping(vec![])).await.unwrap_err().status(),
        Some(StatusCode::Tampered)
    );
}

#[tokio::test]
async fn a_link_error_is_a_typed_refusal() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |_| {
        Plan::steps(vec![Step::LinkError(ErrorCode::InvalidCommand)])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(matches!(
        error,
        SessionError::LinkRefused {
            request: "Ping",
            code: ErrorCode::InvalidCommand
        }
    ));
    assert!(error.to_string().contains("does not understand"), "{error}");
}

#[tokio::test]
async fn a_restarted_device_gets_a_new_channel_and_the_request_is_sent_again() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let mut forgot = true;
    let (_device, log) = spawn_device(device, move |request| {
        if std::mem::take(&mut forgot) {
            return Plan::refuse(ErrorCode::InvalidChannel);
        }
        echo(request)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let first_channel = session.channel();
    assert_eq!(
        session.request(&ping(vec![5])).await.unwrap(),
        pong(vec![5])
    );
    assert_ne!(session.channel(), first_channel);
    assert_eq!(log.lock().unwrap().channel_allocations, 2);
}

#[tokio::test]
async fn requests_too_large_for_the_link_are_refused_before_sending() {
    let (host, device) = MemoryTransport::pair(Mtu::MIN, "pad");
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    // A vendor request of 2000 bytes exceeds the 1928 bytes a 20-byte link carries.
    let vendor = Request::Vendor(firmware_protocol::message::Vendor {
        message_type: 0x7000,
        body: vec![0; 2000],
    });
    let error = session.request(&vendor).await.unwrap_err();
    assert!(
        matches!(error, SessionError::TooLarge { max: 1928, .. }),
        "{error:?}"
    );
    assert!(log.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn two_sessions_share_nothing_but_the_request_counter_start_is_random() {
    let mut starts = Vec::new();
    for _ in 0..2 {
        let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
        let (_device, log) = spawn_device(device, echo);
        let mut session = Session::open_with_config(Box::new(host), fast_config())
            .await
            .unwrap();
        session.request(&ping(vec![])).await.unwrap();
        starts.push(log.lock().unwrap().requests[0].0);
    }
    // Two random u32s collide with probability 2^-32.
    assert_ne!(starts[0], starts[1]);
}
