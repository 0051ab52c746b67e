//! Request input shared by the API and the CSV imports: parsing and checking periods, zones,
//! decimal quantities and certificates, with errors that name the field.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::store::NewCertificate;
use super::Scheme;
use crate::error::FieldError;
use crate::http::extract::parse_uuid;
use crate::ledger::payouts::parse_instant;

/// A decimal with at most three decimals, in thousandths (`1.08` → 1080).
pub fn thousandths_of(field: &str, text: &str) -> Result<i64, FieldError> {
    let invalid = || {
        FieldError::new(
            field,
            "invalid_number",
            "must be a positive decimal number with at most 3 decimals",
        )
    };
    let value: Decimal = text.trim().parse().map_err(|_| invalid())?;
    if value <= Decimal::ZERO || value.scale() > 3 {
        return Err(invalid());
    }
    i64::try_from(value * Decimal::from(1_000)).map_err(|_| invalid())
}

pub fn instant(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDateTime> {
    parse_instant(text)
        .map_err(|message| errors.push(FieldError::new(field, "invalid_time", message)))
        .ok()
}

/// A period must run forwards.
pub fn period(
    fields: (&str, &str),
    texts: (&str, &str),
    errors: &mut Vec<FieldError>,
) -> Option<(NaiveDateTime, NaiveDateTime)> {
    let start = instant(fields.0, texts.0, errors);
    let end = instant(fields.1, texts.1, errors);
    let (start, end) = (start?, end?);
    if end <= start {
        errors.push(FieldError::new(
            fields.1,
            "reversed_period",
            format!("must be after {}", fields.0),
        ));
        return None;
    }
    Some((start, end))
}

pub fn zone_code_is_valid(zone: &str) -> bool {
    // Checked: the first two bytes of untrusted text need not be whole characters.
    let Some((country, rest)) = zone.split_at_checked(zone.len().min(2)) else {
        return false;
    };
    crate::jurisdiction::is_country_code(country)
        && (rest.is_empty()
            || (rest.len() <= 4
                && rest
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateInput {
    /// `irec`, `go`, `rec` or `hourly`.
    pub scheme: String,
    /// The registry that issued it: `Evident`, `Statnett`, `M-RETS`, …
    #[validate(length(min = 1, max = 100))]
    pub registry: String,
    /// The registry's serial number or statement id.
    #[validate(length(min = 1, max = 200))]
    pub serial: String,
    #[validate(length(min = 1, max = 200))]
    pub device_id: String,
    /// `hydro`, `wind`, `solar`, `geothermal`, …
    #[validate(length(min = 1, max = 50))]
    pub technology: String,
    pub market_zone: String,
    pub country: String,
    pub generation_start: String,
    pub generation_end: String,
    /// A decimal amount in `unit`; stored in whole Wh, rounded down.
    pub volume: String,
    /// `Wh`, `kWh` or `MWh`.
    pub unit: String,
    /// The generator's emission rate in g CO2e/kWh; 0 when absent (renewables).
    pub g_per_kwh: Option<String>,
    pub expires_at: Option<String>,
    /// The id of a certificate this one corrects; that one is withdrawn.
    pub supersedes: Option<String>,
}

/// Checks one certificate; errors name `certificates[i].field`.
pub fn valid_certificate(
    index: usize,
    input: &CertificateInput,
    errors: &mut Vec<FieldError>,
) -> Option<NewCertificate> {
    let field = |name: &str| format!("certificates[{index}].{name}");
    let before = errors.len();
    let scheme = Scheme::parse(&input.scheme);
    if scheme.is_none() {
        errors.push(FieldError::new(
            field("scheme"),
            "invalid_enum",
            "must be irec, go, rec or hourly",
        ));
    }
    if !zone_code_is_valid(&input.market_zone) {
        errors.push(FieldError::new(
            field("market_zone"),
            "unknown_zone",
            "must be a country code, optionally followed by a zone (CA-QC, NO2)",
        ));
    }
    if !crate::jurisdiction::is_country_code(&input.country) {
        errors.push(FieldError::new(
            field("country"),
            "invalid_country",
            "must be an ISO 3166-1 alpha-2 code",
        ));
    }
    let generation = period(
        (&field("generation_start"), &field("generation_end")),
        (&input.generation_start, &input.generation_end),
        errors,
    );
    let factor = match input.unit.as_str() {
        "Wh" => Some(Decimal::ONE),
        "kWh" => Some(Decimal::from(1_000)),
        "MWh" => Some(Decimal::from(1_000_000)),
        _ => {
            errors.push(FieldError::new(
                field("unit"),
                "invalid_enum",
                "must be Wh, kWh or MWh",
            ));
            None
        }
    };
    let volume_wh = match (input.volume.trim().parse::<Decimal>(), factor) {
        (Ok(volume), Some(factor)) => {
            let wh = (volume * factor).floor();
            match i64::try_from(wh).ok().filter(|wh| *wh > 0) {
                Some(wh) => Some(wh),
                None => {
                    errors.push(FieldError::new(
                        field("volume"),
                        "out_of_range",
                        "must be at least 1 Wh once rounded down to whole Wh",
                    ));
                    None
                }
            }
        }
        (Err(_), _) => {
            errors.push(FieldError::new(
                field("volume"),
                "invalid_number",
                "not a decimal number",
            ));
            None
        }
        _ => None,
    };
    let g_per_kwh = match &input.g_per_kwh {
        None => Some(Decimal::ZERO),
        Some(text) => match text.trim().parse::<Decimal>() {
            Ok(value) if !value.is_sign_negative() && value <= Decimal::from(2_000) => Some(value),
            _ => {
                errors.push(FieldError::new(
                    field("g_per_kwh"),
                    "out_of_range",
                    "must be a decimal from 0 to 2000",
                ));
                None
            }
        },
    };
    let expires_at = input
        .expires_at
        .as_deref()
        .map(|text| instant(&field("expires_at"), text, errors));
    let supersedes = match input
        .supersedes
        .as_deref()
        .map(|id| parse_uuid("supersedes", id))
    {
        Some(Err(_)) => {
            errors.push(FieldError::new(
                field("supersedes"),
                "invalid_id",
                "not a UUID",
            ));
            None
        }
        other => other.and_then(Result::ok),
    };
    if errors.len() != before {
        return None;
    }
    let (generation_start, generation_end) = generation?;
    Some(NewCertificate {
        scheme: scheme?,
        registry: input.registry.clone(),
        serial: input.serial.clone(),
        device_id: input.device_id.clone(),
        technology: input.technology.clone(),
        market_zone: input.market_zone.clone(),
        country: input.country.clone(),
        generation_start,
        generation_end,
        volume_wh: volume_wh?,
        g_per_kwh: g_per_kwh?,
        expires_at: expires_at.flatten(),
        supersedes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_codes_are_a_country_and_an_optional_suffix() {
        for zone in ["NO", "NO2", "CA-QC", "KZ"] {
            assert!(zone_code_is_valid(zone), "{zone}");
        }
        // Found by fuzzing: the first two bytes of "!\u{7248e}…" are not whole characters.
        for zone in [
            "",
            "X",
            "no2",
            "CA-QCXX",
            "!\u{7248e}\u{1002fa}D",
            "é",
            "NOé",
        ] {
            assert!(!zone_code_is_valid(zone), "{zone}");
        }
    }
}
