//! A user's tax report, from the ledger and the rules: what the API, the console and the
//! benchmark all compute.

use super::rules::Classification;
use super::store::Holder;
use super::{TaxReport, TaxYear};
use crate::crypto::FieldCipher;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;

/// The report of `user_id`'s tax year `year` (by the calendar year it starts in), under
/// `classification` or the jurisdiction's usual one. 422 naming `jurisdiction`, `year` or
/// `classification` when there are no rules for it.
pub fn user_report(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    jurisdictions: &Jurisdictions,
    staleness: chrono::Duration,
    (user_id, year): (&str, i32),
    classification: Option<Classification>,
) -> Result<(Holder, TaxReport), AppError> {
    let holder = super::store::holder(connection, cipher, user_id)?;
    let jurisdiction = jurisdictions.get(&holder.jurisdiction).ok_or_else(|| {
        AppError::invalid_field(
            "jurisdiction",
            "unknown_jurisdiction",
            format!(
                "the user's residence `{}` is not a jurisdiction hashgate has tax rules for",
                holder.jurisdiction
            ),
        )
    })?;
    let rules = &jurisdiction.tax;
    let Some(year_rules) = rules.year(year) else {
        let known: Vec<String> = rules
            .years
            .iter()
            .map(|known| rules.year_label(known.year))
            .collect();
        return Err(AppError::invalid_field(
            "year",
            "no_tax_rules",
            format!(
                "{} has no tax rules for the tax year {}; rules exist for {}",
                jurisdiction.code,
                rules.year_label(year),
                known.join(", ")
            ),
        ));
    };
    let classification = classification.unwrap_or(rules.default_classification);
    if !year_rules.schedules.contains_key(&classification) {
        return Err(AppError::invalid_field(
            "classification",
            "not_offered",
            format!(
                "{} {} has no `{}` treatment of mining income",
                jurisdiction.code,
                rules.year_label(year),
                classification.as_str()
            ),
        ));
    }
    let tax_year = TaxYear::of(rules, year)
        .ok_or_else(|| AppError::bad_field("year", format!("{year} is out of range")))?;
    let (payouts, fees) =
        super::store::year_amounts(connection, &holder.user_id, &tax_year, staleness)?;
    let fx = super::store::fx_points(connection, &rules.currency, &tax_year)?;
    let value = |kind, amounts: &[super::LedgerAmount]| {
        super::value_lines(
            kind,
            amounts,
            &rules.currency,
            rules.time_zone,
            &fx,
            staleness,
        )
    };
    let report = super::report(super::ReportInput {
        user_id: &holder.user_id,
        jurisdiction: &jurisdiction.code,
        rules,
        tax_year,
        classification,
        payouts: value("payout", &payouts),
        fees: value("fee", &fees),
        energy: None,
    })
    .ok_or_else(|| AppError::internal(anyhow::anyhow!("rules vanished")))?;
    Ok((holder, report))
}
