//! The TCP adapter: serves simulated devices' link packets over TCP, one listening port per
//! device, several hosts per device.
//!
//! Framing: the TCP stream carries packets back to back, each exactly the link MTU (64)
//! bytes, with nothing between them: a reader reads 64 bytes, that is one packet. There is
//! no length prefix because every packet has the same length (PROTOCOL.md §2.1).
//!
//! Every packet on the broadcast channel (INIT answers) goes to every connected host, as on a
//! shared USB HID interface; packets on a channel go to the connection that opened it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::nonconforming::Nonconformity;
use crate::sim::{ConnectionCommand, SimHandle};

/// How often the core is polled (keys, tamper, clock) and link timers run. Key presses
/// also poll it at once (the keypad interrupt, [`SimHandle::keys_pressed`]).
pub const TICK: Duration = Duration::from_millis(10);

/// One device being served.
#[derive(Debug)]
pub struct ServedDevice {
    /// Control of the device.
    pub handle: SimHandle,
    /// Where hosts connect.
    pub address: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ServedDevice {
    /// Serves `handle` on `listener`: accepts hosts and ticks the core. Needs a Tokio runtime.
    pub fn spawn(handle: SimHandle, listener: TcpListener) -> std::io::Result<Self> {
        Self::spawn_nonconforming(handle, listener, None)
    }

    /// [`ServedDevice::spawn`], breaking the protocol as `nonconformity` says (QA of
    /// conformance tools, [`crate::nonconforming`]).
    pub fn spawn_nonconforming(
        handle: SimHandle,
        listener: TcpListener,
        nonconformity: Option<Nonconformity>,
    ) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let ticker = spawn_ticker(handle.clone());
        let acceptor = {
            let handle = handle.clone();
            tokio::spawn(async move {
                while let Ok((stream, peer)) = listener.accept().await {
                    tracing::info!(%peer, "host connected");
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(handle.clone(), stream, nonconformity));
                }
            })
        };
        Ok(Self {
            handle,
            address,
            tasks: vec![ticker, acceptor],
        })
    }

    /// Stops accepting hosts and ticking (open connections end with their peers).
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for ServedDevice {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ticks the core every [`TICK`] and at once on a key press, at the device's link time
/// ([`SimHandle::link_now_ms`]). Every adapter of a device shares one ticker. Needs a Tokio runtime.
pub fn spawn_ticker(handle: SimHandle) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = handle.keys_pressed() => {}
            }
            handle.tick(handle.link_now_ms());
        }
    })
}

async fn serve_connection(
    handle: SimHandle,
    stream: TcpStream,
    nonconformity: Option<Nonconformity>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (sender, mut commands) = mpsc::unbounded_channel();
    let (connection, mtu) = {
        let mut core = handle.lock();
        (core.connect(sender), core.link.mtu().get())
    };
    let mut writer_task = tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            match command {
                ConnectionCommand::Packet { packet, delay_ms } => {
                    let packet = match nonconformity {
                        Some(scenario) => match scenario.outbound(packet) {
                            Some(packet) => packet,
                            None => continue,
                        },
                        None => packet,
                    };
                    if delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    if writer.write_all(&packet).await.is_err() {
                        break;
                    }
                }
                ConnectionCommand::Close => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut packet = vec![0u8; mtu];
    loop {
        tokio::select! {
            read = reader.read_exact(&mut packet) => {
                if read.is_err() {
                    break;
                }
                if nonconformity.is_some_and(|scenario| !scenario.inbound(&packet)) {
                    continue;
                }
                handle.receive(connection, packet.clone(), handle.link_now_ms());
            }
            _ = &mut writer_task => break,
        }
    }
    writer_task.abort();
    handle.lock().disconnect(connection);
    tracing::info!(connection, "host disconnected");
}
