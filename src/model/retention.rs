use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How many snapshots restic keeps per rule (SPEC §1.3), applied with `forget --prune`.
/// A zero disables that rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// `--keep-daily`.
    pub keep_daily: u32,
    /// `--keep-weekly`.
    pub keep_weekly: u32,
    /// `--keep-monthly`.
    pub keep_monthly: u32,
    /// `--keep-yearly`.
    pub keep_yearly: u32,
}

impl Default for Retention {
    /// `7d:4w:6m`, what an empty retention means.
    fn default() -> Self {
        Self {
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            keep_yearly: 0,
        }
    }
}

/// Why a retention string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// Not 3 or 4 colon-separated parts.
    #[error(
        "`{0}` must have the form D:W:M or D:W:M:Y (keep daily:weekly:monthly[:yearly]), e.g. 7d:4w:6m"
    )]
    Shape(String),
    /// A part is not a count, optionally followed by its unit letter.
    #[error("`{part}` in position {position} must be a count, optionally followed by `{unit}`")]
    Part {
        /// The offending part.
        part: String,
        /// 1-based position of the part.
        position: usize,
        /// The only unit letter allowed in that position.
        unit: char,
    },
    /// Every rule is zero.
    #[error("all counts are zero, which would delete every snapshot; keep at least one")]
    AllZero,
}

/// The unit letter each position may carry: daily, weekly, monthly, yearly.
const UNITS: [char; 4] = ['d', 'w', 'm', 'y'];

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let parts: Vec<&str> = text.split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(RetentionError::Shape(text.to_owned()));
        }
        let mut counts = [0_u32; 4];
        for (position, (part, unit)) in parts.iter().zip(UNITS).enumerate() {
            let part = part.trim();
            let digits = part
                .strip_suffix(unit)
                .or_else(|| part.strip_suffix(unit.to_ascii_uppercase()))
                .unwrap_or(part);
            counts[position] = digits
                .parse::<u32>()
                .ok()
                .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| RetentionError::Part {
                    part: part.to_owned(),
                    position: position + 1,
                    unit,
                })?;
        }
        if counts == [0; 4] {
            return Err(RetentionError::AllZero);
        }
        let [keep_daily, keep_weekly, keep_monthly, keep_yearly] = counts;
        Ok(Self {
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
        })
    }
}

impl fmt::Display for Retention {
    /// The canonical form: `7d:4w:6m`, with `:Ny` only when a yearly rule is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}d:{}w:{}m",
            self.keep_daily, self.keep_weekly, self.keep_monthly
        )?;
        if self.keep_yearly > 0 {
            write!(f, ":{}y", self.keep_yearly)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Retention, RetentionError> {
        text.parse()
    }

    #[test]
    fn empty_means_the_default() {
        assert_eq!(parse("").unwrap(), Retention::default());
        assert_eq!(parse("  ").unwrap().to_string(), "7d:4w:6m");
    }

    #[test]
    fn unit_letters_are_optional_but_must_match_their_position() {
        let expected = Retention {
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            keep_yearly: 2,
        };
        assert_eq!(parse("7d:4w:6m:2y").unwrap(), expected);
        assert_eq!(parse("7:4:6:2").unwrap(), expected);
        assert_eq!(parse("7d:4:6M:2").unwrap(), expected);
        assert_eq!(
            parse("7w:4w:6m").unwrap_err(),
            RetentionError::Part {
                part: "7w".into(),
                position: 1,
                unit: 'd'
            }
        );
        assert!(parse("7d:4d:6m").is_err());
        assert!(parse("7d:4w:6m:2m").is_err());
    }

    #[test]
    fn three_parts_leave_yearly_off() {
        assert_eq!(parse("0:0:1").unwrap().keep_yearly, 0);
        assert_eq!(parse("14d:0w:0m").unwrap().to_string(), "14d:0w:0m");
    }

    #[test]
    fn all_zero_is_refused_because_it_deletes_everything() {
        assert_eq!(parse("0:0:0").unwrap_err(), RetentionError::AllZero);
        assert_eq!(parse("0d:0w:0m:0y").unwrap_err(), RetentionError::AllZero);
    }

    #[test]
    fn malformed_strings_are_refused() {
        for bad in [
            "7",
            "7:4",
            "7:4:6:2:1",
            "a:b:c",
            "-1:4:6",
            "+1:4:6",
            "7d:4w:",
            "7dd:4w:6m",
            "99999999999:1:1",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(d in 0u32..1000, w in 0u32..100, m in 0u32..100, y in 0u32..50) {
            prop_assume!(d + w + m + y > 0);
            let retention = Retention { keep_daily: d, keep_weekly: w, keep_monthly: m, keep_yearly: y };
            prop_assert_eq!(parse(&retention.to_string()).unwrap(), retention);
        }

        /// Any text gets an answer, and whatever is accepted is reproduced by its canonical form.
        #[test]
        fn any_text_is_answered_and_accepted_text_round_trips(text in prop_oneof![
            any::<String>(),
            "[0-9dwmyDWMY: +-]{0,16}",
        ]) {
            if let Ok(retention) = parse(&text) {
                prop_assert_eq!(parse(&retention.to_string()), Ok(retention));
            }
        }

        /// A rejected part is named as written, with its 1-based position and the unit that
        /// position allows, so the message points at the part to fix.
        #[test]
        fn a_bad_part_is_named_with_its_position(
            parts in proptest::collection::vec(prop_oneof!["[0-9]{1,3}[dwmyDWMY]?", "[0-9a-z+-]{0,4}", " [0-9]{1,2} "], 3..=4),
        ) {
            let text = parts.join(":");
            match parse(&text) {
                Err(RetentionError::Part { part, position, unit }) => {
                    prop_assert!((1..=parts.len()).contains(&position));
                    prop_assert_eq!(&part, parts[position - 1].trim());
                    prop_assert_eq!(unit, UNITS[position - 1]);
                    // The parts before it were fine: each is a count with its own unit or none.
                    for (index, earlier) in parts[..position - 1].iter().enumerate() {
                        let earlier = earlier.trim();
                        let digits = earlier
                            .strip_suffix(UNITS[index])
                            .or_else(|| earlier.strip_suffix(UNITS[index].to_ascii_uppercase()))
                            .unwrap_or(earlier);
                        prop_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{earlier}");
                    }
                    let message = RetentionError::Part { part: part.clone(), position, unit }.to_string();
                    prop_assert!(message.contains(&format!("`{part}` in position {position}")), "{message}");
                }
                Err(RetentionError::Shape(shape)) => prop_assert!(false, "{} parts reported as a shape error: {}", parts.len(), shape),
                Err(RetentionError::AllZero) => {
                    prop_assert!(parts.iter().all(|p| p.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()).bytes().all(|b| b == b'0')));
                }
                Ok(retention) => {
                    let counts = [retention.keep_daily, retention.keep_weekly, retention.keep_monthly, retention.keep_yearly];
                    for (index, part) in parts.iter().enumerate() {
                        let digits = part.trim().trim_end_matches(UNITS[index]).trim_end_matches(UNITS[index].to_ascii_uppercase());
                        prop_assert_eq!(digits.parse::<u32>().ok(), Some(counts[index]), "part {}", part);
                    }
                }
            }
        }

        /// Anything but 3 or 4 parts is a shape error that repeats the text.
        #[test]
        fn a_wrong_number_of_parts_is_a_shape_error(parts in prop_oneof![
            proptest::collection::vec("[0-9]{1,2}", 1..3),
            proptest::collection::vec("[0-9]{1,2}", 5..8),
        ]) {
            let text = parts.join(":");
            prop_assert_eq!(parse(&text), Err(RetentionError::Shape(text.clone())));
        }
    }
}
