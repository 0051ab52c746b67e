//! Transaction-monitoring rules as data (`[[monitoring.rules]]` in a jurisdiction file) and their
//! evaluation against the facts of one withdrawal. Free of SQL: the caller gathers the facts.

use chrono::{Duration, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// What a hit does to the withdrawal that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// An alert for the officers; the decision is unchanged.
    Alert,
    Hold,
    Reject,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Alert => "alert",
            RuleAction::Hold => "hold",
            RuleAction::Reject => "reject",
        }
    }
}

/// When a rule fires. Amounts are in the jurisdiction's currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// One withdrawal at or above an amount.
    LargeWithdrawal {
        #[serde(with = "rust_decimal::serde::str")]
        at_least: Decimal,
    },
    /// More than `max_count` withdrawals, or more than `max_amount` in total, within the window
    /// (this one included).
    Velocity {
        window_hours: u32,
        max_count: u32,
        #[serde(with = "rust_decimal::serde::str")]
        max_amount: Decimal,
    },
    /// At least `min_count` withdrawals within the window (this one included) each just under
    /// `threshold`: at or above `threshold × (1 − band_percent/100)` and below `threshold`.
    Structuring {
        window_hours: u32,
        #[serde(with = "rust_decimal::serde::str")]
        threshold: Decimal,
        #[serde(with = "rust_decimal::serde::str")]
        band_percent: Decimal,
        min_count: u32,
    },
    /// At least `min_share_percent` of the withdrawal is paid from payouts that arrived within the
    /// last `within_hours`.
    RapidInOut {
        within_hours: u32,
        #[serde(with = "rust_decimal::serde::str")]
        min_share_percent: Decimal,
    },
    /// The first withdrawal to an address, at or above an amount.
    NewAddress {
        #[serde(with = "rust_decimal::serde::str")]
        at_least: Decimal,
    },
    /// The first withdrawal after `dormant_days` without any (or since the account opened).
    DormantReactivation { dormant_days: u32 },
    /// A withdrawal by a user rated at one of `risk_levels`, or (with `review_due`) whose periodic
    /// KYC review is due.
    UserRisk {
        risk_levels: Vec<String>,
        review_due: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub version: u32,
    pub severity: Severity,
    pub action: RuleAction,
    pub condition: Condition,
}

/// The `[monitoring]` section of a jurisdiction file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringRules {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl MonitoringRules {
    /// Checks ids (unique, lowercase words joined by `-`), versions, windows and percentages.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let at = format!("monitoring.rules[{index}]");
            let id_ok = !rule.id.is_empty()
                && rule
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(format!(
                    "{at}.id `{}` must be lowercase letters, digits and `-`",
                    rule.id
                ));
            }
            if !seen.insert(rule.id.as_str()) {
                return Err(format!("{at}.id `{}` is used twice", rule.id));
            }
            if rule.version == 0 {
                return Err(format!("{at}.version must be 1 or more"));
            }
            let positive = |name: &str, value: Decimal| {
                if value > Decimal::ZERO {
                    Ok(())
                } else {
                    Err(format!("{at}.condition.{name} must be greater than 0"))
                }
            };
            let window = |name: &str, hours: u32| {
                if (1..=24 * 366).contains(&hours) {
                    Ok(())
                } else {
                    Err(format!(
                        "{at}.condition.{name} must be between 1 and 8784 hours"
                    ))
                }
            };
            let percent = |name: &str, value: Decimal| {
                if value > Decimal::ZERO && value <= Decimal::ONE_HUNDRED {
                    Ok(())
                } else {
                    Err(format!(
                        "{at}.condition.{name} must be above 0 and at most 100"
                    ))
                }
            };
            match &rule.condition {
                Condition::LargeWithdrawal { at_least } | Condition::NewAddress { at_least } => {
                    if *at_least < Decimal::ZERO {
                        return Err(format!("{at}.condition.at_least must not be negative"));
                    }
                }
                Condition::Velocity {
                    window_hours,
                    max_count,
                    max_amount,
                } => {
                    window("window_hours", *window_hours)?;
                    positive("max_amount", *max_amount)?;
                    if *max_count == 0 {
                        return Err(format!("{at}.condition.max_count must be 1 or more"));
                    }
                }
                Condition::Structuring {
                    window_hours,
                    threshold,
                    band_percent,
                    min_count,
                } => {
                    window("window_hours", *window_hours)?;
                    positive("threshold", *threshold)?;
                    percent("band_percent", *band_percent)?;
                    if *min_count < 2 {
                        return Err(format!("{at}.condition.min_count must be 2 or more"));
                    }
                }
                Condition::RapidInOut {
                    within_hours,
                    min_share_percent,
                } => {
                    window("within_hours", *within_hours)?;
                    percent("min_share_percent", *min_share_percent)?;
                }
                Condition::DormantReactivation { dormant_days } => {
                    if *dormant_days == 0 {
                        return Err(format!("{at}.condition.dormant_days must be 1 or more"));
                    }
                }
                Condition::UserRisk {
                    risk_levels,
                    review_due,
                } => {
                    if let Some(level) = risk_levels
                        .iter()
                        .find(|level| !["low", "medium", "high"].contains(&level.as_str()))
                    {
                        return Err(format!(
                            "{at}.condition.risk_levels: `{level}` is not low, medium or high"
                        ));
                    }
                    if risk_levels.is_empty() && !review_due {
                        return Err(format!(
                            "{at}.condition needs risk_levels or review_due = true"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The longest look-back any rule needs, so the caller loads history once.
    pub fn look_back(&self) -> Duration {
        let hours = self
            .rules
            .iter()
            .map(|rule| match &rule.condition {
                Condition::Velocity { window_hours, .. }
                | Condition::Structuring { window_hours, .. } => *window_hours,
                Condition::RapidInOut { within_hours, .. } => *within_hours,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        Duration::hours(i64::from(hours))
    }
}

/// An earlier withdrawal of the user (approved, held or released).
#[derive(Debug, Clone, PartialEq)]
pub struct PastWithdrawal {
    pub requested_at: NaiveDateTime,
    pub amount_local: Option<Decimal>,
}

/// What the rules look at for one withdrawal.
#[derive(Debug, Clone)]
pub struct Activity<'a> {
    pub now: NaiveDateTime,
    pub currency: &'a str,
    /// This withdrawal in the jurisdiction's currency; rules on amounts skip it when unknown.
    pub amount_local: Option<Decimal>,
    pub amount_atoms: i64,
    pub available_atoms: i64,
    /// The user's earlier withdrawals within [`MonitoringRules::look_back`], any asset.
    pub recent_withdrawals: &'a [PastWithdrawal],
    /// Payouts of this asset credited to the user, with their time, within the look-back.
    pub recent_payouts: &'a [(NaiveDateTime, i64)],
    pub address_used_before: bool,
    /// The user's latest earlier withdrawal, however old.
    pub last_withdrawal_at: Option<NaiveDateTime>,
    pub account_opened_at: NaiveDateTime,
    pub risk_level: Option<&'a str>,
    pub review_due: bool,
}

/// One rule that fired, with the sentence an officer reads and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    pub rule_id: String,
    pub version: u32,
    pub severity: Severity,
    pub action: RuleAction,
    pub message: String,
    pub details: serde_json::Value,
}

impl RuleHit {
    /// The reason code a hit gives a decision.
    pub fn code(&self) -> String {
        format!("aml_rule:{}", self.rule_id)
    }
}

/// Every rule of `rules` that `activity` triggers.
pub fn evaluate(rules: &MonitoringRules, activity: &Activity) -> Vec<RuleHit> {
    rules
        .rules
        .iter()
        .filter_map(|rule| {
            check(&rule.condition, activity).map(|(message, details)| RuleHit {
                rule_id: rule.id.clone(),
                version: rule.version,
                severity: rule.severity,
                action: rule.action,
                message,
                details,
            })
        })
        .collect()
}

fn within<'a>(activity: &'a Activity<'a>, hours: u32) -> impl Iterator<Item = &'a PastWithdrawal> {
    let since = activity.now - Duration::hours(i64::from(hours));
    activity
        .recent_withdrawals
        .iter()
        .filter(move |past| past.requested_at > since && past.requested_at <= activity.now)
}

fn check(condition: &Condition, activity: &Activity) -> Option<(String, serde_json::Value)> {
    let currency = activity.currency;
    match condition {
        Condition::LargeWithdrawal { at_least } => {
            let amount = activity.amount_local?;
            (amount >= *at_least).then(|| {
                (
                    format!("a single withdrawal of {amount} {currency} (at least {at_least} {currency})"),
                    serde_json::json!({ "amount": amount.to_string(), "at_least": at_least.to_string() }),
                )
            })
        }
        Condition::Velocity {
            window_hours,
            max_count,
            max_amount,
        } => {
            let earlier: Vec<&PastWithdrawal> = within(activity, *window_hours).collect();
            let count = earlier.len() + 1;
            let total = earlier
                .iter()
                .filter_map(|past| past.amount_local)
                .sum::<Decimal>()
                + activity.amount_local.unwrap_or_default();
            let too_many = count > *max_count as usize;
            let too_much = total > *max_amount;
            (too_many || too_much).then(|| {
                (
                    format!(
                        "{count} withdrawals totalling {total} {currency} within {window_hours} h (at most {max_count} and {max_amount} {currency})"
                    ),
                    serde_json::json!({
                        "count": count, "total": total.to_string(), "window_hours": window_hours,
                        "max_count": max_count, "max_amount": max_amount.to_string(),
                    }),
                )
            })
        }
        Condition::Structuring {
            window_hours,
            threshold,
            band_percent,
            min_count,
        } => {
            let floor = *threshold * (Decimal::ONE_HUNDRED - *band_percent) / Decimal::ONE_HUNDRED;
            let just_under = |amount: Decimal| amount >= floor && amount < *threshold;
            let amount = activity.amount_local?;
            if !just_under(amount) {
                return None;
            }
            let count = within(activity, *window_hours)
                .filter(|past| past.amount_local.is_some_and(just_under))
                .count()
                + 1;
            (count >= *min_count as usize).then(|| {
                (
                    format!(
                        "{count} withdrawals within {window_hours} h each between {floor} and {threshold} {currency}, just under the threshold"
                    ),
                    serde_json::json!({
                        "count": count, "floor": floor.to_string(), "threshold": threshold.to_string(),
                        "window_hours": window_hours,
                    }),
                )
            })
        }
        Condition::RapidInOut {
            within_hours,
            min_share_percent,
        } => {
            let since = activity.now - Duration::hours(i64::from(*within_hours));
            let recent: i64 = activity
                .recent_payouts
                .iter()
                .filter(|(at, _)| *at > since && *at <= activity.now)
                .map(|(_, atoms)| *atoms)
                .sum();
            // Funds are spent oldest first: only what the older balance cannot cover is fresh.
            let older_balance = (activity.available_atoms - recent).max(0);
            let fresh = (activity.amount_atoms - older_balance).clamp(0, recent);
            if fresh == 0 || activity.amount_atoms <= 0 {
                return None;
            }
            let share =
                Decimal::from(fresh) * Decimal::ONE_HUNDRED / Decimal::from(activity.amount_atoms);
            (share >= *min_share_percent).then(|| {
                let share = share.round_dp(1);
                (
                    format!(
                        "{share}% of the withdrawal comes from payouts that arrived within the last {within_hours} h"
                    ),
                    serde_json::json!({
                        "share_percent": share.to_string(), "within_hours": within_hours,
                        "fresh_atoms": fresh, "recent_payout_atoms": recent,
                    }),
                )
            })
        }
        Condition::NewAddress { at_least } => {
            let amount = activity.amount_local?;
            (!activity.address_used_before && amount >= *at_least).then(|| {
                (
                    format!("the first withdrawal to this address, {amount} {currency} (at least {at_least} {currency})"),
                    serde_json::json!({ "amount": amount.to_string(), "at_least": at_least.to_string() }),
                )
            })
        }
        Condition::DormantReactivation { dormant_days } => {
            let quiet_since = activity
                .last_withdrawal_at
                .unwrap_or(activity.account_opened_at);
            let quiet = activity.now - quiet_since;
            (quiet >= Duration::days(i64::from(*dormant_days))).then(|| {
                (
                    format!(
                        "the first withdrawal after {} days without one (dormant from {dormant_days} days)",
                        quiet.num_days()
                    ),
                    serde_json::json!({ "quiet_days": quiet.num_days(), "dormant_days": dormant_days }),
                )
            })
        }
        Condition::UserRisk {
            risk_levels,
            review_due,
        } => {
            let risky = activity
                .risk_level
                .filter(|level| risk_levels.iter().any(|wanted| wanted == level));
            let due = *review_due && activity.review_due;
            (risky.is_some() || due).then(|| {
                let message = match (risky, due) {
                    (Some(level), true) => {
                        format!("the user is rated {level} risk and their KYC review is due")
                    }
                    (Some(level), false) => format!("the user is rated {level} risk"),
                    _ => "the user's periodic KYC review is due".to_string(),
                };
                (
                    message,
                    serde_json::json!({ "risk_level": activity.risk_level, "review_due": activity.review_due }),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn rule(condition: Condition) -> MonitoringRules {
        MonitoringRules {
            rules: vec![Rule {
                id: "r".into(),
                version: 3,
                severity: Severity::High,
                action: RuleAction::Hold,
                condition,
            }],
        }
    }

    fn activity<'a>(
        past: &'a [PastWithdrawal],
        payouts: &'a [(NaiveDateTime, i64)],
    ) -> Activity<'a> {
        Activity {
            now: at("2026-06-10 12:00"),
            currency: "HKD",
            amount_local: Some(dec("1000")),
            amount_atoms: 1_000,
            available_atoms: 5_000,
            recent_withdrawals: past,
            recent_payouts: payouts,
            address_used_before: true,
            last_withdrawal_at: Some(at("2026-06-01 12:00")),
            account_opened_at: at("2025-01-01 00:00"),
            risk_level: Some("low"),
            review_due: false,
        }
    }

    fn fires(rules: &MonitoringRules, activity: &Activity) -> bool {
        let hits = evaluate(rules, activity);
        if let Some(hit) = hits.first() {
            assert_eq!(hit.code(), "aml_rule:r");
            assert_eq!(hit.version, 3);
            assert!(!hit.message.is_empty());
        }
        !hits.is_empty()
    }

    fn past(time: &str, amount: &str) -> PastWithdrawal {
        PastWithdrawal {
            requested_at: at(time),
            amount_local: Some(dec(amount)),
        }
    }

    #[test]
    fn large_withdrawal_fires_at_the_amount_and_not_below() {
        let rules = rule(Condition::LargeWithdrawal {
            at_least: dec("1000"),
        });
        let mut facts = activity(&[], &[]);
        assert!(fires(&rules, &facts));
        facts.amount_local = Some(dec("999.99"));
        assert!(!fires(&rules, &facts));
        facts.amount_local = None;
        assert!(!fires(&rules, &facts), "an unvalued amount is not compared");
    }

    #[test]
    fn velocity_counts_this_withdrawal_and_the_window_only() {
        let rules = rule(Condition::Velocity {
            window_hours: 24,
            max_count: 3,
            max_amount: dec("10000"),
        });
        let two = [
            past("2026-06-10 01:00", "10"),
            past("2026-06-09 12:01", "10"),
        ];
        assert!(!fires(&rules, &activity(&two, &[])), "3 of at most 3");
        let three = [
            past("2026-06-10 01:00", "10"),
            past("2026-06-09 12:01", "10"),
            past("2026-06-09 20:00", "10"),
        ];
        assert!(fires(&rules, &activity(&three, &[])), "4 of at most 3");
        let one_outside = [
            past("2026-06-10 01:00", "10"),
            past("2026-06-09 12:01", "10"),
            past("2026-06-09 12:00", "10"),
        ];
        assert!(
            !fires(&rules, &activity(&one_outside, &[])),
            "exactly 24 h ago is outside"
        );
        let large = [past("2026-06-10 01:00", "9000.01")];
        assert!(
            fires(&rules, &activity(&large, &[])),
            "amount over the total"
        );
        let just = [past("2026-06-10 01:00", "9000")];
        assert!(!fires(&rules, &activity(&just, &[])), "amount at the total");
    }

    #[test]
    fn structuring_needs_several_amounts_just_under_the_threshold() {
        let rules = rule(Condition::Structuring {
            window_hours: 72,
            threshold: dec("8000"),
            band_percent: dec("10"),
            min_count: 3,
        });
        let under = [
            past("2026-06-09 12:00", "7900"),
            past("2026-06-08 13:00", "7200"),
        ];
        let mut facts = activity(&under, &[]);
        facts.amount_local = Some(dec("7999.99"));
        assert!(fires(&rules, &facts));
        facts.amount_local = Some(dec("8000"));
        assert!(!fires(&rules, &facts), "at the threshold is not under it");
        let one_below_band = [
            past("2026-06-09 12:00", "7900"),
            past("2026-06-08 13:00", "7199.99"),
        ];
        let mut facts = activity(&one_below_band, &[]);
        facts.amount_local = Some(dec("7999"));
        assert!(!fires(&rules, &facts), "7199.99 is below the band");
    }

    #[test]
    fn rapid_in_out_measures_the_share_paid_from_fresh_payouts() {
        let rules = rule(Condition::RapidInOut {
            within_hours: 6,
            min_share_percent: dec("50"),
        });
        // 5,000 available of which 3,000 arrived 2 h ago: the older balance is 2,000.
        let payouts = [(at("2026-06-10 10:00"), 3_000)];
        let mut facts = activity(&[], &payouts);
        facts.amount_atoms = 4_000; // 2,000 fresh of 4,000 = 50%
        assert!(fires(&rules, &facts));
        facts.amount_atoms = 3_999; // 1,999 of 3,999 < 50%
        assert!(!fires(&rules, &facts));
        let old = [(at("2026-06-10 06:00"), 3_000)];
        let mut facts = activity(&[], &old);
        facts.amount_atoms = 5_000;
        assert!(!fires(&rules, &facts), "6 h ago is outside the window");
    }

    #[test]
    fn new_address_fires_only_for_an_unused_address_above_the_amount() {
        let rules = rule(Condition::NewAddress {
            at_least: dec("500"),
        });
        let mut facts = activity(&[], &[]);
        assert!(!fires(&rules, &facts), "used before");
        facts.address_used_before = false;
        assert!(fires(&rules, &facts));
        facts.amount_local = Some(dec("499.99"));
        assert!(!fires(&rules, &facts));
    }

    #[test]
    fn dormant_reactivation_counts_from_the_last_withdrawal_or_the_opening() {
        let rules = rule(Condition::DormantReactivation { dormant_days: 180 });
        let mut facts = activity(&[], &[]);
        assert!(!fires(&rules, &facts));
        facts.last_withdrawal_at = Some(at("2025-12-12 12:00")); // 180 days before
        assert!(fires(&rules, &facts));
        facts.last_withdrawal_at = Some(at("2025-12-12 12:01"));
        assert!(!fires(&rules, &facts));
        facts.last_withdrawal_at = None;
        assert!(fires(&rules, &facts), "never withdrawn, opened long ago");
    }

    #[test]
    fn user_risk_fires_on_the_listed_levels_or_a_due_review() {
        let rules = rule(Condition::UserRisk {
            risk_levels: vec!["high".into()],
            review_due: true,
        });
        let mut facts = activity(&[], &[]);
        assert!(!fires(&rules, &facts));
        facts.risk_level = Some("high");
        assert!(fires(&rules, &facts));
        facts.risk_level = Some("medium");
        facts.review_due = true;
        assert!(fires(&rules, &facts));
    }

    #[test]
    fn a_rule_file_with_a_bad_rule_is_refused() {
        let parse = |text: &str| -> Result<(), String> {
            let rules: MonitoringRules = toml::from_str(text).map_err(|e| e.to_string())?;
            rules.validate()
        };
        let good = r#"
            [[rules]]
            id = "large"
            version = 1
            severity = "high"
            action = "hold"
            condition = { kind = "large_withdrawal", at_least = "100000" }
        "#;
        assert_eq!(parse(good), Ok(()));
        let error = parse(&good.replace("large_withdrawal", "huge_withdrawal")).unwrap_err();
        assert!(error.contains("huge_withdrawal"), "{error}");
        let error = parse(&good.replace("version = 1", "version = 0")).unwrap_err();
        assert!(error.contains("version"), "{error}");
        let error = parse(&format!("{good}{good}")).unwrap_err();
        assert!(error.contains("used twice"), "{error}");
        let error = parse(&good.replace("at_least", "at_most")).unwrap_err();
        assert!(error.contains("at_most"), "{error}");
    }
}
