//! Feeds `/gate?…` query strings to `replag::gate::GateSpec::from_query`.
//! Checks: no panic; an accepted spec is within the documented limits, and
//! writing it back out as a query string parses to the same spec.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use replag::gate::GateSpec;
use replag::gate::breach::RETENTION;

const DEFAULT_DATA_AGE: Duration = Duration::from_secs(10);

fn to_query(spec: &GateSpec) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(d) = spec.max_lag {
        q.append_pair("max_lag", &humantime::format_duration(d).to_string());
    }
    if let Some(b) = spec.max_lag_bytes {
        q.append_pair("max_lag_bytes", &b.to_string());
    }
    q.append_pair("for", &humantime::format_duration(spec.hold).to_string());
    q.append_pair("max_data_age", &humantime::format_duration(spec.max_data_age).to_string());
    let s = &spec.scope;
    for (key, list) in [
        ("system", &s.systems),
        ("kind", &s.kinds),
        ("source_region", &s.source_regions),
        ("replica_region", &s.replica_regions),
        ("link", &s.links),
    ] {
        for item in list {
            q.append_pair(key, item);
        }
    }
    q.finish()
}

fuzz_target!(|data: &[u8]| {
    // hyper hands the query over as &str.
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Ok(spec) = GateSpec::from_query(query, DEFAULT_DATA_AGE) else { return };

    assert!(spec.max_lag.is_none_or(|d| d <= Duration::from_secs(7 * 24 * 3600)));
    assert!(spec.max_lag_bytes.is_none_or(|b| b <= 1 << 50));
    assert!(spec.hold <= RETENTION);
    assert!(!spec.max_data_age.is_zero() && spec.max_data_age <= RETENTION.max(DEFAULT_DATA_AGE));
    let s = &spec.scope;
    for list in [&s.systems, &s.kinds, &s.source_regions, &s.replica_regions, &s.links] {
        for item in list {
            assert!(!item.is_empty() && !item.contains(',') && item.trim() == item, "list item {item:?}");
        }
    }
    assert!(s.systems.iter().all(|v| ["postgres", "redis", "seaweedfs"].contains(&v.as_str())));
    assert!(s.kinds.iter().all(|v| ["physical", "logical", "replica", "volume"].contains(&v.as_str())));

    let again = to_query(&spec);
    match GateSpec::from_query(&again, DEFAULT_DATA_AGE) {
        Ok(round) => assert_eq!(round, spec, "{query:?} -> {again:?}"),
        Err(e) => panic!("{query:?} was accepted, but its normal form {again:?} is not: {e}"),
    }
});
