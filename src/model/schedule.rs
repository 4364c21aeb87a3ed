use std::fmt;

use chrono::{DateTime, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;

/// An instance's cron schedule (SPEC §1): 5 fields, 6 fields (seconds first), or one of
/// `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. Compared by its text, so a config
/// diff sees a schedule as changed exactly when the user changed it.
#[derive(Clone)]
pub struct Schedule {
    /// The expression as the user wrote it (trimmed), shown back in the API.
    expression: String,
    cron: Cron,
}

/// Why a cron expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Wrong number of fields.
    #[error(
        "`{expression}` has {fields} fields; a schedule has 5 (minute hour day-of-month month day-of-week), 6 (seconds first), or is one of @hourly, @daily, @weekly, @monthly, @yearly"
    )]
    FieldCount {
        /// The rejected expression.
        expression: String,
        /// How many whitespace-separated fields it has.
        fields: usize,
    },
    /// An `@` form croner does not know, such as `@every 5m`.
    #[error(
        "`{0}` is not supported; use @hourly, @daily, @weekly, @monthly, @yearly or a cron expression"
    )]
    Nickname(String),
    /// croner rejected a field.
    #[error("`{expression}` is not a valid cron expression: {reason}")]
    Invalid {
        /// The rejected expression.
        expression: String,
        /// croner's explanation.
        reason: String,
    },
    /// The expression is well-formed but matches no time at all (e.g. 30 February).
    #[error("`{0}` never fires (it matches no date)")]
    Never(String),
}

const NICKNAMES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

impl Schedule {
    /// Parses and checks a cron expression.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let expression = expression.trim();
        if expression.starts_with('@') {
            if !NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(expression)) {
                return Err(ScheduleError::Nickname(expression.to_owned()));
            }
        } else {
            let fields = expression.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(ScheduleError::FieldCount {
                    expression: expression.to_owned(),
                    fields,
                });
            }
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            // Marina 0.9 (robfig/cron) accepted `0/5`; keep such schedules valid.
            .sloppy_ranges(true)
            .build();
        let cron = parser
            .parse(expression)
            .map_err(|e| ScheduleError::Invalid {
                expression: expression.to_owned(),
                reason: culprit(parser, expression).unwrap_or_else(|| e.to_string()),
            })?;
        let schedule = Self {
            expression: expression.to_owned(),
            cron,
        };
        // A fixed reference keeps this check pure; a pattern that fires never fires from any start.
        let reference = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if reference.and_then(|r| schedule.next_after(&r)).is_none() {
            return Err(ScheduleError::Never(schedule.expression));
        }
        Ok(schedule)
    }

    /// The first time strictly after `after` at which the schedule fires, computed in the
    /// time zone of `after` (so `0 2 * * *` in `Europe/Berlin` is 02:00 Berlin time, and a
    /// time skipped or repeated by a DST change fires once). `None` if it never fires again.
    #[must_use]
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(after, false).ok()
    }

    /// The last time at or before `at` at which the schedule fired, in the zone of `at`.
    #[must_use]
    pub fn previous_at_or_before<Tz: TimeZone>(&self, at: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_previous_occurrence(at, true).ok()
    }

    /// The expression as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.expression
    }
}

/// croner says what is wrong but not where: find the first field that fails on its own (the
/// others replaced by `*`) and name it with its range.
fn culprit(parser: CronParser, expression: &str) -> Option<String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let names: &[(&str, &str)] = match fields.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS,
        _ => return None,
    };
    (0..fields.len()).find_map(|index| {
        let alone: Vec<&str> = (0..fields.len())
            .map(|i| if i == index { fields[i] } else { "*" })
            .collect();
        let error = parser.parse(&alone.join(" ")).err()?;
        let (name, range) = names[index];
        let detail = error.to_string();
        let detail = detail
            .trim_start_matches("Component error: ")
            .trim_end_matches('.');
        Some(format!(
            "the {name} field `{}` is invalid ({detail}; allowed: {range})",
            fields[index]
        ))
    })
}

/// Cron fields in order, with the values each allows; the seconds field is only present in
/// 6-field expressions.
const FIELDS: [(&str, &str); 6] = [
    ("seconds", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, L, #"),
];

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Eq for Schedule {}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expression).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use chrono_tz::Europe::Berlin;

    fn berlin(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<chrono_tz::Tz> {
        Berlin
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn accepts_five_and_six_fields_and_nicknames() {
        for ok in [
            "0 2 * * *",
            "30 0 2 * * *",
            "@hourly",
            "@DAILY",
            "@weekly",
            "@monthly",
            "@yearly",
            "*/15 * * * *",
            "0/5 * * * *",
            "0 3 * * MON-FRI",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn invalid_fields_are_named() {
        let err = Schedule::parse("0 25 * * *").unwrap_err().to_string();
        assert_eq!(
            err,
            "`0 25 * * *` is not a valid cron expression: the hour field `25` is invalid (Number out of bounds; allowed: 0-23)"
        );
        let err = Schedule::parse("0 0 2 * * FOO").unwrap_err().to_string();
        assert!(
            err.contains("the day-of-week field `FOO` is invalid"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_expressions_with_a_reason() {
        assert!(matches!(
            Schedule::parse("0 2 * *"),
            Err(ScheduleError::FieldCount { fields: 4, .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 2 * * * 2030"),
            Err(ScheduleError::FieldCount { fields: 7, .. })
        ));
        assert!(matches!(
            Schedule::parse("@every 5m"),
            Err(ScheduleError::Nickname(_))
        ));
        assert!(matches!(
            Schedule::parse("61 2 * * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 25 * * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 30 2 *"),
            Err(ScheduleError::Never(_))
        ));
        assert!(matches!(
            Schedule::parse(""),
            Err(ScheduleError::FieldCount { fields: 0, .. })
        ));
    }

    #[test]
    fn next_run_is_in_the_zone_of_the_start_time() {
        let schedule = Schedule::parse("0 2 * * *").unwrap();
        let next = schedule.next_after(&berlin(2027, 1, 10, 12, 0)).unwrap();
        assert_eq!(next, berlin(2027, 1, 11, 2, 0));
        assert_eq!(
            next.with_timezone(&Utc).to_rfc3339(),
            "2027-01-11T01:00:00+00:00"
        );
    }

    #[test]
    fn spring_forward_gap_fires_once_right_after_the_gap() {
        // 2027-03-28: Berlin clocks jump from 02:00 to 03:00, so 02:30 does not exist that day.
        let schedule = Schedule::parse("30 2 * * *").unwrap();
        let first = schedule.next_after(&berlin(2027, 3, 27, 12, 0)).unwrap();
        assert_eq!(
            first.with_timezone(&Utc).to_rfc3339(),
            "2027-03-28T01:00:00+00:00"
        );
        let second = schedule.next_after(&first).unwrap();
        assert_eq!(second, berlin(2027, 3, 29, 2, 30));
    }

    #[test]
    fn fall_back_repeated_hour_fires_once() {
        // 2027-10-31: Berlin clocks go from 03:00 back to 02:00, so 02:30 happens twice.
        let schedule = Schedule::parse("30 2 * * *").unwrap();
        let first = schedule.next_after(&berlin(2027, 10, 30, 12, 0)).unwrap();
        let second = schedule.next_after(&first).unwrap();
        assert_eq!(
            first.date_naive(),
            chrono::NaiveDate::from_ymd_opt(2027, 10, 31).unwrap()
        );
        assert_eq!(second, berlin(2027, 11, 1, 2, 30));
    }

    #[test]
    fn previous_occurrence_is_found() {
        let schedule = Schedule::parse("0 2 * * *").unwrap();
        let previous = schedule
            .previous_at_or_before(&berlin(2027, 1, 10, 12, 0))
            .unwrap();
        assert_eq!(previous, berlin(2027, 1, 10, 2, 0));
        let exact = schedule
            .previous_at_or_before(&berlin(2027, 1, 10, 2, 0))
            .unwrap();
        assert_eq!(exact, berlin(2027, 1, 10, 2, 0));
    }

    #[test]
    fn schedules_compare_by_their_text() {
        assert_eq!(
            Schedule::parse("0 2 * * *").unwrap(),
            Schedule::parse(" 0 2 * * * ").unwrap()
        );
        assert_ne!(
            Schedule::parse("0 2 * * *").unwrap(),
            Schedule::parse("0 3 * * *").unwrap()
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use chrono::{Duration, Utc};
    use chrono_tz::Europe::Berlin;
    use proptest::prelude::*;

    /// One cron field in the syntax croner reads, with values in `low..=high` (and now and
    /// then one outside it, which parse must refuse cleanly).
    fn field(low: u32, high: u32) -> impl Strategy<Value = String> + Clone {
        let value = move || low..=high + 1;
        prop_oneof![
            Just("*".to_owned()),
            value().prop_map(|v| v.to_string()),
            (1..=high.max(2)).prop_map(|step| format!("*/{step}")),
            (value(), value()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (value(), value()).prop_map(|(a, b)| format!("{a},{b}")),
            (value(), 1..=high.max(2)).prop_map(|(a, step)| format!("{a}/{step}")),
        ]
    }

    /// Cron expressions, mostly well-formed: 5 fields, 6 with seconds, or a nickname.
    fn expression() -> impl Strategy<Value = String> {
        let five = || {
            (
                field(0, 59),
                field(0, 23),
                field(1, 31),
                field(1, 12),
                field(0, 6),
            )
                .prop_map(|(mi, h, dom, mo, dow)| format!("{mi} {h} {dom} {mo} {dow}"))
        };
        prop_oneof![
            4 => five(),
            2 => (field(0, 59), five()).prop_map(|(s, rest)| format!("{s} {rest}")),
            1 => prop::sample::select(&NICKNAMES[..]).prop_map(str::to_owned),
        ]
    }

    /// Instants from 2000 to 2100, where the schedules of a backup tool live.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (946_684_800_i64..4_102_444_800)
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
    }

    proptest! {
        /// Whatever the text, parse answers Ok or Err, and an accepted schedule keeps its text.
        #[test]
        fn parse_answers_any_text(text in prop_oneof![
            any::<String>(),
            "[0-9*/,LW#?@ A-Za-z-]{0,30}",
            expression(),
        ]) {
            if let Ok(schedule) = Schedule::parse(&text) {
                prop_assert_eq!(schedule.as_str(), text.trim());
            }
        }

        /// The next run is strictly after `now`, and it is itself a run: asking again from one
        /// second before it finds it again, and the run at-or-before it is itself.
        #[test]
        fn the_next_run_is_a_run_after_now(text in expression(), now in instant(), berlin in any::<bool>()) {
            let Ok(schedule) = Schedule::parse(&text) else { return Ok(()) };
            let check = |next: DateTime<Utc>, before: DateTime<Utc>, again: Option<DateTime<Utc>>, previous: Option<DateTime<Utc>>| -> Result<(), TestCaseError> {
                prop_assert!(next > before, "{} is not after {}", next, before);
                prop_assert_eq!(again, Some(next), "from one second before {}", next);
                prop_assert_eq!(previous, Some(next), "the run at or before {}", next);
                Ok(())
            };
            if berlin {
                let now = now.with_timezone(&Berlin);
                let Some(next) = schedule.next_after(&now) else { return Ok(()) };
                let again = schedule.next_after(&(next - Duration::seconds(1)));
                let previous = schedule.previous_at_or_before(&next);
                check(next.to_utc(), now.to_utc(), again.map(|t| t.to_utc()), previous.map(|t| t.to_utc()))?;
            } else {
                let Some(next) = schedule.next_after(&now) else { return Ok(()) };
                check(next, now, schedule.next_after(&(next - Duration::seconds(1))), schedule.previous_at_or_before(&next))?;
            }
        }

        /// In a zone with daylight saving time, successive runs strictly increase, across the
        /// spring gap and the repeated autumn hour alike.
        #[test]
        fn runs_in_berlin_strictly_increase(
            text in expression(),
            year in 2026_i32..2032,
            month in prop::sample::select(vec![3_u32, 10]),
            day in 20_u32..29,
        ) {
            let Ok(schedule) = Schedule::parse(&text) else { return Ok(()) };
            let Some(mut at) = Berlin.with_ymd_and_hms(year, month, day, 0, 0, 0).single() else { return Ok(()) };
            for _ in 0..40 {
                let Some(next) = schedule.next_after(&at) else { break };
                prop_assert!(next > at, "{} follows {} in Berlin", next, at);
                at = next;
            }
        }
    }
}
