//! `replag gate`: ask a running replag (or, with `--prometheus`, Prometheus)
//! whether a gate passes, for a shell or a pipeline. Exit 0 pass, 1 fail, 2
//! cannot evaluate (unreachable, bad arguments, unknown gate). `--wait` asks
//! again until pass or the deadline.

use std::fmt::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// What to ask.
#[derive(Debug, Clone, Default)]
pub struct GateRequest {
    pub url: String,
    pub name: Option<String>,
    /// Ad-hoc gate parameters, as `/gate` takes them.
    pub params: Vec<(String, String)>,
    pub wait: Option<Duration>,
    pub every: Duration,
    pub json: bool,
    /// Evaluate from Prometheus instead of asking `url`: where, and the gate.
    pub prometheus: Option<(crate::gate_prometheus::PrometheusSource, crate::gate::GateSpec)>,
}

/// The outcome of one question.
enum Answer {
    Pass(Value),
    Fail(Value),
    /// Cannot evaluate: the message says why.
    Error(String),
}

impl GateRequest {
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        match &self.name {
            Some(name) => {
                format!("{base}/gate/{}", form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>())
            }
            None => {
                let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.params).finish();
                if query.is_empty() {
                    format!("{base}/gate")
                } else {
                    format!("{base}/gate?{query}")
                }
            }
        }
    }
}

async fn ask(client: &reqwest::Client, endpoint: &str) -> Answer {
    let response = match client.get(endpoint).send().await {
        Ok(r) => r,
        Err(e) => return Answer::Error(format!("cannot reach {endpoint}: {}", crate::sources::error_chain(&e))),
    };
    let status = response.status().as_u16();
    let body: Value = match response.bytes().await.map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Answer::Error(format!("{endpoint} answered {status} with a body that is not JSON: {e}")),
        Err(e) => return Answer::Error(format!("{endpoint} answered {status} but the body could not be read: {e}")),
    };
    match status {
        200 => Answer::Pass(body),
        503 => Answer::Fail(body),
        _ => Answer::Error(format!(
            "{endpoint} answered {status}: {}",
            body.get("error").and_then(Value::as_str).unwrap_or("(no message)")
        )),
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// The short human report: a verdict line, then the failing links.
pub fn report(verdict: &Value) -> String {
    let pass = verdict.get("pass").and_then(Value::as_bool).unwrap_or(false);
    let gate = verdict.get("gate").and_then(Value::as_str).map_or("(ad hoc)".to_string(), |g| g.to_string());
    let mut out = format!(
        "{}  gate {gate}: {} (data {:.1} s old)\n",
        if pass { "PASS" } else { "FAIL" },
        text(verdict, "summary"),
        verdict.get("data_age_seconds").and_then(Value::as_f64).unwrap_or(0.0)
    );
    let failing: Vec<&Value> = verdict
        .get("links")
        .and_then(Value::as_array)
        .map(|links| links.iter().filter(|l| l.get("pass") != Some(&Value::Bool(true))).collect())
        .unwrap_or_default();
    if !failing.is_empty() {
        let mut rows = vec![["SYSTEM", "KIND", "LINK", "LAG", "BYTES", "BREACH", "REASON"].map(String::from).to_vec()];
        for l in failing {
            let lag = l.get("lag_seconds").and_then(Value::as_f64).map_or("-".into(), |s| format!("{s:.3}s"));
            let breach = l.get("breach_seconds").and_then(Value::as_f64).map_or("-".into(), |s| format!("{s:.1}s"));
            rows.push(vec![
                text(l, "system"),
                text(l, "kind"),
                format!(
                    "{} ({}) -> {} ({})",
                    text(l, "source"),
                    text(l, "source_region"),
                    text(l, "replica"),
                    text(l, "replica_region")
                ),
                lag,
                text(l, "lag_bytes"),
                breach,
                text(l, "reason"),
            ]);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for row in rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
    }
    out
}

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
            Some((source, spec)) => match source.evaluate(&client, spec).await {
                Ok(verdict) => {
                    let value = serde_json::to_value(&verdict).unwrap_or_default();
                    if verdict.pass {
                        Answer::Pass(value)
                    } else {
                        Answer::Fail(value)
                    }
                }
                Err(message) => Answer::Error(message),
            },
            None => ask(&client, &endpoint).await,
        };
        let waiting_on = match &answer {
            Answer::Pass(_) => None,
            // A bad request will not get better by waiting.
            Answer::Error(message) if !message.starts_with("cannot reach") => None,
            _ => deadline.filter(|d| tokio::time::Instant::now() + request.every <= *d),
        };
        if waiting_on.is_some() {
            if let Answer::Fail(v) = &answer {
                eprintln!("replag gate: waiting: {}", text(v, "summary"));
            }
            tokio::time::sleep(request.every).await;
            continue;
        }
        return match answer {
            Answer::Pass(v) | Answer::Fail(v) => {
                if request.json {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print!("{}", report(&v));
                }
                if v.get("pass") == Some(&Value::Bool(true)) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Answer::Error(message) => {
                eprintln!("replag gate: {message}");
                ExitCode::from(2)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_endpoints() {
        let mut r = GateRequest { url: "http://h:8439/".into(), ..Default::default() };
        assert_eq!(r.endpoint(), "http://h:8439/gate");
        r.params = vec![("max_lag".into(), "500ms".into()), ("link".into(), "a->b".into())];
        assert_eq!(r.endpoint(), "http://h:8439/gate?max_lag=500ms&link=a-%3Eb");
        r.name = Some("deploy".into());
        assert_eq!(r.endpoint(), "http://h:8439/gate/deploy");
    }

    #[test]
    fn reports_failing_links() {
        let v: Value = serde_json::from_str(
            r#"{"gate":"deploy","pass":false,"summary":"1 of 2 links failing","data_age_seconds":0.2,
               "links":[{"pass":true,"system":"redis"},
                        {"pass":false,"system":"postgres","kind":"physical","source":"a","source_region":"us",
                         "replica":"b","replica_region":"eu","lag_seconds":5.0,"lag_bytes":100,"breach_seconds":12.0,
                         "reason":"over"}]}"#,
        )
        .unwrap();
        let out = report(&v);
        assert!(out.starts_with("FAIL  gate deploy: 1 of 2 links failing"), "{out}");
        assert!(out.contains("a (us) -> b (eu)") && out.contains("5.000s") && out.contains("12.0s"), "{out}");
        assert!(!out.contains("redis"), "passing links are not listed: {out}");
    }
}
