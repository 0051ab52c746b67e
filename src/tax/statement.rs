//! Statements for download: the CSV of every payout and fee behind the figures (whose SHA-256
//! every statement prints), and the PDF.

use rust_decimal::Decimal;

use super::ValuedLine;

const DETAIL_HEADER: [&str; 14] = [
    "kind",
    "ledger_seq",
    "occurred_at_utc",
    "local_time",
    "month",
    "asset",
    "amount",
    "usd_price",
    "price_at_utc",
    "fmv_usd",
    "fx_rate",
    "fx_at_utc",
    "value",
    "unvalued_reason",
];

fn text<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn utc(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The canonical CSV of the payouts then the fees, in ledger order: the data every figure and
/// the printed hash come from. Values in the jurisdiction's currency, to the cent.
pub fn detail_csv(payouts: &[ValuedLine], fees: &[ValuedLine]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let rows = std::iter::once(DETAIL_HEADER.map(String::from)).chain(
        payouts.iter().chain(fees).map(|line| {
            [
                line.kind.clone(),
                line.seq.to_string(),
                utc(line.occurred_at),
                line.local_time.clone(),
                line.month.clone(),
                line.asset.clone(),
                line.amount.to_string(),
                text(line.usd_price),
                text(line.price_at.map(utc)),
                text(line.fmv_usd),
                text(line.fx_rate),
                text(line.fx_at.map(utc)),
                text(line.value.map(|value: Decimal| format!("{value:.2}"))),
                line.unvalued_reason.clone().unwrap_or_default(),
            ]
        }),
    );
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(&row);
    }
    writer.into_inner().unwrap_or_default()
}

/// `1234567.8` → `1,234,567.80`.
pub fn money(value: Decimal) -> String {
    let text = format!("{:.2}", value.round_dp(2));
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, cents) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}.{cents}")
}

fn percent(rate: Decimal) -> String {
    format!("{}%", (rate * Decimal::ONE_HUNDRED).round_dp(4).normalize())
}

/// Picks the English or the Chinese label.
struct Labels {
    chinese: bool,
}

impl Labels {
    fn get<'a>(&self, english: &'a str, chinese: &'a str) -> &'a str {
        if self.chinese {
            chinese
        } else {
            english
        }
    }
}

/// The statement as PDF, in the holder's language (Chinese when they chose it), with the data
/// hash and "page n of N" on every page.
pub fn pdf(
    holder: &super::store::Holder,
    report: &super::TaxReport,
    generated_at: chrono::NaiveDateTime,
) -> Result<Vec<u8>, crate::error::AppError> {
    use crate::reports::pdf::{Column, Layout, Metadata};
    use chrono::TimeZone;

    let labels = Labels {
        chinese: holder.language.starts_with("zh"),
    };
    let language = if labels.chinese { "zh" } else { "en" };
    let l = |english, chinese| labels.get(english, chinese).to_string();
    let currency = &report.currency;
    let zone: chrono_tz::Tz = report.tax_year.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let computation = &report.computation;
    let title = format!(
        "{} {} · {}",
        l("Mining income tax statement", "挖矿收入纳税估算表"),
        report.tax_year.label,
        report.jurisdiction
    );
    let mut layout = Layout::new(&title)?;

    layout.paragraph(&title, 16.0);
    layout.space(2.0);
    let generated_local = zone.from_utc_datetime(&generated_at);
    let mut identity = vec![
        (l("Name", "姓名"), holder.name.clone()),
        (
            l("Address", "地址"),
            holder
                .address
                .clone()
                .unwrap_or_else(|| l("not on file", "未登记")),
        ),
        (l("User id", "用户编号"), holder.user_id.clone()),
        (
            l("Tax year", "纳税年度"),
            format!(
                "{} ({} – {}, {})",
                report.tax_year.label,
                report.tax_year.first_day,
                report.tax_year.last_day,
                report.tax_year.time_zone
            ),
        ),
        (
            l("Treatment", "所得类别"),
            report
                .classification_label
                .in_language(language)
                .to_string(),
        ),
        (l("Rules version", "规则版本"), report.rules_version.clone()),
        (
            l("Generated", "生成时间"),
            format!(
                "{} ({})",
                generated_local.format("%Y-%m-%d %H:%M:%S %:z"),
                report.tax_year.time_zone
            ),
        ),
    ];
    if !report.complete {
        identity.push((
            l("Incomplete", "数据不完整"),
            l(
                "some payouts or fees had no price or FX rate and are left out (see the appendix)",
                "部分收益或费用缺少价格或汇率，未计入（见附录）",
            ),
        ));
    }
    layout.pairs(&identity, 9.5);

    layout.heading(&l("Summary", "汇总"));
    let mut summary = vec![
        (
            l("Gross mining income", "挖矿收入总额"),
            computation.gross_income,
        ),
        (
            format!(
                "{} ({})",
                l("Costs", "成本费用"),
                computation.costs.description.in_language(language)
            ),
            -computation.costs.amount,
        ),
        (l("Net income", "净收入"), computation.net_income),
    ];
    for relief in computation
        .above_the_line
        .iter()
        .chain(&computation.allowances)
    {
        summary.push((
            relief.description.in_language(language).to_string(),
            -relief.amount,
        ));
    }
    summary.push((
        l("Taxable income", "应纳税所得额"),
        computation.taxable_income,
    ));
    summary.push((
        l("Income tax before credits", "抵免前所得税"),
        computation.income_tax_before_credits,
    ));
    for credit in &computation.credits {
        summary.push((
            credit.description.in_language(language).to_string(),
            -credit.amount,
        ));
    }
    summary.push((l("Income tax", "所得税"), computation.income_tax));
    for surtax in &computation.surtaxes {
        let mut name = surtax.name.in_language(language).to_string();
        if surtax.informational {
            name.push_str(&l(" (information only)", "（仅供参考）"));
        }
        summary.push((name, surtax.amount));
    }
    if !computation.rounding_adjustment.is_zero() {
        summary.push((l("Rounding", "尾数处理"), computation.rounding_adjustment));
    }
    summary.push((l("Total tax", "应纳税额合计"), computation.total_tax));
    let mut rows: Vec<Vec<String>> = summary
        .into_iter()
        .map(|(label, amount)| vec![label, format!("{} {currency}", money(amount))])
        .collect();
    rows.push(vec![
        l("Effective rate", "实际税率"),
        percent(computation.effective_rate),
    ]);
    layout.table(
        &[
            Column::left(l("Item", "项目"), 128.0),
            Column::right(l("Amount", "金额"), 50.0),
        ],
        &rows,
        9.0,
        "",
    );
    if let Some(reason) = &computation.exempt_reason {
        layout.paragraph(
            &format!(
                "{}: {}",
                l("Not taxed", "免税"),
                reason.in_language(language)
            ),
            9.0,
        );
    }

    if !computation.bands.is_empty() {
        layout.heading(&l("Tax by band", "分档计税"));
        let rows: Vec<Vec<String>> = computation
            .bands
            .iter()
            .map(|band| {
                vec![
                    money(band.from),
                    band.to.map(money).unwrap_or_else(|| "—".into()),
                    match (&band.formula, band.rate) {
                        (Some(formula), _) => formula.clone(),
                        (None, Some(rate)) => percent(rate),
                        (None, None) => String::new(),
                    },
                    money(band.income_in_band),
                    money(band.tax),
                ]
            })
            .collect();
        layout.table(
            &[
                Column::right(l("From", "起"), 28.0),
                Column::right(l("To", "止"), 28.0),
                Column::left(l("  Rate or formula", "  税率或公式"), 68.0),
                Column::right(l("Income in band", "本档所得"), 27.0),
                Column::right(l("Tax", "税额"), 27.0),
            ],
            &rows,
            8.5,
            "",
        );
    }

    layout.heading(&l("Income by month", "按月收入"));
    let rows: Vec<Vec<String>> = report
        .income_by_month
        .iter()
        .map(|month| {
            vec![
                month.month.clone(),
                month.asset.clone(),
                month.payouts.to_string(),
                month.amount.to_string(),
                money(month.value),
            ]
        })
        .chain(report.income_by_asset.iter().map(|total| {
            vec![
                l("Year", "全年").to_string(),
                total.asset.clone(),
                total.payouts.to_string(),
                total.amount.to_string(),
                money(total.value),
            ]
        }))
        .collect();
    layout.table(
        &[
            Column::left(l("Month", "月份"), 28.0),
            Column::left(l("Asset", "资产"), 22.0),
            Column::right(l("Payouts", "笔数"), 22.0),
            Column::right(l("Amount", "数量"), 48.0),
            Column::right(format!("{} ({currency})", l("Value", "价值")), 58.0),
        ],
        &rows,
        9.0,
        &l("No payouts in this tax year.", "本纳税年度无收益。"),
    );

    layout.heading(&l("Method and sources", "方法与来源"));
    layout.paragraph(
        &l(
            "Each payout is valued at its fair market value when received: the amount × the latest USD price at or before that moment (stored in the ledger with the price's time) × the latest USD→currency rate at or before it. Values are rounded to the cent per payout; the tax follows the rounding rules of the tax authority.",
            "每笔收益按到账时的公允市场价值计价：数量 × 到账时或之前最新的美元价格（与价格时间一同记录在账本中）× 到账时或之前最新的美元兑本币汇率。每笔价值四舍五入到分；税额按税务机关的尾数规则处理。",
        ),
        9.0,
    );
    layout.space(1.5);
    for source in &report.sources {
        layout.paragraph(&format!("• {source}"), 8.5);
    }
    layout.space(1.5);
    for note in report.notes.iter().chain(&report.disclaimers) {
        layout.paragraph(note.in_language(language), 8.5);
        layout.space(1.0);
    }

    layout.new_page();
    layout.heading(&l("Appendix: payouts and fees", "附录：收益与费用明细"));
    let detail: Vec<Vec<String>> = report
        .payouts
        .iter()
        .chain(&report.fees)
        .map(|line| {
            let local = zone.from_utc_datetime(&line.occurred_at);
            vec![
                format!(
                    "{} {}",
                    local.format("%Y-%m-%d %H:%M"),
                    if line.kind == "fee" {
                        l("fee", "费用")
                    } else {
                        String::new()
                    }
                ),
                line.asset.clone(),
                line.amount.to_string(),
                line.usd_price
                    .map(|price| price.normalize().to_string())
                    .unwrap_or_default(),
                line.fx_rate
                    .map(|rate| rate.normalize().to_string())
                    .unwrap_or_default(),
                line.value
                    .map(money)
                    .or_else(|| line.unvalued_reason.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    layout.table(
        &[
            Column::left(l("Received (local)", "到账时间（当地）"), 40.0),
            Column::left(l("Asset", "资产"), 16.0),
            Column::right(l("Amount", "数量"), 30.0),
            Column::right(l("USD price", "美元价格"), 30.0),
            Column::right(format!("USD→{currency}"), 26.0),
            Column::right(format!("{} ({currency})", l("Value", "价值")), 36.0),
        ],
        &detail,
        8.0,
        &l("No payouts in this tax year.", "本纳税年度无收益。"),
    );

    let dated = report
        .payouts
        .iter()
        .chain(&report.fees)
        .map(|line| line.occurred_at)
        .max()
        .unwrap_or(report.tax_year.starts_at)
        .and_utc()
        .timestamp();
    let header = format!("hashgate · {title}");
    let hash_label = l("Data SHA-256", "数据 SHA-256");
    let page_label = |page: usize, total: usize| {
        if labels.chinese {
            format!("第 {page} 页，共 {total} 页")
        } else {
            format!("Page {page} of {total}")
        }
    };
    let name = holder.name.clone();
    let bytes = layout.finish(
        Metadata {
            title: title.clone(),
            subject: format!("{} {}", report.jurisdiction, report.tax_year.label),
            author: name,
            identifier: report.data_sha256.clone(),
            dated,
            language: language.into(),
        },
        &header,
        |page, total| {
            vec![
                format!("{} · {}", page_label(page, total), report.tax_year.label),
                format!("{hash_label}: {}", report.data_sha256),
            ]
        },
    );
    Ok(bytes)
}
