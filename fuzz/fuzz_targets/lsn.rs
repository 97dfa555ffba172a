//! Feeds text to `replag::systems::postgres::Lsn`'s `FromStr` (LSNs arrive as text from
//! PostgreSQL, e.g. `16/B374D848`). Checks: no panic; it accepts exactly
//! `1-8 hex digits '/' 1-8 hex digits`; parse(display(x)) == x, both for what
//! it parsed and for the first 8 input bytes read as a u64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replag::systems::postgres::Lsn;

fn is_hex_half(s: &str) -> bool {
    (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..8) {
        let n = Lsn(u64::from_le_bytes(bytes.try_into().unwrap()));
        assert_eq!(n.to_string().parse::<Lsn>(), Ok(n), "display of {n:?} does not parse back");
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = text.parse::<Lsn>();
    let valid = text.split_once('/').is_some_and(|(h, l)| is_hex_half(h) && is_hex_half(l));
    assert_eq!(parsed.is_ok(), valid, "{text:?} -> {parsed:?}");
    if let Ok(lsn) = parsed {
        let (h, l) = text.split_once('/').unwrap();
        let expected = (u64::from_str_radix(h, 16).unwrap() << 32) | u64::from_str_radix(l, 16).unwrap();
        assert_eq!(lsn, Lsn(expected));
        assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
        assert!(lsn.to_string().eq_ignore_ascii_case(&format!("{:X}/{:X}", expected >> 32, expected & 0xFFFF_FFFF)));
    }
});
