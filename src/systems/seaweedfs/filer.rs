//! A SeaweedFS filer: is it answering, and — with heartbeats on — which of
//! replag's heartbeats does it hold.
//!
//! Heartbeats are empty files `<heartbeat_path>/<writer>/<source>` whose
//! sequence number is an extended attribute (`Seaweed-Replag-Seq`): one
//! directory listing reads every source's latest sequence, and one PUT
//! writes this filer's own. Empty files are metadata only: no volume write,
//! no garbage to vacuum, and a full volume server cannot fail the poll.
//! `weed filer.sync` copies them like any entry, attribute included, so a
//! heartbeat written on one cluster's filer shows on the other's when the
//! sync has carried it.

use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;

use crate::model::{next_sequence, FailureKind, Heartbeat, Heartbeats, PollFailure, Sampled};
use crate::systems::http::{fetch, parse};

/// The extended attribute holding a heartbeat's sequence number (the filer
/// keeps `Seaweed-*` request headers as attributes).
const SEQUENCE_ATTRIBUTE: &str = "Seaweed-Replag-Seq";

/// Sources listed per poll at most: a heartbeat directory holds one file per
/// filer that replag writes on, a handful in practice.
const MAX_SOURCES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilerObservation {
    pub version: String,
    pub heartbeats: Heartbeats,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawListing {
    #[serde(default)]
    version: String,
    #[serde(default, deserialize_with = "nullable_entries")]
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEntry {
    full_path: String,
    #[serde(default)]
    extended: Option<std::collections::HashMap<String, String>>,
}

fn nullable_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RawEntry>, D::Error> {
    Ok(Option::<Vec<RawEntry>>::deserialize(d)?.unwrap_or_default())
}

/// A directory listing's version and, per file, the heartbeat sequence it
/// carries (files without one are skipped: they are not replag's).
pub fn decode_listing(body: &[u8]) -> Result<(String, Vec<(String, u64)>), PollFailure> {
    let listing: RawListing = parse("filer listing", body)?;
    let mut seen = Vec::new();
    for entry in listing.entries {
        let Some(name) = entry.full_path.rsplit('/').next().filter(|n| !n.is_empty()) else { continue };
        let Some(encoded) = entry.extended.as_ref().and_then(|x| x.get(SEQUENCE_ATTRIBUTE)) else { continue };
        let sequence = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                PollFailure::new(FailureKind::Protocol, format!("heartbeat {name}: unreadable {SEQUENCE_ATTRIBUTE}"))
            })?;
        seen.push((name.to_string(), sequence));
    }
    Ok((listing.version, seen))
}

/// Poll a filer at `base`: write this filer's heartbeat (when on), then
/// list the heartbeat directory (or, without heartbeats, the root, to see
/// the filer answer). The write comes first so that the time replag records
/// for it — the listing's — is never earlier than the write itself: a
/// replica read in between is not charged for a write not yet made.
pub async fn poll(
    client: &reqwest::Client,
    base: &str,
    heartbeat: Option<(&Heartbeat, &str)>,
    last_written: &mut u64,
) -> Result<Sampled<FilerObservation>, PollFailure> {
    let mut written = None;
    if let Some((h, path)) = heartbeat {
        let sequence = next_sequence(*last_written);
        let file = format!("{path}/{}/{}", h.writer, h.source);
        let request = client.put(format!("{base}{file}")).header(SEQUENCE_ATTRIBUTE, sequence.to_string()).body("");
        if fetch(request, &file).await?.is_none() {
            return Err(PollFailure::new(FailureKind::Query, format!("heartbeat {file}: HTTP 404")));
        }
        *last_written = sequence;
        written = Some((h.source.clone(), sequence));
    }
    let directory = match heartbeat {
        Some((h, path)) => format!("{path}/{}/", h.writer),
        None => "/".to_string(),
    };
    let listing = format!("{directory}?limit={MAX_SOURCES}");
    let started = Instant::now();
    let request = client.get(format!("{base}{listing}")).header(reqwest::header::ACCEPT, "application/json");
    let body = fetch(request, &directory).await?;
    let at = started + started.elapsed() / 2;
    let (version, seen) = match body {
        Some(body) => decode_listing(&body)?,
        // No heartbeat written there yet.
        None => (String::new(), Vec::new()),
    };
    Ok(Sampled { at, observation: FilerObservation { version, heartbeats: Heartbeats { written, seen } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sequences_from_a_real_listing() {
        // As a 4.48 filer lists /.replag/heartbeat/w1/ after filer.sync copied it.
        let body = br#"{"Version":"8000GB 4.48 pypi","Path":"/.replag/heartbeat/w1","Entries":[
            {"FullPath":"/.replag/heartbeat/w1/us-filer","FileSize":0,"Extended":{"Seaweed-Replag-Seq":"Nzc3"},"chunks":null},
            {"FullPath":"/.replag/heartbeat/w1/notes.txt","FileSize":5,"Extended":null}],
            "Limit":100,"LastFileName":"us-filer","ShouldDisplayLoadMore":false,"EmptyFolder":false}"#;
        let (version, seen) = decode_listing(body).unwrap();
        assert_eq!(version, "8000GB 4.48 pypi");
        assert_eq!(seen, vec![("us-filer".to_string(), 777)]);
        let (_, empty) = decode_listing(br#"{"Entries":null}"#).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn damaged_listings_are_protocol_errors() {
        for body in [
            &br#"{"Entries":[{"FullPath":"/h/x","Extended":{"Seaweed-Replag-Seq":"!!"}}]}"#[..],
            br#"{"Entries":[{"FullPath":"/h/x","Extended":{"Seaweed-Replag-Seq":"eHl6"}}]}"#,
            br#"{"Entries":{}}"#,
            b"<html>",
        ] {
            assert_eq!(decode_listing(body).unwrap_err().kind, FailureKind::Protocol);
        }
    }
}
