//! Polling a Patroni cluster's REST API: `GET /cluster` and `GET /history`
//! from every endpoint at once (one round trip), the newest view kept. Any
//! endpoint answering is enough; each one's state is reported.

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::target::PatroniTarget;
use super::view::{parse_cluster, parse_history, EndpointStatus, PatroniView};
use crate::model::{scrub, FailureKind, PollFailure, Sampled, Source};
use crate::systems::http::fetch;

pub struct PatroniSource {
    target: PatroniTarget,
    timeout: Duration,
    connect_timeout: Duration,
    client: Option<reqwest::Client>,
}

/// One endpoint's answer: the view it gives, or why it gave none.
type Answer = Result<PatroniView, PollFailure>;

impl PatroniSource {
    pub fn new(target: PatroniTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self { target, timeout, connect_timeout, client: None }
    }

    fn client(&mut self) -> Result<reqwest::Client, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.connect_timeout + self.timeout)
            .pool_max_idle_per_host(2)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.target.ca_pem {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|e| PollFailure::new(FailureKind::Connect, format!("patroni_ca_file: {e}")))?;
            builder = builder.tls_built_in_root_certs(false).add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|e| PollFailure::new(FailureKind::Connect, e.to_string()))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn ask(client: &reqwest::Client, target: &PatroniTarget, endpoint: &str) -> Answer {
        let get = |path: &str| {
            let request = client.get(format!("{endpoint}{path}")).header("accept", "application/json");
            match &target.auth {
                Some((user, password)) => request.basic_auth(user, Some(password)),
                None => request,
            }
        };
        let not_patroni = |path: &str| {
            PollFailure::new(FailureKind::Protocol, format!("{path}: HTTP 404 (is this Patroni's REST API?)"))
        };
        let (cluster, history) = tokio::join!(fetch(get("/cluster"), "/cluster"), fetch(get("/history"), "/history"));
        let (members, paused) = parse_cluster(&cluster?.ok_or_else(|| not_patroni("/cluster"))?)?;
        // An empty history (never failed over) is `[]`; a 404 from an old
        // Patroni is no history, not a failure.
        let history = match history? {
            Some(body) => parse_history(&body)?,
            None => Vec::new(),
        };
        Ok(PatroniView {
            members,
            paused,
            history,
            answered_by: endpoint.to_string(),
            endpoints: Vec::new(),
            disagreement: None,
        })
    }
}

/// The newest view among the answers (the highest timeline, then a leader
/// named, then the most members), every endpoint's state, and whether they
/// disagree; or, when none answered, why not.
fn newest(endpoints: &[String], answers: Vec<Answer>, password: Option<&str>) -> Result<PatroniView, PollFailure> {
    let scrubbed = |f: &PollFailure| scrub(&f.message, password.map(str::as_bytes));
    let statuses: Vec<EndpointStatus> = endpoints
        .iter()
        .zip(&answers)
        .map(|(e, a)| EndpointStatus {
            endpoint: e.clone(),
            up: a.is_ok(),
            error: a.as_ref().err().map(|f| format!("{}: {}", f.kind.as_str(), scrubbed(f))),
        })
        .collect();
    let views: Vec<&PatroniView> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let Some(best) = views.iter().max_by_key(|v| (v.timeline(), v.leader().is_some(), v.members.len())).copied() else {
        let first = answers.iter().find_map(|a| a.as_ref().err()).map_or(FailureKind::Connect, |f| f.kind);
        let why: Vec<String> =
            statuses.iter().map(|s| format!("{}: {}", s.endpoint, s.error.as_deref().unwrap_or("?"))).collect();
        return Err(PollFailure::new(first, format!("no Patroni endpoint answered ({})", why.join("; "))));
    };
    let leader_of = |v: &PatroniView| v.leader().map_or("none".to_string(), |m| m.name.clone());
    let others: Vec<String> = views
        .iter()
        .filter(|v| (leader_of(v), v.timeline()) != (leader_of(best), best.timeline()))
        .map(|v| format!("{} says leader {} on timeline {}", v.answered_by, leader_of(v), v.timeline()))
        .collect();
    let mut view = best.clone();
    view.endpoints = statuses;
    if !others.is_empty() {
        view.disagreement = Some(format!(
            "endpoints disagree: {}; the newest view wins ({} says leader {} on timeline {})",
            others.join("; "),
            best.answered_by,
            leader_of(best),
            best.timeline()
        ));
    }
    Ok(view)
}

impl Source for PatroniSource {
    type Observation = PatroniView;

    async fn poll(&mut self) -> Result<Sampled<PatroniView>, PollFailure> {
        let client = self.client()?;
        let started = Instant::now();
        let target = &self.target;
        let mut pending: FuturesUnordered<_> = target
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let ask = Self::ask(&client, target, e);
                async move { (i, ask.await) }
            })
            .collect();
        let mut answers: Vec<Option<Answer>> = vec![None; target.endpoints.len()];
        // A silent endpoint must not hold up the others' view: once one has
        // answered, the rest get until `poll.timeout`; with none yet, until
        // just before the poller gives up on the whole poll.
        let soon = tokio::time::Instant::from_std(started + self.timeout);
        let last = tokio::time::Instant::from_std(started + (self.connect_timeout + self.timeout) * 9 / 10);
        loop {
            let answered = answers.iter().flatten().any(Result::is_ok);
            let deadline = if answered { soon.min(last) } else { last };
            tokio::select! {
                next = pending.next() => match next {
                    Some((i, answer)) => answers[i] = Some(answer),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        drop(pending);
        let waited = started.elapsed();
        let answers = answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(PollFailure::new(FailureKind::Timeout, format!("no answer within {} ms", waited.as_millis())))
                })
            })
            .collect();
        let at = started + waited / 2;
        let view = newest(&target.endpoints, answers, target.password())?;
        Ok(Sampled { at, observation: view })
    }

    fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    fn reset(&mut self) {
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::PatroniMember;
    use super::*;

    fn view(by: &str, leader: &str, timeline: u32) -> PatroniView {
        let member = |name: &str, role: &str| PatroniMember {
            name: name.into(),
            role: role.into(),
            state: "running".into(),
            host: Some("10.0.0.1".into()),
            port: Some(5432),
            timeline: Some(timeline),
            lag_bytes: None,
        };
        let other = if leader == "a" { "b" } else { "a" };
        PatroniView {
            members: vec![member(leader, "leader"), member(other, "replica")],
            paused: false,
            history: Vec::new(),
            answered_by: by.into(),
            endpoints: Vec::new(),
            disagreement: None,
        }
    }

    #[test]
    fn the_newest_view_wins_and_a_disagreement_is_said() {
        let endpoints = vec!["http://x".to_string(), "http://y".to_string(), "http://z".to_string()];
        let down = PollFailure::new(FailureKind::Timeout, "/cluster: timed out with s3cret");
        let answers = vec![Ok(view("http://x", "a", 1)), Ok(view("http://y", "b", 2)), Err(down.clone())];
        let v = newest(&endpoints, answers, Some("s3cret")).unwrap();
        assert_eq!((v.leader().unwrap().name.as_str(), v.answered_by.as_str()), ("b", "http://y"));
        let said = v.disagreement.unwrap();
        assert!(said.contains("http://x says leader a on timeline 1"), "{said}");
        assert_eq!(v.endpoints.iter().map(|e| e.up).collect::<Vec<_>>(), [true, true, false]);
        assert!(!v.endpoints[2].error.as_ref().unwrap().contains("s3cret"), "no password in a reason");

        let agreeing = vec![Ok(view("http://x", "a", 3)), Ok(view("http://y", "a", 3)), Err(down.clone())];
        assert_eq!(newest(&endpoints, agreeing, None).unwrap().disagreement, None);

        let none =
            newest(&endpoints, vec![Err(down.clone()), Err(down.clone()), Err(down)], Some("s3cret")).unwrap_err();
        assert_eq!(none.kind, FailureKind::Timeout);
        assert!(none.message.contains("http://y") && !none.message.contains("s3cret"), "{}", none.message);
    }
}
