//! Logs to stderr with tracing. Level: `--log.level` (a level or an
//! `EnvFilter` directive), else `REPLAG_LOG`, else `info`. Format:
//! `--log.format` — `text` (default: human, colours only on a terminal),
//! `logfmt` or `json` (one object a line), as exporters take them.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Logfmt,
    Json,
}

/// Set up logging; `level` from `--log.level` (already validated).
pub fn init(level: Option<&str>, format: LogFormat) {
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_env("REPLAG_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Logfmt => builder.event_format(tracing_logfmt::EventsFormatter::default()).init(),
    }
}

/// `--log.level`: a level (`debug`, `info`, `warn`, `error`, `trace`) or
/// directives (`info,replag=debug`); refused when it does not parse.
pub fn parse_level(value: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let directives = value.contains(['=', ',']);
    if !directives && !LEVELS.contains(&value.to_ascii_lowercase().as_str()) {
        return Err("not a log level: use trace, debug, info, warn, error or off (or filter directives)".into());
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("not a log filter ({e}); e.g. debug, or info,replag=debug"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_filters_but_not_words() {
        assert!(parse_level("debug").is_ok() && parse_level("WARN").is_ok());
        assert!(parse_level("info,replag=debug").is_ok());
        assert!(parse_level("banana").is_err());
        assert!(parse_level("info,replag=nonsense[").is_err());
    }
}
