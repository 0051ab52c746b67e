//! The periodic sandbox report a jurisdiction's regulator receives: which sections, in which
//! language, over which period kind, is data in `jurisdictions/<CODE>.toml` (`[reports]`); the
//! figures come from `store::sandbox_figures`; here they become the JSON document and the PDF.

use chrono::{NaiveDate, NaiveDateTime, TimeZone as _};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pdf::{Column, Layout, Metadata};
use super::{Figure, PeriodKind};
use crate::error::AppError;

/// `[reports]` of a jurisdiction file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRules {
    /// Who receives the reports, as printed on the cover.
    pub regulator: String,
    pub period: PeriodKind,
    /// `en`, or `zh` for Chinese.
    pub language: String,
    pub sections: Vec<Section>,
    /// Where suspicious transaction reports go, when hashgate prepares them for this
    /// jurisdiction's FIU.
    pub goaml: Option<super::goaml::GoamlRules>,
}

impl ReportRules {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(goaml) = &self.goaml {
            goaml.validate()?;
        }
        if self.regulator.trim().is_empty() {
            return Err("reports.regulator must name the regulator".into());
        }
        if !matches!(self.language.as_str(), "en" | "zh") {
            return Err(format!(
                "reports.language `{}` must be en or zh",
                self.language
            ));
        }
        if self.sections.is_empty() {
            return Err("reports.sections must list at least one section".into());
        }
        for (index, section) in self.sections.iter().enumerate() {
            if self.sections[..index].contains(section) {
                return Err(format!("reports.sections lists {section:?} twice"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Customers,
    Applications,
    Screening,
    Monitoring,
    SuspiciousReports,
    Withdrawals,
    Payouts,
    Carbon,
    Incidents,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::Customers => "customers",
            Section::Applications => "applications",
            Section::Screening => "screening",
            Section::Monitoring => "monitoring",
            Section::SuspiciousReports => "suspicious_reports",
            Section::Withdrawals => "withdrawals",
            Section::Payouts => "payouts",
            Section::Carbon => "carbon",
            Section::Incidents => "incidents",
        }
    }

    pub fn title(self, language: &str) -> &'static str {
        let (en, zh) = match self {
            Section::Customers => ("Customers by KYC tier and risk", "客户（按KYC等级与风险）"),
            Section::Applications => ("KYC applications and review times", "KYC申请与审核时效"),
            Section::Screening => ("Sanctions and PEP screening", "制裁与政治公众人物筛查"),
            Section::Monitoring => (
                "Transaction monitoring: alerts and cases",
                "交易监控：警报与案件",
            ),
            Section::SuspiciousReports => ("Suspicious transaction reports", "可疑交易报告"),
            Section::Withdrawals => ("Withdrawals by decision", "提现（按决定）"),
            Section::Payouts => ("Mining payouts", "挖矿收益发放"),
            Section::Carbon => ("Green energy and emissions", "绿色能源与排放"),
            Section::Incidents => ("Incidents and integrity", "事件与完整性"),
        };
        if language == "zh" {
            zh
        } else {
            en
        }
    }
}

/// A metric's printed name.
fn metric_label(metric: &str, language: &str) -> String {
    let (en, zh) = match metric {
        "users" => ("Users at period end", "期末用户数"),
        "users_new" => ("New users", "新增用户"),
        "users_by_tier_and_risk" => ("Users by tier and risk", "按等级与风险的用户"),
        "peps" => ("Politically exposed persons", "政治公众人物"),
        "periodic_reviews_overdue" => ("Periodic reviews overdue", "逾期定期复核"),
        "received" => ("Applications received", "收到的申请"),
        "decided" => ("Applications decided", "已决定的申请"),
        "decided_within_sla" => ("Decided within SLA", "在时限内决定"),
        "decided_after_sla" => ("Decided after SLA", "超时限决定"),
        "open_past_sla_at_period_end" => ("Open past SLA at period end", "期末逾期未决"),
        "screenings" => ("Screenings run", "筛查次数"),
        "hits" => ("Hits by list and resolution", "命中（按名单与处理结果）"),
        "alerts" => ("Alerts by rule and status", "警报（按规则与状态）"),
        "cases_opened" => ("Cases opened", "新开案件"),
        "cases_closed" => ("Cases closed by outcome", "结案（按结果）"),
        "cases_open_at_period_end" => ("Cases open at period end", "期末未结案件"),
        "filed" => ("Reports filed", "已提交报告"),
        "count" => ("Count", "笔数"),
        "amount" => ("Amount", "金额"),
        "amount_local" => ("Amount in local currency", "本地货币金额"),
        "volume" => ("Volume", "数量"),
        "fmv" => ("Fair market value", "公允市值"),
        "unvalued" => ("Without a usable price", "无可用价格"),
        "orders" => ("Rental orders started", "开始的租赁订单"),
        "energy" => ("Energy", "能耗"),
        "energy_matched" => ("Energy matched with certificates", "证书匹配能耗"),
        "share_matched" => ("Share matched", "匹配比例"),
        "emissions" => ("Emissions", "排放"),
        "outbox_failing" => ("Deliveries failing", "投递失败"),
        "chain" => ("Hash chain verification", "哈希链校验"),
        "head" => ("Chain head", "链头"),
        "range" => ("Entries covered", "覆盖条目"),
        "anchor_hash" => ("Hash before the range", "范围前哈希"),
        "root_hash" => ("Root hash (last entry of the range)", "根哈希"),
        "entries" => ("Entries", "条目"),
        other => (other, other),
    };
    if language == "zh" { zh } else { en }.to_string()
}

/// The reporting period as printed and exported.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeriodView {
    pub label: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub time_zone: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub start_utc: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub end_utc: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionView {
    pub section: Section,
    pub title: String,
    pub figures: Vec<Figure>,
}

/// The report as JSON: everything the PDF prints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SandboxDocument {
    pub report_id: String,
    pub jurisdiction: String,
    pub jurisdiction_name: String,
    pub regulator: String,
    pub reporting_entity: String,
    pub currency: String,
    pub language: String,
    pub period: PeriodView,
    /// True when generated before the period closed: the figures may still change.
    pub provisional: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub generated_at: NaiveDateTime,
    pub generated_by: String,
    /// The SHA-256 of `data.csv`, the canonical export of the figures below.
    pub data_sha256: String,
    pub signing_key_id: String,
    pub sections: Vec<SectionView>,
}

impl SandboxDocument {
    pub fn title(&self) -> String {
        if self.language == "zh" {
            format!(
                "沙盒定期报告 — {} — {}",
                self.jurisdiction_name, self.period.label
            )
        } else {
            format!(
                "Sandbox periodic report — {} — {}",
                self.jurisdiction_name, self.period.label
            )
        }
    }
}

/// Groups figures under their sections, in the order of `sections`.
pub fn sections_of(figures: &[Figure], sections: &[Section], language: &str) -> Vec<SectionView> {
    sections
        .iter()
        .map(|section| SectionView {
            section: *section,
            title: section.title(language).to_string(),
            figures: figures
                .iter()
                .filter(|figure| figure.section == section.key())
                .cloned()
                .collect(),
        })
        .collect()
}

/// A document of figures: a cover of label–value pairs and notes, then one table per section;
/// on every page a running header and a footer with the scope, the data hash and "page n of N".
pub(crate) struct FiguresPdf {
    pub title: String,
    pub language: String,
    pub cover: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub sections: Vec<(String, Vec<Figure>)>,
    pub header: String,
    /// What the report covers, printed in every footer.
    pub scope: String,
    pub data_sha256: String,
    pub confidential: String,
    pub author: String,
    pub subject: String,
    pub dated: i64,
}

pub(crate) fn figures_pdf(document: FiguresPdf) -> Result<Vec<u8>, AppError> {
    let zh = document.language == "zh";
    let l = |en: &str, zh_text: &str| if zh { zh_text } else { en }.to_string();
    let mut layout = Layout::new(&document.title)?;
    layout.paragraph(&document.title, 15.0);
    layout.space(2.0);
    layout.pairs(&document.cover, 9.0);
    for note in &document.notes {
        layout.paragraph(note, 8.0);
    }
    let columns = [
        Column::left(l("Figure", "指标"), 62.0),
        Column::left(l("Breakdown", "细分"), 62.0),
        Column::right(l("Value", "数值"), 32.0),
        Column::left(l("Unit", "单位"), 22.0),
    ];
    for (title, figures) in &document.sections {
        layout.heading(title);
        let rows: Vec<Vec<String>> = figures
            .iter()
            .map(|figure| {
                vec![
                    metric_label(&figure.metric, &document.language),
                    figure.breakdown.replace(';', ", "),
                    figure.value.clone(),
                    figure.unit.clone(),
                ]
            })
            .collect();
        layout.table(&columns, &rows, 8.5, &l("No records", "无记录"));
    }
    let hash = format!(
        "{} {}",
        l("Data SHA-256", "数据SHA-256"),
        document.data_sha256
    );
    let (confidential, scope) = (&document.confidential, &document.scope);
    Ok(layout.finish(
        Metadata {
            title: document.title.clone(),
            subject: document.subject.clone(),
            author: document.author.clone(),
            identifier: document.data_sha256.clone(),
            dated: document.dated,
            language: document.language.clone(),
        },
        &document.header,
        |page, total| {
            vec![
                format!(
                    "{confidential} · {scope} · {} {page} / {total}",
                    l("Page", "页")
                ),
                hash.clone(),
            ]
        },
    ))
}

/// The sandbox report's PDF: its cover names the regulator, the period in local time and UTC,
/// the generator and the key.
pub fn render_pdf(document: &SandboxDocument, zone: chrono_tz::Tz) -> Result<Vec<u8>, AppError> {
    let zh = document.language == "zh";
    let l = |en: &str, zh_text: &str| if zh { zh_text } else { en }.to_string();
    let local = |at: NaiveDateTime| zone.from_utc_datetime(&at).format("%Y-%m-%d %H:%M:%S %:z");
    let period = &document.period;
    let mut notes = Vec::new();
    if document.provisional {
        notes.push(l(
            "PROVISIONAL: generated before the period closed; the figures may still change.",
            "临时报告：于报告期结束前生成，数字可能仍会变化。",
        ));
    }
    notes.push(l(
        "Every figure below is a row of data.csv, published with this report; its SHA-256 is \
         printed above and in every footer. The PDF and data.csv are signed with the \
         platform's Ed25519 key (GET /.well-known/hashgate-signing-key); verify a copy with \
         `hashgate verify-report FILE` or GET /v1/reports/{id}/verify.",
        "下列每个数字都是随本报告发布的 data.csv 中的一行；其 SHA-256 打印于上方及每页页脚。\
         PDF 与 data.csv 均以平台的 Ed25519 密钥签名（GET /.well-known/hashgate-signing-key）；\
         可用 `hashgate verify-report FILE` 或 GET /v1/reports/{id}/verify 校验副本。",
    ));
    figures_pdf(FiguresPdf {
        title: document.title(),
        language: document.language.clone(),
        cover: vec![
            (l("Regulator", "监管机构"), document.regulator.clone()),
            (
                l("Reporting entity", "报告主体"),
                document.reporting_entity.clone(),
            ),
            (
                l("Period", "报告期"),
                format!(
                    "{} – {} ({}), {} – {} UTC",
                    period.first_day,
                    period.last_day,
                    period.time_zone,
                    period.start_utc.format("%Y-%m-%d %H:%M"),
                    period.end_utc.format("%Y-%m-%d %H:%M")
                ),
            ),
            (l("Currency", "货币"), document.currency.clone()),
            (
                l("Generated", "生成时间"),
                format!(
                    "{} ({} UTC) by {}",
                    local(document.generated_at),
                    document.generated_at.format("%Y-%m-%d %H:%M:%S"),
                    document.generated_by
                ),
            ),
            (l("Report id", "报告编号"), document.report_id.clone()),
            (
                l("Generator", "生成程序"),
                format!("hashgate {}", env!("CARGO_PKG_VERSION")),
            ),
            (
                l("Data SHA-256 (data.csv)", "数据SHA-256（data.csv）"),
                document.data_sha256.clone(),
            ),
            (
                l("Signing key", "签名密钥"),
                format!("Ed25519 {}", document.signing_key_id),
            ),
        ],
        notes,
        sections: document
            .sections
            .iter()
            .map(|section| (section.title.clone(), section.figures.clone()))
            .collect(),
        header: format!(
            "{} · {} · {}",
            document.reporting_entity, document.regulator, period.label
        ),
        scope: format!(
            "{} {} – {} ({})",
            l("Period", "报告期"),
            period.first_day,
            period.last_day,
            period.time_zone
        ),
        data_sha256: document.data_sha256.clone(),
        confidential: l(
            "Confidential: for the regulator named above",
            "机密：仅供上述监管机构",
        ),
        author: document.reporting_entity.clone(),
        subject: format!("{} {}", document.jurisdiction, period.label),
        dated: document.generated_at.and_utc().timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<ReportRules, String> {
        let rules: ReportRules = toml::from_str(text).map_err(|e| e.to_string())?;
        rules.validate().map(|_| rules)
    }

    #[test]
    fn report_rules_are_checked() {
        let good = rules(
            "regulator = \"SFC\"\nperiod = \"quarter\"\nlanguage = \"en\"\nsections = [\"customers\", \"payouts\"]",
        )
        .unwrap();
        assert_eq!(good.sections, vec![Section::Customers, Section::Payouts]);
        assert!(rules("regulator = \"SFC\"\nperiod = \"quarter\"\nlanguage = \"fr\"\nsections = [\"customers\"]").is_err());
        assert!(rules(
            "regulator = \"SFC\"\nperiod = \"quarter\"\nlanguage = \"en\"\nsections = []"
        )
        .is_err());
        assert!(rules("regulator = \"SFC\"\nperiod = \"quarter\"\nlanguage = \"en\"\nsections = [\"customers\", \"customers\"]").is_err());
        assert!(rules(
            "regulator = \"SFC\"\nperiod = \"week\"\nlanguage = \"en\"\nsections = [\"customers\"]"
        )
        .is_err());
        assert!(rules(
            "regulator = \"SFC\"\nperiod = \"month\"\nlanguage = \"en\"\nsections = [\"gossip\"]"
        )
        .is_err());
    }

    #[test]
    fn figures_are_grouped_in_the_configured_order() {
        let figures = vec![
            Figure::new("payouts", "count", "asset=BTC", 3, "count"),
            Figure::new("customers", "users", "", 7, "count"),
        ];
        let sections = sections_of(&figures, &[Section::Customers, Section::Payouts], "zh");
        assert_eq!(sections[0].figures[0].value, "7");
        assert_eq!(sections[1].figures[0].metric, "count");
        assert_eq!(sections[1].title, "挖矿收益发放");
    }
}
