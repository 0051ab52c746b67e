//! The `[tax]` section of `jurisdictions/<CODE>.toml`: the tax year, the currency, how mining
//! income may be classified, and per tax year the schedule of each classification. Every kind of
//! rule is a typed variant (brackets, piecewise formula, surtaxes, levies), never code keyed on a
//! country.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the user's mining income is classified where the law leaves it open.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Hobby, miscellaneous or other income.
    Miscellaneous,
    /// Business, trading or self-employment income.
    Business,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Miscellaneous => "miscellaneous",
            Classification::Business => "business",
        }
    }

    pub fn parse(text: &str) -> Option<Classification> {
        match text {
            "miscellaneous" => Some(Classification::Miscellaneous),
            "business" => Some(Classification::Business),
            _ => None,
        }
    }
}

/// A text in English and, where the jurisdiction prints it, Chinese.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zh: Option<String>,
}

impl Texts {
    /// The text in `language` (a BCP 47 tag), English when there is none.
    pub fn in_language(&self, language: &str) -> &str {
        match (&self.zh, language.starts_with("zh")) {
            (Some(chinese), true) => chinese,
            _ => &self.en,
        }
    }
}

/// How an amount is rounded: to a multiple of `step`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundingRule {
    #[schema(value_type = String)]
    pub step: Decimal,
    pub mode: RoundingMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    Down,
    HalfUp,
    Up,
}

impl RoundingRule {
    pub const CENTS: RoundingRule = RoundingRule {
        step: Decimal::from_parts(1, 0, 0, false, 2),
        mode: RoundingMode::HalfUp,
    };

    pub fn apply(&self, amount: Decimal) -> Decimal {
        // A step of 1, 0.1, 0.01 … is rounding to decimal places: the fast path (the CARF
        // export rounds every payout).
        if self.step.mantissa() == 1 {
            let strategy = match self.mode {
                RoundingMode::Down => rust_decimal::RoundingStrategy::ToNegativeInfinity,
                RoundingMode::Up => rust_decimal::RoundingStrategy::ToPositiveInfinity,
                RoundingMode::HalfUp => rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            };
            let mut rounded = amount.round_dp_with_strategy(self.step.scale(), strategy);
            rounded.rescale(self.step.scale());
            return rounded;
        }
        let units = amount / self.step;
        let whole = match self.mode {
            RoundingMode::Down => units.floor(),
            RoundingMode::Up => units.ceil(),
            RoundingMode::HalfUp => units
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        };
        // The result keeps the step's scale: cents print as 12.30, whole euros as 12.
        let mut rounded = whole.trunc() * self.step;
        rounded.rescale(self.step.scale());
        rounded
    }
}

/// The authority's rounding rules; missing ones round half up to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rounding {
    /// The taxable income, before the tax is computed on it.
    #[serde(default = "cents")]
    pub taxable: RoundingRule,
    /// The income tax (before the surtaxes that join it).
    #[serde(default = "cents")]
    pub tax: RoundingRule,
    /// The income tax together with the surtaxes marked `joins_income_tax`.
    #[serde(default)]
    pub combined: Option<RoundingRule>,
}

fn yes() -> bool {
    true
}

fn cents() -> RoundingRule {
    RoundingRule::CENTS
}

impl Default for Rounding {
    fn default() -> Self {
        Rounding {
            taxable: RoundingRule::CENTS,
            tax: RoundingRule::CENTS,
            combined: None,
        }
    }
}

/// What is taken off net income before the tax, or off the tax.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Allowance {
    /// A fixed amount off income, optionally withdrawn at `taper_rate` per unit of income above
    /// `taper_above` (the UK personal allowance loses £1 for every £2 above £100,000).
    Deduction {
        #[schema(value_type = String)]
        amount: Decimal,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        taper_above: Option<Decimal>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        taper_rate: Option<Decimal>,
    },
    /// An amount off income that depends on the income (Japan's basic deduction).
    Stepped { steps: Vec<Step> },
    /// A credit off the tax: `amount` × `rate`, the amount falling linearly to `minimum_amount`
    /// between `taper_from` and `taper_to` of income (Canada's basic personal amount).
    Credit {
        #[schema(value_type = String)]
        amount: Decimal,
        #[schema(value_type = String)]
        rate: Decimal,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        minimum_amount: Option<Decimal>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        taper_from: Option<Decimal>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        taper_to: Option<Decimal>,
    },
}

/// One step of a stepped allowance: `amount` while income is at most `up_to` (no bound: above
/// every other step).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub up_to: Option<Decimal>,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// A marginal band: `rate` on the part of taxable income up to `up_to` (none: the top band).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub up_to: Option<Decimal>,
    #[schema(value_type = String)]
    pub rate: Decimal,
}

/// How the income tax follows from taxable income.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Formula {
    /// Not taxed under this classification (the reason is in the notes).
    Exempt,
    /// Marginal bands; `average_rate_cap` caps the tax at that share of taxable income (the
    /// Swiss federal maximum of 11.5 %, Hong Kong's standard rate).
    Brackets {
        bands: Vec<Band>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        average_rate_cap: Option<Decimal>,
    },
    /// A formula by income zone (Germany's §32a EStG).
    Piecewise { zones: Vec<Zone> },
    /// A tariff table as the law prints it: from each row's `from`, the tax is `base_tax` plus
    /// `rate` on the excess (the Swiss federal tariff, whose printed base amounts are not the
    /// exact sums of the rates below them).
    Table {
        rows: Vec<TableRow>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        average_rate_cap: Option<Decimal>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TableRow {
    #[schema(value_type = String)]
    pub from: Decimal,
    #[schema(value_type = String)]
    pub base_tax: Decimal,
    #[schema(value_type = String)]
    pub rate: Decimal,
}

/// A zone of a piecewise formula, from `from` (inclusive) to the next zone.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    #[schema(value_type = String)]
    pub from: Decimal,
    pub formula: ZoneFormula,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZoneFormula {
    Zero,
    /// `(a·y + b)·y + c` with `y = (x − origin) / 10,000`.
    Quadratic {
        #[schema(value_type = String)]
        origin: Decimal,
        #[schema(value_type = String)]
        a: Decimal,
        #[schema(value_type = String)]
        b: Decimal,
        #[schema(value_type = String)]
        c: Decimal,
    },
    /// `rate·x − minus`.
    Linear {
        #[schema(value_type = String)]
        rate: Decimal,
        #[schema(value_type = String)]
        minus: Decimal,
    },
}

/// A tax or levy beside the income tax.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Surtax {
    /// `rate` × the income tax. Nothing while the tax is at most `free_up_to`; above it, at most
    /// `phase_in_rate` × the excess (Germany's solidarity surcharge). `joins_income_tax`: rounded
    /// together with the income tax (Japan's reconstruction surtax).
    PercentOfTax {
        name: Texts,
        #[schema(value_type = String)]
        rate: Decimal,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        free_up_to: Option<Decimal>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        phase_in_rate: Option<Decimal>,
        #[serde(default)]
        joins_income_tax: bool,
        #[serde(default = "cents")]
        rounding: RoundingRule,
    },
    /// `rate` × (net income − `deduction`), the base rounded by `base_rounding`; nothing while
    /// the base is at most `free_up_to`, then at most `phase_in_rate` × the excess (Australia's
    /// Medicare levy, Japan's inhabitant tax).
    PercentOfIncome {
        name: Texts,
        #[schema(value_type = String)]
        rate: Decimal,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        deduction: Option<Decimal>,
        #[serde(default)]
        base_rounding: Option<RoundingRule>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        free_up_to: Option<Decimal>,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        phase_in_rate: Option<Decimal>,
        #[serde(default = "cents")]
        rounding: RoundingRule,
    },
    /// Marginal bands over net income (the UK's Class 4 National Insurance).
    BandsOnIncome {
        name: Texts,
        bands: Vec<Band>,
        #[serde(default = "cents")]
        rounding: RoundingRule,
    },
    /// Self-employment tax on `earnings_factor` × net income, when that is at least
    /// `minimum_earnings`: `social_security_rate` up to `wage_base`, `medicare_rate` on all,
    /// `additional_medicare_rate` above `additional_threshold`. `deductible_share` of it comes
    /// off income before the income tax (the US SE tax, IRC §1401/§164(f)).
    SelfEmployment {
        name: Texts,
        #[schema(value_type = String)]
        earnings_factor: Decimal,
        #[schema(value_type = String)]
        minimum_earnings: Decimal,
        #[schema(value_type = String)]
        social_security_rate: Decimal,
        #[schema(value_type = String)]
        wage_base: Decimal,
        #[schema(value_type = String)]
        medicare_rate: Decimal,
        #[schema(value_type = String)]
        additional_medicare_rate: Decimal,
        #[schema(value_type = String)]
        additional_threshold: Decimal,
        #[schema(value_type = String)]
        deductible_share: Decimal,
        #[serde(default = "cents")]
        rounding: RoundingRule,
    },
    /// A levy per kWh of electricity used for mining, by the average electricity price paid
    /// (Kazakhstan's digital-mining fee). `borne_by_facility`: the licensed miner pays it, so it
    /// is shown for information and not added to the user's tax.
    EnergyLevy {
        name: Texts,
        scale: Vec<EnergyLevyStep>,
        borne_by_facility: bool,
    },
}

/// The levy per kWh while the average electricity price per kWh is below `price_below` (none:
/// every higher price).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnergyLevyStep {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub price_below: Option<Decimal>,
    #[schema(value_type = String)]
    pub per_kwh: Decimal,
}

/// The schedule for one classification in one tax year.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The legal name of the income category.
    pub label: Texts,
    /// A Freigrenze: net income below this is not taxed at all; at or above it, all of it is.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub exempt_below: Option<Decimal>,
    /// An allowance that replaces the actual costs when it is larger (the UK trading and
    /// miscellaneous income allowance).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub cost_allowance: Option<Decimal>,
    /// Whether the costs charged in the ledger may be deducted (US hobby income: not).
    #[serde(default = "yes")]
    pub deduct_costs: bool,
    #[serde(default)]
    pub allowances: Vec<Allowance>,
    pub formula: Formula,
    #[serde(default)]
    pub surtaxes: Vec<Surtax>,
    #[serde(default)]
    pub rounding: Rounding,
    /// A tax below this is not levied.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub minimum_tax: Option<Decimal>,
    /// Notes printed with the figure for this classification.
    #[serde(default)]
    pub notes: Vec<Texts>,
}

/// The rules of one tax year.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxYearRules {
    /// The calendar year in which the tax year starts.
    pub year: i32,
    /// The version of these rules, printed on every computation made with them.
    pub version: String,
    /// Where each figure comes from.
    pub sources: Vec<String>,
    pub schedules: BTreeMap<Classification, Schedule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRulesFile {
    time_zone: String,
    currency: String,
    /// `MM-DD`: the first day of the tax year.
    year_start: String,
    default_classification: Classification,
    /// The tax authority, for the statement.
    authority: Texts,
    /// The legal notes printed on every statement.
    #[serde(default)]
    notes: Vec<Texts>,
    years: Vec<TaxYearRules>,
}

/// A jurisdiction's tax rules, validated.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaxRules {
    #[schema(value_type = String)]
    #[serde(serialize_with = "zone_name")]
    pub time_zone: chrono_tz::Tz,
    pub currency: String,
    /// Month and day on which the tax year starts.
    pub year_start: (u32, u32),
    pub default_classification: Classification,
    pub authority: Texts,
    pub notes: Vec<Texts>,
    pub years: Vec<TaxYearRules>,
}

fn zone_name<S: serde::Serializer>(zone: &chrono_tz::Tz, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(zone.name())
}

impl TaxRules {
    pub fn from_file(file: TaxRulesFile) -> Result<TaxRules, String> {
        let time_zone: chrono_tz::Tz = file
            .time_zone
            .parse()
            .map_err(|_| format!("tax.time_zone `{}` is not an IANA zone", file.time_zone))?;
        let year_start = parse_month_day(&file.year_start).ok_or_else(|| {
            format!(
                "tax.year_start `{}` is not a day of the year as MM-DD",
                file.year_start
            )
        })?;
        if file.years.is_empty() {
            return Err("tax.years is empty".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, year) in file.years.iter().enumerate() {
            let at = format!("tax.years[{index}] ({})", year.year);
            if !seen.insert(year.year) {
                return Err(format!("{at}: the year appears twice"));
            }
            if year.sources.is_empty() {
                return Err(format!(
                    "{at}: sources is empty: cite where the figures come from"
                ));
            }
            if !year.schedules.contains_key(&file.default_classification) {
                return Err(format!(
                    "{at}: no schedule for the default classification `{}`",
                    file.default_classification.as_str()
                ));
            }
            for (class, schedule) in &year.schedules {
                validate_schedule(schedule)
                    .map_err(|message| format!("{at}.schedules.{}: {message}", class.as_str()))?;
            }
        }
        Ok(TaxRules {
            time_zone,
            currency: file.currency,
            year_start,
            default_classification: file.default_classification,
            authority: file.authority,
            notes: file.notes,
            years: file.years,
        })
    }

    pub fn year(&self, year: i32) -> Option<&TaxYearRules> {
        self.years.iter().find(|rules| rules.year == year)
    }

    /// The first local day of the tax year that starts in `year`.
    pub fn first_day(&self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.year_start.0, self.year_start.1)
    }

    /// Whether the tax year is the calendar year.
    pub fn is_calendar_year(&self) -> bool {
        self.year_start == (1, 1)
    }

    /// The tax year's name: `2026`, or `2026/27` when it straddles two calendar years.
    pub fn year_label(&self, year: i32) -> String {
        if self.is_calendar_year() {
            year.to_string()
        } else {
            format!("{year}/{:02}", (year + 1).rem_euclid(100))
        }
    }
}

fn parse_month_day(text: &str) -> Option<(u32, u32)> {
    let (month, day) = text.split_once('-')?;
    let (month, day) = (month.parse().ok()?, day.parse().ok()?);
    // 2023 is not a leap year: 29 February cannot start a tax year.
    NaiveDate::from_ymd_opt(2023, month, day).map(|_| (month, day))
}

fn validate_bands(bands: &[Band], at: &str) -> Result<(), String> {
    if bands.is_empty() {
        return Err(format!("{at}: no bands"));
    }
    let mut previous = Decimal::ZERO;
    for (index, band) in bands.iter().enumerate() {
        if !(Decimal::ZERO..=Decimal::ONE).contains(&band.rate) {
            return Err(format!(
                "{at}[{index}].rate {} is not between 0 and 1",
                band.rate
            ));
        }
        match band.up_to {
            Some(limit) if limit <= previous => {
                return Err(format!(
                    "{at}[{index}].up_to {limit} must be above the previous band's {previous}"
                ))
            }
            Some(limit) => previous = limit,
            None if index + 1 != bands.len() => {
                return Err(format!(
                    "{at}[{index}]: only the last band may be open-ended"
                ))
            }
            None => {}
        }
    }
    if bands.last().and_then(|band| band.up_to).is_some() {
        return Err(format!("{at}: the last band must be open-ended (no up_to)"));
    }
    Ok(())
}

fn validate_starts(starts: &[Decimal], at: &str) -> Result<(), String> {
    if starts.first() != Some(&Decimal::ZERO) {
        return Err(format!("{at} must start from 0"));
    }
    if starts.windows(2).any(|pair| pair[1] <= pair[0]) {
        return Err(format!("{at} must be in increasing order of `from`"));
    }
    Ok(())
}

fn validate_schedule(schedule: &Schedule) -> Result<(), String> {
    match &schedule.formula {
        Formula::Exempt => {}
        Formula::Brackets { bands, .. } => validate_bands(bands, "formula.bands")?,
        Formula::Piecewise { zones } => {
            let starts: Vec<Decimal> = zones.iter().map(|zone| zone.from).collect();
            validate_starts(&starts, "formula.zones")?
        }
        Formula::Table { rows, .. } => {
            let starts: Vec<Decimal> = rows.iter().map(|row| row.from).collect();
            validate_starts(&starts, "formula.rows")?
        }
    }
    for (index, allowance) in schedule.allowances.iter().enumerate() {
        if let Allowance::Stepped { steps } = allowance {
            if steps.last().and_then(|step| step.up_to).is_some() {
                return Err(format!(
                    "allowances[{index}]: the last step must be open-ended (no up_to)"
                ));
            }
        }
    }
    for (index, surtax) in schedule.surtaxes.iter().enumerate() {
        match surtax {
            Surtax::BandsOnIncome { bands, .. } => {
                validate_bands(bands, &format!("surtaxes[{index}].bands"))?
            }
            Surtax::EnergyLevy { scale, .. }
                if scale.last().and_then(|s| s.price_below).is_some() =>
            {
                return Err(format!(
                    "surtaxes[{index}].scale: the last step must be open-ended (no price_below)"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
