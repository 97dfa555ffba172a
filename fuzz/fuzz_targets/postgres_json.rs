//! Feeds the JSON document of the PostgreSQL poll query (one `text` column,
//! so always UTF-8) to `replag::systems::postgres::decode`. Checks: no panic;
//! every failure is a protocol failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replag::systems::postgres::decode;
use replag::model::FailureKind;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    match decode(json) {
        Ok(o) => {
            assert_eq!(o.role(), if o.in_recovery { "standby" } else { "primary" });
            for s in &o.subscriptions {
                assert!(s.table_states.windows(2).all(|w| w[0].0 < w[1].0), "table states not sorted/unique");
            }
        }
        Err(e) => assert_eq!(e.kind, FailureKind::Protocol, "{e}"),
    }
});
