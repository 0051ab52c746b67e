//! The KYC rules of one jurisdiction, as its `jurisdictions/<CODE>.toml` `[kyc]` section states
//! them: tiers with their withdrawal limits, documents and review SLA, and the periodic review.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{DocumentKind, RiskLevel, Tier};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KycRulesFile {
    review_interval_months: ReviewIntervals,
    review_grace_days: u32,
    lapsed_tier: u8,
    document_expiry_notice_days: u32,
    /// Payouts worth more than this (USD, last 90 days) make activity a risk factor.
    #[serde(with = "rust_decimal::serde::str")]
    high_activity_usd: Decimal,
    tiers: Vec<TierFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewIntervals {
    pub low: u32,
    pub medium: u32,
    pub high: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    tier: u8,
    name: String,
    review_sla_hours: u32,
    limits: Limits,
    documents: Vec<String>,
}

/// Withdrawal limits in the jurisdiction's currency; days and months are local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(with = "rust_decimal::serde::str")]
    pub single: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub daily: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub monthly: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierRules {
    pub tier: Tier,
    pub name: String,
    pub review_sla_hours: u32,
    pub limits: Limits,
    /// The documents this tier adds to those of the tiers below it.
    pub documents: Vec<DocumentKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KycRules {
    pub review_interval_months: ReviewIntervals,
    pub review_grace_days: u32,
    /// The effective tier while a periodic review is overdue past its grace period.
    pub lapsed_tier: Tier,
    pub document_expiry_notice_days: u32,
    pub high_activity_usd: Decimal,
    /// Tiers 0 to 3, in order.
    pub tiers: Vec<TierRules>,
}

impl KycRules {
    /// Validates the `[kyc]` section; the message names the offending key.
    pub fn from_file(file: KycRulesFile) -> Result<KycRules, String> {
        let mut tiers = Vec::with_capacity(4);
        for (expected, tier) in file.tiers.into_iter().enumerate() {
            if usize::from(tier.tier) != expected {
                return Err(format!(
                    "kyc.tiers[{expected}] is tier {}; the tiers must be 0, 1, 2 and 3 in order",
                    tier.tier
                ));
            }
            let documents = tier
                .documents
                .iter()
                .map(|name| {
                    DocumentKind::parse(name).ok_or_else(|| {
                        format!(
                            "kyc.tiers[{expected}].documents: unknown document `{name}` (known: {})",
                            DocumentKind::ALL.map(DocumentKind::as_str).join(", ")
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            tiers.push(TierRules {
                tier: Tier::new(tier.tier).ok_or("kyc.tiers: a tier above 3")?,
                name: tier.name,
                review_sla_hours: tier.review_sla_hours,
                limits: tier.limits,
                documents,
            });
        }
        if tiers.len() != 4 {
            return Err(format!(
                "kyc.tiers: tier {} is missing; tiers 0, 1, 2 and 3 are all required",
                tiers.len()
            ));
        }
        let zero = Limits {
            single: Decimal::ZERO,
            daily: Decimal::ZERO,
            monthly: Decimal::ZERO,
        };
        if tiers[0].limits != zero || !tiers[0].documents.is_empty() {
            return Err(
                "kyc.tiers[0]: tier 0 may not withdraw (limits 0) and needs no documents".into(),
            );
        }
        for pair in tiers.windows(2) {
            let (lower, higher) = (&pair[0], &pair[1]);
            let at = higher.tier.number();
            for (name, low, high) in [
                ("single", lower.limits.single, higher.limits.single),
                ("daily", lower.limits.daily, higher.limits.daily),
                ("monthly", lower.limits.monthly, higher.limits.monthly),
            ] {
                if high <= low {
                    return Err(format!(
                        "kyc.tiers[{at}].limits.{name} {high} must be greater than tier {}'s {low}: limits increase with the tier",
                        at - 1
                    ));
                }
            }
            if higher.review_sla_hours == 0 {
                return Err(format!("kyc.tiers[{at}].review_sla_hours must be positive"));
            }
        }
        for tier in &tiers[1..] {
            let limits = tier.limits;
            if limits.single > limits.daily || limits.daily > limits.monthly {
                return Err(format!(
                    "kyc.tiers[{}].limits: single ({}) ≤ daily ({}) ≤ monthly ({}) must hold",
                    tier.tier.number(),
                    limits.single,
                    limits.daily,
                    limits.monthly
                ));
            }
        }
        let mut seen = Vec::new();
        for tier in &tiers {
            for document in &tier.documents {
                if seen.contains(document) {
                    return Err(format!(
                        "kyc.tiers[{}].documents: `{}` is already required by a lower tier",
                        tier.tier.number(),
                        document.as_str()
                    ));
                }
                seen.push(*document);
            }
        }
        let intervals = file.review_interval_months;
        if intervals.high == 0
            || intervals.high > intervals.medium
            || intervals.medium > intervals.low
        {
            return Err(format!(
                "kyc.review_interval_months: high ({}) ≤ medium ({}) ≤ low ({}) must hold, all positive",
                intervals.high, intervals.medium, intervals.low
            ));
        }
        let lapsed_tier = Tier::new(file.lapsed_tier)
            .filter(|tier| *tier < Tier::ENHANCED)
            .ok_or_else(|| format!("kyc.lapsed_tier {} must be 0, 1 or 2", file.lapsed_tier))?;
        if file.high_activity_usd <= Decimal::ZERO {
            return Err("kyc.high_activity_usd must be positive".into());
        }
        Ok(KycRules {
            review_interval_months: intervals,
            review_grace_days: file.review_grace_days,
            lapsed_tier,
            document_expiry_notice_days: file.document_expiry_notice_days,
            high_activity_usd: file.high_activity_usd,
            tiers,
        })
    }

    pub fn tier(&self, tier: Tier) -> &TierRules {
        &self.tiers[usize::from(tier.number())]
    }

    /// Every document an application for `tier` must carry: its own and the lower tiers'.
    pub fn documents_for(&self, tier: Tier) -> Vec<DocumentKind> {
        self.tiers[..=usize::from(tier.number())]
            .iter()
            .flat_map(|rules| rules.documents.iter().copied())
            .collect()
    }

    pub fn review_interval_months(&self, risk: RiskLevel) -> u32 {
        match risk {
            RiskLevel::Low => self.review_interval_months.low,
            RiskLevel::Medium => self.review_interval_months.medium,
            RiskLevel::High => self.review_interval_months.high,
        }
    }
}
