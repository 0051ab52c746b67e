//! UTC instants in JSON. Times are stored as UTC `NaiveDateTime`s (DESIGN.md §3); in request and
//! response bodies they are RFC 3339 with the `Z` that says so, as the OpenAPI document's
//! `date-time` promises (`2026-12-03T04:35:34.649460Z`). Reading accepts any offset (converted to
//! UTC) and, for bodies written before this format, a time without one, taken as UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serializer};

/// `2026-12-03T04:35:34.649460Z`: the instant as RFC 3339 in UTC.
pub fn text(value: &NaiveDateTime) -> String {
    value.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn serialize<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&text(value))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 date-time")))
}

fn parse(text: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(text)
        .map(|zoned| zoned.naive_utc())
        .or_else(|_| text.parse::<NaiveDateTime>())
        .ok()
}

/// The same for optional fields (`null` when absent).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<NaiveDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDateTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        text.map(|text| {
            parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not an RFC 3339 date-time"))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        #[serde(with = "crate::utc")]
        at: NaiveDateTime,
        #[serde(with = "crate::utc::option", default)]
        until: Option<NaiveDateTime>,
    }

    #[test]
    fn instants_are_written_with_z_and_read_with_any_offset() {
        let at = "2025-12-31T17:00:00.250".parse::<NaiveDateTime>().unwrap();
        let row = Row { at, until: None };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"at":"2025-12-31T17:00:00.250Z","until":null}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
        let shanghai: Row = serde_json::from_str(
            r#"{"at":"2026-01-01T01:00:00.25+08:00","until":"2026-01-01T00:00:00"}"#,
        )
        .unwrap();
        assert_eq!(shanghai.at, at);
        assert_eq!(shanghai.until, "2026-01-01T00:00:00".parse().ok());
        assert!(serde_json::from_str::<Row>(r#"{"at":"yesterday"}"#).is_err());
    }
}
