//! Carbon queries. The invariants live in the schema: a certificate's allocated plus retired Wh
//! never exceed its volume, an order's matched Wh never exceed its energy, an hour's matched Wh
//! never exceed its consumption (CHECK constraints), and retired volume never decreases
//! (trigger). Every volume change is a conditional update that re-checks those bounds, so two
//! concurrent allocations can never together exceed a certificate: the second finds nothing to
//! update and is refused.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::factors::FactorRow;
use super::footprint::Coverage;
use super::matching::{self, Candidate, Grant, HourNeed, Need, VintageRules};
use super::{Basis, Fleet, Scheme};
use crate::db::schema::{
    allocations, certificate_events, certificates, emission_factors, facilities, facility_miners,
    order_hours, orders, retirements,
};
use crate::db::{DbConnection, InsertTimestamp};
use crate::error::AppError;

/// Time-ordered (UUIDv7), so the id indexes grow at their right edge rather than at random.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Holds the matching lock of a market zone until the transaction ends, so matchers of one zone
/// see each other's allocations (PostgreSQL; SQLite write transactions already run one at a
/// time). The conditional updates stay the guarantee; the lock keeps greedy matching whole.
fn lock_zone(connection: &mut DbConnection, zone: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(_) = connection {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('carbon-zone:' || $1))::text")
            .bind::<diesel::sql_types::Text, _>(zone)
            .execute(connection)?;
    }
    Ok(())
}

// ---- emission factors ----

/// Stores new factors; one already stored with the same value is skipped, one stored with a
/// different value is a conflict (a dataset version never changes: publish a new version).
pub fn insert_factors(
    connection: &mut DbConnection,
    rows: &[FactorRow],
    now: NaiveDateTime,
) -> Result<(usize, usize), AppError> {
    let stored = load_factors(connection)?;
    let key = |row: &FactorRow| {
        (
            row.dataset.clone(),
            row.version.clone(),
            row.zone.clone(),
            row.year,
            row.basis,
        )
    };
    let existing: HashMap<_, Decimal> =
        stored.iter().map(|row| (key(row), row.g_per_kwh)).collect();
    let (mut inserted, mut skipped) = (0, 0);
    for row in rows {
        match existing.get(&key(row)) {
            Some(value) if *value == row.g_per_kwh => skipped += 1,
            Some(value) => {
                return Err(AppError::Conflict(format!(
                    "{} {} {} {} {} is stored as {value} g/kWh, not {}: publish a new version",
                    row.dataset,
                    row.version,
                    row.zone,
                    row.year,
                    row.basis.as_str(),
                    row.g_per_kwh
                )))
            }
            None => {
                diesel::insert_into(emission_factors::table)
                    .values((
                        emission_factors::id.eq(new_id()),
                        emission_factors::dataset.eq(&row.dataset),
                        emission_factors::version.eq(&row.version),
                        emission_factors::zone.eq(&row.zone),
                        emission_factors::year.eq(row.year),
                        emission_factors::basis.eq(row.basis.as_str()),
                        emission_factors::g_per_kwh.eq(row.g_per_kwh.to_string()),
                        emission_factors::source.eq(&row.source),
                        emission_factors::imported_at.eq(now),
                    ))
                    .execute(connection)?;
                inserted += 1;
            }
        }
    }
    Ok((inserted, skipped))
}

pub fn load_factors(connection: &mut DbConnection) -> Result<Vec<FactorRow>, AppError> {
    type Stored = (String, String, String, i32, String, String, String);
    let rows: Vec<Stored> = emission_factors::table
        .order((emission_factors::zone, emission_factors::year))
        .select((
            emission_factors::dataset,
            emission_factors::version,
            emission_factors::zone,
            emission_factors::year,
            emission_factors::basis,
            emission_factors::g_per_kwh,
            emission_factors::source,
        ))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .filter_map(|(dataset, version, zone, year, basis, g_per_kwh, source)| {
            Some(FactorRow {
                dataset,
                version,
                zone,
                year,
                basis: Basis::parse(&basis)?,
                g_per_kwh: g_per_kwh.parse().ok()?,
                source,
            })
        })
        .collect())
}

// ---- facilities ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Miner {
    pub model: String,
    /// TH/s per unit, as a decimal string.
    pub hashrate_ths: String,
    pub power_w: i64,
    pub units: i32,
    /// J/TH of the model: power over hashrate, as a decimal string.
    pub j_per_th: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Facility {
    pub id: String,
    pub name: String,
    pub country: String,
    pub market_zone: String,
    /// Power usage effectiveness, as a decimal string (1.08).
    pub pue: String,
    pub miners: Vec<Miner>,
    /// The fleet's J/TH: total power over total hashrate.
    pub j_per_th: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
}

/// A facility to create; amounts already in integer units.
#[derive(Debug, Clone)]
pub struct NewFacility {
    pub name: String,
    pub country: String,
    pub market_zone: String,
    pub pue_permille: i32,
    /// Model, hashrate in thousandths of TH/s, power in W, units.
    pub miners: Vec<(String, i64, i64, i32)>,
}

pub fn thousandths(value: i64) -> String {
    (Decimal::from(value) / Decimal::from(1_000))
        .normalize()
        .to_string()
}

fn j_per_th(power_w: i64, hashrate_mths: i64) -> String {
    if hashrate_mths == 0 {
        return "0".into();
    }
    (Decimal::from(power_w) * Decimal::from(1_000) / Decimal::from(hashrate_mths))
        .round_dp(3)
        .normalize()
        .to_string()
}

pub fn create_facility(
    connection: &mut DbConnection,
    facility: &NewFacility,
    now: NaiveDateTime,
) -> Result<Facility, AppError> {
    let taken: i64 = facilities::table
        .filter(facilities::name.eq(&facility.name))
        .count()
        .get_result(connection)?;
    if taken > 0 {
        return Err(AppError::invalid_field(
            "name",
            "duplicate",
            format!("a facility is already named `{}`", facility.name),
        ));
    }
    let id = new_id();
    diesel::insert_into(facilities::table)
        .values((
            facilities::id.eq(&id),
            facilities::name.eq(&facility.name),
            facilities::country.eq(&facility.country),
            facilities::market_zone.eq(&facility.market_zone),
            facilities::pue_permille.eq(facility.pue_permille),
            facilities::created_at.eq(now),
        ))
        .execute(connection)?;
    for (model, hashrate_mths, power_w, units) in &facility.miners {
        diesel::insert_into(facility_miners::table)
            .values((
                facility_miners::facility_id.eq(&id),
                facility_miners::model.eq(model),
                facility_miners::hashrate_mths.eq(hashrate_mths),
                facility_miners::power_w.eq(power_w),
                facility_miners::units.eq(units),
            ))
            .execute(connection)?;
    }
    find_facility(connection, &id)
}

type FacilityRow = (String, String, String, String, i32, NaiveDateTime);

fn facility_of(row: FacilityRow, miners: Vec<(String, i64, i64, i32)>) -> Facility {
    let (id, name, country, market_zone, pue_permille, created_at) = row;
    let fleet = fleet_of(&miners);
    Facility {
        id,
        name,
        country,
        market_zone,
        pue: thousandths(i64::from(pue_permille)),
        j_per_th: j_per_th(fleet.power_w, fleet.hashrate_mths),
        miners: miners
            .into_iter()
            .map(|(model, hashrate_mths, power_w, units)| Miner {
                model,
                hashrate_ths: thousandths(hashrate_mths),
                power_w,
                units,
                j_per_th: j_per_th(power_w, hashrate_mths),
            })
            .collect(),
        created_at,
    }
}

fn fleet_of(miners: &[(String, i64, i64, i32)]) -> Fleet {
    miners.iter().fold(
        Fleet {
            power_w: 0,
            hashrate_mths: 0,
        },
        |fleet, (_, hashrate_mths, power_w, units)| Fleet {
            power_w: fleet.power_w + power_w * i64::from(*units),
            hashrate_mths: fleet.hashrate_mths + hashrate_mths * i64::from(*units),
        },
    )
}

fn miners_of(
    connection: &mut DbConnection,
    facility_id: &str,
) -> QueryResult<Vec<(String, i64, i64, i32)>> {
    facility_miners::table
        .filter(facility_miners::facility_id.eq(facility_id))
        .order(facility_miners::model)
        .select((
            facility_miners::model,
            facility_miners::hashrate_mths,
            facility_miners::power_w,
            facility_miners::units,
        ))
        .load(connection)
}

const FACILITY_COLUMNS: (
    facilities::id,
    facilities::name,
    facilities::country,
    facilities::market_zone,
    facilities::pue_permille,
    facilities::created_at,
) = (
    facilities::id,
    facilities::name,
    facilities::country,
    facilities::market_zone,
    facilities::pue_permille,
    facilities::created_at,
);

pub fn find_facility(connection: &mut DbConnection, id: &str) -> Result<Facility, AppError> {
    let row: FacilityRow = facilities::table
        .find(id)
        .select(FACILITY_COLUMNS)
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no facility with id {id}")))?;
    let miners = miners_of(connection, id)?;
    Ok(facility_of(row, miners))
}

pub fn list_facilities(connection: &mut DbConnection) -> Result<Vec<Facility>, AppError> {
    let rows: Vec<FacilityRow> = facilities::table
        .order(facilities::name)
        .select(FACILITY_COLUMNS)
        .load(connection)?;
    rows.into_iter()
        .map(|row| {
            let miners = miners_of(connection, &row.0)?;
            Ok(facility_of(row, miners))
        })
        .collect()
}

/// Zones hashgate knows: those with an emission factor or a facility.
pub fn known_zones(
    connection: &mut DbConnection,
) -> QueryResult<std::collections::BTreeSet<String>> {
    let mut zones: std::collections::BTreeSet<String> = emission_factors::table
        .select(emission_factors::zone)
        .distinct()
        .load::<String>(connection)?
        .into_iter()
        .collect();
    zones.extend(
        facilities::table
            .select(facilities::market_zone)
            .distinct()
            .load::<String>(connection)?,
    );
    Ok(zones)
}

// ---- orders ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub external_id: String,
    pub user_id: String,
    pub facility_id: String,
    pub hashrate_mths: i64,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub metered_wh: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: String,
    pub external_id: String,
    pub user_id: String,
    pub facility_id: String,
    pub market_zone: String,
    pub hashrate_mths: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub starts_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub ends_at: NaiveDateTime,
    pub energy_wh: i64,
    pub energy_source: String,
    pub fleet_power_w: i64,
    pub fleet_hashrate_mths: i64,
    pub pue_permille: i32,
    pub matched_wh: i64,
    pub hourly_matched_wh: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
}

/// Records an order with its energy: metered when given, else modelled from the facility's
/// fleet and PUE. The same external id with the same content returns the stored order
/// (`false`); with different content it is a conflict.
pub fn insert_order(
    connection: &mut DbConnection,
    order: &NewOrder,
    now: NaiveDateTime,
) -> Result<(OrderRow, bool), AppError> {
    if let Some(stored) = orders::table
        .filter(orders::external_id.eq(&order.external_id))
        .select(OrderRow::as_select())
        .first::<OrderRow>(connection)
        .optional()?
    {
        let same = stored.user_id == order.user_id
            && stored.facility_id == order.facility_id
            && stored.hashrate_mths == order.hashrate_mths
            && stored.starts_at == order.starts_at
            && stored.ends_at == order.ends_at
            && order.metered_wh.is_none_or(|wh| wh == stored.energy_wh);
        if !same {
            return Err(AppError::invalid_field(
                "order_id",
                "conflict",
                format!(
                    "order {} is already recorded with different details",
                    order.external_id
                ),
            ));
        }
        return Ok((stored, false));
    }
    crate::users::store::require_exists(connection, &order.user_id)
        .map_err(|error| AppError::invalid_field("user_id", "unknown_user", error.to_string()))?;
    let facility = facilities::table
        .find(&order.facility_id)
        .select(FACILITY_COLUMNS)
        .first::<FacilityRow>(connection)
        .optional()?
        .ok_or_else(|| {
            AppError::invalid_field(
                "facility_id",
                "unknown_facility",
                format!("no facility with id {}", order.facility_id),
            )
        })?;
    let fleet = fleet_of(&miners_of(connection, &order.facility_id)?);
    let seconds = (order.ends_at - order.starts_at).num_seconds();
    let (energy_wh, source) = match order.metered_wh {
        Some(wh) => (Some(wh), "metered"),
        None => (
            super::modelled_energy_wh(order.hashrate_mths, fleet, facility.4, seconds),
            "modelled",
        ),
    };
    let energy_wh = energy_wh.filter(|wh| *wh > 0).ok_or_else(|| {
        AppError::invalid_field(
            "hashrate_ths",
            "out_of_range",
            "gives no or too much energy",
        )
    })?;
    let id = new_id();
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&id),
            orders::external_id.eq(&order.external_id),
            orders::user_id.eq(&order.user_id),
            orders::facility_id.eq(&order.facility_id),
            orders::market_zone.eq(&facility.3),
            orders::hashrate_mths.eq(order.hashrate_mths),
            orders::starts_at.eq(order.starts_at),
            orders::ends_at.eq(order.ends_at),
            orders::energy_wh.eq(energy_wh),
            orders::energy_source.eq(source),
            orders::fleet_power_w.eq(fleet.power_w),
            orders::fleet_hashrate_mths.eq(fleet.hashrate_mths),
            orders::pue_permille.eq(facility.4),
            orders::created_at.eq(now),
        ))
        .execute(connection)?;
    Ok((find_order(connection, &id)?, true))
}

pub fn find_order(connection: &mut DbConnection, id: &str) -> Result<OrderRow, AppError> {
    orders::table
        .find(id)
        .select(OrderRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no order with id {id}")))
}

pub fn orders_of_user(
    connection: &mut DbConnection,
    user_id: &str,
) -> Result<Vec<OrderRow>, AppError> {
    Ok(orders::table
        .filter(orders::user_id.eq(user_id))
        .order((orders::starts_at, orders::id))
        .select(OrderRow::as_select())
        .load(connection)?)
}

// ---- certificates ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    pub scheme: Scheme,
    pub registry: String,
    pub serial: String,
    pub device_id: String,
    pub technology: String,
    pub market_zone: String,
    pub country: String,
    pub generation_start: NaiveDateTime,
    pub generation_end: NaiveDateTime,
    pub volume_wh: i64,
    pub g_per_kwh: Decimal,
    pub expires_at: Option<NaiveDateTime>,
    pub supersedes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = certificates)]
pub struct CertificateRow {
    pub id: String,
    pub scheme: String,
    pub registry: String,
    pub serial: String,
    pub device_id: String,
    pub technology: String,
    pub market_zone: String,
    pub country: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub generation_start: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub generation_end: NaiveDateTime,
    pub volume_wh: i64,
    pub g_per_kwh: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub expires_at: Option<NaiveDateTime>,
    pub allocated_wh: i64,
    pub retired_wh: i64,
    pub status: String,
    pub supersedes: Option<String>,
    pub imported_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub imported_at: NaiveDateTime,
}

pub fn find_certificate(
    connection: &mut DbConnection,
    id: &str,
) -> Result<CertificateRow, AppError> {
    certificates::table
        .find(id)
        .select(CertificateRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no certificate with id {id}")))
}

fn event(
    connection: &mut DbConnection,
    certificate_id: &str,
    kind: &str,
    wh: i64,
    link: (Option<&str>, Option<&str>),
    reason: Option<&str>,
    (actor, now): (&str, NaiveDateTime),
) -> QueryResult<()> {
    diesel::insert_into(certificate_events::table)
        .values((
            certificate_events::certificate_id.eq(certificate_id),
            certificate_events::kind.eq(kind),
            certificate_events::wh.eq(wh),
            certificate_events::order_id.eq(link.0),
            certificate_events::allocation_id.eq(link.1),
            certificate_events::actor.eq(actor),
            certificate_events::reason.eq(reason),
            certificate_events::occurred_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// Imports a batch of certificates, all or nothing. A serial already in the registry, or a
/// generation period overlapping another certificate of the same device (the same energy
/// issued twice), rejects the batch with every offending row named.
pub fn insert_certificates(
    connection: &mut DbConnection,
    batch: &[NewCertificate],
    actor: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    // Looked up once per batch, not per row.
    let zones = known_zones(connection)?;
    for (index, certificate) in batch.iter().enumerate() {
        let field = |name: &str| format!("certificates[{index}].{name}");
        let duplicate: i64 = certificates::table
            .filter(certificates::scheme.eq(certificate.scheme.as_str()))
            .filter(certificates::registry.eq(&certificate.registry))
            .filter(certificates::serial.eq(&certificate.serial))
            .count()
            .get_result(connection)?;
        let twin_in_batch = batch[..index].iter().any(|other| {
            (other.scheme, &other.registry, &other.serial)
                == (
                    certificate.scheme,
                    &certificate.registry,
                    &certificate.serial,
                )
        });
        if duplicate > 0 || twin_in_batch {
            problems.push(crate::error::FieldError::new(
                field("serial"),
                "duplicate",
                format!(
                    "{} serial {} of {} is already in the registry",
                    certificate.scheme.as_str(),
                    certificate.serial,
                    certificate.registry
                ),
            ));
            continue;
        }
        let overlapping: i64 = certificates::table
            .filter(certificates::registry.eq(&certificate.registry))
            .filter(certificates::device_id.eq(&certificate.device_id))
            .filter(certificates::status.ne("withdrawn"))
            .filter(certificates::generation_start.lt(certificate.generation_end))
            .filter(certificates::generation_end.gt(certificate.generation_start))
            .filter(
                certificates::id
                    .nullable()
                    .ne_all(certificate.supersedes.iter()),
            )
            .count()
            .get_result(connection)?;
        let overlapping_in_batch = batch[..index].iter().any(|other| {
            other.registry == certificate.registry
                && other.device_id == certificate.device_id
                && other.generation_start < certificate.generation_end
                && other.generation_end > certificate.generation_start
        });
        if overlapping > 0 || overlapping_in_batch {
            problems.push(crate::error::FieldError::new(
                field("generation_start"),
                "overlapping_period",
                format!(
                    "device {} already has a certificate for part of this period",
                    certificate.device_id
                ),
            ));
        }
        if !zones.contains(&certificate.market_zone) {
            problems.push(crate::error::FieldError::new(
                field("market_zone"),
                "unknown_zone",
                format!(
                    "no facility or emission factor is in zone `{}`",
                    certificate.market_zone
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let mut ids = Vec::with_capacity(batch.len());
    for certificate in batch {
        if let Some(replaced) = &certificate.supersedes {
            change_status(
                connection,
                replaced,
                "withdrawn",
                "corrected by a new certificate",
                actor,
                now,
            )?;
        }
        let id = new_id();
        diesel::insert_into(certificates::table)
            .values((
                certificates::id.eq(&id),
                certificates::scheme.eq(certificate.scheme.as_str()),
                certificates::registry.eq(&certificate.registry),
                certificates::serial.eq(&certificate.serial),
                certificates::device_id.eq(&certificate.device_id),
                certificates::technology.eq(&certificate.technology),
                certificates::market_zone.eq(&certificate.market_zone),
                certificates::country.eq(&certificate.country),
                certificates::generation_start.eq(certificate.generation_start),
                certificates::generation_end.eq(certificate.generation_end),
                certificates::volume_wh.eq(certificate.volume_wh),
                certificates::g_per_kwh.eq(certificate.g_per_kwh.to_string()),
                certificates::expires_at.eq(certificate.expires_at),
                certificates::status.eq("active"),
                certificates::supersedes.eq(&certificate.supersedes),
                certificates::imported_by.eq(actor),
                certificates::imported_at.eq(now),
            ))
            .execute(connection)?;
        event(
            connection,
            &id,
            "imported",
            certificate.volume_wh,
            (None, None),
            None,
            (actor, now),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// What a revocation, withdrawal or expiry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusChange {
    pub certificate_id: String,
    pub status: String,
    /// Live allocations given back to their orders, which are unmatched again for that volume.
    pub released_allocations: usize,
    pub released_wh: i64,
    /// Volume already retired stays retired: a retirement is final. Non-zero means the claim
    /// rests on a certificate the registry no longer stands behind (an audit exception).
    pub retired_wh_kept: i64,
}

/// Revokes, withdraws or expires a certificate: it stops further use, and its live allocations
/// are released. Retired volume is final and stays.
pub fn change_status(
    connection: &mut DbConnection,
    id: &str,
    status: &str,
    reason: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<StatusChange, AppError> {
    let certificate = find_certificate(connection, id)?;
    if certificate.status != "active" {
        return Err(AppError::Conflict(format!(
            "certificate {id} is already {}",
            certificate.status
        )));
    }
    lock_zone(connection, &certificate.market_zone)?;
    let live: Vec<(String, String, Option<NaiveDateTime>, i64)> = allocations::table
        .filter(allocations::certificate_id.eq(id))
        .filter(allocations::state.eq("live"))
        .select((
            allocations::id,
            allocations::order_id,
            allocations::hour_start,
            allocations::wh,
        ))
        .load(connection)?;
    let mut released_wh = 0;
    for (allocation_id, order_id, hour_start, wh) in &live {
        release(connection, allocation_id, order_id, *hour_start, *wh, now)?;
        event(
            connection,
            id,
            "released",
            *wh,
            (Some(order_id), Some(allocation_id)),
            Some(reason),
            (actor, now),
        )?;
        released_wh += wh;
    }
    diesel::update(certificates::table.find(id))
        .set((
            certificates::status.eq(status),
            certificates::allocated_wh.eq(certificates::allocated_wh - released_wh),
        ))
        .execute(connection)?;
    event(
        connection,
        id,
        status,
        0,
        (None, None),
        Some(reason),
        (actor, now),
    )?;
    Ok(StatusChange {
        certificate_id: id.into(),
        status: status.into(),
        released_allocations: live.len(),
        released_wh,
        retired_wh_kept: certificate.retired_wh,
    })
}

fn release(
    connection: &mut DbConnection,
    allocation_id: &str,
    order_id: &str,
    hour_start: Option<NaiveDateTime>,
    wh: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(allocations::table.find(allocation_id))
        .set((
            allocations::state.eq("released"),
            allocations::released_at.eq(Some(now)),
        ))
        .execute(connection)?;
    let hourly = i64::from(hour_start.is_some()) * wh;
    diesel::update(orders::table.find(order_id))
        .set((
            orders::matched_wh.eq(orders::matched_wh - wh),
            orders::hourly_matched_wh.eq(orders::hourly_matched_wh - hourly),
        ))
        .execute(connection)?;
    if let Some(hour) = hour_start {
        diesel::update(order_hours::table.find((order_id, hour)))
            .set(order_hours::matched_wh.eq(order_hours::matched_wh - wh))
            .execute(connection)?;
    }
    Ok(())
}

// ---- allocation ----

/// An allocation row as written in bulk.
#[derive(Insertable)]
#[diesel(table_name = allocations, treat_none_as_default_value = false)]
struct NewAllocationRow<'a> {
    id: String,
    certificate_id: &'a str,
    order_id: &'a str,
    mode: &'static str,
    hour_start: Option<InsertTimestamp>,
    wh: i64,
    state: &'static str,
    retirement_id: Option<String>,
    allocated_by: &'a str,
    allocated_at: InsertTimestamp,
    released_at: Option<InsertTimestamp>,
}

#[derive(Insertable)]
#[diesel(table_name = certificate_events, treat_none_as_default_value = false)]
struct NewEventRow<'a> {
    certificate_id: &'a str,
    kind: &'static str,
    wh: i64,
    order_id: Option<&'a str>,
    allocation_id: Option<String>,
    actor: &'a str,
    reason: Option<String>,
    occurred_at: InsertTimestamp,
}

#[derive(Insertable)]
#[diesel(table_name = order_hours, treat_none_as_default_value = false)]
struct NewHourRow<'a> {
    order_id: &'a str,
    hour_start: InsertTimestamp,
    consumption_wh: i64,
    matched_wh: i64,
}

/// Rows per multi-row UPDATE.
const UPDATE_CHUNK: usize = 1_000;

/// Adds Wh to many rows at once, each only within its bound: `UPDATE … FROM (VALUES …)`, whose
/// `{values}` are (id, wh, extra) rows read as `v.column1` to `v.column3`. Every row must take its
/// addition, or the whole run is refused, naming the first row that could not.
fn add_within_bounds(
    connection: &mut DbConnection,
    statement: &str,
    additions: &[(&str, i64, i64)],
    refusal: impl Fn(&str, i64) -> String,
) -> Result<(), AppError> {
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Updated {
        #[diesel(sql_type = Text)]
        id: String,
    }
    for chunk in additions.chunks(UPDATE_CHUNK) {
        // `$n` is a numbered parameter on PostgreSQL and a named one, numbered in order of
        // appearance, on SQLite.
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                format!(
                    "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                    row * 3 + 1,
                    row * 3 + 2,
                    row * 3 + 3
                )
            })
            .collect();
        let sql = statement.replace("{values}", &values.join(", "));
        let mut query = diesel::sql_query(sql).into_boxed::<crate::db::MultiBackend>();
        for (id, wh, extra) in chunk {
            query = query
                .bind::<Text, _>(id.to_string())
                .bind::<BigInt, _>(*wh)
                .bind::<BigInt, _>(*extra);
        }
        let updated: Vec<Updated> = query.load(connection)?;
        if updated.len() != chunk.len() {
            let updated: HashSet<&str> = updated.iter().map(|row| row.id.as_str()).collect();
            let (id, wh, _) = chunk
                .iter()
                .find(|(id, _, _)| !updated.contains(id))
                .unwrap_or(&chunk[0]);
            return Err(AppError::Conflict(refusal(id, *wh)));
        }
    }
    Ok(())
}

/// Writes a matching run's grants, or one allocation by hand. The certificates' and orders'
/// matched volume grows by one conditional UPDATE per thousand rows, and each hour already
/// stored by one of its own, so each stays within its bound or the whole run is refused; then
/// the allocations, the hours matched for the first time and the certificates' events are
/// inserted. Returns the allocations' ids in the grants' order.
fn write_grants(
    connection: &mut DbConnection,
    grants: &[Grant],
    consumption: &HashMap<(&str, NaiveDateTime), i64>,
    stored: &StoredHours,
    (actor, now): (&str, NaiveDateTime),
) -> Result<Vec<String>, AppError> {
    // Each certificate's total and the grants that make it up (for its event).
    let mut per_certificate: BTreeMap<&str, (i64, Vec<usize>)> = BTreeMap::new();
    let mut per_order: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut per_hour: BTreeMap<(&str, NaiveDateTime), i64> = BTreeMap::new();
    for (index, grant) in grants.iter().enumerate() {
        let certificate = per_certificate.entry(&grant.certificate_id).or_default();
        certificate.0 += grant.wh;
        certificate.1.push(index);
        let order = per_order.entry(grant.order_id).or_default();
        order.0 += grant.wh;
        if let Some(hour) = grant.hour_start {
            order.1 += grant.wh;
            *per_hour.entry((grant.order_id, hour)).or_default() += grant.wh;
        }
    }
    let certificates: Vec<(&str, i64, i64)> = per_certificate
        .iter()
        .map(|(id, (wh, _))| (*id, *wh, 0))
        .collect();
    add_within_bounds(
        connection,
        "UPDATE certificates SET allocated_wh = certificates.allocated_wh + v.column2 \
         FROM (VALUES {values}) AS v \
         WHERE certificates.id = v.column1 AND certificates.status = 'active' \
         AND certificates.allocated_wh + certificates.retired_wh + v.column2 \
             <= certificates.volume_wh \
         RETURNING certificates.id",
        &certificates,
        |id, wh| format!("certificate {id} has less than {wh} Wh left to allocate"),
    )?;
    let orders: Vec<(&str, i64, i64)> = per_order
        .into_iter()
        .map(|(id, (wh, hourly))| (id, wh, hourly))
        .collect();
    add_within_bounds(
        connection,
        "UPDATE orders SET matched_wh = orders.matched_wh + v.column2, \
         hourly_matched_wh = orders.hourly_matched_wh + v.column3 \
         FROM (VALUES {values}) AS v \
         WHERE orders.id = v.column1 AND orders.matched_wh + v.column2 <= orders.energy_wh \
         RETURNING orders.id",
        &orders,
        |id, wh| format!("order {id} has less than {wh} Wh left to match"),
    )?;
    let mut new_hours = Vec::new();
    for ((order_id, hour), wh) in per_hour {
        let refused = || {
            AppError::Conflict(format!(
                "hour {hour} of order {order_id} has less than {wh} Wh left to match"
            ))
        };
        if stored
            .get(order_id)
            .is_some_and(|hours| hours.contains_key(&hour))
        {
            let updated = diesel::update(
                order_hours::table
                    .filter(order_hours::order_id.eq(order_id))
                    .filter(order_hours::hour_start.eq(hour))
                    .filter((order_hours::matched_wh + wh).le(order_hours::consumption_wh)),
            )
            .set(order_hours::matched_wh.eq(order_hours::matched_wh + wh))
            .execute(connection)?;
            if updated == 0 {
                return Err(refused());
            }
        } else {
            let consumption_wh = consumption.get(&(order_id, hour)).copied().unwrap_or(0);
            if wh > consumption_wh {
                return Err(refused());
            }
            new_hours.push(NewHourRow {
                order_id,
                hour_start: InsertTimestamp(hour),
                consumption_wh,
                matched_wh: wh,
            });
        }
    }
    crate::db::insert_all!(connection, order_hours::table, &new_hours)?;
    let rows: Vec<NewAllocationRow> = grants
        .iter()
        .map(|grant| NewAllocationRow {
            id: new_id(),
            certificate_id: &grant.certificate_id,
            order_id: grant.order_id,
            mode: if grant.hour_start.is_some() {
                "hourly"
            } else {
                "annual"
            },
            hour_start: grant.hour_start.map(InsertTimestamp),
            wh: grant.wh,
            state: "live",
            retirement_id: None,
            allocated_by: actor,
            allocated_at: InsertTimestamp(now),
            released_at: None,
        })
        .collect();
    // One event per certificate: a run allocates an hourly certificate to hundreds of orders,
    // and its history records that as one allocation of the total (the allocations themselves
    // name each order), linking the order and allocation when there is only one.
    let events: Vec<NewEventRow> = per_certificate
        .into_iter()
        .map(|(certificate_id, (wh, indices))| {
            let (link, reason) = match indices.as_slice() {
                [only] => {
                    let row = &rows[*only];
                    ((Some(row.order_id), Some(row.id.clone())), None)
                }
                many => {
                    let orders: HashSet<&str> =
                        many.iter().map(|index| grants[*index].order_id).collect();
                    let reason = format!(
                        "{} allocations to {} orders in one matching run",
                        many.len(),
                        orders.len()
                    );
                    ((None, None), Some(reason))
                }
            };
            NewEventRow {
                certificate_id,
                kind: "allocated",
                wh,
                order_id: link.0,
                allocation_id: link.1,
                actor,
                reason,
                occurred_at: InsertTimestamp(now),
            }
        })
        .collect();
    crate::db::insert_all!(connection, allocations::table, &rows)?;
    crate::db::insert_all!(connection, certificate_events::table, &events)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

type CandidateRow = (
    String,
    String,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    i64,
    i64,
    i64,
);

/// Active, unexpired certificates of `zone` with volume left whose generation lies within
/// `[from, to)`.
fn candidates(
    connection: &mut DbConnection,
    zone: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Vec<Candidate>> {
    let rows: Vec<CandidateRow> = certificates::table
        .filter(certificates::market_zone.eq(zone))
        .filter(certificates::status.eq("active"))
        .filter(
            certificates::expires_at
                .is_null()
                .or(certificates::expires_at.gt(now)),
        )
        .filter(certificates::generation_start.ge(from))
        .filter(certificates::generation_end.le(to))
        .filter((certificates::allocated_wh + certificates::retired_wh).lt(certificates::volume_wh))
        .select((
            certificates::id,
            certificates::scheme,
            certificates::generation_start,
            certificates::generation_end,
            certificates::expires_at,
            certificates::volume_wh,
            certificates::allocated_wh,
            certificates::retired_wh,
        ))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, scheme, start, end, expires_at, volume, allocated, retired)| {
                Some(Candidate {
                    certificate_id: id.into(),
                    scheme: Scheme::parse(&scheme)?,
                    generation_start: start,
                    generation_end: end,
                    expires_at,
                    available_wh: volume - allocated - retired,
                })
            },
        )
        .collect())
}

/// What a matching run allocated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MatchReport {
    pub orders: usize,
    pub allocations: usize,
    pub hourly_wh: i64,
    pub annual_wh: i64,
}

fn widen(
    period: (NaiveDateTime, NaiveDateTime),
    vintage: &VintageRules,
) -> (NaiveDateTime, NaiveDateTime) {
    let widest = vintage.widest();
    (
        period
            .0
            .checked_sub_months(chrono::Months::new(widest.months_before))
            .unwrap_or(period.0),
        period
            .1
            .checked_add_months(chrono::Months::new(widest.months_after))
            .unwrap_or(period.1),
    )
}

/// Orders whose hours are matched and written together in hourly mode (a month of hours each).
const HOURLY_ORDERS_PER_WRITE: usize = 250;

/// Orders matched hour by hour together: their stored hours, then the consumption of their
/// certified hours and what the matcher granted them.
struct HourlyChunk<'c, 'a> {
    orders: &'c [&'a OrderRow],
    stored: StoredHours,
    consumption: HashMap<(&'a str, NaiveDateTime), i64>,
    grants: Vec<Grant<'a>>,
}

impl<'c, 'a> HourlyChunk<'c, 'a> {
    fn new(orders: &'c [&'a OrderRow], stored: StoredHours) -> Self {
        HourlyChunk {
            orders,
            stored,
            consumption: HashMap::new(),
            grants: Vec::new(),
        }
    }

    /// Grants each certified hour what it still lacks.
    fn grant(
        &mut self,
        matcher: &mut matching::HourlyMatcher,
        certified_hours: &std::collections::BTreeSet<NaiveDateTime>,
    ) {
        let mut hour_needs = Vec::new();
        for &order in self.orders {
            let matched = self.stored.get(&order.id);
            for hour in super::hourly_consumption(order.starts_at, order.ends_at, order.energy_wh) {
                if !certified_hours.contains(&hour.hour_start) {
                    continue;
                }
                let already = matched
                    .and_then(|hours| hours.get(&hour.hour_start))
                    .copied()
                    .unwrap_or(0);
                self.consumption
                    .insert((&order.id, hour.hour_start), hour.wh);
                if hour.wh > already {
                    hour_needs.push(HourNeed {
                        order_id: &order.id,
                        hour_start: hour.hour_start,
                        wh: hour.wh - already,
                    });
                }
            }
        }
        self.grants = matcher.grant(&hour_needs);
    }
}

fn matcher_stopped() -> AppError {
    AppError::internal(anyhow::anyhow!("the hourly matcher thread stopped"))
}

/// Matches the unmatched energy of `order_ids` (all in `zone`, in this order): first hour by hour
/// against one-hour certificates, then volumetrically within each scheme's vintage window.
pub fn match_orders(
    connection: &mut DbConnection,
    zone: &str,
    order_ids: &[String],
    vintage: &VintageRules,
    actor: &str,
    now: NaiveDateTime,
) -> Result<MatchReport, AppError> {
    lock_zone(connection, zone)?;
    let mut report = MatchReport::default();
    let mut open: Vec<OrderRow> = Vec::with_capacity(order_ids.len());
    for chunk in order_ids.chunks(500) {
        let mut rows: Vec<OrderRow> = orders::table
            .filter(orders::id.eq_any(chunk))
            .filter(orders::matched_wh.lt(orders::energy_wh))
            .select(OrderRow::as_select())
            .load(connection)?;
        let position: HashMap<&String, usize> =
            chunk.iter().enumerate().map(|(i, id)| (id, i)).collect();
        rows.sort_by_key(|row| position.get(&row.id).copied());
        open.extend(rows);
    }
    if open.is_empty() {
        return Ok(report);
    }
    report.orders = open.len();
    let span = (
        open.iter().map(|o| o.starts_at).min().unwrap_or(now),
        open.iter().map(|o| o.ends_at).max().unwrap_or(now),
    );

    // Hourly: the hours not yet matched that have one-hour certificates of their own.
    let hourly_candidates: Vec<Candidate> = candidates(connection, zone, span.0, span.1, now)?
        .into_iter()
        .filter(|c| super::is_one_utc_hour(c.generation_start, c.generation_end))
        .collect();
    let mut matched_now: HashMap<&str, i64> = HashMap::new();
    if !hourly_candidates.is_empty() {
        let mut matcher = matching::HourlyMatcher::new(hourly_candidates);
        let certified_hours = matcher.hours();
        let hourly_orders: Vec<&OrderRow> = open
            .iter()
            .filter(|order| {
                let first_hour = order.starts_at - chrono::Duration::hours(1);
                first_hour < order.ends_at
                    && certified_hours
                        .range(first_hour..order.ends_at)
                        .next()
                        .is_some()
            })
            .collect();
        // A few hundred orders at a time: their hours, and the grants and rows written for
        // them, are held in memory only while they are matched. A second thread matches the
        // next chunk while this one writes the last: the writes are most of the time.
        let chunks = hourly_orders.chunks(HOURLY_ORDERS_PER_WRITE);
        std::thread::scope(|scope| -> Result<(), AppError> {
            let (to_matcher, loaded) = std::sync::mpsc::sync_channel::<HourlyChunk>(1);
            let (to_writer, matched) = std::sync::mpsc::sync_channel::<HourlyChunk>(1);
            let certified_hours = &certified_hours;
            scope.spawn(move || {
                for mut chunk in loaded {
                    chunk.grant(&mut matcher, certified_hours);
                    // A send fails only when the writer has stopped.
                    if to_writer.send(chunk).is_err() {
                        break;
                    }
                }
            });
            let mut chunks = chunks.peekable();
            let mut in_flight = 0;
            while chunks.peek().is_some() || in_flight > 0 {
                if let Some(orders) = chunks.next() {
                    let ids: Vec<&str> = orders.iter().map(|order| order.id.as_str()).collect();
                    let stored = stored_hours(connection, &ids)?;
                    to_matcher
                        .send(HourlyChunk::new(orders, stored))
                        .map_err(|_| matcher_stopped())?;
                    in_flight += 1;
                }
                if in_flight == 2 || chunks.peek().is_none() {
                    let chunk = matched.recv().map_err(|_| matcher_stopped())?;
                    in_flight -= 1;
                    write_grants(
                        connection,
                        &chunk.grants,
                        &chunk.consumption,
                        &chunk.stored,
                        (actor, now),
                    )?;
                    for grant in &chunk.grants {
                        *matched_now.entry(grant.order_id).or_default() += grant.wh;
                        report.hourly_wh += grant.wh;
                    }
                    report.allocations += chunk.grants.len();
                }
            }
            Ok(())
        })?;
    }

    // Annual: what is still unmatched, within each scheme's vintage window.
    let needs: Vec<Need> = open
        .iter()
        .filter_map(|order| {
            let left = order.energy_wh
                - order.matched_wh
                - matched_now.get(order.id.as_str()).copied().unwrap_or(0);
            (left > 0).then(|| Need {
                order_id: order.id.clone(),
                period: (order.starts_at, order.ends_at),
                wh: left,
            })
        })
        .collect();
    if !needs.is_empty() {
        let window = widen(span, vintage);
        let annual_candidates = candidates(connection, zone, window.0, window.1, now)?;
        let grants = matching::match_annual(&needs, annual_candidates, vintage);
        write_grants(
            connection,
            &grants,
            &HashMap::new(),
            &StoredHours::new(),
            (actor, now),
        )?;
        report.annual_wh += grants.iter().map(|grant| grant.wh).sum::<i64>();
        report.allocations += grants.len();
    }
    Ok(report)
}

/// Marks active certificates past their expiry as expired, releasing their live allocations
/// (an expired certificate can no longer be retired); returns how many expired.
pub fn expire_due(
    connection: &mut DbConnection,
    actor: &str,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let due: Vec<String> = certificates::table
        .filter(certificates::status.eq("active"))
        .filter(certificates::expires_at.le(now))
        .select(certificates::id)
        .load(connection)?;
    for id in &due {
        change_status(
            connection,
            id,
            "expired",
            "past its expiry date",
            actor,
            now,
        )?;
    }
    Ok(due.len())
}

/// Matches every order with unmatched energy, zone by zone.
pub fn match_all(
    connection: &mut DbConnection,
    vintage: &VintageRules,
    actor: &str,
    now: NaiveDateTime,
) -> Result<MatchReport, AppError> {
    expire_due(connection, actor, now)?;
    let zones: Vec<String> = orders::table
        .filter(orders::matched_wh.lt(orders::energy_wh))
        .select(orders::market_zone)
        .distinct()
        .order(orders::market_zone)
        .load(connection)?;
    let mut total = MatchReport::default();
    for zone in zones {
        let report = match_zone(connection, &zone, vintage, actor, now)?;
        total.orders += report.orders;
        total.allocations += report.allocations;
        total.hourly_wh += report.hourly_wh;
        total.annual_wh += report.annual_wh;
    }
    Ok(total)
}

/// Matches the orders of one market zone with unmatched energy, by start time then id.
pub fn match_zone(
    connection: &mut DbConnection,
    zone: &str,
    vintage: &VintageRules,
    actor: &str,
    now: NaiveDateTime,
) -> Result<MatchReport, AppError> {
    let open: Vec<String> = orders::table
        .filter(orders::market_zone.eq(zone))
        .filter(orders::matched_wh.lt(orders::energy_wh))
        .order((orders::starts_at, orders::id))
        .select(orders::id)
        .load(connection)?;
    match_orders(connection, zone, &open, vintage, actor, now)
}

/// Allocates `wh` of one certificate to one order by hand (annual mode), with every check the
/// matcher makes: same market zone, active and unexpired, within the scheme's vintage window.
pub fn allocate(
    connection: &mut DbConnection,
    certificate_id: &str,
    order_id: &str,
    wh: i64,
    vintage: &VintageRules,
    actor: &str,
    now: NaiveDateTime,
) -> Result<String, AppError> {
    let certificate = find_certificate(connection, certificate_id).map_err(|e| {
        AppError::invalid_field("certificate_id", "unknown_certificate", e.to_string())
    })?;
    let order = find_order(connection, order_id)
        .map_err(|e| AppError::invalid_field("order_id", "unknown_order", e.to_string()))?;
    if certificate.market_zone != order.market_zone {
        return Err(AppError::invalid_field(
            "certificate_id",
            "zone_mismatch",
            format!(
                "the certificate is from market zone {}, the order consumes in {}",
                certificate.market_zone, order.market_zone
            ),
        ));
    }
    if certificate.status != "active" || certificate.expires_at.is_some_and(|at| at <= now) {
        let status = if certificate.status == "active" {
            "expired"
        } else {
            certificate.status.as_str()
        };
        return Err(AppError::invalid_field(
            "certificate_id",
            "not_active",
            format!("the certificate is {status}"),
        ));
    }
    let scheme = Scheme::parse(&certificate.scheme).unwrap_or(Scheme::Irec);
    if !vintage.window(scheme).admits(
        (certificate.generation_start, certificate.generation_end),
        (order.starts_at, order.ends_at),
    ) {
        let window = vintage.window(scheme);
        return Err(AppError::invalid_field(
            "certificate_id",
            "outside_vintage_window",
            format!(
                "{} certificates must be generated from {} months before to {} months after the consumption period",
                certificate.scheme, window.months_before, window.months_after
            ),
        ));
    }
    lock_zone(connection, &order.market_zone)?;
    let ids = write_grants(
        connection,
        &[Grant {
            order_id,
            certificate_id: certificate_id.into(),
            hour_start: None,
            wh,
        }],
        &HashMap::new(),
        &StoredHours::new(),
        (actor, now),
    )?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

// ---- retirement ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRetirement {
    pub user_id: String,
    pub beneficiary: String,
    pub period_start: NaiveDateTime,
    pub period_end: NaiveDateTime,
    pub registry_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Retirement {
    pub id: String,
    pub user_id: String,
    pub beneficiary: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub period_start: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub period_end: NaiveDateTime,
    pub registry_reference: String,
    pub retired_wh: i64,
    pub allocations: usize,
    pub retired_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub retired_at: NaiveDateTime,
}

/// Retires, for the user as beneficiary, the live allocations of their orders that run within
/// the claim period, against one external registry redemption. Final: nothing undoes it.
pub fn retire(
    connection: &mut DbConnection,
    retirement: &NewRetirement,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Retirement, AppError> {
    let used: i64 = retirements::table
        .filter(retirements::registry_reference.eq(&retirement.registry_reference))
        .count()
        .get_result(connection)?;
    if used > 0 {
        return Err(AppError::invalid_field(
            "registry_reference",
            "duplicate",
            "this registry redemption is already claimed by a retirement",
        ));
    }
    let live: Vec<(String, String, i64)> = allocations::table
        .inner_join(orders::table)
        .filter(orders::user_id.eq(&retirement.user_id))
        .filter(orders::starts_at.ge(retirement.period_start))
        .filter(orders::ends_at.le(retirement.period_end))
        .filter(allocations::state.eq("live"))
        // A certificate must still be valid when it is retired, not only when allocated.
        .filter(
            allocations::certificate_id.eq_any(
                certificates::table
                    .filter(certificates::status.eq("active"))
                    .filter(
                        certificates::expires_at
                            .is_null()
                            .or(certificates::expires_at.gt(now)),
                    )
                    .select(certificates::id),
            ),
        )
        .order(allocations::allocated_at)
        .select((
            allocations::id,
            allocations::certificate_id,
            allocations::wh,
        ))
        .load(connection)?;
    if live.is_empty() {
        return Err(AppError::invalid_field(
            "period_start",
            "nothing_to_retire",
            "the user has no matched, unretired energy from orders within this period",
        ));
    }
    let id = new_id();
    let total: i64 = live.iter().map(|(_, _, wh)| wh).sum();
    diesel::insert_into(retirements::table)
        .values((
            retirements::id.eq(&id),
            retirements::user_id.eq(&retirement.user_id),
            retirements::beneficiary.eq(&retirement.beneficiary),
            retirements::period_start.eq(retirement.period_start),
            retirements::period_end.eq(retirement.period_end),
            retirements::registry_reference.eq(&retirement.registry_reference),
            retirements::retired_wh.eq(total),
            retirements::retired_by.eq(actor),
            retirements::retired_at.eq(now),
        ))
        .execute(connection)?;
    for (allocation_id, certificate_id, wh) in &live {
        diesel::update(allocations::table.find(allocation_id))
            .set((
                allocations::state.eq("retired"),
                allocations::retirement_id.eq(Some(&id)),
            ))
            .execute(connection)?;
        diesel::update(certificates::table.find(certificate_id))
            .set((
                certificates::allocated_wh.eq(certificates::allocated_wh - wh),
                certificates::retired_wh.eq(certificates::retired_wh + wh),
            ))
            .execute(connection)?;
        event(
            connection,
            certificate_id,
            "retired",
            *wh,
            (None, Some(allocation_id)),
            Some(&retirement.registry_reference),
            (actor, now),
        )?;
    }
    Ok(Retirement {
        id,
        user_id: retirement.user_id.clone(),
        beneficiary: retirement.beneficiary.clone(),
        period_start: retirement.period_start,
        period_end: retirement.period_end,
        registry_reference: retirement.registry_reference.clone(),
        retired_wh: total,
        allocations: live.len(),
        retired_by: actor.into(),
        retired_at: now,
    })
}

// ---- reads for the footprint ----

/// An allocation with the certificate it draws on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AllocationView {
    pub id: String,
    pub certificate_id: String,
    pub scheme: String,
    pub registry: String,
    pub serial: String,
    pub technology: String,
    pub g_per_kwh: String,
    pub mode: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub hour_start: Option<NaiveDateTime>,
    pub wh: i64,
    pub state: String,
    pub retirement_id: Option<String>,
}

pub fn allocations_of_orders(
    connection: &mut DbConnection,
    order_ids: &[String],
) -> Result<HashMap<String, Vec<AllocationView>>, AppError> {
    let mut by_order: HashMap<String, Vec<AllocationView>> = HashMap::new();
    for chunk in order_ids.chunks(500) {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<NaiveDateTime>,
            i64,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = allocations::table
            .inner_join(certificates::table)
            .filter(allocations::order_id.eq_any(chunk))
            .filter(allocations::state.ne("released"))
            // Within one matching run, in the matcher's order: oldest-expiring certificate first.
            .order((
                allocations::order_id,
                allocations::allocated_at,
                certificates::expires_at.is_null(),
                certificates::expires_at,
                certificates::generation_start,
                certificates::id,
            ))
            .select((
                allocations::order_id,
                allocations::id,
                certificates::id,
                certificates::scheme,
                certificates::registry,
                certificates::serial,
                certificates::technology,
                certificates::g_per_kwh,
                allocations::hour_start,
                allocations::wh,
                allocations::state,
                allocations::retirement_id,
            ))
            .load(connection)?;
        for row in rows {
            by_order.entry(row.0).or_default().push(AllocationView {
                id: row.1,
                certificate_id: row.2,
                scheme: row.3,
                registry: row.4,
                serial: row.5,
                technology: row.6,
                g_per_kwh: row.7,
                mode: if row.8.is_some() { "hourly" } else { "annual" }.into(),
                hour_start: row.8,
                wh: row.9,
                state: row.10,
                retirement_id: row.11,
            });
        }
    }
    Ok(by_order)
}

/// The coverage of an order from its allocations.
pub fn coverage_of(order: &OrderRow, allocations: &[AllocationView]) -> Coverage {
    Coverage {
        energy_wh: order.energy_wh,
        matched: allocations
            .iter()
            .map(|a| (a.wh, a.g_per_kwh.parse().unwrap_or_default()))
            .collect(),
        hourly_matched_wh: order.hourly_matched_wh,
    }
}

/// Orders running at some point in `[from, to)`.
pub fn orders_overlapping(
    connection: &mut DbConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<OrderRow>, AppError> {
    Ok(orders::table
        .filter(orders::starts_at.lt(to))
        .filter(orders::ends_at.gt(from))
        .select(OrderRow::as_select())
        .load(connection)?)
}

/// Country of each facility, by id.
pub fn facility_countries(
    connection: &mut DbConnection,
) -> Result<HashMap<String, String>, AppError> {
    Ok(facilities::table
        .select((facilities::id, facilities::country))
        .load::<(String, String)>(connection)?
        .into_iter()
        .collect())
}

/// Matched Wh per hour of an order, for the hours hourly matching touched.
pub fn matched_hours(
    connection: &mut DbConnection,
    order_id: &str,
) -> Result<HashMap<NaiveDateTime, i64>, AppError> {
    Ok(stored_hours(connection, &[order_id])?
        .remove(order_id)
        .unwrap_or_default())
}

/// The hours of orders that hourly matching touched, with their matched Wh, per order.
type StoredHours = HashMap<String, HashMap<NaiveDateTime, i64>>;

/// The stored hours of a few hundred orders, in one query.
fn stored_hours(connection: &mut DbConnection, order_ids: &[&str]) -> QueryResult<StoredHours> {
    let rows: Vec<(String, NaiveDateTime, i64)> = order_hours::table
        .filter(order_hours::order_id.eq_any(order_ids))
        .select((
            order_hours::order_id,
            order_hours::hour_start,
            order_hours::matched_wh,
        ))
        .load(connection)?;
    let mut stored = StoredHours::new();
    for (order_id, hour, wh) in rows {
        stored.entry(order_id).or_default().insert(hour, wh);
    }
    Ok(stored)
}

/// One step in a certificate's life. An `allocated` event records allocations of the certificate
/// written together (by hand, or by a matching run a few hundred orders at a time): it names the
/// order and allocation when there is one, and otherwise says in `reason` how many it totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, Queryable)]
pub struct CertificateEvent {
    pub seq: i64,
    pub kind: String,
    pub wh: i64,
    pub order_id: Option<String>,
    pub allocation_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub occurred_at: NaiveDateTime,
}

pub fn certificate_events(
    connection: &mut DbConnection,
    certificate_id: &str,
) -> Result<Vec<CertificateEvent>, AppError> {
    Ok(certificate_events::table
        .filter(certificate_events::certificate_id.eq(certificate_id))
        .order(certificate_events::seq)
        .select((
            certificate_events::seq,
            certificate_events::kind,
            certificate_events::wh,
            certificate_events::order_id,
            certificate_events::allocation_id,
            certificate_events::actor,
            certificate_events::reason,
            certificate_events::occurred_at,
        ))
        .load(connection)?)
}
