//! replag's own HTTP security from a web config file: basic auth with bcrypt
//! (re-read on change), TLS with required client certificates.

use crate::common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::tls::{make_ca, make_signed};
use common::{free_port, run_replag, wait_for, Replag};

const NODE: &str = "[[regions.r.postgres]]\nname = \"n\"\nurl = \"postgresql://u@127.0.0.1:1/db\"\n";

fn write_web_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    // Make the change visible to an mtime check however coarse the clock.
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(rand_seconds())).unwrap();
}

fn rand_seconds() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64 % 1000 + 2
}

async fn status(client: &reqwest::Client, url: &str, user: Option<(&str, &str)>) -> Option<u16> {
    let mut request = client.get(url);
    if let Some((u, p)) = user {
        request = request.basic_auth(u, Some(p));
    }
    request.send().await.ok().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_protects_everything_but_healthz_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let alice = bcrypt::hash("alice-pw", 4).unwrap();
    write_web_config(&web, &format!("basic_auth_users:\n  alice: '{alice}'\n"));
    let replag = Replag::spawn(NODE, &[], &["--web.config.file", web.to_str().unwrap()]);
    let client = reqwest::Client::new();
    let url = |p: &str| replag.url(p);
    wait_for("replag to serve", Duration::from_secs(20), || async {
        status(&client, &url("/healthz"), None).await.filter(|s| *s == 200)
    })
    .await;

    for path in ["/metrics", "/gate?max_lag=1s", "/api/v1/status", "/"] {
        assert_eq!(status(&client, &url(path), None).await, Some(401), "{path} without credentials");
        assert_eq!(status(&client, &url(path), Some(("alice", "nope"))).await, Some(401), "{path} wrong password");
        assert_eq!(status(&client, &url(path), Some(("mallory", "alice-pw"))).await, Some(401), "{path} unknown user");
    }
    let response = client.get(url("/metrics")).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"replag\"");
    assert_eq!(status(&client, &url("/metrics"), Some(("alice", "alice-pw"))).await, Some(200));

    // A new user, without restart.
    let bob = bcrypt::hash("bob-pw", 4).unwrap();
    write_web_config(&web, &format!("basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n"));
    wait_for("bob to be let in", Duration::from_secs(10), || async {
        status(&client, &url("/metrics"), Some(("bob", "bob-pw"))).await.filter(|s| *s == 200)
    })
    .await;
    // A broken new file is refused; the one in force stays.
    write_web_config(&web, "basic_auth_users: [not, a, mapping]\n");
    assert_eq!(status(&client, &url("/metrics"), Some(("bob", "bob-pw"))).await, Some(200));
    assert_eq!(status(&client, &url("/metrics"), None).await, Some(401));
    assert!(replag.log().contains("new web config refused"), "{}", replag.log());
    assert!(!replag.log().contains("alice-pw") && !replag.log().contains("bob-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_required_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "server-ca");
    make_ca(d, "client-ca");
    make_signed(d, "server-ca", "server", "subjectAltName=IP:127.0.0.1");
    make_signed(d, "client-ca", "scraper", "extendedKeyUsage=clientAuth");
    let web = d.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.pem\n  key_file: {0}/server.key\n  client_ca_file: {0}/client-ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
            d.display()
        ),
    )
    .unwrap();
    let replag = Replag::spawn(NODE, &[], &["--web.config.file", web.to_str().unwrap()]);
    let https = format!("https://127.0.0.1:{}", replag.port);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("server-ca.pem")).unwrap()).unwrap();
    let identity_pem =
        [std::fs::read(d.join("scraper.pem")).unwrap(), std::fs::read(d.join("scraper.key")).unwrap()].concat();
    let with_cert = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .identity(reqwest::Identity::from_pem(&identity_pem).unwrap())
        .build()
        .unwrap();
    let without_cert =
        reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).build().unwrap();
    wait_for("replag to serve TLS", Duration::from_secs(20), || async {
        status(&with_cert, &format!("{https}/metrics"), None).await.filter(|s| *s == 200)
    })
    .await;
    assert_eq!(
        status(&without_cert, &format!("{https}/metrics"), None).await,
        None,
        "no client certificate: no connection"
    );
    assert_eq!(status(&reqwest::Client::new(), &replag.url("/metrics"), None).await, None, "plain HTTP is not served");
}

#[test]
fn a_bad_web_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: /missing.crt\n").unwrap();
    let config = common::write_config(dir.path(), free_port(), NODE);
    let (code, _, err) =
        run_replag(&["serve", "--config", config.to_str().unwrap(), "--web.config.file", web.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--web.config.file") && err.contains("key_file"), "{err}");
}
