//! The status page at `/`: what a person opening replag in a browser needs
//! first — which nodes answer, which links are behind and why.

use std::fmt::Write;

use crate::snapshot::Snapshot;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn status_page(s: &Snapshot) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>replag</title>\
         <meta http-equiv=\"refresh\" content=\"5\"><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
         .down{background:#fdd}.up{background:#dfd}</style></head><body><h1>replag</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/status\">/api/v1/status</a> · \
         <a href=\"/healthz\">/healthz</a></p><h2>Links</h2><table><tr><th>system</th><th>kind</th>\
         <th>source</th><th>replica</th><th>up</th><th>state</th><th>lag</th><th>bytes</th><th>note</th></tr>",
    );
    for l in &s.links {
        let (lag, bytes) = match l.lag {
            Some(lag) => {
                (format!("{}{:.3} s", if lag.lower_bound { "≥ " } else { "" }, lag.seconds), lag.bytes.to_string())
            }
            None => ("?".into(), "?".into()),
        };
        let _ = write!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if l.up { "up" } else { "down" },
            l.id.system.as_str(),
            l.id.kind.as_str(),
            escape(&l.id.source),
            escape(&l.id.source_region),
            escape(&l.id.replica),
            escape(&l.id.replica_region),
            l.up,
            escape(&l.state),
            lag,
            bytes,
            escape(l.reason.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table><h2>Nodes</h2><table><tr><th>system</th><th>node</th><th>region</th><th>up</th><th>role</th><th>version</th><th>error</th></tr>");
    for n in &s.nodes {
        let _ = write!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if n.up { "up" } else { "down" },
            n.system.as_str(),
            escape(&n.name),
            escape(&n.region),
            n.up,
            escape(n.role.as_deref().unwrap_or("?")),
            escape(n.version.as_deref().unwrap_or("?")),
            escape(&n.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()),
        );
    }
    html.push_str("</table></body></html>\n");
    html
}
