//! Carbon: the energy of hashrate-rental orders, the registry of energy-attribute certificates
//! (I-REC, Guarantees of Origin, RECs, hourly certificates), matching certificate volume to
//! orders, retirement on the user's behalf, and the location- and market-based footprint.
//!
//! Energy and certificate volumes are integer Wh: consumption is rounded up and certificate
//! volume down, so a claim never exceeds what was generated (EnergyTag's rule).

pub mod bench;
pub mod certificate;
pub mod countries;
pub mod factors;
pub mod footprint;
pub mod import;
pub mod input;
pub mod matching;
pub mod routes;
pub mod store;
pub mod views;

use chrono::{Duration, DurationRound, Months, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A certificate scheme; each has its own vintage window in annual matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// I-REC(E), the international registry (1 MWh units).
    Irec,
    /// EU Guarantee of Origin (EECS).
    Go,
    /// A US or Canadian Renewable Energy Certificate.
    Rec,
    /// A time-stamped certificate of at most one hour (EnergyTag Granular Certificate).
    Hourly,
}

impl Scheme {
    pub const ALL: [Scheme; 4] = [Scheme::Irec, Scheme::Go, Scheme::Rec, Scheme::Hourly];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Irec => "irec",
            Scheme::Go => "go",
            Scheme::Rec => "rec",
            Scheme::Hourly => "hourly",
        }
    }

    pub fn parse(text: &str) -> Option<Scheme> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == text)
    }

    /// Generation may start this many months before the consumption period and end this many
    /// after it. GHG Protocol Scope 2 practice outside the EU (Green-e): 6 before, 3 after. A GO
    /// is valid for 12 months from production and cannot be issued for future consumption.
    pub fn default_vintage(self) -> VintageWindow {
        match self {
            Scheme::Go => VintageWindow {
                months_before: 12,
                months_after: 0,
            },
            Scheme::Irec | Scheme::Rec | Scheme::Hourly => VintageWindow {
                months_before: 6,
                months_after: 3,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VintageWindow {
    pub months_before: u32,
    pub months_after: u32,
}

impl VintageWindow {
    /// Whether a certificate generated over `generation` may cover consumption over `period`.
    pub fn admits(
        self,
        generation: (NaiveDateTime, NaiveDateTime),
        period: (NaiveDateTime, NaiveDateTime),
    ) -> bool {
        let earliest = period.0.checked_sub_months(Months::new(self.months_before));
        let latest = period.1.checked_add_months(Months::new(self.months_after));
        matches!((earliest, latest), (Some(earliest), Some(latest))
            if generation.0 >= earliest && generation.1 <= latest)
    }
}

/// The basis of an emission factor. One figure never mixes bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Life-cycle emissions of generation (Ember / IPCC per-technology factors).
    #[default]
    Lifecycle,
    /// Combustion emissions only.
    Direct,
    /// What remains of the grid once certificates are claimed: the market-based method's factor
    /// for unmatched load.
    ResidualMix,
}

impl Basis {
    pub const ALL: [Basis; 3] = [Basis::Lifecycle, Basis::Direct, Basis::ResidualMix];

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Lifecycle => "lifecycle",
            Basis::Direct => "direct",
            Basis::ResidualMix => "residual_mix",
        }
    }

    pub fn parse(text: &str) -> Option<Basis> {
        Basis::ALL.into_iter().find(|basis| basis.as_str() == text)
    }
}

/// A facility's miners taken together: total power over total hashrate is its J/TH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    pub power_w: i64,
    /// Thousandths of TH/s.
    pub hashrate_mths: i64,
}

const SECONDS_PER_HOUR: u128 = 3_600;

/// Energy of `hashrate_mths` (thousandths of TH/s) run for `seconds` on `fleet` at the given PUE
/// (thousandths), in Wh rounded up. 1 TH/s × 1 J/TH = 1 W, so
/// Wh = TH/s × (W / TH/s of the fleet) × PUE × hours, computed exactly in integers.
pub fn modelled_energy_wh(
    hashrate_mths: i64,
    fleet: Fleet,
    pue_permille: i32,
    seconds: i64,
) -> Option<i64> {
    let numerator = u128::try_from(hashrate_mths).ok()?
        * u128::try_from(fleet.power_w).ok()?
        * u128::try_from(pue_permille).ok()?
        * u128::try_from(seconds).ok()?;
    let denominator = u128::try_from(fleet.hashrate_mths).ok()? * 1_000 * SECONDS_PER_HOUR;
    if denominator == 0 {
        return None;
    }
    i64::try_from(numerator.div_ceil(denominator)).ok()
}

/// One UTC hour of an order's consumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct HourOfConsumption {
    #[schema(value_type = String)]
    #[serde(with = "crate::utc")]
    pub hour_start: NaiveDateTime,
    pub wh: i64,
}

/// Spreads `total_wh` over the UTC hours of `[start, end)` in proportion to the seconds of each
/// hour the order runs. Shares are floored and the Wh left over go to the hours with the
/// largest remainders (earlier first), so the hours add up to the total exactly.
pub fn hourly_consumption(
    start: NaiveDateTime,
    end: NaiveDateTime,
    total_wh: i64,
) -> Vec<HourOfConsumption> {
    let seconds = (end - start).num_seconds();
    if seconds <= 0 || total_wh <= 0 {
        return Vec::new();
    }
    let mut hours = Vec::new();
    let mut hour = start.duration_trunc(Duration::hours(1)).unwrap_or(start);
    while hour < end {
        let next = hour + Duration::hours(1);
        let overlap = (next.min(end) - hour.max(start)).num_seconds();
        let exact = i128::from(total_wh) * i128::from(overlap);
        let share = exact / i128::from(seconds);
        let remainder = exact % i128::from(seconds);
        hours.push((hour, share as i64, remainder));
        hour = next;
    }
    let assigned: i64 = hours.iter().map(|(_, share, _)| share).sum();
    let mut by_remainder: Vec<usize> = (0..hours.len()).collect();
    by_remainder.sort_by_key(|&index| (std::cmp::Reverse(hours[index].2), index));
    for &index in by_remainder.iter().take((total_wh - assigned) as usize) {
        hours[index].1 += 1;
    }
    hours
        .into_iter()
        .filter(|(_, wh, _)| *wh > 0)
        .map(|(hour_start, wh, _)| HourOfConsumption { hour_start, wh })
        .collect()
}

/// Whether `[start, end)` is exactly one UTC hour: what hourly matching pairs with consumption.
pub fn is_one_utc_hour(start: NaiveDateTime, end: NaiveDateTime) -> bool {
    end - start == Duration::hours(1)
        && start.duration_trunc(Duration::hours(1)).ok() == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    const S19J_PRO: Fleet = Fleet {
        power_w: 3_050,
        hashrate_mths: 100_000,
    };
    const S21: Fleet = Fleet {
        power_w: 3_500,
        hashrate_mths: 200_000,
    };

    #[test]
    fn energy_is_hashrate_times_efficiency_times_pue_times_hours() {
        // 100 TH/s × 30.5 J/TH = 3,050 W; × PUE 1.08 = 3,294 W; × 24 h = 79,056 Wh exactly.
        assert_eq!(
            modelled_energy_wh(100_000, S19J_PRO, 1_080, 24 * 3_600),
            Some(79_056)
        );
        // 150 TH/s × 17.5 J/TH = 2,625 W; × PUE 1.05 = 2,756.25 W; × 1 h = 2,756.25 Wh → 2,757.
        assert_eq!(modelled_energy_wh(150_000, S21, 1_050, 3_600), Some(2_757));
        // A fleet of 2 × S19j Pro and 1 × S21 is 9,600 W over 400 TH/s = 24 J/TH:
        // 10 TH/s × 24 J/TH × PUE 1.0 × 90 min = 360 Wh.
        let mixed = Fleet {
            power_w: 2 * 3_050 + 3_500,
            hashrate_mths: 2 * 100_000 + 200_000,
        };
        assert_eq!(modelled_energy_wh(10_000, mixed, 1_000, 5_400), Some(360));
        // One second of 1 TH/s at 15 J/TH is 15/3600 Wh: still 1 Wh, never 0.
        let s21_pro = Fleet {
            power_w: 3_510,
            hashrate_mths: 234_000,
        };
        assert_eq!(modelled_energy_wh(1_000, s21_pro, 1_000, 1), Some(1));
    }

    #[test]
    fn hours_share_the_energy_by_seconds_and_add_up_exactly() {
        // 10:30 to 12:15 is 105 minutes: 30/105, 60/105 and 15/105 of 1,000 Wh =
        // 285.71…, 571.42…, 142.85… → floors 285, 571, 142 (998) and the two largest
        // remainders (0.85… of the last hour, 0.71… of the first) get the 2 Wh left.
        let hours = hourly_consumption(at("2026-03-01 10:30"), at("2026-03-01 12:15"), 1_000);
        let wh: Vec<i64> = hours.iter().map(|hour| hour.wh).collect();
        assert_eq!(wh, vec![286, 571, 143]);
        assert_eq!(hours[0].hour_start, at("2026-03-01 10:00"));
        assert_eq!(hours[2].hour_start, at("2026-03-01 12:00"));
        let whole_day = hourly_consumption(at("2026-03-01 00:00"), at("2026-03-02 00:00"), 79_056);
        assert_eq!(whole_day.len(), 24);
        assert!(whole_day.iter().all(|hour| hour.wh == 3_294));
    }

    #[test]
    fn vintage_window_surrounds_the_consumption_period() {
        let period = (at("2026-01-01 00:00"), at("2027-01-01 00:00"));
        let window = Scheme::Irec.default_vintage();
        assert!(window.admits((at("2025-07-01 00:00"), at("2025-08-01 00:00")), period));
        assert!(!window.admits((at("2025-06-30 23:00"), at("2025-08-01 00:00")), period));
        assert!(window.admits((at("2027-03-01 00:00"), at("2027-04-01 00:00")), period));
        assert!(!window.admits((at("2027-03-01 00:00"), at("2027-04-01 01:00")), period));
        // A GO cannot cover consumption before it was generated.
        let go = Scheme::Go.default_vintage();
        assert!(!go.admits((at("2027-01-01 00:00"), at("2027-02-01 00:00")), period));
        assert!(go.admits((at("2025-01-01 00:00"), at("2025-02-01 00:00")), period));
    }

    #[test]
    fn one_utc_hour_is_aligned_and_sixty_minutes() {
        assert!(is_one_utc_hour(
            at("2026-03-01 10:00"),
            at("2026-03-01 11:00")
        ));
        assert!(!is_one_utc_hour(
            at("2026-03-01 10:30"),
            at("2026-03-01 11:30")
        ));
        assert!(!is_one_utc_hour(
            at("2026-03-01 10:00"),
            at("2026-03-01 12:00")
        ));
    }
}
