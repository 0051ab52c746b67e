//! Customer risk rating: low, medium or high from the applicant's countries against the FATF
//! lists, PEP status, screening hits and activity. Every factor is kept with its explanation, so
//! an officer sees why, and the rating sets the review interval and the queue priority.

use std::collections::BTreeSet;
use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RiskLevel;

/// The FATF lists of `jurisdictions/lists/fatf.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountryRisk {
    pub as_of: String,
    pub call_for_action: BTreeSet<String>,
    pub increased_monitoring: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryRiskFile {
    as_of: String,
    call_for_action: Vec<String>,
    increased_monitoring: Vec<String>,
}

impl CountryRisk {
    pub const FILE: &'static str = "lists/fatf.toml";

    pub fn load(directory: &Path) -> Result<CountryRisk, String> {
        let path = directory.join(Self::FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Self::parse(&text).map_err(|message| format!("{}: {message}", path.display()))
    }

    pub fn parse(text: &str) -> Result<CountryRisk, String> {
        let file: CountryRiskFile = toml::from_str(text).map_err(|error| error.to_string())?;
        let check = |list: &str, codes: Vec<String>| -> Result<BTreeSet<String>, String> {
            for code in &codes {
                if !crate::jurisdiction::is_country_code(code) {
                    return Err(format!(
                        "{list}: `{code}` is not an ISO 3166-1 alpha-2 code"
                    ));
                }
            }
            Ok(codes.into_iter().collect())
        };
        let risk = CountryRisk {
            as_of: file.as_of,
            call_for_action: check("call_for_action", file.call_for_action)?,
            increased_monitoring: check("increased_monitoring", file.increased_monitoring)?,
        };
        if let Some(both) = risk
            .call_for_action
            .intersection(&risk.increased_monitoring)
            .next()
        {
            return Err(format!("`{both}` is on both lists"));
        }
        Ok(risk)
    }
}

/// What the rating looks at.
#[derive(Debug, Clone)]
pub struct RiskInputs<'a> {
    pub nationality: &'a str,
    pub residence: &'a str,
    pub pep_declared: bool,
    /// Hits on the PEP list that are open or confirmed.
    pub pep_hits: usize,
    /// Hits on sanctions lists that are open or confirmed.
    pub sanctions_hits: usize,
    /// Payouts received in the last 90 days, in USD.
    pub recent_payouts_usd: Decimal,
    pub high_activity_usd: Decimal,
}

/// One reason for the rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RiskFactor {
    /// Stable code: `fatf_call_for_action`, `fatf_increased_monitoring`, `pep`,
    /// `possible_pep`, `sanctions_hit`, `high_activity`.
    pub code: String,
    #[schema(value_type = String)]
    pub level: RiskLevel,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RiskRating {
    #[schema(value_type = String)]
    pub level: RiskLevel,
    pub factors: Vec<RiskFactor>,
}

/// Rates a customer: the highest level among the factors, low when there is none.
pub fn rate(inputs: &RiskInputs, countries: &CountryRisk) -> RiskRating {
    let mut factors = Vec::new();
    let mut factor = |code: &str, level: RiskLevel, explanation: String| {
        factors.push(RiskFactor {
            code: code.to_string(),
            level,
            explanation,
        })
    };
    let mut seen = BTreeSet::new();
    for (role, country) in [
        ("nationality", inputs.nationality),
        ("residence", inputs.residence),
    ] {
        if !seen.insert(country) {
            continue;
        }
        if countries.call_for_action.contains(country) {
            factor(
                "fatf_call_for_action",
                RiskLevel::High,
                format!(
                    "{role} {country} is a FATF high-risk jurisdiction subject to a call for action (as of {})",
                    countries.as_of
                ),
            );
        } else if countries.increased_monitoring.contains(country) {
            factor(
                "fatf_increased_monitoring",
                RiskLevel::Medium,
                format!(
                    "{role} {country} is under FATF increased monitoring (as of {})",
                    countries.as_of
                ),
            );
        }
    }
    if inputs.pep_declared {
        factor(
            "pep",
            RiskLevel::High,
            "the applicant declares being a politically exposed person or a relative or close associate of one".into(),
        );
    }
    if inputs.pep_hits > 0 {
        factor(
            "possible_pep",
            RiskLevel::High,
            format!(
                "{} open or confirmed hit(s) on the PEP list",
                inputs.pep_hits
            ),
        );
    }
    if inputs.sanctions_hits > 0 {
        factor(
            "sanctions_hit",
            RiskLevel::High,
            format!(
                "{} open or confirmed hit(s) on a sanctions list",
                inputs.sanctions_hits
            ),
        );
    }
    if inputs.recent_payouts_usd > inputs.high_activity_usd {
        factor(
            "high_activity",
            RiskLevel::Medium,
            format!(
                "payouts of {} USD in the last 90 days exceed {} USD",
                inputs.recent_payouts_usd.round_dp(2),
                inputs.high_activity_usd
            ),
        );
    }
    let level = factors
        .iter()
        .map(|factor| factor.level)
        .max()
        .unwrap_or(RiskLevel::Low);
    RiskRating { level, factors }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn countries() -> CountryRisk {
        CountryRisk::load(&crate::jurisdiction::rules::default_directory()).unwrap()
    }

    fn inputs<'a>(nationality: &'a str, residence: &'a str) -> RiskInputs<'a> {
        RiskInputs {
            nationality,
            residence,
            pep_declared: false,
            pep_hits: 0,
            sanctions_hits: 0,
            recent_payouts_usd: Decimal::ZERO,
            high_activity_usd: Decimal::from(100_000),
        }
    }

    #[test]
    fn countries_pep_hits_and_activity_raise_the_rating() {
        let countries = countries();
        assert_eq!(rate(&inputs("CH", "HK"), &countries).level, RiskLevel::Low);
        let grey = rate(&inputs("VN", "SG"), &countries);
        assert_eq!(grey.level, RiskLevel::Medium);
        assert_eq!(grey.factors[0].code, "fatf_increased_monitoring");
        assert_eq!(rate(&inputs("DE", "IR"), &countries).level, RiskLevel::High);
        let pep = RiskInputs {
            pep_declared: true,
            ..inputs("GB", "GB")
        };
        assert_eq!(rate(&pep, &countries).level, RiskLevel::High);
        let active = RiskInputs {
            recent_payouts_usd: Decimal::from(250_000),
            ..inputs("GB", "GB")
        };
        assert_eq!(rate(&active, &countries).level, RiskLevel::Medium);
    }

    #[test]
    fn the_list_file_is_checked() {
        assert!(countries().call_for_action.contains("KP"));
        let bad = CountryRisk::parse(
            "as_of = \"x\"\ncall_for_action = [\"XX\"]\nincreased_monitoring = []",
        );
        assert!(bad.unwrap_err().contains("XX"));
    }
}
