//! HTTP(S) for the systems polled over it (SeaweedFS masters, filers and
//! filer.sync; Patroni's REST API): one request, a bounded reply, and
//! failures classified the way replag reports them. A leaf below the
//! systems' folders.

use serde::Deserialize;

use crate::model::{error_chain, FailureKind, PollFailure};

/// Replies larger than this are refused (tens of thousands of volumes fit).
const MAX_REPLY_BYTES: usize = 128 << 20;

/// A JSON reply, or a protocol failure naming `what` it was.
pub fn parse<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, PollFailure> {
    serde_json::from_slice(body)
        .map_err(|e| PollFailure::new(FailureKind::Protocol, format!("unexpected {what} reply: {e}")))
}

/// Send `request` (described as `path` in errors) and read the reply, at
/// most [`MAX_REPLY_BYTES`]; `None` for 404.
pub async fn fetch(request: reqwest::RequestBuilder, path: &str) -> Result<Option<Vec<u8>>, PollFailure> {
    {
        let mut response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() { FailureKind::Timeout } else { FailureKind::Connect };
            PollFailure::new(kind, format!("{path}: {}", error_chain(&e)))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(PollFailure::new(FailureKind::Auth, format!("{path}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(PollFailure::new(FailureKind::Query, format!("{path}: HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| PollFailure::new(FailureKind::Query, format!("{path}: {}", error_chain(&e))))?
        {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(PollFailure::new(
                    FailureKind::Protocol,
                    format!("{path}: reply larger than {MAX_REPLY_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}
