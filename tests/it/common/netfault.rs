//! What a WAN does to a TCP connection, on loopback: a proxy in front of a
//! server with per-direction latency and jitter, a bandwidth cap, a black
//! hole (connections stay open, nothing flows either way, no RST, no FIN —
//! a silent partition), and resets. Replication connections (a standby's to
//! its primary, a replica's to its master) and replag's own connections go
//! through one each, so partitions can be asymmetric.
//!
//! A black hole stops reading as well as writing: bytes stay in the kernel's
//! buffers and a sender's writes block once they fill, as when no ACK comes
//! back. When it heals, what was sent arrives, in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Faults in force on a proxy. Delays are one way, applied in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub delay: Duration,
    /// Each chunk is delayed by `delay` plus up to ± `jitter` (never reordered).
    pub jitter: Duration,
    /// Bytes per second each way; `None` for no cap.
    pub bandwidth: Option<u64>,
    /// Nothing flows; connections stay open.
    pub black_hole: bool,
}

impl Faults {
    /// A WAN link: `delay` one way, ± `jitter`.
    pub fn wan(delay: Duration, jitter: Duration) -> Faults {
        Faults { delay, jitter, ..Faults::default() }
    }
}

/// A proxy on 127.0.0.1 in front of `127.0.0.1:target`.
pub struct Proxy {
    pub port: u16,
    pub target: u16,
    faults: watch::Sender<Faults>,
    /// Bumped to reset every open connection.
    resets: watch::Sender<u64>,
    connections: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        Self::start_on(super::free_port(), target).await
    }

    /// A proxy listening on `127.0.0.1:port`.
    pub async fn start_on(port: u16, target: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("proxy binds");
        let (faults, faults_rx) = watch::channel(Faults::default());
        let (resets, resets_rx) = watch::channel(0u64);
        let connections = Arc::new(Mutex::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            let mut seed = u64::from(port).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { continue };
                *counter.lock().unwrap() += 1;
                seed = seed.wrapping_add(0x2545_F491_4F6C_DD1D);
                let (faults, resets) = (faults_rx.clone(), resets_rx.clone());
                tokio::spawn(relay(client, server, faults, resets, seed));
            }
        });
        Proxy { port, target, faults, resets, connections, task }
    }

    pub fn set(&self, faults: Faults) {
        self.faults.send_replace(faults);
    }

    pub fn faults(&self) -> Faults {
        *self.faults.borrow()
    }

    /// Cut (or heal) the link silently, keeping the other faults.
    pub fn black_hole(&self, on: bool) {
        self.faults.send_modify(|f| f.black_hole = on);
    }

    /// Reset every open connection (RST both ways); new ones are accepted.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        *self.connections.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        // Open relays end with the reset.
        self.reset_all();
    }
}

/// Relay both directions until either side closes or a reset is asked for.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    faults: watch::Receiver<Faults>,
    mut resets: watch::Receiver<u64>,
    seed: u64,
) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let generation = *resets.borrow_and_update();
    let mut up = tokio::spawn(pump(client_read, server_write, faults.clone(), seed));
    let mut down = tokio::spawn(pump(server_read, client_write, faults, seed ^ 0xA5A5));
    tokio::select! {
        _ = &mut up => {}
        _ = &mut down => {}
        _ = resets.wait_for(|g| *g != generation) => {}
    }
    // The pumps own the halves, with SO_LINGER 0: dropping them sends RST.
    up.abort();
    down.abort();
}

/// One direction: read, hold for the delay, write; pause while black-holed.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut faults: watch::Receiver<Faults>,
    seed: u64,
) -> Result<(), std::io::Error> {
    // A zero linger never blocks: closing sends RST at once (a reset, as asked).
    #[allow(deprecated)]
    let _ = (from.as_ref().set_linger(Some(Duration::ZERO)), to.as_ref().set_linger(Some(Duration::ZERO)));
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let mut held_faults = faults.clone();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let _ = held_faults.wait_for(|f| !f.black_hole).await;
            to.write_all(&chunk).await?;
            let rate = held_faults.borrow().bandwidth.filter(|r| *r > 0);
            if let Some(rate) = rate {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64)).await;
            }
        }
        to.shutdown().await
    };
    let reader = async move {
        let mut rng = seed | 1;
        let mut last_due = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let _ = faults.wait_for(|f| !f.black_hole).await;
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let f = *faults.borrow();
            // xorshift: jitter in [-jitter, +jitter].
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let spread = f.jitter.as_secs_f64() * ((rng % 2001) as f64 / 1000.0 - 1.0);
            let delay = (f.delay.as_secs_f64() + spread).max(0.0);
            let due = (Instant::now() + Duration::from_secs_f64(delay)).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return Ok(());
            }
        }
    };
    let (read, write) = tokio::join!(reader, writer);
    read.and(write)
}
