//! What an applicant submits: personal data and documents, checked against what the target tier
//! of their jurisdiction requires.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use super::rules::KycRules;
use super::{DocumentKind, Tier};

/// The personal data of an application. Stored encrypted as one JSON document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalData {
    /// The full legal name as on the identity document, in its own script (张伟, Müller, O'Brien).
    #[validate(custom(function = "validate_person_name"))]
    pub legal_name: String,
    /// The name in Latin letters, when the legal name is in another script (Zhang Wei).
    #[validate(custom(function = "validate_person_name"))]
    pub latin_name: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub date_of_birth: NaiveDate,
    /// ISO 3166-1 alpha-2.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub nationality: String,
    /// ISO 3166-1 alpha-2 country of residence.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub residence: String,
    /// The residential address (tier 2 and above).
    #[validate(length(min = 5, max = 500))]
    pub address: Option<String>,
    /// The identity document's details (tier 2 and above).
    #[validate(nested)]
    pub identity_document: Option<IdentityDocument>,
    /// The applicant declares being a politically exposed person, or a family member or close
    /// associate of one.
    #[serde(default)]
    pub pep_declared: bool,
    #[validate(length(min = 2, max = 200))]
    pub occupation: Option<String>,
    /// Where the money used on the platform comes from (tier 3).
    #[validate(length(min = 10, max = 4000))]
    pub source_of_funds: Option<String>,
    /// How the applicant's overall wealth was built (tier 3).
    #[validate(length(min = 10, max = 4000))]
    pub source_of_wealth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityDocument {
    /// `passport`, `national_id`, `driving_licence` or `residence_permit`.
    #[validate(custom(function = "validate_identity_document_type"))]
    #[serde(rename = "type")]
    pub document_type: String,
    #[validate(
        length(min = 4, max = 32),
        custom(function = "validate_document_number")
    )]
    pub number: String,
    /// ISO 3166-1 alpha-2 country that issued it.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub issuing_country: String,
    #[schema(value_type = String, format = Date)]
    pub expires_on: NaiveDate,
}

pub const IDENTITY_DOCUMENT_TYPES: [&str; 4] = [
    "passport",
    "national_id",
    "driving_licence",
    "residence_permit",
];

fn validate_identity_document_type(value: &str) -> Result<(), ValidationError> {
    if IDENTITY_DOCUMENT_TYPES.contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new("one_of")
            .with_message(format!("must be one of {}", IDENTITY_DOCUMENT_TYPES.join(", ")).into()))
    }
}

fn validate_document_number(value: &str) -> Result<(), ValidationError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
    {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_document_number")
            .with_message("only Latin letters, digits, spaces and hyphens".into()))
    }
}

/// A person's name in any script: letters and combining marks, with spaces, hyphens,
/// apostrophes, full stops and the middle dot of transliterated names (玛丽·居里). No digits,
/// no symbols, at least one letter.
pub fn validate_person_name(name: &str) -> Result<(), ValidationError> {
    let trimmed = name.trim();
    let length = trimmed.chars().count();
    let invalid = |message: &str| {
        Err(ValidationError::new("invalid_name").with_message(message.to_string().into()))
    };
    if length == 0 || length > 200 {
        return invalid("must have between 1 and 200 characters");
    }
    if trimmed != name || name.contains("  ") {
        return invalid("no leading, trailing or double spaces");
    }
    let allowed = |c: char| {
        c.is_alphabetic()
            || is_combining_mark(c)
            || matches!(c, ' ' | '-' | '\'' | '’' | '.' | '·' | '・' | ',')
    };
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return invalid(&format!(
            "`{bad}` does not belong in a name; letters of any script, spaces, hyphens and apostrophes only"
        ));
    }
    if !name.chars().any(char::is_alphabetic) {
        return invalid("must contain a letter");
    }
    Ok(())
}

/// Unicode combining marks used by Indic, Thai and decomposed Latin names.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0E31..=0x0E3A
        | 0x0E47..=0x0E4E | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// One thing an application still lacks, by field or document name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MissingItem {
    /// A field (`address`, `identity_document`) or document kind (`selfie`).
    pub item: String,
    pub message: String,
}

impl MissingItem {
    pub fn new(item: &str, message: impl Into<String>) -> Self {
        Self {
            item: item.to_string(),
            message: message.into(),
        }
    }
}

/// Every item the target tier requires that the application lacks, and every date that is not
/// plausible. `documents` are the kinds uploaded with it.
pub fn check_requirements(
    data: &PersonalData,
    documents: &[DocumentKind],
    target: Tier,
    rules: &KycRules,
    today: NaiveDate,
) -> Vec<MissingItem> {
    let mut problems = Vec::new();
    if let Err(error) = crate::users::validate_birth_date(&data.date_of_birth, today) {
        problems.push(MissingItem::new(
            "date_of_birth",
            error.message.unwrap_or_default(),
        ));
    } else if years_between(data.date_of_birth, today) < 18 {
        problems.push(MissingItem::new(
            "date_of_birth",
            "the applicant must be at least 18 years old",
        ));
    }
    if target >= Tier::VERIFIED {
        if data.address.is_none() {
            problems.push(MissingItem::new(
                "address",
                "the residential address is required from tier 2",
            ));
        }
        match &data.identity_document {
            None => problems.push(MissingItem::new(
                "identity_document",
                "the identity document's type, number, issuing country and expiry are required from tier 2",
            )),
            Some(document) if document.expires_on <= today => problems.push(MissingItem::new(
                "identity_document.expires_on",
                format!("the identity document expired on {}", document.expires_on),
            )),
            Some(document) if document.expires_on > today + chrono::Days::new(366 * 15) => {
                problems.push(MissingItem::new(
                    "identity_document.expires_on",
                    "no identity document is valid for more than 15 years",
                ))
            }
            Some(_) => {}
        }
    }
    if target >= Tier::ENHANCED {
        if data.source_of_funds.is_none() {
            problems.push(MissingItem::new(
                "source_of_funds",
                "a description of the source of funds is required for tier 3",
            ));
        }
        if data.source_of_wealth.is_none() {
            problems.push(MissingItem::new(
                "source_of_wealth",
                "a description of the source of wealth is required for tier 3",
            ));
        }
    }
    for required in rules.documents_for(target) {
        if !documents.contains(&required) {
            problems.push(MissingItem::new(
                required.as_str(),
                format!(
                    "{} is required for tier {}",
                    required.description(),
                    target.number()
                ),
            ));
        }
    }
    problems
}

fn years_between(born: NaiveDate, today: NaiveDate) -> u32 {
    today.years_since(born).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_script_are_accepted() {
        for name in [
            "张伟",
            "Müller",
            "O'Brien",
            "Jean-Luc Picard",
            "Мария Иванова",
            "محمد علي",
            "玛丽·居里",
            "Nguyễn Văn An",
            "山田・太郎",
            "Dr. Ana María",
            "สมชาย ใจดี",
        ] {
            assert!(validate_person_name(name).is_ok(), "{name}");
        }
        for name in [
            "",
            " Anna",
            "Anna  Smith",
            "R2D2",
            "<script>",
            "Anna\nSmith",
            "...",
            "@x",
        ] {
            assert!(validate_person_name(name).is_err(), "{name:?}");
        }
    }
}
