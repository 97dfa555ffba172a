//! Process lifecycle: replag stops cleanly on SIGTERM and SIGINT.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, Replag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_replag_cleanly() {
    for signal in ["-TERM", "-INT"] {
        // A node that refuses: replag still serves, and still stops promptly.
        let config = format!(
            "[[regions.r1.postgres]]\nname = \"nowhere\"\nurl = \"postgresql://u:p@127.0.0.1:{}/db\"\n",
            free_port()
        );
        let mut replag = Replag::start(&config, &[]).await;
        assert_eq!(replag.get("/healthz").await.unwrap().0, 200);
        let started = Instant::now();
        let status = std::process::Command::new("kill").args([signal, &replag.pid().to_string()]).status().unwrap();
        assert!(status.success());
        let code = replag.wait_exit(Duration::from_secs(10)).expect("replag exits after the signal");
        assert_eq!(code, Some(0), "{signal}: clean exit");
        // An idle keep-alive connection (the test's own client) must not hold it up.
        assert!(started.elapsed() < Duration::from_secs(3), "{signal}: stopped in {:?}", started.elapsed());
        assert!(replag.log().contains("shut down"), "{}", replag.log());
    }
}
