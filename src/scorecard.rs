//! `hashgate bench all`: every performance target the issues name, measured by the benches at the
//! sizes the issues name (or a fraction of them), on SQLite and PostgreSQL, as one table of
//! figure, target, measured, pass/fail and backend. Each bench runs as its own process (so its
//! memory figures are its own) and records its target figures as it measures them, as JSON lines
//! in the file `HASHGATE_SCORECARD_FILE` names; the table is printed at the end and written as
//! Markdown for BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file a bench appends its figures to, when `bench all` started it.
pub const FIGURES_FILE_VARIABLE: &str = "HASHGATE_SCORECARD_FILE";

/// What a figure must reach; benchmark figures are measurements, not money, so `f64` serves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// Reported for context (e.g. p50 beside a p99 target).
    Informational,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub issue: u8,
    pub name: String,
    pub backend: String,
    pub target: Target,
    pub measured: f64,
    pub unit: String,
}

impl Figure {
    pub fn verdict(&self) -> &'static str {
        match self.target {
            Target::AtLeast(bound) if self.measured >= bound => "pass",
            Target::AtMost(bound) if self.measured <= bound => "pass",
            Target::Informational => "—",
            _ => "FAIL",
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::AtLeast(bound) => format!("≥ {} {}", number(bound), self.unit),
            Target::AtMost(bound) => format!("≤ {} {}", number(bound), self.unit),
            Target::Informational => "—".to_string(),
        }
    }
}

/// Records one measured figure against its target: appended to the scorecard file when `bench
/// all` runs the bench, otherwise nothing (a bench run alone prints its own lines).
pub fn record(issue: u8, name: &str, backend: &str, target: Target, measured: f64, unit: &str) {
    let Some(path) = std::env::var_os(FIGURES_FILE_VARIABLE) else {
        return;
    };
    let figure = Figure {
        issue,
        name: name.to_string(),
        backend: backend.to_string(),
        target,
        measured,
        unit: unit.to_string(),
    };
    let appended = serde_json::to_string(&figure).map(|line| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"))
    });
    if !matches!(appended, Ok(Ok(()))) {
        tracing::warn!(figure = name, "cannot append to the scorecard file");
    }
}

/// A latency figure in milliseconds.
pub fn record_millis(issue: u8, name: &str, backend: &str, bound_ms: f64, measured: Duration) {
    record(
        issue,
        name,
        backend,
        Target::AtMost(bound_ms),
        measured.as_secs_f64() * 1000.0,
        "ms",
    );
}

fn number(value: f64) -> String {
    if value >= 1000.0 {
        let whole = value.round() as u64;
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        grouped
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The recorded figures as a Markdown table, in the order measured.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| issue | figure | target | measured | verdict | backend |\n|---|---|---|---|---|---|\n",
    );
    for figure in figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} {} | {} | {} |",
            figure.issue,
            figure.name,
            figure.target_text(),
            number(figure.measured),
            figure.unit,
            figure.verdict(),
            figure.backend
        );
    }
    out
}

pub struct AllOptions {
    /// 1.0 runs every bench at the size its issue names; less runs a proportional sample.
    pub scale: f64,
    /// The OFAC and UN data for the screening and load benches.
    pub lists: PathBuf,
    /// The labelled name pairs for the matcher's accuracy.
    pub cases: PathBuf,
    pub postgres_url: Option<String>,
    /// Where the Markdown table goes, besides standard output.
    pub output: Option<PathBuf>,
}

/// Runs `hashgate bench ARGUMENTS` as a process of its own, recording into `figures`.
fn bench_process(figures: &Path, arguments: &[String]) -> anyhow::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .arg("bench")
        .args(arguments)
        .env(FIGURES_FILE_VARIABLE, figures)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "`hashgate bench {}` failed ({status})",
        arguments.join(" ")
    );
    Ok(())
}

/// Runs every bench, then prints the table; returns the number of targets missed.
pub fn run_all(options: &AllOptions) -> anyhow::Result<usize> {
    anyhow::ensure!(
        options.scale > 0.0 && options.scale <= 1.0,
        "--scale must be above 0 and at most 1"
    );
    let sized = |full: usize| {
        ((full as f64 * options.scale).round() as usize)
            .max(1)
            .to_string()
    };
    let lists = options.lists.display().to_string();
    let postgres: Vec<String> = options
        .postgres_url
        .iter()
        .flat_map(|url| ["--postgres-url".to_string(), url.clone()])
        .collect();
    let figures_file =
        std::env::temp_dir().join(format!("hashgate-scorecard-{}.jsonl", uuid::Uuid::new_v4()));
    let benches: [(&str, Vec<String>); 8] = [
        (
            "issue 3: the payout ledger",
            vec![
                "ledger".into(),
                "--payouts".into(),
                sized(1_000_000),
                "--users".into(),
                sized(1_000),
            ],
        ),
        (
            "issue 4: screening",
            vec![
                "screening".into(),
                "--data".into(),
                lists.clone(),
                "--queries".into(),
                sized(20_000),
                "--names".into(),
                sized(1_000_000),
            ],
        ),
        (
            "issue 5: the KYC queue",
            vec!["kyc".into(), "--applications".into(), sized(100_000)],
        ),
        (
            "issue 6: the withdrawal gate",
            vec![
                "withdrawals".into(),
                "--users".into(),
                sized(100_000),
                "--payouts".into(),
                sized(10_000_000),
            ],
        ),
        (
            "issue 7: tax statements and the CARF export",
            vec!["tax".into(), "--users".into(), sized(100_000)],
        ),
        (
            "issue 8: certificate matching",
            vec![
                "carbon".into(),
                "--orders".into(),
                sized(100_000),
                "--certificates".into(),
                sized(50_000),
                "--hourly-orders".into(),
                sized(10_000),
            ],
        ),
        (
            "issue 9: regulator reports",
            vec![
                "reports".into(),
                "--users".into(),
                sized(10_000),
                "--payouts".into(),
                sized(1_000_000),
            ],
        ),
        (
            "issue 10: mixed load",
            vec![
                "load".into(),
                "--payouts".into(),
                sized(100_000),
                "--seconds".into(),
                ((300.0 * options.scale).round() as u64).max(10).to_string(),
                "--rate".into(),
                "100".into(),
                "--lists".into(),
                lists,
            ],
        ),
    ];
    let outcome = (|| -> anyhow::Result<Vec<Figure>> {
        for (title, mut arguments) in benches {
            println!("\n### {title}");
            if arguments[0] != "screening" {
                arguments.extend(postgres.iter().cloned());
            }
            bench_process(&figures_file, &arguments)?;
        }
        let cases = crate::aml::eval::load_cases(&options.cases)?;
        let threshold = crate::aml::DEFAULT_THRESHOLD;
        println!("\n### issue 4: matcher accuracy");
        print!("{}", crate::aml::eval::report(&cases, threshold, false)?);
        let accuracy =
            crate::aml::eval::metrics_at(&cases, &crate::aml::eval::scores(&cases), threshold);
        let mut figures: Vec<Figure> = std::fs::read_to_string(&figures_file)
            .unwrap_or_default()
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        for (name, value) in [("precision", accuracy.precision()), ("F1", accuracy.f1())] {
            figures.push(Figure {
                issue: 4,
                name: format!("matcher {name} on the labelled pairs at {threshold}"),
                backend: "—".into(),
                target: Target::AtLeast(0.85),
                measured: value,
                unit: String::new(),
            });
        }
        Ok(figures)
    })();
    let _ = std::fs::remove_file(&figures_file);
    let mut figures = outcome?;
    figures.sort_by_key(|figure| figure.issue);

    let mut out = format!(
        "\n## Every target (scale {}: {})\n\n",
        options.scale,
        if options.scale < 1.0 {
            "a proportional sample of the issues' sizes"
        } else {
            "the issues' full sizes"
        }
    );
    out.push_str(&table(&figures));
    let missed = figures.iter().filter(|f| f.verdict() == "FAIL").count();
    let _ = writeln!(
        out,
        "\n{} figures, {} targets met, {missed} missed",
        figures.len(),
        figures.iter().filter(|f| f.verdict() == "pass").count()
    );
    print!("{out}");
    if let Some(path) = &options.output {
        std::fs::write(path, &out)?;
    }
    Ok(missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_compare_against_the_bound_in_its_direction() {
        let figure = |target, measured| Figure {
            issue: 3,
            name: "ingest".into(),
            backend: "sqlite".into(),
            target,
            measured,
            unit: "/s".into(),
        };
        assert_eq!(
            figure(Target::AtLeast(100_000.0), 100_000.0).verdict(),
            "pass"
        );
        assert_eq!(
            figure(Target::AtLeast(100_000.0), 41_700.0).verdict(),
            "FAIL"
        );
        assert_eq!(figure(Target::AtMost(5.0), 9.47).verdict(), "FAIL");
        assert_eq!(figure(Target::AtMost(5.0), 0.72).verdict(), "pass");
        let table = table(&[figure(Target::AtLeast(100_000.0), 41_700.0)]);
        assert!(
            table.contains("| 3 | ingest | ≥ 100,000 /s | 41,700 /s | FAIL | sqlite |"),
            "{table}"
        );
    }
}
