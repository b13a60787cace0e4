//! Session end to end when things go wrong: damaged and lost packets, a silent device, a
//! device unplugged mid-request, cancel and the per-request time limit; and the same session
//! over a real loopback TCP link (the simulator transport).

mod common;

use std::time::{Duration, Instant};

use common::{Faulty, Plan, Step, echo, spawn_device};
use companion::session::{Progress, Session, SessionConfig, SessionError};
use companion::transport::backoff::ReconnectPolicy;
use companion::transport::memory::MemoryTransport;
use companion::transport::sim::SimTransport;
use firmware_protocol::link::{KeepaliveStatus, Mtu, PinProgress, RetransmitPolicy};
use firmware_protocol::message::{Ping, Pong, Request, Response};

const MSG: u8 = 0x83;
const NACK: u8 = 0x85;
const INIT: u8 = 0x86;

fn fast_config() -> SessionConfig {
    SessionConfig {
        init_timeout: Duration::from_millis(150),
        init_attempts: 2,
        idle_timeout: Duration::from_millis(400),
        request_timeout: Some(Duration::from_secs(10)),
        retransmit: RetransmitPolicy {
            base_timeout_ms: 80,
            per_packet_ms: 5,
            max_retransmissions: 5,
        },
        busy_retry: ReconnectPolicy::default(),
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

fn pin(entered: u8) -> KeepaliveStatus {
    match PinProgress::new(entered, 4) {
        Ok(progress) => KeepaliveStatus::PinEntry(progress),
        Err(error) => unreachable!("{error}"),
    }
}

#[tokio::test]
async fn a_damaged_answer_is_nacked_and_retransmitted_by_the_device() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (device, device_faults) = Faulty::new(device);
    // Device packets: 0 INIT answer, 1 ACK of the request, 2 the answer MSG: damage it.
    device_faults.lock().unwrap().corrupt = vec![2];
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(
        session.request(&ping(vec![1, 2, 3])).await.unwrap(),
        pong(vec![1, 2, 3])
    );
    assert_eq!(log.lock().unwrap().nacks_received, 1);
    // The answer went out twice: damaged, then again after the NACK.
    let answers = device_faults.lock().unwrap().init_packets(MSG);
    assert_eq!(answers.len(), 2);
    assert_ne!(answers[0], answers[1]);
}

#[tokio::test]
async fn a_damaged_request_is_nacked_by_the_device_and_retransmitted() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (host, host_faults) = Faulty::new(host);
    // Host packets: 0 INIT, 1 the request MSG: damage it.
    host_faults.lock().unwrap().corrupt = vec![1];
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(
        session.request(&ping(vec![7])).await.unwrap(),
        pong(vec![7])
    );
    let log = log.lock().unwrap();
    assert_eq!(log.nacks_sent, 1);
    assert_eq!(log.requests.len(), 1, "delivered exactly once");
    let requests = host_faults.lock().unwrap().init_packets(MSG);
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn a_lost_packet_is_recovered_by_the_retransmission_timer() {
    // BLE-sized packets; the last packet of the request is lost, so no gap reveals the loss
    // and nobody NACKs: only the retransmission timer recovers it.
    let (host, device) = MemoryTransport::pair(Mtu::MIN, "pad");
    let (host, host_faults) = Faulty::new(host);
    // MSG payload: sequence byte + 7-byte header + 2-byte length + 100 bytes.
    let request_packets = Mtu::MIN.packet_count(1 + 7 + 2 + 100);
    assert_eq!(request_packets, 8);
    // Host packets: 0 INIT, then the request's 8 packets.
    host_faults.lock().unwrap().drop = vec![request_packets];
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let started = Instant::now();
    let payload = vec![0x42; 100];
    assert_eq!(
        session.request(&ping(payload.clone())).await.unwrap(),
        pong(payload)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "waited for the timer"
    );
    assert_eq!(host_faults.lock().unwrap().init_packets(MSG).len(), 2);
    assert_eq!(log.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn a_lost_ack_makes_a_duplicate_the_device_acknowledges_but_does_not_redo() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (device, device_faults) = Faulty::new(device);
    // Device packets: 0 INIT answer, 1 ACK of the request: lose it. The answer itself (2)
    // is slow enough that the host retransmits first.
    device_faults.lock().unwrap().drop = vec![1];
    let (_device, log) = spawn_device(device, |_| {
        Plan::steps(vec![
            Step::Wait(Duration::from_millis(200)),
            Step::Respond(pong(vec![])),
        ])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(session.request(&ping(vec![])).await.unwrap(), pong(vec![]));
    let log = log.lock().unwrap();
    assert_eq!(log.requests.len(), 1);
    assert!(log.duplicates >= 1);
}

#[tokio::test]
async fn a_device_that_goes_silent_times_out_and_the_channel_is_resynchronised() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |_| {
        Plan::steps(vec![
            Step::Keepalive(KeepaliveStatus::Processing),
            Step::Wait(Duration::from_millis(50)),
            Step::GoSilent,
        ])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let started = Instant::now();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DeviceSilent {
                request: "Ping",
                idle_ms: 400
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("stopped responding"), "{error}");
    // Idle limit, then the failed resync attempts: bounded, not a hang.
    assert!(started.elapsed() < Duration::from_secs(3));
    // The silent device does not answer the resync either, so the next request tries again.
    assert!(matches!(
        session.request(&ping(vec![])).await,
        Err(SessionError::NoAnswer { attempts: 2, .. })
    ));
}

#[tokio::test]
async fn a_device_that_never_answers_init_is_unreachable() {
    let (host, _device) = MemoryTransport::pair(Mtu::USB, "pad");
    let error = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::NoAnswer {
                attempts: 2,
                timeout_ms: 150
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_device_that_never_acknowledges_fails_delivery_after_six_transmissions() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (host, host_faults) = Faulty::new(host);
    // Every request packet is lost after the INIT.
    host_faults.lock().unwrap().drop = (1..100).collect();
    let (_device, _log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DeliveryFailed {
                request: "Ping",
                transmissions: 6
            }
        ),
        "{error:?}"
    );
    assert_eq!(host_faults.lock().unwrap().init_packets(MSG).len(), 6);
}

#[tokio::test]
async fn unplugging_mid_request_is_a_clear_error() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |_| {
        Plan::steps(vec![
            Step::Keepalive(pin(2)),
            Step::Wait(Duration::from_millis(30)),
            Step::Disconnect,
        ])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let mut events = Vec::new();
    let error = session
        .request_with_progress(&ping(vec![]), &mut |p| events.push(p))
        .await
        .unwrap_err();
    assert!(error.is_disconnect(), "{error:?}");
    assert!(
        matches!(
            error,
            SessionError::Disconnected {
                request: "Ping",
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("disconnected during Ping"), "{text}");
    assert!(text.contains("may or may not have acted"), "{text}");
    assert_eq!(events, [Progress::PinEntry { entered: 2, max: 4 }]);
}

/// Issue 17 item 4: after the link dropped mid-request, every later request failed ("message
/// N is still waiting for its ACK" in the app) until the user disconnected and connected by
/// hand. Now the next request reconnects the transport and allocates a channel by itself.
#[tokio::test]
async fn after_a_disconnect_the_next_request_reconnects_by_itself() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Each host connection is a device; the first one drops the link mid-request (as the
    // simulator's QA disconnect fault does), the next ones answer.
    let server = tokio::spawn(async move {
        let mut devices = Vec::new();
        for connection in 0.. {
            let Ok((stream, peer)) = listener.accept().await else {
                break;
            };
            let device_end = SimTransport::from_stream(stream, peer);
            devices.push(spawn_device(device_end, move |request| {
                if connection == 0 {
                    Plan::steps(vec![Step::Keepalive(pin(1)), Step::Disconnect])
                } else {
                    echo(request)
                }
            }));
        }
    });
    let mut session = Session::open_with_config(
        Box::new(SimTransport::connect(addr).await.unwrap()),
        fast_config(),
    )
    .await
    .unwrap();
    let error = session.request(&ping(vec![1])).await.unwrap_err();
    assert!(error.is_disconnect(), "{error:?}");
    assert!(session.needs_recovery());
    // No reconnect by the caller: the next request brings the link back first.
    assert_eq!(
        session.request(&ping(vec![2])).await.unwrap(),
        pong(vec![2])
    );
    assert!(!session.needs_recovery());
    assert_eq!(
        session.request(&ping(vec![3])).await.unwrap(),
        pong(vec![3])
    );
    server.abort();
}

#[tokio::test]
async fn cancel_during_pin_entry_stops_the_device_and_the_session_stays_usable() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let mut first = true;
    let (_device, log) = spawn_device(device, move |request| {
        if std::mem::take(&mut first) {
            return Plan::steps(vec![
                Step::Keepalive(pin(1)),
                Step::Wait(Duration::from_secs(30)),
                Step::Respond(pong(vec![])),
            ]);
        }
        echo(request)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let cancel = session.cancel_handle();
    let mut events = Vec::new();
    let started = Instant::now();
    let error = session
        .request_with_progress(&ping(vec![]), &mut |progress| {
            if matches!(progress, Progress::PinEntry { .. }) {
                cancel.cancel();
            }
            events.push(progress);
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, SessionError::Cancelled { request: "Ping" }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        events,
        [
            Progress::PinEntry { entered: 1, max: 4 },
            Progress::Cancelling
        ]
    );
    assert_eq!(log.lock().unwrap().cancels, 1);
    // The device confirmed (ERROR CANCELLED): no resync, and the next request just works.
    assert_eq!(
        session.request(&ping(vec![3])).await.unwrap(),
        pong(vec![3])
    );
    assert_eq!(log.lock().unwrap().resyncs, 0);
}

#[tokio::test]
async fn cancel_from_another_task() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, log) = spawn_device(device, |_| {
        Plan::steps(vec![
            Step::Keepalive(KeepaliveStatus::AwaitingUser),
            Step::Wait(Duration::from_secs(30)),
        ])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let cancel = session.cancel_handle();
    // A cancel before the request starts is not carried over to it.
    cancel.cancel();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cancel.cancel();
    });
    let error = session.request(&ping(vec![])).await.unwrap_err();
    canceller.await.unwrap();
    assert!(matches!(error, SessionError::Cancelled { .. }), "{error:?}");
    assert_eq!(log.lock().unwrap().cancels, 1);
}

#[tokio::test]
async fn the_request_time_limit_cancels_a_device_that_never_finishes() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, log) = spawn_device(device, |_| {
        Plan::steps(vec![
            Step::Keepalive(KeepaliveStatus::Processing),
            Step::Wait(Duration::from_secs(30)),
        ])
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    session.set_request_timeout(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::RequestTimeout {
                request: "Ping",
                limit_ms: 300
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(log.lock().unwrap().cancels, 1);
}

#[tokio::test]
async fn the_same_session_runs_over_loopback_tcp_with_the_sim_transport() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let device_end = SimTransport::from_stream(stream, peer);
        let (device, log) = spawn_device(device_end, |request| {
            let Request::Ping(ping) = request else {
                panic!("unexpected {}", request.name())
            };
            Plan::steps(vec![
                Step::Keepalive(KeepaliveStatus::Processing),
                Step::Wait(Duration::from_millis(20)),
                Step::Respond(pong(ping.payload.clone())),
            ])
        });
        device.await.unwrap();
        log
    });
    let host = SimTransport::connect(addr).await.unwrap();
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    assert_eq!(session.identity().id.to_string(), format!("sim:{addr}"));
    let payload: Vec<u8> = (0..=255).collect();
    let mut events = Vec::new();
    let answer = session
        .request_with_progress(&ping(payload.clone()), &mut |p| events.push(p))
        .await
        .unwrap();
    assert_eq!(answer, pong(payload));
    assert_eq!(events, [Progress::Processing]);
    session.close().await.unwrap();
    // Closing the socket ends the device.
    let log = server.await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.channel_allocations, 1);
    assert_eq!(log.requests.len(), 1);
}

#[tokio::test]
async fn resync_restarts_sequence_numbers_on_the_same_channel() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (device, device_faults) = Faulty::new(device);
    let (_device, log) = spawn_device(device, echo);
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    let channel = session.channel();
    session.request(&ping(vec![1])).await.unwrap();
    session.resync().await.unwrap();
    assert_eq!(session.channel(), channel);
    session.request(&ping(vec![2])).await.unwrap();
    assert_eq!(log.lock().unwrap().resyncs, 1);
    // Both answers carried sequence number 0: the resync reset it.
    let answers = device_faults.lock().unwrap().init_packets(MSG);
    let sequences: Vec<u8> = answers.iter().map(|p| p[7]).collect();
    assert_eq!(sequences, [0, 0]);
    assert_eq!(device_faults.lock().unwrap().init_packets(INIT).len(), 2);
    assert!(device_faults.lock().unwrap().init_packets(NACK).is_empty());
}

/// A device that answers "processing" forever (keepalives every 20 ms, never an answer) is
/// cancelled after the processing limit with a typed error, long before the overall limit.
#[tokio::test]
async fn a_device_that_says_processing_forever_is_cancelled_as_stalled() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, log) = spawn_device(device, |_| {
        let mut steps = Vec::new();
        for _ in 0..500 {
            steps.push(Step::Keepalive(KeepaliveStatus::Processing));
            steps.push(Step::Wait(Duration::from_millis(20)));
        }
        Plan::steps(steps)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    session.set_processing_limit(Duration::from_millis(400));
    let started = Instant::now();
    let error = session.request(&ping(vec![])).await.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DeviceStalled {
                request: "Ping",
                limit_ms: 400
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(log.lock().unwrap().cancels, 1);
}

/// Time the device spends waiting for the user is not "processing": a prompt that lasts
/// longer than the processing limit is answered normally.
#[tokio::test]
async fn waiting_for_the_user_is_not_a_stall() {
    let (host, device) = MemoryTransport::pair(Mtu::USB, "pad");
    let (_device, _log) = spawn_device(device, |request| {
        let Request::Ping(ping) = request else {
            panic!("unexpected {}", request.name())
        };
        let mut steps = vec![Step::Keepalive(KeepaliveStatus::Processing)];
        for _ in 0..40 {
            steps.push(Step::Keepalive(KeepaliveStatus::AwaitingUser));
            steps.push(Step::Wait(Duration::from_millis(20)));
        }
        steps.push(Step::Respond(pong(ping.payload.clone())));
        Plan::steps(steps)
    });
    let mut session = Session::open_with_config(Box::new(host), fast_config())
        .await
        .unwrap();
    session.set_processing_limit(Duration::from_millis(300));
    let answer = session.request(&ping(vec![1])).await.unwrap();
    assert!(matches!(answer, Response::Pong(_)), "{answer:?}");
}
