//! A WAN in front of a local server, for `scripts/lab --wan`: the test
//! harness's fault-injecting proxy (tests/it/common/netfault.rs) as a program.
//!
//! ```text
//! cargo run --example wan_proxy -- LISTEN_PORT TARGET_PORT [DELAY_MS] [JITTER_MS]
//! kill -USR1 <pid>   # black hole on / off: nothing flows, connections stay open
//! kill -USR2 <pid>   # reset every connection
//! ```

#[allow(dead_code)]
#[path = "../tests/it/common/netfault.rs"]
mod netfault;

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// Any free port (for `Proxy::start`; this program listens where it is told).
#[allow(dead_code)]
fn free_port() -> u16 {
    0
}

fn arg(args: &[String], i: usize, what: &str) -> u64 {
    match args.get(i).map(|a| a.parse::<u64>()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!(
                "wan_proxy: {what} must be a number\nusage: wan_proxy LISTEN_PORT TARGET_PORT [DELAY_MS] [JITTER_MS]"
            );
            std::process::exit(2)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, target) = (arg(&args, 0, "LISTEN_PORT"), arg(&args, 1, "TARGET_PORT"));
    let delay = if args.len() > 2 { arg(&args, 2, "DELAY_MS") } else { 100 };
    let jitter = if args.len() > 3 { arg(&args, 3, "JITTER_MS") } else { 10 };
    let (Ok(listen), Ok(target)) = (u16::try_from(listen), u16::try_from(target)) else {
        eprintln!("wan_proxy: ports are 1-65535");
        std::process::exit(2)
    };
    let proxy = netfault::Proxy::start_on(listen, target).await;
    proxy.set(netfault::Faults::wan(Duration::from_millis(delay), Duration::from_millis(jitter)));
    let (Ok(mut toggle), Ok(mut reset), Ok(mut term)) =
        (signal(SignalKind::user_defined1()), signal(SignalKind::user_defined2()), signal(SignalKind::terminate()))
    else {
        eprintln!("wan_proxy: cannot handle signals");
        std::process::exit(1)
    };
    loop {
        tokio::select! {
            _ = toggle.recv() => {
                let on = !proxy.faults().black_hole;
                proxy.black_hole(on);
                eprintln!("wan_proxy {listen} -> {target}: black hole {}", if on { "ON" } else { "off" });
            }
            _ = reset.recv() => {
                proxy.reset_all();
                eprintln!("wan_proxy {listen} -> {target}: connections reset");
            }
            _ = term.recv() => return,
        }
    }
}
