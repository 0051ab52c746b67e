//! Platform users: who they are, where they live, how to reach them.

pub mod routes;
pub mod store;

use chrono::NaiveDate;
use validator::ValidationError;

/// A user as registered by the platform, before it is stored.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub external_ref: String,
    pub email: String,
    pub residence_jurisdiction: String,
    pub preferred_language: String,
    pub date_of_birth: Option<NaiveDate>,
    pub address: Option<String>,
}

pub const DEFAULT_LANGUAGE: &str = "en";

pub fn validate_country(code: &str) -> Result<(), ValidationError> {
    if crate::jurisdiction::is_country_code(code) {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_country").with_message(
            format!("`{code}` is not an ISO 3166-1 alpha-2 country code (e.g. HK, SG, CH)").into(),
        ))
    }
}

/// A BCP 47 language tag in its common shape: `en`, `zh-Hans`, `de-CH`, `zh-Hant-HK`.
pub fn validate_language(tag: &str) -> Result<(), ValidationError> {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()));
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && tag.len() <= 35 {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_language").with_message(
            format!("`{tag}` is not a BCP 47 language tag such as en, zh-Hans or de-CH").into(),
        ))
    }
}

/// Birth dates must be in the past and within a human lifetime.
pub fn validate_birth_date(date: &NaiveDate, today: NaiveDate) -> Result<(), ValidationError> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if *date > today || *date < earliest {
        Err(ValidationError::new("implausible_date")
            .with_message("must be a past date after 1900-01-01".into()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for tag in ["en", "zh-Hans", "de-CH", "zh-Hant-HK", "yue"] {
            assert!(validate_language(tag).is_ok(), "{tag}");
        }
        for tag in ["", "EN", "english", "en_US", "de-", "x"] {
            assert!(validate_language(tag).is_err(), "{tag}");
        }
    }

    #[test]
    fn birth_dates_must_be_plausible() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert!(validate_birth_date(&NaiveDate::from_ymd_opt(1990, 2, 3).unwrap(), today).is_ok());
        assert!(validate_birth_date(&NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(), today).is_err());
        assert!(
            validate_birth_date(&NaiveDate::from_ymd_opt(1899, 12, 31).unwrap(), today).is_err()
        );
    }
}
