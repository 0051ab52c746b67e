//! `hashgate screening eval`: precision, recall and F1 of the name matcher on labelled pairs
//! (the nomenklatura name benchmark: `case_group,schema,name1,name2,is_match,…`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::names::{compare, prepare, SubjectKind};

#[derive(Debug, Deserialize)]
struct CaseRow {
    schema: String,
    name1: String,
    name2: String,
    is_match: String,
}

pub struct Case {
    pub kind: SubjectKind,
    pub name1: String,
    pub name2: String,
    pub is_match: bool,
}

pub fn load_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut cases = Vec::new();
    for (index, row) in reader.deserialize::<CaseRow>().enumerate() {
        let line = index + 2;
        let row = row.with_context(|| format!("{} line {line}", path.display()))?;
        let kind = match row.schema.as_str() {
            "Person" => SubjectKind::Person,
            "Vessel" => SubjectKind::Vessel,
            "Airplane" => SubjectKind::Aircraft,
            _ => SubjectKind::Entity,
        };
        let is_match = match row.is_match.as_str() {
            "true" => true,
            "false" => false,
            other => anyhow::bail!("{} line {line}: is_match `{other}`", path.display()),
        };
        cases.push(Case {
            kind,
            name1: row.name1,
            name2: row.name2,
            is_match,
        });
    }
    Ok(cases)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub threshold: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub true_negatives: usize,
}

impl Metrics {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (precision, recall) = (self.precision(), self.recall());
        if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        }
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Each case's score, in the order given.
pub fn scores(cases: &[Case]) -> Vec<f64> {
    cases
        .iter()
        .map(|case| {
            compare(
                &prepare(&case.name1, case.kind),
                &prepare(&case.name2, case.kind),
            )
            .score
        })
        .collect()
}

pub fn metrics_at(cases: &[Case], scores: &[f64], threshold: f64) -> Metrics {
    let mut metrics = Metrics {
        threshold,
        true_positives: 0,
        false_positives: 0,
        false_negatives: 0,
        true_negatives: 0,
    };
    for (case, score) in cases.iter().zip(scores) {
        match (case.is_match, *score >= threshold) {
            (true, true) => metrics.true_positives += 1,
            (false, true) => metrics.false_positives += 1,
            (true, false) => metrics.false_negatives += 1,
            (false, false) => metrics.true_negatives += 1,
        }
    }
    metrics
}

/// The report printed by `hashgate screening eval`: the configured threshold first, then a sweep;
/// with `show_errors`, every misclassified pair at the configured threshold.
pub fn report(cases: &[Case], threshold: f64, show_errors: bool) -> anyhow::Result<String> {
    let scores = scores(cases);
    let mut out = String::new();
    let line = |metrics: &Metrics| {
        format!(
            "{:>9.2}  {:>9.3}  {:>6.3}  {:>6.3}  {:>4}  {:>4}  {:>4}  {:>4}",
            metrics.threshold,
            metrics.precision(),
            metrics.recall(),
            metrics.f1(),
            metrics.true_positives,
            metrics.false_positives,
            metrics.false_negatives,
            metrics.true_negatives
        )
    };
    let header = "threshold  precision  recall      F1    TP    FP    FN    TN";
    writeln!(out, "{} labelled pairs", cases.len())?;
    writeln!(out, "at the configured threshold:")?;
    writeln!(out, "{header}")?;
    writeln!(out, "{}", line(&metrics_at(cases, &scores, threshold)))?;
    writeln!(out, "across thresholds:")?;
    writeln!(out, "{header}")?;
    for step in 10..=19 {
        let sweep = f64::from(step) * 0.05;
        writeln!(out, "{}", line(&metrics_at(cases, &scores, sweep)))?;
    }
    if show_errors {
        writeln!(out, "misclassified at {threshold:.2}:")?;
        for (case, score) in cases.iter().zip(&scores) {
            if case.is_match != (*score >= threshold) {
                writeln!(
                    out,
                    "{} {:.3} {:?} | {} | {}",
                    if case.is_match { "FN" } else { "FP" },
                    score,
                    case.kind,
                    case.name1,
                    case.name2
                )?;
            }
        }
    }
    Ok(out)
}
