//! Why a poll failed: a bounded reason for metric labels, and a message
//! scrubbed of secrets.

/// Why a poll failed, coarse enough to be a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// TCP connect refused, DNS, TLS.
    Connect,
    /// Authentication or authorization refused.
    Auth,
    /// No answer within `poll.timeout`.
    Timeout,
    /// The server answered with an error to the poll query.
    Query,
    /// The answer could not be understood.
    Protocol,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Auth => "auth",
            FailureKind::Timeout => "timeout",
            FailureKind::Query => "query",
            FailureKind::Protocol => "protocol",
        }
    }

    pub const ALL: [FailureKind; 5] =
        [FailureKind::Connect, FailureKind::Auth, FailureKind::Timeout, FailureKind::Query, FailureKind::Protocol];
}

/// A failed poll. The message is already scrubbed of secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{kind}: {message}", kind = kind.as_str())]
pub struct PollFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl PollFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// An error with its causes: client libraries' top-level text ("error
/// connecting to server", "error sending request") rarely says why.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = c.source();
    }
    message
}

/// Remove every occurrence of `secret` from `text`.
pub fn scrub(text: &str, secret: Option<&[u8]>) -> String {
    match secret.and_then(|s| std::str::from_utf8(s).ok()).filter(|s| !s.is_empty()) {
        Some(secret) => text.replace(secret, "<redacted>"),
        None => text.to_string(),
    }
}
