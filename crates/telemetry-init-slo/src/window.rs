//! Durations written the way PromQL writes them (`5m`, `6h`, `30d`, `4w`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SloError;

/// A time window such as an SLO period (`30d`) or a burn-rate window (`1h`).
///
/// Parsed from `<integer><unit>` where the unit is `m` (minutes), `h` (hours),
/// `d` (days) or `w` (weeks). It is displayed in the largest of `d`, `h` or `m`
/// that divides it exactly, which is also valid PromQL range syntax.
///
/// ```
/// use telemetry_init_slo::Window;
///
/// let w: Window = "4w".parse().unwrap();
/// assert_eq!(w.to_string(), "28d");
/// assert_eq!(w.seconds(), 28 * 86_400);
/// assert!("30x".parse::<Window>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Window {
    seconds: u64,
}

impl Window {
    /// A window of whole minutes.
    pub const fn minutes(n: u64) -> Self {
        Self { seconds: n * 60 }
    }

    /// A window of whole hours.
    pub const fn hours(n: u64) -> Self {
        Self { seconds: n * 3_600 }
    }

    /// A window of whole days.
    pub const fn days(n: u64) -> Self {
        Self {
            seconds: n * 86_400,
        }
    }

    /// The window's length in seconds.
    pub const fn seconds(self) -> u64 {
        self.seconds
    }
}

impl Default for Window {
    /// The default SLO period: 30 days.
    fn default() -> Self {
        Self::days(30)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        if s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else {
            write!(f, "{}m", s / 60)
        }
    }
}

impl FromStr for Window {
    type Err = SloError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| SloError::InvalidWindow {
            window: text.to_owned(),
            reason: why.to_owned(),
        };
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| bad("missing unit: write e.g. `30d`, `4w`, `6h` or `5m`"))?;
        let (digits, unit) = trimmed.split_at(split);
        if digits.is_empty() {
            return Err(bad(
                "expected a whole number followed by a unit, e.g. `30d`",
            ));
        }
        let n: u64 = digits.parse().map_err(|_| bad("number too large"))?;
        if n == 0 {
            return Err(bad("a window must be longer than zero"));
        }
        let unit_seconds = match unit {
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => {
                return Err(bad(
                    "unknown unit: use `m` (minutes), `h` (hours), `d` (days) or `w` (weeks)",
                ));
            }
        };
        let seconds = n
            .checked_mul(unit_seconds)
            .ok_or_else(|| bad("number too large"))?;
        Ok(Self { seconds })
    }
}

impl TryFrom<String> for Window {
    type Error = SloError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Window> for String {
    fn from(w: Window) -> Self {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        for (input, shown, secs) in [
            ("5m", "5m", 300),
            ("90m", "90m", 5_400),
            ("120m", "2h", 7_200),
            ("6h", "6h", 21_600),
            ("24h", "1d", 86_400),
            ("30d", "30d", 2_592_000),
            ("4w", "28d", 2_419_200),
        ] {
            let w: Window = input.parse().unwrap();
            assert_eq!(w.to_string(), shown, "{input}");
            assert_eq!(w.seconds(), secs, "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for input in [
            "",
            "30",
            "d",
            "0d",
            "30x",
            "1.5h",
            "-1d",
            "99999999999999999999d",
        ] {
            let err = input.parse::<Window>().unwrap_err().to_string();
            assert!(err.contains("window"), "{input}: {err}");
        }
    }
}
