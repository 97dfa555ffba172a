//! replag's own HTTP security: TLS (optionally with client certificates) and
//! basic auth with bcrypt hashes, from a web config file in the format
//! Prometheus exporters share (exporter-toolkit's `--web.config.file`):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/replag/tls.crt
//!   key_file: /etc/replag/tls.key
//!   client_ca_file: /etc/replag/clients-ca.pem        # optional
//!   client_auth_type: RequireAndVerifyClientCert      # or VerifyClientCertIfGiven, NoClientCert
//! basic_auth_users:
//!   prometheus: $2y$10$...                            # bcrypt
//! ```
//!
//! The file is re-read when it changes; a broken new version is refused and
//! the previous one stays in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    VerifyIfGiven,
    Require,
}

/// A loaded web config: what serving needs.
pub struct WebConfig {
    pub tls: Option<TlsAcceptor>,
    /// user → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
}

fn field<'a>(doc: &'a Yaml, section: &str, key: &str) -> Result<Option<&'a str>, String> {
    match &doc[section][key] {
        Yaml::BadValue | Yaml::Null => Ok(None),
        Yaml::String(s) => Ok(Some(s.as_str())),
        _ => Err(format!("{section}.{key} must be a string")),
    }
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {path}: {e}"))
}

/// Parse and load a web config; errors name the key.
pub fn load(path: &Path) -> Result<WebConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| format!("{}: invalid YAML: {e}", path.display()))?;
    let doc = docs.into_iter().next().unwrap_or(Yaml::Null);
    if let Yaml::Hash(map) = &doc {
        for key in map.keys() {
            match key.as_str() {
                Some("tls_server_config" | "basic_auth_users" | "http_server_config") => {}
                other => return Err(format!("unknown key {:?}", other.unwrap_or("?"))),
            }
        }
    } else if !matches!(doc, Yaml::Null) {
        return Err("the web config must be a YAML mapping".into());
    }
    let mut users = BTreeMap::new();
    match &doc["basic_auth_users"] {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::Hash(map) => {
            for (user, hash) in map {
                let (Some(user), Some(hash)) = (user.as_str(), hash.as_str()) else {
                    return Err("basic_auth_users: each entry must be user: bcrypt-hash".into());
                };
                if !hash.starts_with("$2") {
                    return Err(format!("basic_auth_users.{user}: not a bcrypt hash"));
                }
                users.insert(user.to_string(), hash.to_string());
            }
        }
        _ => return Err("basic_auth_users must be a mapping of user: bcrypt-hash".into()),
    }
    let tls = match (field(&doc, "tls_server_config", "cert_file")?, field(&doc, "tls_server_config", "key_file")?) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let client_auth = match field(&doc, "tls_server_config", "client_auth_type")? {
                None | Some("NoClientCert") => ClientAuth::None,
                Some("VerifyClientCertIfGiven") => ClientAuth::VerifyIfGiven,
                Some("RequireAndVerifyClientCert") => ClientAuth::Require,
                Some(other) => {
                    return Err(format!(
                        "tls_server_config.client_auth_type: {other:?} is not NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                    ))
                }
            };
            let client_ca = field(&doc, "tls_server_config", "client_ca_file")?;
            Some(acceptor(cert, key, client_ca, client_auth)?)
        }
        _ => return Err("tls_server_config needs both cert_file and key_file".into()),
    };
    Ok(WebConfig { tls, users })
}

fn acceptor(cert: &str, key: &str, client_ca: Option<&str>, client_auth: ClientAuth) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_slice_iter(&read_file("tls_server_config.cert_file", cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_server_config.cert_file: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read_file("tls_server_config.key_file", key)?)
        .map_err(|e| format!("tls_server_config.key_file: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (client_auth, client_ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err("tls_server_config.client_ca_file is required to verify client certificates".into()),
        (mode, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read_file("tls_server_config.client_ca_file", ca)?) {
                roots
                    .add(c.map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?)
                    .map_err(|e| e.to_string())?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::VerifyIfGiven { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| format!("tls_server_config: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl WebConfig {
    /// Does an `Authorization` header let the request in? Always true without
    /// users. Unknown users cost a bcrypt check too, so timing does not tell
    /// which users exist.
    pub fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(decode_basic) else { return false };
        static DUMMY: OnceLock<String> = OnceLock::new();
        let dummy = DUMMY.get_or_init(|| bcrypt::hash("replag-dummy", 10).unwrap_or_default());
        match self.users.get(&user) {
            Some(hash) => bcrypt::verify(&password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(&password, dummy);
                false
            }
        }
    }
}

fn decode_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let encoded = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The web config in force, re-read when its file changes.
pub struct WebSecurity {
    path: PathBuf,
    state: RwLock<(Option<SystemTime>, Arc<WebConfig>)>,
}

impl WebSecurity {
    /// Load it now; at start-up a broken file is an error.
    pub fn open(path: &Path) -> Result<WebSecurity, String> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let config = load(path)?;
        Ok(WebSecurity { path: path.to_path_buf(), state: RwLock::new((modified, Arc::new(config))) })
    }

    /// The config to apply to a new connection, reloading if the file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if state.0 == modified {
                return state.1.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.0 != modified {
            match load(&self.path) {
                Ok(config) => {
                    tracing::info!(file = %self.path.display(), "web config reloaded");
                    state.1 = Arc::new(config);
                }
                Err(e) => {
                    tracing::error!(file = %self.path.display(), error = %e, "new web config refused; keeping the previous one")
                }
            }
            state.0 = modified;
        }
        state.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(text: &str) -> Result<WebConfig, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        load(f.path())
    }

    #[test]
    fn basic_auth_checks_bcrypt_hashes() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = config_with(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        let header = |u: &str, p: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        };
        assert!(c.authorized(Some(header("alice", "s3cret").as_bytes())));
        assert!(!c.authorized(Some(header("alice", "wrong").as_bytes())));
        assert!(!c.authorized(Some(header("mallory", "s3cret").as_bytes())));
        assert!(!c.authorized(None));
        assert!(!c.authorized(Some(b"Bearer xyz")));
        assert!(!c.authorized(Some(b"Basic !!!not-base64")));
        assert!(config_with("{}").unwrap().authorized(None), "no users: open");
    }

    #[test]
    fn bad_web_configs_name_the_problem() {
        for (text, needle) in [
            ("basic_auth_users:\n  alice: plaintext\n", "bcrypt"),
            ("tls_server_config:\n  cert_file: /nope.crt\n", "key_file"),
            ("tls_server_config:\n  cert_file: /nope.crt\n  key_file: /nope.key\n", "cert_file"),
            ("tls_server_config:\n  cert_file: /a\n  key_file: /b\n  client_auth_type: Maybe\n", "client_auth_type"),
            ("colour: blue\n", "colour"),
            ("- a list\n", "mapping"),
            ("basic_auth_users: [1, 2]\n", "basic_auth_users"),
        ] {
            let err = config_with(text).err().unwrap_or_else(|| panic!("{text} should fail"));
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
