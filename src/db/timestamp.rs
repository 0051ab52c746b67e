//! Timestamps as bound for a bulk insert. diesel renders a timestamp for SQLite through chrono's
//! format-string interpreter (`%F %T%.f`), which was 5 % of the writer's time in a payout ingest
//! (three timestamps a row); this writes the same text directly.

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

#[derive(Debug, Clone, Copy, diesel::AsExpression)]
#[diesel(sql_type = Timestamp)]
pub(crate) struct InsertTimestamp(pub NaiveDateTime);

impl ToSql<Timestamp, Sqlite> for InsertTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(sqlite_text(&self.0));
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for InsertTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <NaiveDateTime as ToSql<Timestamp, Pg>>::to_sql(&self.0, out)
    }
}

/// The text diesel stores, `YYYY-MM-DD HH:MM:SS` and the fraction in 3, 6 or 9 digits when
/// there is one, so that stored values compare as text exactly as before.
fn sqlite_text(time: &NaiveDateTime) -> String {
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 || !(0..=9999).contains(&time.year()) {
        // A leap second or a year chrono signs: its own rendering.
        return time.format("%F %T%.f").to_string();
    }
    // Digits pushed one by one: through `write!` the formatting machinery was another 5 % of
    // the single SQLite writer's time in a bulk ingest.
    let mut text = String::with_capacity(29);
    push_digits(&mut text, time.year().unsigned_abs(), 4);
    text.push('-');
    push_digits(&mut text, time.month(), 2);
    text.push('-');
    push_digits(&mut text, time.day(), 2);
    text.push(' ');
    push_digits(&mut text, time.hour(), 2);
    text.push(':');
    push_digits(&mut text, time.minute(), 2);
    text.push(':');
    push_digits(&mut text, time.second(), 2);
    match nanos {
        0 => {}
        _ if nanos.is_multiple_of(1_000_000) => {
            text.push('.');
            push_digits(&mut text, nanos / 1_000_000, 3);
        }
        _ if nanos.is_multiple_of(1_000) => {
            text.push('.');
            push_digits(&mut text, nanos / 1_000, 6);
        }
        _ => {
            text.push('.');
            push_digits(&mut text, nanos, 9);
        }
    }
    text
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for position in (0..width).rev() {
        let digit = value / 10u32.pow(position) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_chrono_writes() {
        let times = [
            "2025-01-01T00:00:00",
            "2025-12-31T17:00:00.5",
            "2026-03-04T05:06:07.120",
            "2026-03-04T05:06:07.123456",
            "2026-03-04T05:06:07.000001",
            "2026-03-04T05:06:07.123456789",
            "0001-02-03T04:05:06.7",
        ];
        for time in times {
            let time: NaiveDateTime = time.parse().unwrap();
            assert_eq!(sqlite_text(&time), time.format("%F %T%.f").to_string());
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap();
        assert_eq!(sqlite_text(&leap), leap.format("%F %T%.f").to_string());
    }
}
