//! The tax on a year's mining income under one schedule: pure arithmetic in `Decimal`, every
//! step kept as a line so the figure can be explained.

use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::rules::{Allowance, Band, Formula, RoundingRule, Schedule, Surtax, Texts, ZoneFormula};

/// Electricity used for the user's mining in the year, where it is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyUse {
    pub kwh: Decimal,
    /// The average price paid per kWh, in the jurisdiction's currency.
    pub average_price: Decimal,
}

/// One band of the income tax.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BandLine {
    #[schema(value_type = String)]
    pub from: Decimal,
    #[schema(value_type = Option<String>)]
    pub to: Option<Decimal>,
    /// The marginal rate, or none for a formula zone.
    #[schema(value_type = Option<String>)]
    pub rate: Option<Decimal>,
    /// How a formula zone computes the tax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[schema(value_type = String)]
    pub income_in_band: Decimal,
    #[schema(value_type = String)]
    pub tax: Decimal,
}

/// An amount taken off income or tax, with what it is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Relief {
    pub description: Texts,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// A surtax or levy beside the income tax.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SurtaxLine {
    pub name: Texts,
    #[schema(value_type = String)]
    pub base: Decimal,
    pub method: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Shown for information, not part of the user's total (a levy the facility pays).
    pub informational: bool,
}

/// The computation, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Computation {
    #[schema(value_type = String)]
    pub gross_income: Decimal,
    /// The costs from the ledger, or the cost allowance where that is larger.
    pub costs: Relief,
    #[schema(value_type = String)]
    pub net_income: Decimal,
    /// Why nothing is taxed, when nothing is (an exempt classification, a Freigrenze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempt_reason: Option<Texts>,
    /// Amounts off income before the allowances (half the US self-employment tax).
    pub above_the_line: Vec<Relief>,
    pub allowances: Vec<Relief>,
    #[schema(value_type = String)]
    pub taxable_income: Decimal,
    pub bands: Vec<BandLine>,
    #[schema(value_type = String)]
    pub income_tax_before_credits: Decimal,
    pub credits: Vec<Relief>,
    #[schema(value_type = String)]
    pub income_tax: Decimal,
    pub surtaxes: Vec<SurtaxLine>,
    /// What the combined rounding took off (or added).
    #[schema(value_type = String)]
    pub rounding_adjustment: Decimal,
    #[schema(value_type = String)]
    pub total_tax: Decimal,
    /// Total tax ÷ gross income, to 4 decimals.
    #[schema(value_type = String)]
    pub effective_rate: Decimal,
}

/// A text in English and Chinese (the statements print either).
fn texts(en: String, zh: String) -> Texts {
    Texts { en, zh: Some(zh) }
}

fn positive(amount: Decimal) -> Decimal {
    amount.max(Decimal::ZERO)
}

fn rate_text(rate: Decimal) -> String {
    format!("{}%", (rate * Decimal::ONE_HUNDRED).normalize())
}

/// Tax by marginal bands over `amount`, with a line per band.
fn banded(bands: &[Band], amount: Decimal) -> (Decimal, Vec<BandLine>) {
    let mut lines = Vec::with_capacity(bands.len());
    let mut lower = Decimal::ZERO;
    let mut total = Decimal::ZERO;
    for band in bands {
        let upper = band.up_to;
        let in_band = match upper {
            Some(upper) => positive(amount.min(upper) - lower),
            None => positive(amount - lower),
        };
        let tax = in_band * band.rate;
        total += tax;
        lines.push(BandLine {
            from: lower,
            to: upper,
            rate: Some(band.rate),
            formula: None,
            income_in_band: in_band,
            tax,
        });
        if let Some(upper) = upper {
            lower = upper;
        }
    }
    (total, lines)
}

/// Caps the tax at `cap` of taxable income, with a line saying so when it bites.
fn capped(
    tax: Decimal,
    mut lines: Vec<BandLine>,
    taxable: Decimal,
    cap: Option<Decimal>,
) -> (Decimal, Vec<BandLine>) {
    match cap {
        Some(cap) if tax > taxable * cap => {
            let limit = taxable * cap;
            lines.push(BandLine {
                from: Decimal::ZERO,
                to: None,
                rate: Some(cap),
                formula: Some(format!("capped at {} of taxable income", rate_text(cap))),
                income_in_band: taxable,
                tax: limit - tax,
            });
            (limit, lines)
        }
        _ => (tax, lines),
    }
}

fn formula_tax(formula: &Formula, taxable: Decimal) -> (Decimal, Vec<BandLine>) {
    match formula {
        Formula::Exempt => (Decimal::ZERO, Vec::new()),
        Formula::Brackets {
            bands,
            average_rate_cap,
        } => {
            let (tax, lines) = banded(bands, taxable);
            capped(tax, lines, taxable, *average_rate_cap)
        }
        Formula::Table {
            rows,
            average_rate_cap,
        } => {
            let index = rows.partition_point(|row| row.from <= taxable).max(1) - 1;
            let row = &rows[index];
            let tax = row.base_tax + (taxable - row.from) * row.rate;
            let line = BandLine {
                from: row.from,
                to: rows.get(index + 1).map(|next| next.from),
                rate: Some(row.rate),
                formula: Some(format!(
                    "{} + {} of the excess over {}",
                    row.base_tax,
                    rate_text(row.rate),
                    row.from
                )),
                income_in_band: taxable - row.from,
                tax,
            };
            capped(tax, vec![line], taxable, *average_rate_cap)
        }
        Formula::Piecewise { zones } => {
            let index = zones.partition_point(|zone| zone.from <= taxable).max(1) - 1;
            let zone = &zones[index];
            let to = zones.get(index + 1).map(|next| next.from);
            let ten_thousand = Decimal::from(10_000);
            let (tax, text) = match &zone.formula {
                ZoneFormula::Zero => (Decimal::ZERO, "0".to_string()),
                ZoneFormula::Quadratic { origin, a, b, c } => {
                    let y = (taxable - origin) / ten_thousand;
                    (
                        (a * y + b) * y + c,
                        format!("({a}·y + {b})·y + {c}, y = (x − {origin}) / 10000"),
                    )
                }
                ZoneFormula::Linear { rate, minus } => {
                    (rate * taxable - minus, format!("{rate}·x − {minus}"))
                }
            };
            let tax = positive(tax);
            let line = BandLine {
                from: zone.from,
                to,
                rate: None,
                formula: Some(text),
                income_in_band: taxable,
                tax,
            };
            (tax, vec![line])
        }
    }
}

/// Linear interpolation of a credit's amount between the taper points.
fn credit_amount(
    amount: Decimal,
    minimum: Option<Decimal>,
    taper: (Option<Decimal>, Option<Decimal>),
    income: Decimal,
) -> Decimal {
    match (minimum, taper) {
        (Some(minimum), (Some(from), Some(to))) if income > from && to > from => {
            if income >= to {
                minimum
            } else {
                amount - (amount - minimum) * (income - from) / (to - from)
            }
        }
        _ => amount,
    }
}

/// Computes the tax under `schedule` on `gross_income` with deductible `costs`.
pub fn compute(
    schedule: &Schedule,
    gross_income: Decimal,
    costs: Decimal,
    energy: Option<EnergyUse>,
) -> Computation {
    let costs = match schedule.cost_allowance {
        _ if !schedule.deduct_costs => Relief {
            description: texts(
                "costs are not deductible under this classification".into(),
                "此类所得不得扣除成本".into(),
            ),
            amount: Decimal::ZERO,
        },
        Some(allowance) if allowance > costs => Relief {
            description: texts(
                format!("allowance of {allowance} instead of the actual costs of {costs}"),
                format!("以固定扣除额 {allowance} 代替实际成本 {costs}"),
            ),
            amount: allowance.min(gross_income),
        },
        _ => Relief {
            description: texts(
                "costs charged in the ledger (fees)".into(),
                "账本中记录的费用".into(),
            ),
            amount: costs.min(gross_income),
        },
    };
    let net_income = positive(gross_income - costs.amount);
    let mut computation = Computation {
        gross_income,
        costs,
        net_income,
        exempt_reason: None,
        above_the_line: Vec::new(),
        allowances: Vec::new(),
        taxable_income: Decimal::ZERO,
        bands: Vec::new(),
        income_tax_before_credits: Decimal::ZERO,
        credits: Vec::new(),
        income_tax: Decimal::ZERO,
        surtaxes: Vec::new(),
        rounding_adjustment: Decimal::ZERO,
        total_tax: Decimal::ZERO,
        effective_rate: Decimal::ZERO,
    };
    if matches!(schedule.formula, Formula::Exempt) {
        computation.exempt_reason = Some(texts(
            "not taxable under this classification".into(),
            "此类所得不征税".into(),
        ));
        computation.surtaxes = levies(schedule, energy);
        return computation;
    }
    if let Some(limit) = schedule.exempt_below {
        if net_income < limit {
            computation.exempt_reason = Some(texts(
                format!(
                    "net income {net_income} is below the exemption limit of {limit} (Freigrenze)"
                ),
                format!("净收入 {net_income} 低于免税限额 {limit}"),
            ));
            computation.surtaxes = levies(schedule, energy);
            return computation;
        }
    }

    // Self-employment tax comes first: part of it is deducted before the income tax.
    let mut surtaxes = Vec::new();
    let mut income = net_income;
    for surtax in &schedule.surtaxes {
        if let Surtax::SelfEmployment {
            name,
            earnings_factor,
            minimum_earnings,
            social_security_rate,
            wage_base,
            medicare_rate,
            additional_medicare_rate,
            additional_threshold,
            deductible_share,
            rounding,
        } = surtax
        {
            let earnings = net_income * earnings_factor;
            let amount = if earnings < *minimum_earnings {
                Decimal::ZERO
            } else {
                rounding.apply(
                    earnings.min(*wage_base) * social_security_rate
                        + earnings * medicare_rate
                        + positive(earnings - additional_threshold) * additional_medicare_rate,
                )
            };
            let deductible = rounding.apply(amount * deductible_share);
            if deductible > Decimal::ZERO {
                computation.above_the_line.push(Relief {
                    description: texts(
                        format!(
                            "{} of the {}",
                            rate_text(*deductible_share),
                            name.en.to_lowercase()
                        ),
                        format!(
                            "{}的 {}",
                            name.in_language("zh"),
                            rate_text(*deductible_share)
                        ),
                    ),
                    amount: deductible,
                });
                income -= deductible;
            }
            surtaxes.push(SurtaxLine {
                name: name.clone(),
                base: earnings,
                method: format!(
                    "{} × net income; {} up to {wage_base}, {} on all, {} above {additional_threshold}; none below {minimum_earnings}",
                    earnings_factor.normalize(),
                    rate_text(*social_security_rate),
                    rate_text(*medicare_rate),
                    rate_text(*additional_medicare_rate),
                ),
                amount,
                informational: false,
            });
        }
    }

    let mut after_allowances = income;
    let mut credits = Vec::new();
    for allowance in &schedule.allowances {
        match allowance {
            Allowance::Deduction {
                amount,
                taper_above,
                taper_rate,
            } => {
                let withdrawn = match (taper_above, taper_rate) {
                    (Some(above), Some(rate)) => positive(income - above) * rate,
                    _ => Decimal::ZERO,
                };
                let allowed = positive(amount - withdrawn);
                let description = if withdrawn > Decimal::ZERO {
                    texts(
                        format!(
                            "allowance of {amount}, reduced by {withdrawn} for income above the taper"
                        ),
                        format!("扣除额 {amount}，因收入超过递减起点减少 {withdrawn}"),
                    )
                } else {
                    texts(format!("allowance of {amount}"), format!("扣除额 {amount}"))
                };
                computation.allowances.push(Relief {
                    description,
                    amount: allowed,
                });
                after_allowances -= allowed;
            }
            Allowance::Stepped { steps } => {
                let step = steps
                    .iter()
                    .find(|step| step.up_to.is_none_or(|limit| income <= limit));
                if let Some(step) = step {
                    computation.allowances.push(Relief {
                        description: match step.up_to {
                            Some(limit) => texts(
                                format!("allowance for income up to {limit}"),
                                format!("收入不超过 {limit} 的扣除额"),
                            ),
                            None => texts(
                                "allowance for the highest incomes".into(),
                                "最高收入档的扣除额".into(),
                            ),
                        },
                        amount: step.amount,
                    });
                    after_allowances -= step.amount;
                }
            }
            Allowance::Credit {
                amount,
                rate,
                minimum_amount,
                taper_from,
                taper_to,
            } => credits.push((
                credit_amount(*amount, *minimum_amount, (*taper_from, *taper_to), income),
                *rate,
            )),
        }
    }
    let rounding = schedule.rounding;
    let taxable = rounding.taxable.apply(positive(after_allowances));
    computation.taxable_income = taxable;

    let (raw_tax, bands) = formula_tax(&schedule.formula, taxable);
    computation.bands = bands;
    let before_credits = rounding.tax.apply(raw_tax);
    computation.income_tax_before_credits = before_credits;
    let mut income_tax = before_credits;
    for (amount, rate) in credits {
        let credit = rounding.tax.apply(amount * rate).min(income_tax);
        computation.credits.push(Relief {
            description: texts(
                format!("credit of {} × {}", amount.round_dp(2), rate_text(rate)),
                format!("税收抵免 {} × {}", amount.round_dp(2), rate_text(rate)),
            ),
            amount: credit,
        });
        income_tax -= credit;
    }
    if schedule
        .minimum_tax
        .is_some_and(|minimum| income_tax < minimum)
    {
        income_tax = Decimal::ZERO;
    }
    computation.income_tax = income_tax;

    let mut joined = income_tax;
    for surtax in &schedule.surtaxes {
        let line = match surtax {
            Surtax::PercentOfTax {
                name,
                rate,
                free_up_to,
                phase_in_rate,
                joins_income_tax,
                rounding,
            } => {
                let mut amount = income_tax * rate;
                let mut method = format!("{} of the income tax", rate_text(*rate));
                if let Some(free) = free_up_to {
                    method.push_str(&format!("; none while the tax is at most {free}"));
                    amount = if income_tax <= *free {
                        Decimal::ZERO
                    } else if let Some(phase_in) = phase_in_rate {
                        method.push_str(&format!(
                            ", then at most {} of the excess",
                            rate_text(*phase_in)
                        ));
                        amount.min((income_tax - free) * phase_in)
                    } else {
                        amount
                    };
                }
                let amount = rounding.apply(amount);
                if *joins_income_tax {
                    joined += amount;
                }
                SurtaxLine {
                    name: name.clone(),
                    base: income_tax,
                    method,
                    amount,
                    informational: false,
                }
            }
            Surtax::PercentOfIncome {
                name,
                rate,
                deduction,
                base_rounding,
                free_up_to,
                phase_in_rate,
                rounding,
            } => {
                let mut base = positive(net_income - deduction.unwrap_or_default());
                if let Some(rule) = base_rounding {
                    base = rule.apply(base);
                }
                let mut method = format!("{} of net income", rate_text(*rate));
                if let Some(deduction) = deduction {
                    method.push_str(&format!(" less {deduction}"));
                }
                let mut amount = base * rate;
                if let Some(free) = free_up_to {
                    method.push_str(&format!("; none up to {free}"));
                    amount = if base <= *free {
                        Decimal::ZERO
                    } else if let Some(phase_in) = phase_in_rate {
                        method.push_str(&format!(
                            ", then at most {} of the excess",
                            rate_text(*phase_in)
                        ));
                        amount.min((base - free) * phase_in)
                    } else {
                        amount
                    };
                }
                SurtaxLine {
                    name: name.clone(),
                    base,
                    method,
                    amount: rounding.apply(amount),
                    informational: false,
                }
            }
            Surtax::BandsOnIncome {
                name,
                bands,
                rounding,
            } => {
                let (amount, lines) = banded(bands, net_income);
                let method = lines
                    .iter()
                    .filter(|line| line.rate.is_some_and(|rate| rate > Decimal::ZERO))
                    .map(|line| {
                        let rate = rate_text(line.rate.unwrap_or_default());
                        match line.to {
                            Some(to) => format!("{rate} from {} to {to}", line.from),
                            None => format!("{rate} above {}", line.from),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                SurtaxLine {
                    name: name.clone(),
                    base: net_income,
                    method,
                    amount: rounding.apply(amount),
                    informational: false,
                }
            }
            // Computed before the income tax, above.
            Surtax::SelfEmployment { .. } | Surtax::EnergyLevy { .. } => continue,
        };
        surtaxes.push(line);
    }
    surtaxes.extend(levies(schedule, energy));

    if let Some(combined) = rounding.combined {
        computation.rounding_adjustment = combined.apply(joined) - joined;
    }
    computation.total_tax = income_tax
        + surtaxes
            .iter()
            .filter(|line| !line.informational)
            .map(|line| line.amount)
            .sum::<Decimal>()
        + computation.rounding_adjustment;
    // Decimal drops the scale of a zero sum: keep the precision of the parts (0.00, not 0).
    let scale = surtaxes
        .iter()
        .map(|line| line.amount.scale())
        .chain([income_tax.scale()])
        .max()
        .unwrap_or(0);
    computation
        .total_tax
        .rescale(scale.max(computation.total_tax.scale()));
    computation.surtaxes = surtaxes;
    if gross_income > Decimal::ZERO {
        computation.effective_rate = (computation.total_tax / gross_income).round_dp(4);
    }
    computation
}

/// The per-kWh levies of a schedule, which do not depend on income.
fn levies(schedule: &Schedule, energy: Option<EnergyUse>) -> Vec<SurtaxLine> {
    schedule
        .surtaxes
        .iter()
        .filter_map(|surtax| match surtax {
            Surtax::EnergyLevy {
                name,
                scale,
                borne_by_facility,
            } => {
                let (base, method, amount) = match energy {
                    Some(energy) => {
                        let per_kwh = scale
                            .iter()
                            .find(|step| {
                                step.price_below
                                    .is_none_or(|below| energy.average_price < below)
                            })
                            .map(|step| step.per_kwh)
                            .unwrap_or_default();
                        (
                            energy.kwh,
                            format!(
                                "{per_kwh} per kWh at an average price of {} per kWh",
                                energy.average_price
                            ),
                            RoundingRule::CENTS.apply(energy.kwh * per_kwh),
                        )
                    }
                    None => (
                        Decimal::ZERO,
                        "no metered electricity recorded for this user's orders".into(),
                        Decimal::ZERO,
                    ),
                };
                Some(SurtaxLine {
                    name: name.clone(),
                    base,
                    method: if *borne_by_facility {
                        format!("{method}; paid by the hosting facility")
                    } else {
                        method
                    },
                    amount,
                    informational: *borne_by_facility,
                })
            }
            _ => None,
        })
        .collect()
}
