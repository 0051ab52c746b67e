//! The gate's decision, from facts gathered in one transaction: every check runs, every failing
//! check is a reason with a stable code and a sentence, and the decision is the strictest effect
//! among them — rejected, else held for an officer, else approved.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::addresses::BookStatus;
use super::UnlistedAddress;
use crate::aml::monitoring::rules::{RuleAction, RuleHit};
use crate::kyc::rules::Limits;
use crate::kyc::Tier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Held,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Held => "held",
            Decision::Rejected => "rejected",
        }
    }
}

/// One reason for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    /// Stable code: `kyc_tier_insufficient`, `single_limit_exceeded`, `daily_limit_exceeded`,
    /// `monthly_limit_exceeded`, `insufficient_balance`, `sanctioned_address`,
    /// `user_screening_hit`, `travel_rule_data_missing`, `valuation_unavailable`,
    /// `address_not_in_book`, `address_cooling_off`, and `aml_rule:<rule id>` for a monitoring
    /// rule whose action is hold or reject.
    pub code: String,
    pub message: String,
    /// What the reason does to the withdrawal: `rejected` or `held`.
    #[schema(value_type = String)]
    pub effect: Decision,
}

/// What the gate knows about one request.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub effective_tier: Tier,
    pub review_lapsed: bool,
    /// The effective tier's limits, in `currency`.
    pub limits: Limits,
    pub currency: &'a str,
    /// The amount in `currency`; `None` when no usable price or FX rate exists.
    pub amount_local: Option<Decimal>,
    /// Approved and held withdrawals in the current local day and month, in `currency`.
    pub spent_today: Decimal,
    pub spent_this_month: Decimal,
    pub available_atoms: i64,
    pub amount_atoms: i64,
    /// The amount as the asset's decimal, for messages.
    pub amount_text: &'a str,
    pub available_text: &'a str,
    pub asset: &'a str,
    pub address_sanctioned: bool,
    /// The user's open, pending or confirmed sanctions hits.
    pub user_hits: usize,
    pub travel_rule_threshold: Decimal,
    /// Whether the request carries the beneficiary's data.
    pub beneficiary_given: bool,
    /// The destination in the user's address book.
    pub address_book: BookStatus,
    pub unlisted_address: UnlistedAddress,
    /// Monitoring rules this withdrawal triggers.
    pub rule_hits: &'a [RuleHit],
}

pub fn decide(facts: &Facts) -> (Decision, Vec<Reason>) {
    let mut reasons = Vec::new();
    let mut reason = |code: &str, effect: Decision, message: String| {
        reasons.push(Reason {
            code: code.to_string(),
            message,
            effect,
        })
    };
    let currency = facts.currency;
    if facts.effective_tier == Tier::REGISTERED {
        reason(
            "kyc_tier_insufficient",
            Decision::Rejected,
            if facts.review_lapsed {
                "the periodic KYC review has lapsed and the user's tier no longer allows withdrawals".into()
            } else {
                "the user has no KYC tier that allows withdrawals (tier 1 or above is needed)"
                    .into()
            },
        );
    }
    match facts.amount_local {
        None => reason(
            "valuation_unavailable",
            Decision::Held,
            format!(
                "no current {} price or {currency} rate: the limits cannot be checked",
                facts.asset
            ),
        ),
        Some(amount) if facts.effective_tier > Tier::REGISTERED => {
            let limits = facts.limits;
            let tier = facts.effective_tier.number();
            if amount > limits.single {
                reason(
                    "single_limit_exceeded",
                    Decision::Rejected,
                    format!("{amount} {currency} exceeds the single-withdrawal limit of {} {currency} for tier {tier}", limits.single),
                );
            }
            if facts.spent_today + amount > limits.daily {
                reason(
                    "daily_limit_exceeded",
                    Decision::Rejected,
                    format!(
                        "{} {currency} already withdrawn today plus {amount} {currency} exceeds the daily limit of {} {currency} for tier {tier}",
                        facts.spent_today, limits.daily
                    ),
                );
            }
            if facts.spent_this_month + amount > limits.monthly {
                reason(
                    "monthly_limit_exceeded",
                    Decision::Rejected,
                    format!(
                        "{} {currency} already withdrawn this month plus {amount} {currency} exceeds the monthly limit of {} {currency} for tier {tier}",
                        facts.spent_this_month, limits.monthly
                    ),
                );
            }
            if amount >= facts.travel_rule_threshold && !facts.beneficiary_given {
                reason(
                    "travel_rule_data_missing",
                    Decision::Rejected,
                    format!(
                        "at or above {} {currency} the beneficiary's data (travel rule) must be sent",
                        facts.travel_rule_threshold
                    ),
                );
            }
        }
        Some(_) => {}
    }
    if facts.amount_atoms > facts.available_atoms {
        reason(
            "insufficient_balance",
            Decision::Rejected,
            format!(
                "{} {} requested, {} {} available",
                facts.amount_text, facts.asset, facts.available_text, facts.asset
            ),
        );
    }
    if facts.address_sanctioned {
        reason(
            "sanctioned_address",
            Decision::Rejected,
            "the destination address is on a sanctions list".into(),
        );
    }
    if facts.user_hits > 0 {
        reason(
            "user_screening_hit",
            Decision::Held,
            format!(
                "the user has {} unresolved or confirmed sanctions screening hit(s)",
                facts.user_hits
            ),
        );
    }
    match facts.address_book {
        BookStatus::Usable => {}
        BookStatus::CoolingOff { until } => reason(
            "address_cooling_off",
            Decision::Rejected,
            format!(
                "the address was added to the user's address book recently and can receive withdrawals from {} UTC",
                until.format("%Y-%m-%d %H:%M")
            ),
        ),
        BookStatus::Unlisted => reason(
            "address_not_in_book",
            match facts.unlisted_address {
                UnlistedAddress::Hold => Decision::Held,
                UnlistedAddress::Reject => Decision::Rejected,
            },
            "the address is not in the user's address book".into(),
        ),
    }
    for hit in facts.rule_hits {
        let effect = match hit.action {
            RuleAction::Alert => continue,
            RuleAction::Hold => Decision::Held,
            RuleAction::Reject => Decision::Rejected,
        };
        reason(&hit.code(), effect, hit.message.clone());
    }
    let decision = reasons
        .iter()
        .map(|reason| reason.effect)
        .max()
        .unwrap_or(Decision::Approved);
    (decision, reasons)
}

/// The UTC bounds `[start, end)` of the local day and the local month that contain `now`.
pub fn local_windows(
    now: NaiveDateTime,
    zone: Tz,
) -> (
    (NaiveDateTime, NaiveDateTime),
    (NaiveDateTime, NaiveDateTime),
) {
    let local = zone.from_utc_datetime(&now).date_naive();
    let next_day = local.succ_opt().unwrap_or(local);
    let month_start = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).unwrap_or(local);
    let next_month = if local.month() == 12 {
        NaiveDate::from_ymd_opt(local.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(local.year(), local.month() + 1, 1)
    }
    .unwrap_or(local);
    let start = |date: NaiveDate| {
        // The first instant of a local date (midnight, or later where a DST gap skips it).
        (0..4)
            .find_map(|hour| {
                zone.from_local_datetime(&date.and_hms_opt(hour, 0, 0)?)
                    .earliest()
            })
            .map(|instant| instant.naive_utc())
            .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    (
        (start(local), start(next_day)),
        (start(month_start), start(next_month)),
    )
}

/// Local-currency atoms of the counted withdrawals (time, atoms) requested in the local day and
/// in the local month, as given by [`local_windows`].
pub fn spent_in_windows(
    counted: &[(NaiveDateTime, Option<i64>)],
    (day_start, day_end): (NaiveDateTime, NaiveDateTime),
    (month_start, month_end): (NaiveDateTime, NaiveDateTime),
) -> (i64, i64) {
    let sum = |start: NaiveDateTime, end: NaiveDateTime| {
        counted
            .iter()
            .filter(|(requested_at, _)| (start..end).contains(requested_at))
            .filter_map(|(_, atoms)| *atoms)
            .sum()
    };
    (sum(day_start, day_end), sum(month_start, month_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            effective_tier: Tier::VERIFIED,
            review_lapsed: false,
            limits: Limits {
                single: Decimal::from(400_000),
                daily: Decimal::from(800_000),
                monthly: Decimal::from(4_000_000),
            },
            currency: "HKD",
            amount_local: Some(Decimal::from(5_000)),
            spent_today: Decimal::ZERO,
            spent_this_month: Decimal::ZERO,
            available_atoms: 100_000_000,
            amount_atoms: 1_000_000,
            amount_text: "0.01",
            available_text: "1",
            asset: "BTC",
            address_sanctioned: false,
            user_hits: 0,
            travel_rule_threshold: Decimal::from(8_000),
            beneficiary_given: false,
            address_book: BookStatus::Usable,
            unlisted_address: UnlistedAddress::Reject,
            rule_hits: &[],
        }
    }

    fn codes(facts: &Facts) -> (Decision, Vec<String>) {
        let (decision, reasons) = decide(facts);
        (decision, reasons.into_iter().map(|r| r.code).collect())
    }

    #[test]
    fn each_check_triggers_and_narrowly_does_not() {
        assert_eq!(codes(&facts()), (Decision::Approved, vec![]));
        let d = Decimal::from;
        let cases: Vec<(Facts, Facts, &str)> = vec![
            (
                Facts {
                    amount_local: Some(d(400_001)),
                    beneficiary_given: true,
                    ..facts()
                },
                Facts {
                    amount_local: Some(d(400_000)),
                    beneficiary_given: true,
                    ..facts()
                },
                "single_limit_exceeded",
            ),
            (
                Facts {
                    spent_today: d(795_001),
                    ..facts()
                },
                Facts {
                    spent_today: d(795_000),
                    ..facts()
                },
                "daily_limit_exceeded",
            ),
            (
                Facts {
                    spent_this_month: d(3_995_001),
                    ..facts()
                },
                Facts {
                    spent_this_month: d(3_995_000),
                    ..facts()
                },
                "monthly_limit_exceeded",
            ),
            (
                Facts {
                    amount_local: Some(d(8_000)),
                    ..facts()
                },
                Facts {
                    amount_local: Some(Decimal::new(799_999, 2)),
                    ..facts()
                },
                "travel_rule_data_missing",
            ),
            (
                Facts {
                    amount_atoms: 100_000_001,
                    ..facts()
                },
                Facts {
                    amount_atoms: 100_000_000,
                    ..facts()
                },
                "insufficient_balance",
            ),
            (
                Facts {
                    effective_tier: Tier::REGISTERED,
                    ..facts()
                },
                Facts {
                    effective_tier: Tier::BASIC,
                    limits: facts().limits,
                    ..facts()
                },
                "kyc_tier_insufficient",
            ),
            (
                Facts {
                    address_sanctioned: true,
                    ..facts()
                },
                facts(),
                "sanctioned_address",
            ),
        ];
        for (triggering, passing, code) in cases {
            let (decision, found) = codes(&triggering);
            assert_eq!(
                (decision, found),
                (Decision::Rejected, vec![code.to_string()]),
                "{code}"
            );
            assert_eq!(codes(&passing), (Decision::Approved, vec![]), "{code}");
        }
        let (decision, found) = codes(&Facts {
            user_hits: 1,
            ..facts()
        });
        assert_eq!(
            (decision, found),
            (Decision::Held, vec!["user_screening_hit".to_string()])
        );
        let (decision, found) = codes(&Facts {
            amount_local: None,
            ..facts()
        });
        assert_eq!(
            (decision, found),
            (Decision::Held, vec!["valuation_unavailable".to_string()])
        );
    }

    #[test]
    fn the_address_book_decides_per_jurisdiction() {
        let until = NaiveDateTime::parse_from_str("2026-06-01 10:00", "%Y-%m-%d %H:%M").unwrap();
        let (decision, found) = codes(&Facts {
            address_book: BookStatus::CoolingOff { until },
            ..facts()
        });
        assert_eq!(
            (decision, found),
            (Decision::Rejected, vec!["address_cooling_off".to_string()])
        );
        let unlisted = |rule| {
            codes(&Facts {
                address_book: BookStatus::Unlisted,
                unlisted_address: rule,
                ..facts()
            })
        };
        let code = vec!["address_not_in_book".to_string()];
        assert_eq!(
            unlisted(UnlistedAddress::Reject),
            (Decision::Rejected, code.clone())
        );
        assert_eq!(unlisted(UnlistedAddress::Hold), (Decision::Held, code));
    }

    #[test]
    fn rule_hits_hold_or_reject_by_their_action_and_alerts_do_not_change_the_decision() {
        use crate::aml::monitoring::rules::Severity;
        let hit = |id: &str, action| RuleHit {
            rule_id: id.into(),
            version: 1,
            severity: Severity::High,
            action,
            message: format!("{id} fired"),
            details: serde_json::Value::Null,
        };
        let alert_only = [hit("velocity", RuleAction::Alert)];
        assert_eq!(
            codes(&Facts {
                rule_hits: &alert_only,
                ..facts()
            }),
            (Decision::Approved, vec![])
        );
        let hold = [
            hit("large", RuleAction::Hold),
            hit("velocity", RuleAction::Alert),
        ];
        assert_eq!(
            codes(&Facts {
                rule_hits: &hold,
                ..facts()
            }),
            (Decision::Held, vec!["aml_rule:large".to_string()])
        );
        let reject = [
            hit("large", RuleAction::Hold),
            hit("structuring", RuleAction::Reject),
        ];
        assert_eq!(
            codes(&Facts {
                rule_hits: &reject,
                ..facts()
            }),
            (
                Decision::Rejected,
                vec![
                    "aml_rule:large".to_string(),
                    "aml_rule:structuring".to_string()
                ]
            )
        );
    }

    #[test]
    fn every_failing_check_is_reported_and_the_strictest_wins() {
        let (decision, found) = codes(&Facts {
            user_hits: 2,
            amount_atoms: 200_000_000,
            address_sanctioned: true,
            ..facts()
        });
        assert_eq!(decision, Decision::Rejected);
        assert_eq!(
            found,
            vec![
                "insufficient_balance",
                "sanctioned_address",
                "user_screening_hit"
            ]
        );
    }

    #[test]
    fn local_days_and_months_follow_the_zone() {
        let zone: Tz = "Asia/Hong_Kong".parse().unwrap();
        let at = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        // 23:59 and 00:01 in Hong Kong (UTC+8) fall on different local days.
        let ((day_start, day_end), _) = local_windows(at("2026-03-10 15:59"), zone);
        assert_eq!(
            (day_start, day_end),
            (at("2026-03-09 16:00"), at("2026-03-10 16:00"))
        );
        let ((next_start, _), _) = local_windows(at("2026-03-10 16:01"), zone);
        assert_eq!(next_start, at("2026-03-10 16:00"));
        // 2025-12-31T17:00Z is January 2026 in Hong Kong.
        let (_, (month_start, month_end)) = local_windows(at("2025-12-31 17:00"), zone);
        assert_eq!(
            (month_start, month_end),
            (at("2025-12-31 16:00"), at("2026-01-31 16:00"))
        );
        // A DST change: Zurich's day of the spring change has 23 hours.
        let zurich: Tz = "Europe/Zurich".parse().unwrap();
        let ((start, end), _) = local_windows(at("2026-03-29 12:00"), zurich);
        assert_eq!(end - start, chrono::Duration::hours(23));
    }

    #[test]
    fn spending_counts_each_withdrawal_in_its_local_day_and_month() {
        let zone: Tz = "Asia/Hong_Kong".parse().unwrap();
        let at = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        let (day, month) = local_windows(at("2026-03-10 15:00"), zone);
        let counted = [
            // February 28 in Hong Kong: neither.
            (at("2026-02-28 15:59"), Some(1)),
            // March 1, local: the month only.
            (at("2026-02-28 16:00"), Some(20)),
            // March 10, local: both; an unvalued one adds nothing.
            (at("2026-03-09 16:00"), Some(300)),
            (at("2026-03-10 14:00"), None),
            // March 11, local: the month only.
            (at("2026-03-10 16:00"), Some(4_000)),
            // April 1, local: neither.
            (at("2026-03-31 16:00"), Some(50_000)),
        ];
        assert_eq!(spent_in_windows(&counted, day, month), (300, 4_320));
    }
}
