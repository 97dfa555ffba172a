//! Deployment artefacts, checked as far as this machine allows (no Docker
//! engine, no Helm, no systemd here): what they say must match replag's real
//! config loader, CLI and files, and the chart must not drift from alerts/
//! and dashboards/.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::run_replag;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn chart_rules_and_dashboard_are_the_bundled_ones() {
    assert_eq!(
        read("deploy/helm/replag/files/replag.rules.yml"),
        read("alerts/replag.rules.yml"),
        "copy alerts/replag.rules.yml into the chart"
    );
    assert_eq!(
        read("deploy/helm/replag/files/replag-overview.json"),
        read("dashboards/replag-overview.json"),
        "copy dashboards/replag-overview.json into the chart"
    );
}

/// Key paths of a simple YAML document (maps only; lists and scalars are leaves).
fn yaml_key_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack.iter().map(|(_, k)| k.as_str()).chain([key]).collect::<Vec<_>>().join(".");
        paths.insert(path);
        stack.push((indent, key.to_string()));
    }
    paths
}

#[test]
fn chart_templates_use_only_values_that_exist_and_balance_their_blocks() {
    let values = yaml_key_paths(&read("deploy/helm/replag/values.yaml"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/replag/templates");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".Values.") {
            let tail = &rest[i + ".Values.".len()..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')).unwrap_or(tail.len());
            let reference = tail[..end].trim_end_matches('.');
            assert!(values.contains(reference), "{name}: .Values.{reference} is not in values.yaml");
            rest = &tail[end..];
        }
        let actions: Vec<&str> = text.split("{{").skip(1).map(|a| a.trim_start_matches('-').trim_start()).collect();
        let opens =
            actions.iter().filter(|a| ["if ", "range ", "with ", "define "].iter().any(|k| a.starts_with(k))).count();
        let ends = actions.iter().filter(|a| a.starts_with("end")).count();
        assert_eq!(opens, ends, "{name}: {opens} blocks opened, {ends} closed");
        assert_eq!(text.matches("{{").count(), text.matches("}}").count(), "{name}: unbalanced delimiters");
    }
    let deployment = read("deploy/helm/replag/templates/deployment.yaml");
    for must in
        ["/healthz", "securityContext", "readOnlyRootFilesystem", "automountServiceAccountToken: false", "secretKeyRef"]
    {
        assert!(deployment.contains(must) || read("deploy/helm/replag/values.yaml").contains(must), "chart has {must}");
    }
    let values = read("deploy/helm/replag/values.yaml");
    assert!(
        values.contains("drop: [ALL]")
            && values.contains("runAsNonRoot: true")
            && values.contains("grafana_dashboard: \"1\"")
    );
}

#[test]
fn dockerfile_runs_the_real_cli_as_non_root_on_the_default_port() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let port = replag::config::DEFAULT_LISTEN.rsplit_once(':').unwrap().1;
    assert!(dockerfile.contains(&format!("EXPOSE {port}")), "EXPOSE the default port {port}");
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("ca-certificates"));
    // Every file the build stage copies exists (scripts/image builds from them).
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--"))
        .flat_map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for required in ["Cargo.toml", "Cargo.lock", "build.rs", "src", "benches"] {
        assert!(copied.contains(&required), "the build stage copies {required}: {copied:?}");
    }
    for file in &copied {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(file).exists(), "{file} exists for COPY");
    }
    assert!(read(".dockerignore").contains("target"));
    // The health check command exists and fails (exit 1) when nothing answers.
    let (code, _, err) =
        run_replag(&["healthcheck", "--url", &format!("http://127.0.0.1:{}", common::free_port())], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(dockerfile.contains(r#"CMD ["/usr/local/bin/replag", "healthcheck"]"#));
}

fn load_with_files(config_path: &str, replace: &[(&str, &Path)], env: &[(&str, &str)]) -> replag::config::Config {
    let mut text = read(config_path);
    for (from, to) in replace {
        text = text.replace(from, to.to_str().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replag.toml");
    std::fs::write(&file, text).unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    replag::config::load_from(replag::config::Source::File(&file), &env)
        .unwrap_or_else(|e| panic!("{config_path}: {e}"))
}

#[test]
fn systemd_unit_is_hardened_and_its_config_loads() {
    let unit = read("deploy/systemd/replag.service");
    for key in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(unit.contains(key), "unit has {key:?}");
    }
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(args, ["serve", "--config", "/etc/replag/replag.toml"]);
    // The CLI takes those arguments (it fails on the missing file, not on usage).
    let (code, _, err) = run_replag(&args, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/etc/replag/replag.toml") && !err.contains("Usage"), "{err}");
    let creds = tempfile::tempdir().unwrap();
    for name in ["pg-password", "redis-password"] {
        std::fs::write(creds.path().join(name), "secret\n").unwrap();
    }
    let cfg = load_with_files("deploy/systemd/replag.toml", &[("/run/credentials/replag.service", creds.path())], &[]);
    assert_eq!(cfg.nodes.len(), 5);
    assert!(cfg.gates.contains_key("deploy"));
    for line in unit.lines().filter_map(|l| l.strip_prefix("LoadCredential=")) {
        let name = line.split(':').next().unwrap();
        assert!(
            read("deploy/systemd/replag.toml").contains(&format!("/run/credentials/replag.service/{name}")),
            "{name} is used"
        );
    }
}

#[test]
fn compose_demo_config_matches_its_services() {
    let compose = read("deploy/compose/docker-compose.yml");
    let cfg = load_with_files(
        "deploy/compose/replag.toml",
        &[],
        &[("REPLAG_PG_PASSWORD", "x"), ("REPLAG_REDIS_PASSWORD", "y")],
    );
    assert_eq!(cfg.nodes.len(), 6, "the lab's topology: 3 PostgreSQL, 2 Redis, 1 SeaweedFS");
    for node in &cfg.nodes {
        let (host, _) = &node.target.addresses()[0];
        assert!(compose.contains(&format!("\n  {host}:\n")), "{} points at compose service {host}", node.name);
    }
    for service in
        ["replag:", "prometheus:", "alertmanager:", "grafana:", "weed-volume-us-east:", "weed-volume-eu-west:"]
    {
        assert!(compose.contains(&format!("\n  {service}\n")), "compose has {service}");
    }
    assert!(read("deploy/compose/prometheus.yml").contains("replag:8439"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose");
    for line in compose.lines().filter_map(|l| l.trim().strip_prefix("- ./").or_else(|| l.trim().strip_prefix("- ../")))
    {
        let relative =
            if compose.contains(&format!("- ./{line}")) { format!("./{line}") } else { format!("../{line}") };
        let source = relative.split(':').next().unwrap();
        assert!(dir.join(source).exists(), "compose mounts {source}, which exists");
    }
}

/// `replag check --config-only` (what a pipeline step and scripts/deploy-check
/// run): a valid file is summarised without polling anything; a bad one is
/// refused with exit 2, naming the key.
#[test]
fn check_config_only_validates_without_polling() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    // Nothing listens on port 1: a poll would fail, validation does not poll.
    std::fs::write(
        &good,
        "[[regions.us-east.postgres]]\nname = \"a\"\nurl = \"postgresql://u@127.0.0.1:1/postgres\"\n\n\
         [[regions.eu-west.redis]]\nname = \"b\"\nurl = \"redis://127.0.0.1:1\"\n\n[gates.deploy]\nmax_lag = \"500ms\"\n",
    )
    .unwrap();
    let (code, out, err) = run_replag(&["check", "--config-only", "--config", good.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("config ok: 2 nodes, 1 gates"), "{out}");
    assert!(out.contains("  us-east: 1 postgres\n") && out.contains("  eu-west: 1 redis\n"), "{out}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[poll]\ninterval = \"1s\"\ntimeout = \"5s\"\n").unwrap();
    let (code, _, err) = run_replag(&["check", "--config-only", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("poll.timeout"), "{err}");
}
