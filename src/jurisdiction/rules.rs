//! `jurisdictions/<CODE>.toml`: the rules per jurisdiction, loaded and validated at start. A file
//! that fails validation stops start-up with the file and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::aml::monitoring::rules::MonitoringRules;
use crate::kyc::risk::CountryRisk;
use crate::kyc::rules::{KycRules, KycRulesFile};
use crate::reports::sandbox::ReportRules;
use crate::tax::rules::{TaxRules, TaxRulesFile};
use crate::withdrawals::WithdrawalRules;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JurisdictionFile {
    code: String,
    name: String,
    time_zone: String,
    currency: String,
    screening: ScreeningRules,
    withdrawals: WithdrawalRules,
    monitoring: MonitoringRules,
    kyc: KycRulesFile,
    tax: TaxRulesFile,
    /// Only jurisdictions whose regulator receives periodic sandbox reports have this.
    reports: Option<ReportRules>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningRules {
    /// A name scoring at or above this is a hit.
    pub threshold: f64,
    /// Dismissing a hit at or above this score needs a second, senior officer.
    pub four_eyes_score: f64,
}

#[derive(Debug, Clone)]
pub struct Jurisdiction {
    pub code: String,
    pub name: String,
    pub time_zone: chrono_tz::Tz,
    pub currency: String,
    pub screening: ScreeningRules,
    pub withdrawals: WithdrawalRules,
    pub monitoring: MonitoringRules,
    pub kyc: KycRules,
    pub tax: TaxRules,
    pub reports: Option<ReportRules>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct JurisdictionError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Jurisdictions {
    by_code: BTreeMap<String, Jurisdiction>,
    /// The FATF lists of `lists/fatf.toml`, for the KYC risk rating.
    pub country_risk: CountryRisk,
}

/// Where the files are: `jurisdictions/` in the working directory, else the source tree's.
pub fn default_directory() -> PathBuf {
    let local = PathBuf::from("jurisdictions");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/jurisdictions"))
    }
}

/// Validates one file's text; `expected_code` is its file name.
pub fn parse(expected_code: &str, text: &str) -> Result<Jurisdiction, String> {
    let file: JurisdictionFile = toml::from_str(text).map_err(|error| error.to_string())?;
    if file.code != expected_code {
        return Err(format!(
            "code `{}` does not match the file name {expected_code}.toml",
            file.code
        ));
    }
    if !super::is_country_code(&file.code) {
        return Err(format!(
            "code `{}` is not an ISO 3166-1 alpha-2 code",
            file.code
        ));
    }
    let time_zone: chrono_tz::Tz = file
        .time_zone
        .parse()
        .map_err(|_| format!("time_zone `{}` is not an IANA zone", file.time_zone))?;
    if file.currency.len() != 3 || !file.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "currency `{}` is not an ISO 4217 code",
            file.currency
        ));
    }
    let rules = file.screening;
    if !(0.5..=1.0).contains(&rules.threshold) {
        return Err(format!(
            "screening.threshold {} must be between 0.5 and 1.0",
            rules.threshold
        ));
    }
    if !(rules.threshold..=1.0).contains(&rules.four_eyes_score) {
        return Err(format!(
            "screening.four_eyes_score {} must be between the threshold ({}) and 1.0",
            rules.four_eyes_score, rules.threshold
        ));
    }
    let kyc = KycRules::from_file(file.kyc)?;
    file.withdrawals.validate()?;
    file.monitoring.validate()?;
    let tax = TaxRules::from_file(file.tax)?;
    if let Some(reports) = &file.reports {
        reports.validate()?;
    }
    Ok(Jurisdiction {
        code: file.code,
        name: file.name,
        time_zone,
        currency: file.currency,
        screening: rules,
        withdrawals: file.withdrawals,
        monitoring: file.monitoring,
        kyc,
        tax,
        reports: file.reports,
    })
}

impl Jurisdictions {
    /// The files in [`default_directory`].
    pub fn load_default() -> Result<Jurisdictions, JurisdictionError> {
        Self::load(&default_directory())
    }

    pub fn load(directory: &Path) -> Result<Jurisdictions, JurisdictionError> {
        let error = |file: &Path, message: String| JurisdictionError {
            file: file.display().to_string(),
            message,
        };
        let entries = std::fs::read_dir(directory)
            .map_err(|e| error(directory, format!("cannot read the directory: {e}")))?;
        let mut by_code = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(|e| error(directory, e.to_string()))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let code = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e.to_string()))?;
            let jurisdiction = parse(&code, &text).map_err(|message| error(&path, message))?;
            by_code.insert(code, jurisdiction);
        }
        if by_code.is_empty() {
            return Err(error(directory, "no jurisdiction files".into()));
        }
        let country_risk = CountryRisk::load(directory).map_err(|message| JurisdictionError {
            file: directory.join(CountryRisk::FILE).display().to_string(),
            message,
        })?;
        Ok(Jurisdictions {
            by_code,
            country_risk,
        })
    }

    pub fn get(&self, code: &str) -> Option<&Jurisdiction> {
        self.by_code.get(code)
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.by_code.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = include_str!("../../jurisdictions/HK.toml");

    #[test]
    fn every_shipped_file_is_valid() {
        let loaded = Jurisdictions::load_default().unwrap();
        for code in [
            "CN", "HK", "SG", "US", "GB", "DE", "CH", "KZ", "JP", "AU", "CA",
        ] {
            assert!(loaded.get(code).is_some(), "{code}");
        }
    }

    #[test]
    fn refuses_with_a_precise_message() {
        assert!(parse("HK", VALID).is_ok());
        let zone = parse("HK", &VALID.replace("Asia/Hong_Kong", "Asia/Atlantis")).unwrap_err();
        assert!(zone.contains("Asia/Atlantis"), "{zone}");
        let code = parse("SG", VALID).unwrap_err();
        assert!(code.contains("SG.toml"), "{code}");
        let four_eyes = parse(
            "HK",
            &VALID.replace("four_eyes_score = 0.90", "four_eyes_score = 0.60"),
        )
        .unwrap_err();
        assert!(four_eyes.contains("four_eyes_score"), "{four_eyes}");
        let unknown = parse("HK", &format!("typo = 1\n{VALID}")).unwrap_err();
        assert!(unknown.contains("typo"), "{unknown}");
    }

    #[test]
    fn kyc_tiers_are_checked() {
        let missing = VALID.rfind("[[kyc.tiers]]").unwrap();
        let tax = VALID.find("\n# Tax on mining income").unwrap();
        let error = parse("HK", &format!("{}{}", &VALID[..missing], &VALID[tax..])).unwrap_err();
        assert!(error.contains("tier 3 is missing"), "{error}");
        let flat = VALID.replace(
            "single = \"400000\", daily = \"800000\"",
            "single = \"8000\", daily = \"800000\"",
        );
        let error = parse("HK", &flat).unwrap_err();
        assert!(
            error.contains("kyc.tiers[2].limits.single 8000 must be greater than tier 1's 8000"),
            "{error}"
        );
        let unknown = parse("HK", &VALID.replace("\"selfie\"", "\"horoscope\"")).unwrap_err();
        assert!(
            unknown.contains("unknown document `horoscope`"),
            "{unknown}"
        );
    }
}
