//! `replag gate`: ask a running replag (or, with `--prometheus`, Prometheus)
//! whether a gate passes, for a shell or a pipeline. Exit 0 pass, 1 fail, 2
//! cannot evaluate (unreachable, bad arguments, unknown gate). `--wait` asks
//! again until pass or the deadline.

use std::process::ExitCode;
use std::time::Duration;

use super::evaluate::{CannotEvaluate, Verdict};
use super::prometheus::PrometheusSource;
use super::spec::{GateParams, GateSpec};

/// What to ask.
#[derive(Debug, Clone, Default)]
pub struct GateRequest {
    pub url: String,
    pub name: Option<String>,
    /// Ad-hoc gate parameters.
    pub params: GateParams,
    pub wait: Option<Duration>,
    pub every: Duration,
    pub json: bool,
    /// Evaluate from Prometheus instead of asking `url`: where, and the gate.
    pub prometheus: Option<(PrometheusSource, GateSpec)>,
}

impl GateRequest {
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        match &self.name {
            Some(name) => {
                format!("{base}/gate/{}", form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>())
            }
            None => {
                let query = self.params.query();
                if query.is_empty() {
                    format!("{base}/gate")
                } else {
                    format!("{base}/gate?{query}")
                }
            }
        }
    }
}

/// Ask replag's `/gate`: 200 and 503 carry a verdict, anything else says
/// why the gate cannot be evaluated.
async fn ask(client: &reqwest::Client, endpoint: &str) -> Result<Verdict, CannotEvaluate> {
    let response = client.get(endpoint).send().await.map_err(|e| {
        CannotEvaluate::Unreachable(format!("cannot reach {endpoint}: {}", crate::model::error_chain(&e)))
    })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| {
        CannotEvaluate::Refused(format!("{endpoint} answered {status} but the body could not be read: {e}"))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        CannotEvaluate::Refused(format!("{endpoint} answered {status} with a body that is not JSON: {e}"))
    })?;
    match status {
        200 | 503 => serde_json::from_value(value).map_err(|e| {
            CannotEvaluate::Refused(format!("{endpoint} answered {status} with a body that is not a verdict: {e}"))
        }),
        _ => {
            let message = value.get("error").and_then(serde_json::Value::as_str).unwrap_or("(no message)");
            Err(CannotEvaluate::Refused(format!("{endpoint} answered {status}: {message}")))
        }
    }
}

/// A cell for an optional value.
fn cell<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The short human report: a verdict line, then the failing links.
pub fn report(verdict: &Verdict) -> String {
    let mut out = format!(
        "{}  gate {}: {} (data {:.1} s old)\n",
        if verdict.pass { "PASS" } else { "FAIL" },
        verdict.gate.as_deref().unwrap_or("(ad hoc)"),
        verdict.summary,
        verdict.data_age_seconds
    );
    let failing: Vec<_> = verdict.links.iter().filter(|l| !l.pass).collect();
    if !failing.is_empty() {
        let mut rows = vec![["SYSTEM", "KIND", "LINK", "LAG", "BYTES", "BREACH", "REASON"].map(String::from).to_vec()];
        for l in failing {
            let [system, kind, source, source_region, replica, replica_region] = l.subject.labels();
            rows.push(vec![
                system.to_string(),
                kind.to_string(),
                format!("{source} ({source_region}) -> {replica} ({replica_region})"),
                cell(l.lag_seconds.map(|s| format!("{s:.3}s"))),
                cell(l.lag_bytes),
                cell(l.breach_seconds.map(|s| format!("{s:.1}s"))),
                cell(l.reason.as_deref()),
            ]);
        }
        out.push_str(&crate::model::table(&rows));
    }
    out
}

/// Exit codes: 0 pass, 1 fail, 2 cannot evaluate.
pub async fn run(request: GateRequest) -> ExitCode {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("replag gate: {e}");
            return ExitCode::from(2);
        }
    };
    let endpoint = request.endpoint();
    let deadline = request.wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        let answer = match &request.prometheus {
            Some((source, spec)) => source.evaluate(&client, spec).await,
            None => ask(&client, &endpoint).await,
        };
        let may_wait = match &answer {
            Ok(verdict) => !verdict.pass,
            // A bad request will not get better by waiting; an unreachable server may.
            Err(CannotEvaluate::Unreachable(_)) => true,
            Err(CannotEvaluate::Refused(_)) => false,
        };
        if may_wait && deadline.is_some_and(|d| tokio::time::Instant::now() + request.every <= d) {
            if let Ok(verdict) = &answer {
                eprintln!("replag gate: waiting: {}", verdict.summary);
            }
            tokio::time::sleep(request.every).await;
            continue;
        }
        return match answer {
            Ok(verdict) => {
                if request.json {
                    // Through a `Value`: keys sorted, as `jq -S` would print them.
                    let value = serde_json::to_value(&verdict).unwrap_or_default();
                    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
                } else {
                    print!("{}", report(&verdict));
                }
                if verdict.pass {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("replag gate: {e}");
                ExitCode::from(2)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::evaluate::{LinkVerdict, Subject};
    use crate::model::{LinkId, LinkKind, System};

    #[test]
    fn builds_endpoints() {
        let mut r = GateRequest { url: "http://h:8439/".into(), ..Default::default() };
        assert_eq!(r.endpoint(), "http://h:8439/gate");
        r.params = GateParams { max_lag: Some("500ms".into()), links: vec!["a->b".into()], ..Default::default() };
        assert_eq!(r.endpoint(), "http://h:8439/gate?max_lag=500ms&link=a-%3Eb");
        r.name = Some("deploy".into());
        assert_eq!(r.endpoint(), "http://h:8439/gate/deploy");
    }

    #[test]
    fn reports_failing_links() {
        let link = |system, kind, ends: (&str, &str, &str, &str)| {
            let id = LinkId::new(system, kind, (ends.0.into(), ends.1.into()), (ends.2.into(), ends.3.into()));
            LinkVerdict::failing(Subject::Link(id))
        };
        let spec = GateSpec::from_query("max_lag=1s", Duration::from_secs(10)).unwrap();
        let v = Verdict {
            gate: Some("deploy".into()),
            pass: false,
            evaluated_at: String::new(),
            evaluated_from: None,
            limits: spec,
            data_age_seconds: 0.2,
            summary: "1 of 2 links failing".into(),
            links: vec![
                LinkVerdict { pass: true, ..link(System::Redis, LinkKind::Replica, ("m", "us", "r", "eu")) },
                LinkVerdict {
                    lag_seconds: Some(5.0),
                    lag_bytes: Some(100),
                    breach_seconds: Some(12.0),
                    reason: Some("over".into()),
                    ..link(System::Postgres, LinkKind::Physical, ("a", "us", "b", "eu"))
                },
            ],
        };
        let out = report(&v);
        assert!(out.starts_with("FAIL  gate deploy: 1 of 2 links failing"), "{out}");
        assert!(out.contains("a (us) -> b (eu)") && out.contains("5.000s") && out.contains("12.0s"), "{out}");
        assert!(!out.contains("redis"), "passing links are not listed: {out}");
    }
}
