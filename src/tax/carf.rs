//! The OECD Crypto-Asset Reporting Framework export (XML schema v1.5): for a jurisdiction and a
//! calendar year, every resident user's mining payouts as `CryptoTransferIn` / `CARF503`,
//! aggregated per user and crypto-asset. The ledger is read once, in the order it is stored, and
//! summed per user: memory grows with the number of users, not with the number of payouts.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::ops::ControlFlow;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use quick_xml::events::{BytesDecl, Event};
use rust_decimal::Decimal;

use super::rules::RoundingRule;
use crate::config::ReportingEntity;
use crate::crypto::FieldCipher;
use crate::db::schema::{ledger_entries, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdiction;
use crate::ledger::{store as ledger, EntryKind, PricePoint, Valuation};
use crate::reports::xml::{end, io, leaf, name_parts, start, XmlWriter};

/// Users whose identities are read at once.
const USERS_PER_PAGE: usize = 200;

/// What an export holds, for the caller's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CarfSummary {
    /// Users with at least one payout in the year.
    pub users: u64,
    /// Ledger rows read.
    pub payouts: u64,
    /// `RelevantTransactions` blocks written (user × asset).
    pub aggregates: u64,
    /// Payouts left out because they had no USD value or no FX rate.
    pub unvalued: u64,
    /// Users reported without a birth date (no KYC data).
    pub without_birth_date: u64,
}

/// The export's parameters.
pub struct CarfRequest<'a> {
    pub jurisdiction: &'a Jurisdiction,
    pub year: i32,
    pub entity: &'a ReportingEntity,
    pub staleness: chrono::Duration,
    /// When the file is made (UTC): the message's timestamp and reference.
    pub now: NaiveDateTime,
    /// `OECD1` (new data) in production, `OECD11` for test files.
    pub test: bool,
}

fn doc_spec<W: Write>(
    writer: &mut XmlWriter<W>,
    test: bool,
    reference: &str,
) -> Result<(), AppError> {
    start(writer, "DocSpec", &[])?;
    leaf(
        writer,
        "stf:DocTypeIndic",
        &[],
        if test { "OECD11" } else { "OECD1" },
    )?;
    leaf(writer, "stf:DocRefId", &[], reference)?;
    end(writer, "DocSpec")
}

/// One user's payouts of one asset.
#[derive(Default)]
struct Aggregate {
    count: u64,
    atoms: i64,
    value: Decimal,
}

/// A payout as the export reads it: user, sequence, asset, atoms, USD value, time.
type PayoutRow = (
    Option<String>,
    i64,
    String,
    i64,
    Option<String>,
    NaiveDateTime,
);

/// Rows read per query.
const ROWS_PER_PAGE: i64 = 50_000;

/// The ledger sequence range holding every entry that occurred in `window`: read from the
/// `occurred_at` index once (index-only on SQLite).
fn sequence_range(
    connection: &mut DbConnection,
    window: (NaiveDateTime, NaiveDateTime),
) -> Result<Option<(i64, i64)>, AppError> {
    use diesel::dsl::{max, min};
    let (first, last): (Option<i64>, Option<i64>) = ledger_entries::table
        .filter(ledger_entries::occurred_at.ge(window.0))
        .filter(ledger_entries::occurred_at.lt(window.1))
        .select((min(ledger_entries::seq), max(ledger_entries::seq)))
        .first(connection)?;
    Ok(first.zip(last))
}

/// The next payouts after ledger sequence `after`, up to `last`, in sequence order: the primary
/// key follows the table's physical order, so the scan reads it front to back on both backends
/// (the `occurred_at` index would visit a day's payouts in time order, jumping across that
/// day's pages). The caller keeps those of its window.
fn scan_page(
    connection: &mut DbConnection,
    after: i64,
    last: i64,
) -> Result<Vec<PayoutRow>, AppError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::seq.gt(after))
        .filter(ledger_entries::seq.le(last))
        .filter(ledger_entries::kind.eq(EntryKind::Payout.as_str()))
        .order(ledger_entries::seq.asc())
        .limit(ROWS_PER_PAGE)
        .select((
            ledger_entries::user_id,
            ledger_entries::seq,
            ledger_entries::asset,
            ledger_entries::amount,
            ledger_entries::fmv_usd,
            ledger_entries::occurred_at,
        ))
        .load(connection)?)
}

/// Writes the CARF XML of `request` to `out`.
pub fn export<W: Write>(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    request: &CarfRequest<'_>,
    out: W,
) -> Result<CarfSummary, AppError> {
    let jurisdiction = request.jurisdiction;
    let rules = &jurisdiction.tax;
    let currency = rules.currency.as_str();
    let zone = rules.time_zone;
    let first = NaiveDate::from_ymd_opt(request.year, 1, 1)
        .ok_or_else(|| AppError::bad_field("year", "out of range"))?;
    let next = NaiveDate::from_ymd_opt(request.year + 1, 1, 1)
        .ok_or_else(|| AppError::bad_field("year", "out of range"))?;
    let window = (
        super::local_midnight_utc(zone, first),
        super::local_midnight_utc(zone, next),
    );
    let fx: Vec<PricePoint> = if currency == "USD" {
        Vec::new()
    } else {
        ledger::rate_points(connection, "USD", currency, window.0, window.1)?
    };
    let assets = ledger::load_assets(connection)?;
    let reversed: HashSet<i64> = ledger_entries::table
        .filter(ledger_entries::occurred_at.ge(super::store::earliest_reversal(window.0)))
        .filter(ledger_entries::kind.eq(EntryKind::Reversal.as_str()))
        .select(ledger_entries::reverses_seq.assume_not_null())
        .load::<i64>(connection)?
        .into_iter()
        .collect();

    let mut writer = quick_xml::Writer::new_with_indent(std::io::BufWriter::new(out), b' ', 1);
    let code = jurisdiction.code.as_str();
    let message_ref = format!(
        "{}-{code}-{}-{}",
        request.entity.country,
        request.year,
        request.now.format("%Y%m%dT%H%M%S")
    );
    let period = format!("{}-12-31", request.year);
    let timestamp = request.now.format("%Y-%m-%dT%H:%M:%S").to_string();
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(io)?;
    start(
        &mut writer,
        "CARF_OECD",
        &[
            ("xmlns", "urn:oecd:ties:carf:v1"),
            ("xmlns:stf", "urn:oecd:ties:carfstf:v5"),
            ("xmlns:iso", "urn:oecd:ties:isocarftypes:v1"),
            ("version", "1.5"),
        ],
    )?;
    start(&mut writer, "MessageSpec", &[])?;
    if let Some(tin) = &request.entity.tin {
        leaf(&mut writer, "SendingEntityIN", &[], tin)?;
    }
    leaf(
        &mut writer,
        "TransmittingCountry",
        &[],
        &request.entity.country,
    )?;
    leaf(&mut writer, "ReceivingCountry", &[], code)?;
    leaf(&mut writer, "MessageType", &[], "CARF")?;
    leaf(&mut writer, "MessageRefId", &[], &message_ref)?;
    leaf(&mut writer, "MessageTypeIndic", &[], "CARF701")?;
    leaf(&mut writer, "ReportingPeriod", &[], &period)?;
    leaf(&mut writer, "Timestamp", &[], &timestamp)?;
    end(&mut writer, "MessageSpec")?;

    start(&mut writer, "CARFBody", &[])?;
    start(&mut writer, "RCASP", &[])?;
    start(&mut writer, "RCASP_ID", &[])?;
    start(&mut writer, "Entity", &[])?;
    leaf(&mut writer, "ResCountryCode", &[], &request.entity.country)?;
    match &request.entity.tin {
        Some(tin) => leaf(
            &mut writer,
            "TIN",
            &[("issuedBy", &request.entity.country)],
            tin,
        )?,
        None => leaf(&mut writer, "TIN", &[("unknown", "true")], "NOTIN")?,
    }
    leaf(&mut writer, "Name", &[], &request.entity.name)?;
    write_address(
        &mut writer,
        &request.entity.country,
        &request.entity.address,
    )?;
    end(&mut writer, "Entity")?;
    end(&mut writer, "RCASP_ID")?;
    leaf(&mut writer, "Nexus", &[], "CARF901")?;
    doc_spec(&mut writer, request.test, &format!("{message_ref}-RCASP"))?;
    end(&mut writer, "RCASP")?;

    let mut summary = CarfSummary::default();
    // Pass 1: one scan of the year's payouts in ledger order, summed per user and asset. Memory
    // grows with the number of users, never with the number of payouts.
    let residents: HashSet<String> = users::table
        .filter(users::residence_jurisdiction.eq(code))
        .select(users::id)
        .load::<String>(connection)?
        .into_iter()
        .collect();
    let mut per_user: HashMap<String, Vec<(String, Aggregate)>> = HashMap::new();
    // No entry in the window: the empty range (0, 0].
    let (first, last) = sequence_range(connection, window)?.unwrap_or((1, 0));
    // The next page is read while this one is summed: reading took 1.7 s and summing 0.4 s of
    // 1.1 M payouts.
    crate::db::read_ahead(
        connection,
        first - 1,
        |connection, after| scan_page(connection, after, last),
        |rows| rows.last().map(|row| row.1).filter(|seq| *seq < last),
        |page| {
            for (user_id, seq, asset, atoms, fmv, occurred_at) in page {
                if occurred_at < window.0 || occurred_at >= window.1 {
                    continue;
                }
                let Some(user_id) = user_id.filter(|id| residents.contains(id)) else {
                    continue;
                };
                summary.payouts += 1;
                if reversed.contains(&seq) {
                    continue;
                }
                let fmv_usd = fmv.as_deref().and_then(|text| text.parse::<Decimal>().ok());
                let value = fmv_usd.and_then(|fmv| {
                    if currency == "USD" {
                        return Some(fmv);
                    }
                    match crate::ledger::value_at(fmv, occurred_at, &fx, request.staleness) {
                        Valuation::Priced { fmv_usd: value, .. } => Some(value),
                        _ => None,
                    }
                });
                let Some(value) = value else {
                    summary.unvalued += 1;
                    continue;
                };
                let per_asset = per_user.entry(user_id).or_default();
                let index = match per_asset.iter().position(|(code, _)| *code == asset) {
                    Some(index) => index,
                    None => {
                        per_asset.push((asset, Aggregate::default()));
                        per_asset.len() - 1
                    }
                };
                let aggregate = &mut per_asset[index].1;
                aggregate.count += 1;
                aggregate.atoms += atoms;
                aggregate.value += RoundingRule::CENTS.apply(value);
            }
            Ok(ControlFlow::<()>::Continue(()))
        },
    )?;

    // Pass 2: the users in id order, their identities loaded a page at a time.
    let mut user_ids: Vec<String> = per_user.keys().cloned().collect();
    user_ids.sort();
    for ids in user_ids.chunks(USERS_PER_PAGE) {
        let people: HashMap<String, crate::users::store::User> =
            crate::users::store::find_many(connection, cipher, ids)?
                .into_iter()
                .map(|user| (user.id.clone(), user))
                .collect();
        let identities = crate::kyc::store::identities(connection, cipher, ids)?;
        for user_id in ids {
            let (Some(user), Some(mut per_asset)) = (people.get(user_id), per_user.remove(user_id))
            else {
                continue;
            };
            per_asset.sort_by(|left, right| left.0.cmp(&right.0));
            summary.users += 1;
            let identity = identities.get(user_id);
            start(&mut writer, "CryptoUsers", &[])?;
            start(&mut writer, "UserID", &[])?;
            start(&mut writer, "Individual", &[])?;
            leaf(&mut writer, "ResCountryCode", &[], code)?;
            leaf(
                &mut writer,
                "TIN",
                &[("issuedBy", code), ("unknown", "true")],
                "NOTIN",
            )?;
            let (first_name, last_name) = match identity {
                Some(data) => name_parts(&data.legal_name),
                None => ("NFN".to_string(), user.external_ref.clone()),
            };
            start(&mut writer, "Name", &[])?;
            leaf(&mut writer, "FirstName", &[], &first_name)?;
            leaf(&mut writer, "LastName", &[], &last_name)?;
            end(&mut writer, "Name")?;
            let address = user
                .address
                .clone()
                .or_else(|| identity.and_then(|data| data.address.clone()))
                .unwrap_or_else(|| "unknown".into());
            write_address(&mut writer, code, &address)?;
            if let Some(nationality) = identity.map(|data| data.nationality.as_str()) {
                leaf(&mut writer, "Nationality", &[], nationality)?;
            }
            match user
                .date_of_birth
                .or(identity.map(|data| data.date_of_birth))
            {
                Some(born) => {
                    start(&mut writer, "BirthInfo", &[])?;
                    leaf(&mut writer, "BirthDate", &[], &born.to_string())?;
                    end(&mut writer, "BirthInfo")?;
                }
                None => summary.without_birth_date += 1,
            }
            end(&mut writer, "Individual")?;
            end(&mut writer, "UserID")?;
            for (asset, aggregate) in per_asset {
                summary.aggregates += 1;
                let units = assets
                    .get(&asset)
                    .map(|known| known.from_atoms(aggregate.atoms).normalize())
                    .unwrap_or_default();
                start(&mut writer, "RelevantTransactions", &[])?;
                leaf(&mut writer, "CryptoAsset", &[], &asset)?;
                start(&mut writer, "CryptoTransferIn", &[])?;
                leaf(&mut writer, "TransferType", &[], "CARF503")?;
                leaf(
                    &mut writer,
                    "NumberofTransactions",
                    &[],
                    &aggregate.count.to_string(),
                )?;
                leaf(
                    &mut writer,
                    "Amount",
                    &[("currCode", currency)],
                    &format!("{:.2}", aggregate.value),
                )?;
                leaf(&mut writer, "NumberofUnits", &[], &units.to_string())?;
                end(&mut writer, "CryptoTransferIn")?;
                end(&mut writer, "RelevantTransactions")?;
            }
            doc_spec(
                &mut writer,
                request.test,
                &format!("{message_ref}-{user_id}"),
            )?;
            end(&mut writer, "CryptoUsers")?;
        }
    }
    end(&mut writer, "CARFBody")?;
    end(&mut writer, "CARF_OECD")?;
    writer.get_mut().flush().map_err(io)?;
    Ok(summary)
}

fn write_address<W: Write>(
    writer: &mut XmlWriter<W>,
    country: &str,
    address: &str,
) -> Result<(), AppError> {
    start(writer, "Address", &[])?;
    leaf(writer, "CountryCode", &[], country)?;
    leaf(writer, "AddressFree", &[], address)?;
    end(writer, "Address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(legal: &str, latin: Option<&str>) -> crate::kyc::application::PersonalData {
        serde_json::from_value(serde_json::json!({
            "legal_name": legal, "latin_name": latin, "date_of_birth": "1990-01-01",
            "nationality": "CN", "residence": "CN"
        }))
        .unwrap()
    }

    #[test]
    fn names_split_into_first_and_last() {
        assert_eq!(
            name_parts(&person("Seán O'Brien", None).legal_name),
            ("Seán".to_string(), "O'Brien".to_string())
        );
        assert_eq!(
            name_parts(&person("张伟", None).legal_name),
            ("伟".to_string(), "张".to_string())
        );
        assert_eq!(
            name_parts(&person("张伟", Some("Zhang Wei")).legal_name),
            ("伟".to_string(), "张".to_string())
        );
        assert_eq!(
            name_parts(&person("Madonna", None).legal_name),
            ("NFN".to_string(), "Madonna".to_string())
        );
    }
}
