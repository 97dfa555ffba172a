//! PostgreSQL log sequence numbers: `XXXXXXXX/YYYYYYYY` text <-> byte position.

use std::fmt;
use std::str::FromStr;

/// A WAL position in bytes since the start of the cluster's WAL stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hexadecimal halves like 0/3000E08")]
pub struct LsnParseError(String);

impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || LsnParseError(text.chars().take(40).collect());
        let (high, low) = text.split_once('/').ok_or_else(bad)?;
        let is_hex = |s: &str| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex(high) || !is_hex(low) {
            return Err(bad());
        }
        let high = u32::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_postgres_text() {
        assert_eq!("0/3000E08".parse::<Lsn>().unwrap(), Lsn(0x3000E08));
        assert_eq!("1/0".parse::<Lsn>().unwrap(), Lsn(1 << 32));
        assert_eq!("FFFFFFFF/FFFFFFFF".parse::<Lsn>().unwrap(), Lsn(u64::MAX));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "/", "0/", "/0", "0x1/2", "1/2/3", "G/0", "123456789/0", " 0/1", "-1/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(n in any::<u64>()) {
            prop_assert_eq!(Lsn(n).to_string().parse::<Lsn>().unwrap(), Lsn(n));
        }

        #[test]
        fn never_panics_on_arbitrary_text(s in ".{0,40}") {
            let _ = s.parse::<Lsn>();
        }
    }
}
