//! TLS to PostgreSQL with certificates the test generates: the right CA is
//! accepted, a wrong CA refused, a host-name mismatch refused by verify-full
//! but accepted by verify-ca, plaintext refused by a server that requires TLS.

use crate::common;

use std::time::Duration;

use common::postgres::{primary, MONITOR_PASSWORD, MONITOR_USER};
use common::tls::{make_ca, make_signed};
use common::{wait_for, Replag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_server_and_refuses_what_it_should() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    make_ca(d, "good-ca");
    make_ca(d, "other-ca");
    make_signed(d, "good-ca", "server-ip", "subjectAltName=IP:127.0.0.1");
    make_signed(d, "good-ca", "server-elsewhere", "subjectAltName=DNS:db.elsewhere.example");

    let server = |cert: &'static str| async move {
        let pg = primary(&format!("tls-{cert}")).await;
        pg.install_file("server.crt", &std::fs::read(d.join(format!("{cert}.pem"))).unwrap());
        pg.install_file("server.key", &std::fs::read(d.join(format!("{cert}.key"))).unwrap());
        // The monitoring role may only connect over TLS.
        pg.write_hba(&format!(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhostssl all {MONITOR_USER} 127.0.0.1/32 scram-sha-256\n"
        ));
        pg.exec("ALTER SYSTEM SET ssl = on").await;
        pg.exec("SELECT pg_reload_conf()").await;
        pg
    };
    let by_ip = server("server-ip").await;
    let elsewhere = server("server-elsewhere").await;
    let url = |pg: &common::postgres::PgServer, mode: &str| {
        format!("postgresql://{MONITOR_USER}:{MONITOR_PASSWORD}@127.0.0.1:{}/postgres?sslmode={mode}", pg.port)
    };
    let good = d.join("good-ca.pem").display().to_string();
    let other = d.join("other-ca.pem").display().to_string();
    let config = [
        ("verified", url(&by_ip, "verify-full"), good.as_str()),
        ("wrong-ca", url(&by_ip, "verify-full"), other.as_str()),
        ("name-mismatch-full", url(&elsewhere, "verify-full"), good.as_str()),
        ("name-mismatch-ca", url(&elsewhere, "verify-ca"), good.as_str()),
    ]
    .iter()
    .map(|(name, url, ca)| {
        format!("[[regions.r.postgres]]\nname = \"{name}\"\nurl = \"{url}\"\nca_file = \"{ca}\"\n\n")
    })
    .collect::<String>()
        + &format!("[[regions.r.postgres]]\nname = \"plaintext\"\nurl = \"{}\"\n", url(&by_ip, "disable"));
    let replag = Replag::start(&format!("[poll]\ninterval = \"500ms\"\n\n{config}"), &[]).await;
    let s = wait_for("every TLS node to be judged", Duration::from_secs(20), || async {
        let s = replag.scrape().await;
        let judged = ["verified", "wrong-ca", "name-mismatch-full", "name-mismatch-ca", "plaintext"]
            .iter()
            .all(|n| s.get("replag_node_polls_total", &[("node", n)]).is_some_and(|p| p >= 2.0));
        judged.then_some(s)
    })
    .await;
    let up = |n: &str| s.get("replag_node_up", &[("node", n)]);
    assert_eq!(up("verified"), Some(1.0), "the right CA is accepted");
    assert_eq!(up("name-mismatch-ca"), Some(1.0), "verify-ca does not check the host name");
    assert_eq!(up("wrong-ca"), Some(0.0), "another CA is refused");
    assert_eq!(up("name-mismatch-full"), Some(0.0), "verify-full checks the host name");
    assert_eq!(up("plaintext"), Some(0.0), "the server refuses plaintext for this role");
    assert_eq!(s.get("replag_node_failing", &[("node", "wrong-ca"), ("reason", "connect")]), Some(1.0));
    assert_eq!(s.get("replag_node_failing", &[("node", "plaintext"), ("reason", "auth")]), Some(1.0));
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.to_lowercase().contains("certificate"), "the TLS failure is explained: {status}");
    assert!(!status.contains(MONITOR_PASSWORD) && !replag.log().contains(MONITOR_PASSWORD));
}
