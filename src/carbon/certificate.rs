//! The green-energy certificate of one order, as a PDF for its user: the order and its energy,
//! the certificates allocated or retired for it with their serials, both methods' emissions with
//! the factors behind them, and the SHA-256 of the order's JSON (`GET /v1/orders/{id}`) on every
//! page, so the figures can be checked against the data.

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use super::views::OrderView;
use crate::error::AppError;
use crate::reports::pdf::{Column, Layout, Metadata};

/// The SHA-256 of the order's JSON as the API serves it.
pub fn data_sha256(view: &OrderView) -> Result<String, AppError> {
    let json = serde_json::to_vec(view).map_err(AppError::internal)?;
    Ok(hex::encode(Sha256::digest(json)))
}

fn wh_text(wh: i64) -> String {
    format!("{} kWh", crate::carbon::store::thousandths(wh))
}

/// Renders the certificate of `view` for `holder` (the user's name), with its facility's name.
pub fn pdf(
    holder: &str,
    facility: &str,
    view: &OrderView,
    generated_at: NaiveDateTime,
) -> Result<Vec<u8>, AppError> {
    let hash = data_sha256(view)?;
    let title = format!("Green energy certificate — order {}", view.order_id);
    let mut layout = Layout::new(&title)?;
    layout.paragraph(&title, 16.0);
    layout.paragraph(
        &format!(
            "Issued to {holder} on {} UTC by hashgate for the hosting platform.",
            generated_at.format("%Y-%m-%d %H:%M")
        ),
        9.0,
    );
    layout.heading("Order");
    let emissions = &view.emissions;
    layout.pairs(
        &[
            ("Holder".into(), holder.into()),
            ("Order".into(), view.order_id.clone()),
            (
                "Facility".into(),
                format!("{facility} (market zone {})", view.market_zone),
            ),
            ("Hashrate".into(), format!("{} TH/s", view.hashrate_ths)),
            (
                "Period (UTC)".into(),
                format!(
                    "{} – {}",
                    view.starts_at.format("%Y-%m-%d %H:%M"),
                    view.ends_at.format("%Y-%m-%d %H:%M")
                ),
            ),
            (
                "Energy".into(),
                format!("{} ({})", wh_text(emissions.energy_wh), view.energy_source),
            ),
            ("Method".into(), view.energy_method.clone()),
        ],
        9.0,
    );
    layout.heading("Certificates matched to this order");
    let rows: Vec<Vec<String>> = view
        .allocations
        .iter()
        .map(|allocation| {
            vec![
                format!(
                    "{} {}",
                    allocation.scheme.to_uppercase(),
                    allocation.registry
                ),
                allocation.serial.clone(),
                allocation.technology.clone(),
                match allocation.hour_start {
                    Some(hour) => format!("hourly {}", hour.format("%Y-%m-%d %H:00")),
                    None => "annual".into(),
                },
                wh_text(allocation.wh),
                allocation.state.clone(),
            ]
        })
        .collect();
    layout.table(
        &[
            Column::left("Scheme, registry", 32.0),
            Column::left("Serial", 52.0),
            Column::left("Technology", 22.0),
            Column::left("Matching", 30.0),
            Column::right("Energy", 24.0),
            Column::left("State", 18.0),
        ],
        &rows,
        8.0,
        "No certificate is matched to this order yet.",
    );
    layout.heading("Emissions (GHG Protocol Scope 2)");
    let location = &emissions.location_factor;
    let mut pairs = vec![
        (
            "Matched (volumetric)".into(),
            format!(
                "{} of {} = {}",
                wh_text(emissions.matched_wh),
                wh_text(emissions.energy_wh),
                emissions.share_matched
            ),
        ),
        (
            "Matched hour by hour".into(),
            format!(
                "{} = {}",
                wh_text(emissions.hourly_matched_wh),
                emissions.share_hourly_matched
            ),
        ),
        (
            "Location-based".into(),
            format!("{} kg CO2e", emissions.location_based_kg),
        ),
        (
            "Market-based".into(),
            format!("{} kg CO2e", emissions.market_based_kg),
        ),
        (
            "Grid factor".into(),
            format!(
                "{} g/kWh, {} {} {} ({}, {}): {}",
                location.g_per_kwh,
                location.dataset,
                location.version,
                location.zone,
                location.year,
                location.basis,
                location.source
            ),
        ),
    ];
    pairs.push((
        "Residual mix".into(),
        match &emissions.residual_mix_factor {
            Some(factor) => format!(
                "{} g/kWh, {} {} {} ({})",
                factor.g_per_kwh, factor.dataset, factor.version, factor.zone, factor.year
            ),
            None => "none known for this zone: unmatched energy counted at the grid factor".into(),
        },
    ));
    layout.pairs(&pairs, 9.0);
    layout.paragraph(
        "Certificates in the state `retired` were redeemed in their registry for the named \
         beneficiary and cannot be claimed again; `live` certificates are allocated to this \
         order and await retirement.",
        8.5,
    );
    let header = format!("hashgate · {title}");
    Ok(layout.finish(
        Metadata {
            title: title.clone(),
            subject: format!("order {} energy attribute certificates", view.order_id),
            author: holder.into(),
            identifier: hash.clone(),
            dated: view.ends_at.and_utc().timestamp(),
            language: "en".into(),
        },
        &header,
        |page, total| {
            vec![
                format!("Page {page} of {total} · order {}", view.order_id),
                format!("Data SHA-256 (GET /v1/orders/{}): {hash}", view.id),
            ]
        },
    ))
}
