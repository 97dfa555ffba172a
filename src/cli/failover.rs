//! `replag promote` and `replag drill-report`: ask a running replag (it
//! watched both sides), or read an events journal directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::failover::{report, Event, Journal, PromoteVerdict};

#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The replica to promote. Without it, replag names the best candidate of --group or --primary's group.
    #[arg(long)]
    node: Option<String>,
    /// A replication group (PostgreSQL: system identifier; Redis: Sentinel master name or config group).
    #[arg(long)]
    group: Option<String>,
    /// The primary being replaced: its replicas are the candidates.
    #[arg(long)]
    primary: Option<String>,
    /// postgres or redis, where names could be ambiguous.
    #[arg(long)]
    system: Option<String>,
    #[arg(long, env = "REPLAG_URL", default_value = "http://127.0.0.1:8439")]
    url: String,
    /// Print the full JSON verdict instead of the short report.
    #[arg(long)]
    json: bool,
}

/// Exit 0: promote it; 1: do not (reasons printed); 2: cannot tell.
pub async fn promote(args: PromoteArgs) -> ExitCode {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in
        [("node", &args.node), ("group", &args.group), ("primary", &args.primary), ("system", &args.system)]
    {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    let endpoint = format!("{}/promote?{}", args.url.trim_end_matches('/'), query.finish());
    let (status, body) = match get(&endpoint).await {
        Ok(answer) => answer,
        Err(why) => {
            eprintln!("replag promote: {why}");
            return ExitCode::from(2);
        }
    };
    if status != 200 && status != 503 {
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(body);
        eprintln!("replag promote: {endpoint} answered {status}: {why}");
        return ExitCode::from(2);
    }
    let verdict: PromoteVerdict = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => {
            eprintln!("replag promote: {endpoint} answered something that is not a verdict");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{body}");
    } else {
        print!("{}", verdict_text(&verdict));
    }
    if verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn verdict_text(v: &PromoteVerdict) -> String {
    let mut out = format!(
        "{}: {} ({}, {})\n",
        if v.pass { "PROMOTE" } else { "DO NOT PROMOTE" },
        v.candidate.node,
        v.candidate.region,
        v.system.as_str()
    );
    out.push_str(&format!("  {}\n", v.summary));
    for reason in v.reasons.iter().filter(|r| **r != v.summary) {
        out.push_str(&format!("  - {reason}\n"));
    }
    out
}

#[derive(clap::Args)]
pub struct DrillReportArgs {
    /// Read this events journal instead of asking a running replag.
    #[arg(long)]
    journal: Option<PathBuf>,
    #[arg(long, env = "REPLAG_URL", default_value = "http://127.0.0.1:8439")]
    url: String,
    /// The window's start: a duration back from now (24h, 90d) or Unix seconds.
    #[arg(long, default_value = "24h")]
    since: String,
    /// The window's end (default: now), the same way.
    #[arg(long)]
    until: Option<String>,
}

/// Print a markdown record of the window's failovers. Exit 2 when the
/// events cannot be read.
pub async fn drill_report(args: DrillReportArgs) -> ExitCode {
    let now = crate::model::to_unix(std::time::SystemTime::now());
    let since = crate::http::parse_since(&args.since, now);
    let until = args.until.as_deref().map_or(Some(now), |u| crate::http::parse_since(u, now));
    let (Some(since), Some(until)) = (since, until) else {
        eprintln!("replag drill-report: --since and --until take Unix seconds or a duration such as 24h");
        return ExitCode::from(2);
    };
    let events: Vec<Event> = match &args.journal {
        Some(path) => match Journal::new(Some(path.clone())).load() {
            Ok(loaded) => {
                for (line, why) in loaded.skipped {
                    eprintln!("replag drill-report: {}:{line}: skipped ({why})", path.display());
                }
                loaded.events
            }
            Err(e) => {
                eprintln!("replag drill-report: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => {
            let endpoint = format!("{}/api/v1/events", args.url.trim_end_matches('/'));
            let parsed = match get(&endpoint).await {
                Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|mut v| serde_json::from_value::<Vec<Event>>(v.get_mut("events")?.take()).ok()),
                Ok((status, _)) => {
                    eprintln!("replag drill-report: {endpoint} answered {status}");
                    return ExitCode::from(2);
                }
                Err(why) => {
                    eprintln!("replag drill-report: {why}");
                    return ExitCode::from(2);
                }
            };
            match parsed {
                Some(events) => events,
                None => {
                    eprintln!("replag drill-report: {endpoint} answered something that is not a list of events");
                    return ExitCode::from(2);
                }
            }
        }
    };
    print!("{}", report::markdown(&events, since, until));
    ExitCode::SUCCESS
}

async fn get(endpoint: &str) -> Result<(u16, String), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let response = client.get(endpoint).send().await.map_err(|e| crate::model::error_chain(&e))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| crate::model::error_chain(&e))?;
    Ok((status, body))
}
