//! What the API, the certificate PDF and the public footprint show: orders with their energy,
//! certificates and both methods' emissions, every figure naming the factor behind it.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::factors::FactorRow;
use super::footprint::{self, Coverage, FactorUsed};
use super::store::{self, AllocationView, OrderRow};
use super::Basis;
use crate::db::DbConnection;
use crate::error::AppError;

/// The emissions of some energy by both methods, with the factors used.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Emissions {
    pub energy_wh: i64,
    /// Energy covered by live or retired certificates (volumetric).
    pub matched_wh: i64,
    /// Of that, covered hour by hour by certificates of the same UTC hour.
    pub hourly_matched_wh: i64,
    /// matched / energy, four decimals.
    pub share_matched: String,
    /// hourly matched / energy, four decimals.
    pub share_hourly_matched: String,
    /// kg CO2e: all energy at the grid-average factor.
    pub location_based_kg: String,
    /// kg CO2e: matched energy at the certificates' factors, the rest at the residual mix.
    pub market_based_kg: String,
    /// True when no residual-mix factor is known and the grid average stood in for it.
    pub residual_mix_missing: bool,
    pub location_factor: FactorUsed,
    pub residual_mix_factor: Option<FactorUsed>,
    /// The exact grams behind the two rounded figures, for totals rounded once.
    #[serde(skip)]
    exact_g: (Decimal, Decimal),
}

/// The factors for one zone and year: grid average (the configured basis) and residual mix.
struct ZoneFactors<'a> {
    grid: &'a FactorRow,
    residual: Option<&'a FactorRow>,
}

fn zone_factors<'a>(
    factors: &'a [FactorRow],
    basis: Basis,
    zone: &str,
    country: &str,
    year: i32,
) -> Result<ZoneFactors<'a>, AppError> {
    let grid = footprint::pick(factors, basis, zone, country, year).ok_or_else(|| {
        AppError::invalid_field(
            "market_zone",
            "no_emission_factor",
            format!(
                "no {} emission factor for zone {zone} or country {country}: import one",
                basis.as_str()
            ),
        )
    })?;
    Ok(ZoneFactors {
        grid,
        residual: footprint::pick(factors, Basis::ResidualMix, zone, country, year),
    })
}

fn emissions_of(coverage: &Coverage, factors: &ZoneFactors<'_>) -> Emissions {
    let result = footprint::emissions(
        coverage,
        factors.grid.g_per_kwh,
        factors.residual.map(|f| f.g_per_kwh),
    );
    Emissions {
        energy_wh: coverage.energy_wh,
        matched_wh: result.matched_wh,
        hourly_matched_wh: coverage.hourly_matched_wh,
        share_matched: footprint::share(result.matched_wh, coverage.energy_wh),
        share_hourly_matched: footprint::share(coverage.hourly_matched_wh, coverage.energy_wh),
        location_based_kg: footprint::kilograms(result.location_g),
        market_based_kg: footprint::kilograms(result.market_g),
        residual_mix_missing: result.residual_mix_missing,
        location_factor: factors.grid.into(),
        residual_mix_factor: factors.residual.map(FactorUsed::from),
        exact_g: (result.location_g, result.market_g),
    }
}

/// An order as its owner and the officers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub facility_id: String,
    pub market_zone: String,
    pub hashrate_ths: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub starts_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub ends_at: NaiveDateTime,
    /// `metered` or `modelled`.
    pub energy_source: String,
    /// How a modelled figure was computed, with its inputs.
    pub energy_method: String,
    pub consumption_hours: usize,
    pub allocations: Vec<AllocationView>,
    pub emissions: Emissions,
}

fn method(order: &OrderRow) -> String {
    if order.energy_source == "metered" {
        return format!("metered at the facility: {} Wh", order.energy_wh);
    }
    format!(
        "{} TH/s × {} W / {} TH/s (fleet J/TH) × PUE {} × {} h, rounded up to the Wh = {} Wh",
        store::thousandths(order.hashrate_mths),
        order.fleet_power_w,
        store::thousandths(order.fleet_hashrate_mths),
        store::thousandths(i64::from(order.pue_permille)),
        Decimal::from((order.ends_at - order.starts_at).num_seconds()) / Decimal::from(3_600),
        order.energy_wh
    )
}

/// The views of `orders`, with their allocations and emissions.
pub fn order_views(
    connection: &mut DbConnection,
    orders: Vec<OrderRow>,
    basis: Basis,
) -> Result<Vec<OrderView>, AppError> {
    let factors = store::load_factors(connection)?;
    let countries = store::facility_countries(connection)?;
    let ids: Vec<String> = orders.iter().map(|order| order.id.clone()).collect();
    let mut allocations = store::allocations_of_orders(connection, &ids)?;
    orders
        .into_iter()
        .map(|order| {
            let country = countries
                .get(&order.facility_id)
                .cloned()
                .unwrap_or_default();
            let zone = zone_factors(
                &factors,
                basis,
                &order.market_zone,
                &country,
                order.starts_at.year(),
            )?;
            let allocations = allocations.remove(&order.id).unwrap_or_default();
            let coverage = store::coverage_of(&order, &allocations);
            Ok(OrderView {
                emissions: emissions_of(&coverage, &zone),
                energy_method: method(&order),
                consumption_hours: super::hourly_consumption(
                    order.starts_at,
                    order.ends_at,
                    order.energy_wh,
                )
                .len(),
                id: order.id,
                order_id: order.external_id,
                user_id: order.user_id,
                facility_id: order.facility_id,
                market_zone: order.market_zone,
                hashrate_ths: store::thousandths(order.hashrate_mths),
                starts_at: order.starts_at,
                ends_at: order.ends_at,
                energy_source: order.energy_source,
                allocations,
            })
        })
        .collect()
}

/// A user's orders and their emissions summed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserFootprint {
    pub user_id: String,
    pub orders: Vec<OrderView>,
    #[serde(flatten)]
    pub totals: OrderTotals,
}

pub fn user_footprint(
    connection: &mut DbConnection,
    user_id: &str,
    basis: Basis,
) -> Result<UserFootprint, AppError> {
    let orders = store::orders_of_user(connection, user_id)?;
    let orders = order_views(connection, orders, basis)?;
    Ok(UserFootprint {
        user_id: user_id.into(),
        totals: order_totals(&orders),
        orders,
    })
}

/// The figures of many orders together: energy summed, emissions summed in exact grams and
/// rounded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderTotals {
    pub energy_wh: i64,
    pub matched_wh: i64,
    pub hourly_matched_wh: i64,
    pub share_matched: String,
    pub share_hourly_matched: String,
    pub location_based_kg: String,
    pub market_based_kg: String,
    pub residual_mix_missing: bool,
}

pub fn order_totals(orders: &[OrderView]) -> OrderTotals {
    let sum = |field: fn(&Emissions) -> i64| orders.iter().map(|o| field(&o.emissions)).sum();
    let energy_wh: i64 = sum(|e| e.energy_wh);
    let matched_wh: i64 = sum(|e| e.matched_wh);
    let hourly_matched_wh: i64 = sum(|e| e.hourly_matched_wh);
    let kg = |grams: fn(&Emissions) -> Decimal| -> String {
        footprint::kilograms(orders.iter().map(|o| grams(&o.emissions)).sum())
    };
    OrderTotals {
        share_matched: footprint::share(matched_wh, energy_wh),
        share_hourly_matched: footprint::share(hourly_matched_wh, energy_wh),
        location_based_kg: kg(|e| e.exact_g.0),
        market_based_kg: kg(|e| e.exact_g.1),
        residual_mix_missing: orders.iter().any(|o| o.emissions.residual_mix_missing),
        energy_wh,
        matched_wh,
        hourly_matched_wh,
    }
}

/// Platform-wide figures over one window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowFigures {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub from: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub to: NaiveDateTime,
    pub energy_wh: i64,
    pub matched_wh: i64,
    pub hourly_matched_wh: i64,
    pub share_matched: String,
    pub share_hourly_matched: String,
    pub location_based_kg: String,
    pub market_based_kg: String,
}

/// The public, real-time footprint of the platform.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicFootprint {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub as_of: NaiveDateTime,
    /// Average power of the orders running now, in W.
    pub current_power_w: i64,
    pub running_orders: usize,
    /// Since 00:00 UTC today.
    pub today: WindowFigures,
    /// Since 1 January 00:00 UTC.
    pub this_year: WindowFigures,
    /// True when some unmatched energy was counted at the grid average for want of a residual mix.
    pub residual_mix_missing: bool,
    /// Every factor behind the figures.
    pub factors: Vec<FactorUsed>,
    pub method: String,
}

/// Each order's share of a window: its energy, matched energy and emissions prorated by the
/// seconds it ran within the window (an order's energy is spread evenly over its period).
#[derive(Default)]
struct Totals {
    energy: Decimal,
    matched: Decimal,
    hourly: Decimal,
    location_g: Decimal,
    market_g: Decimal,
}

impl Totals {
    fn figures(&self, from: NaiveDateTime, to: NaiveDateTime) -> WindowFigures {
        let wh = |value: Decimal| {
            i64::try_from(value.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::ToZero))
                .unwrap_or(i64::MAX)
        };
        let (energy_wh, matched_wh, hourly_matched_wh) =
            (wh(self.energy), wh(self.matched), wh(self.hourly));
        WindowFigures {
            from,
            to,
            energy_wh,
            matched_wh,
            hourly_matched_wh,
            share_matched: footprint::share(matched_wh, energy_wh),
            share_hourly_matched: footprint::share(hourly_matched_wh, energy_wh),
            location_based_kg: footprint::kilograms(self.location_g),
            market_based_kg: footprint::kilograms(self.market_g),
        }
    }
}

pub fn public_footprint(
    connection: &mut DbConnection,
    basis: Basis,
    now: NaiveDateTime,
) -> Result<PublicFootprint, AppError> {
    let day = now.date().and_hms_opt(0, 0, 0).unwrap_or(now);
    let year = chrono::NaiveDate::from_ymd_opt(now.year(), 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .unwrap_or(day);
    let factors = store::load_factors(connection)?;
    let countries = store::facility_countries(connection)?;
    let orders = store::orders_overlapping(connection, year, now)?;
    let ids: Vec<String> = orders.iter().map(|order| order.id.clone()).collect();
    let allocations = store::allocations_of_orders(connection, &ids)?;
    let (mut today, mut this_year) = (Totals::default(), Totals::default());
    let mut used: BTreeMap<(String, String, String, i32, String), FactorUsed> = BTreeMap::new();
    let mut current_power_w = 0;
    let mut running_orders = 0;
    let mut residual_mix_missing = false;
    for order in &orders {
        let country = countries
            .get(&order.facility_id)
            .cloned()
            .unwrap_or_default();
        let zone = zone_factors(
            &factors,
            basis,
            &order.market_zone,
            &country,
            order.starts_at.year(),
        )?;
        let coverage = store::coverage_of(
            order,
            allocations.get(&order.id).map(Vec::as_slice).unwrap_or(&[]),
        );
        let result = footprint::emissions(
            &coverage,
            zone.grid.g_per_kwh,
            zone.residual.map(|f| f.g_per_kwh),
        );
        residual_mix_missing |= result.residual_mix_missing;
        for factor in std::iter::once(zone.grid).chain(zone.residual) {
            let used_factor = FactorUsed::from(factor);
            used.entry((
                used_factor.dataset.clone(),
                used_factor.version.clone(),
                used_factor.zone.clone(),
                used_factor.year,
                used_factor.basis.clone(),
            ))
            .or_insert(used_factor);
        }
        let seconds = Decimal::from((order.ends_at - order.starts_at).num_seconds().max(1));
        if order.starts_at <= now && now < order.ends_at {
            running_orders += 1;
            current_power_w +=
                order.energy_wh * 3_600 / (order.ends_at - order.starts_at).num_seconds().max(1);
        }
        for (totals, from) in [(&mut today, day), (&mut this_year, year)] {
            let overlap = (order.ends_at.min(now) - order.starts_at.max(from))
                .num_seconds()
                .max(0);
            let part = Decimal::from(overlap) / seconds;
            totals.energy += Decimal::from(order.energy_wh) * part;
            totals.matched += Decimal::from(result.matched_wh) * part;
            totals.hourly += Decimal::from(coverage.hourly_matched_wh) * part;
            totals.location_g += result.location_g * part;
            totals.market_g += result.market_g * part;
        }
    }
    Ok(PublicFootprint {
        as_of: now,
        current_power_w,
        running_orders,
        today: today.figures(day, now),
        this_year: this_year.figures(year, now),
        residual_mix_missing,
        factors: used.into_values().collect(),
        method: "GHG Protocol Scope 2: location-based (grid average) and market-based \
                 (certificates, residual mix for the rest); each order's energy spread evenly \
                 over its period"
            .into(),
    })
}
