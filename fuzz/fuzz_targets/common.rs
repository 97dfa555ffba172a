#![allow(dead_code)] // Each target uses part of it.
//! Shared by the config targets: the loader reads `password_file`, `ca_file`
//! and client certificate paths named in its input, so an input naming a
//! device or FIFO (`/dev/zero`, `/dev/stdin`) would hang or exhaust memory
//! instead of testing replag. Inputs are vetted before they are loaded.

use std::path::Path;

/// Refuse a string that names something other than a small regular file or
/// a directory (both of which the loader handles with an ordinary error).
pub fn is_safe_path(text: &str) -> bool {
    if text.contains('\0') {
        return true; // Not a path the OS accepts: open() fails.
    }
    match std::fs::symlink_metadata(Path::new(text)).and_then(|_| std::fs::metadata(Path::new(text))) {
        Ok(m) => m.is_dir() || (m.is_file() && m.len() <= 1 << 20 && !text.contains("/proc/")),
        Err(_) => true, // Does not exist (or cannot be reached): a read error.
    }
}

/// Every string in a TOML document, anywhere, is a safe path (or the text
/// is not TOML at all, in which case the loader rejects it before reading
/// any file: it uses the same `toml` release).
pub fn toml_is_safe(text: &str) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => is_safe_path(s),
            toml::Value::Array(a) => a.iter().all(walk),
            toml::Value::Table(t) => t.iter().all(|(k, v)| is_safe_path(k) && walk(v)),
            // Numbers, booleans and dates become relative paths like "1" or
            // "true", looked up in the fuzz directory: harmless.
            _ => true,
        }
    }
    match text.parse::<toml::Table>() {
        Ok(table) => table.iter().all(|(k, v)| is_safe_path(k) && walk(v)),
        Err(_) => true,
    }
}
