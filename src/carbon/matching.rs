//! The matcher: which certificates cover which consumption, decided in memory and
//! deterministically. Certificates are taken oldest-expiring first (those that never expire
//! last), then by generation start and id; orders in the order they are given. Only certificates
//! of the consumption's market zone are offered (the store selects them), and each one only
//! within its scheme's vintage window (annual mode) or for its own UTC hour (hourly mode).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::{Scheme, VintageWindow};

/// Certificate volume that may still be allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Shared with the grants made from it.
    pub certificate_id: Arc<str>,
    pub scheme: Scheme,
    pub generation_start: NaiveDateTime,
    pub generation_end: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub available_wh: i64,
}

fn priority(a: &Candidate, b: &Candidate) -> Ordering {
    let expiry = |candidate: &Candidate| (candidate.expires_at.is_none(), candidate.expires_at);
    expiry(a)
        .cmp(&expiry(b))
        .then(a.generation_start.cmp(&b.generation_start))
        .then(a.certificate_id.cmp(&b.certificate_id))
}

/// The vintage window of each scheme (configuration overrides the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VintageRules([VintageWindow; 4]);

impl Default for VintageRules {
    fn default() -> Self {
        VintageRules(Scheme::ALL.map(Scheme::default_vintage))
    }
}

impl VintageRules {
    pub fn with(mut self, scheme: Scheme, window: VintageWindow) -> Self {
        self.0[Scheme::ALL.iter().position(|s| *s == scheme).unwrap_or(0)] = window;
        self
    }

    pub fn window(&self, scheme: Scheme) -> VintageWindow {
        self.0[Scheme::ALL.iter().position(|s| *s == scheme).unwrap_or(0)]
    }

    /// Reads `irec=6/3, go=12/0`: months before and after, per scheme; others keep defaults.
    pub fn parse(text: &str) -> Result<VintageRules, String> {
        let mut rules = VintageRules::default();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let parsed = item.split_once('=').and_then(|(scheme, months)| {
                let (before, after) = months.split_once('/')?;
                Some((
                    Scheme::parse(scheme.trim())?,
                    VintageWindow {
                        months_before: before.trim().parse().ok().filter(|m| *m <= 60)?,
                        months_after: after.trim().parse().ok().filter(|m| *m <= 60)?,
                    },
                ))
            });
            let (scheme, window) = parsed.ok_or_else(|| {
                format!("`{item}` is not like `irec=6/3` (a scheme: irec, go, rec, hourly; months up to 60)")
            })?;
            rules = rules.with(scheme, window);
        }
        Ok(rules)
    }

    /// The widest window of any scheme: what the store pre-selects by.
    pub fn widest(&self) -> VintageWindow {
        VintageWindow {
            months_before: self.0.iter().map(|w| w.months_before).max().unwrap_or(0),
            months_after: self.0.iter().map(|w| w.months_after).max().unwrap_or(0),
        }
    }
}

/// Consumption to cover: an order's unmatched energy over its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub order_id: String,
    pub period: (NaiveDateTime, NaiveDateTime),
    pub wh: i64,
}

/// Volume of one certificate granted to one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    pub order_id: &'a str,
    pub certificate_id: Arc<str>,
    /// The UTC hour covered, in hourly mode.
    pub hour_start: Option<NaiveDateTime>,
    pub wh: i64,
}

/// Grants as much of `candidate` as is `left` to cover (at most what it has), and counts it.
fn take<'a>(
    candidate: &mut Candidate,
    left: &mut i64,
    order_id: &'a str,
    hour_start: Option<NaiveDateTime>,
) -> Grant<'a> {
    let wh = (*left).min(candidate.available_wh);
    candidate.available_wh -= wh;
    *left -= wh;
    Grant {
        order_id,
        certificate_id: Arc::clone(&candidate.certificate_id),
        hour_start,
        wh,
    }
}

/// Certificates of one scheme and generation period, in priority order, used up from the front.
struct Bucket {
    scheme: Scheme,
    generation: (NaiveDateTime, NaiveDateTime),
    candidates: Vec<Candidate>,
    next: usize,
}

impl Bucket {
    /// Moves past the certificates used up, to the highest-priority one with volume left.
    fn skip_used(&mut self) {
        while self
            .candidates
            .get(self.next)
            .is_some_and(|candidate| candidate.available_wh == 0)
        {
            self.next += 1;
        }
    }
}

/// Annual (volumetric) matching of `needs`, in the given order, against one zone's
/// `candidates`. Certificates are grouped by scheme and generation period, the unit the vintage
/// window judges, so each need looks only at the groups its window admits and takes the
/// highest-priority certificate among their heads: about (orders + certificates) × groups steps.
pub fn match_annual<'a>(
    needs: &'a [Need],
    candidates: Vec<Candidate>,
    vintage: &VintageRules,
) -> Vec<Grant<'a>> {
    let mut groups: HashMap<(Scheme, NaiveDateTime, NaiveDateTime), Vec<Candidate>> =
        HashMap::new();
    for candidate in candidates.into_iter().filter(|c| c.available_wh > 0) {
        groups
            .entry((
                candidate.scheme,
                candidate.generation_start,
                candidate.generation_end,
            ))
            .or_default()
            .push(candidate);
    }
    let mut buckets: Vec<Bucket> = groups
        .into_iter()
        .map(|((scheme, start, end), mut candidates)| {
            candidates.sort_by(priority);
            Bucket {
                scheme,
                generation: (start, end),
                candidates,
                next: 0,
            }
        })
        .collect();
    let mut grants = Vec::new();
    for need in needs {
        let eligible: Vec<usize> = (0..buckets.len())
            .filter(|&index| {
                let bucket = &buckets[index];
                vintage
                    .window(bucket.scheme)
                    .admits(bucket.generation, need.period)
            })
            .collect();
        let mut left = need.wh;
        while left > 0 {
            for &index in &eligible {
                buckets[index].skip_used();
            }
            let best = eligible
                .iter()
                .copied()
                .filter(|&index| buckets[index].next < buckets[index].candidates.len())
                .min_by(|&a, &b| {
                    priority(
                        &buckets[a].candidates[buckets[a].next],
                        &buckets[b].candidates[buckets[b].next],
                    )
                });
            let Some(index) = best else {
                break;
            };
            let bucket = &mut buckets[index];
            let candidate = &mut bucket.candidates[bucket.next];
            grants.push(take(candidate, &mut left, &need.order_id, None));
        }
    }
    grants
}

/// One hour of an order still to cover in hourly mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourNeed<'a> {
    pub order_id: &'a str,
    pub hour_start: NaiveDateTime,
    pub wh: i64,
}

/// Hourly matching: each hour's consumption takes only certificates generated in that same UTC
/// hour (the store offers only one-hour certificates). Surplus in one hour never covers another.
/// Needs may come in several calls: certificates keep what earlier calls took, so the grants are
/// those of one call over all of them.
pub struct HourlyMatcher {
    by_hour: HashMap<NaiveDateTime, Vec<Candidate>>,
}

impl HourlyMatcher {
    pub fn new(candidates: Vec<Candidate>) -> Self {
        let mut by_hour: HashMap<NaiveDateTime, Vec<Candidate>> = HashMap::new();
        for candidate in candidates.into_iter().filter(|c| {
            c.available_wh > 0 && super::is_one_utc_hour(c.generation_start, c.generation_end)
        }) {
            by_hour
                .entry(candidate.generation_start)
                .or_default()
                .push(candidate);
        }
        for hour in by_hour.values_mut() {
            hour.sort_by(priority);
        }
        HourlyMatcher { by_hour }
    }

    /// The hours that have certificates with volume left.
    pub fn hours(&self) -> std::collections::BTreeSet<NaiveDateTime> {
        self.by_hour.keys().copied().collect()
    }

    /// Grants `needs`, in the given order.
    pub fn grant<'a>(&mut self, needs: &[HourNeed<'a>]) -> Vec<Grant<'a>> {
        let mut grants = Vec::new();
        for need in needs {
            let Some(hour) = self.by_hour.get_mut(&need.hour_start) else {
                continue;
            };
            let mut left = need.wh;
            for candidate in hour.iter_mut().filter(|c| c.available_wh > 0) {
                if left == 0 {
                    break;
                }
                grants.push(take(
                    candidate,
                    &mut left,
                    need.order_id,
                    Some(need.hour_start),
                ));
            }
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn certificate(id: &str, expires: Option<&str>, generated: (&str, &str), wh: i64) -> Candidate {
        Candidate {
            certificate_id: id.into(),
            scheme: Scheme::Irec,
            generation_start: at(generated.0),
            generation_end: at(generated.1),
            expires_at: expires.map(at),
            available_wh: wh,
        }
    }

    fn need(order: &str, period: (&str, &str), wh: i64) -> Need {
        Need {
            order_id: order.into(),
            period: (at(period.0), at(period.1)),
            wh,
        }
    }

    fn taken<'a>(grants: &'a [Grant]) -> Vec<(&'a str, &'a str, i64)> {
        grants
            .iter()
            .map(|g| (g.order_id, &*g.certificate_id, g.wh))
            .collect()
    }

    #[test]
    fn oldest_expiring_certificates_go_first_and_orders_take_in_turn() {
        let march = ("2026-03-01 00:00", "2026-04-01 00:00");
        let candidates = vec![
            certificate("never", None, march, 5_000),
            certificate("late", Some("2027-06-01 00:00"), march, 1_000),
            certificate("soon", Some("2026-12-31 00:00"), march, 1_500),
        ];
        let needs = [
            need("a", ("2026-03-10 00:00", "2026-03-11 00:00"), 2_000),
            need("b", ("2026-03-12 00:00", "2026-03-13 00:00"), 1_200),
        ];
        let grants = match_annual(&needs, candidates, &VintageRules::default());
        assert_eq!(
            taken(&grants),
            vec![
                ("a", "soon", 1_500),
                ("a", "late", 500),
                ("b", "late", 500),
                ("b", "never", 700),
            ]
        );
    }

    #[test]
    fn certificates_outside_the_vintage_window_are_refused() {
        // Consumption in March 2026: I-REC generation must lie within Sept 2025 – June 2026.
        let candidates = vec![
            certificate(
                "too-old",
                None,
                ("2025-08-01 00:00", "2025-09-01 00:00"),
                9_000,
            ),
            certificate(
                "too-new",
                None,
                ("2026-06-15 00:00", "2026-07-15 00:00"),
                9_000,
            ),
        ];
        let needs = [need("a", ("2026-03-01 00:00", "2026-04-01 00:00"), 100)];
        assert!(match_annual(&needs, candidates.clone(), &VintageRules::default()).is_empty());
        let lenient = VintageRules::default().with(
            Scheme::Irec,
            VintageWindow {
                months_before: 12,
                months_after: 3,
            },
        );
        assert_eq!(
            taken(&match_annual(&needs, candidates, &lenient)),
            vec![("a", "too-old", 100)]
        );
    }

    #[test]
    fn vintage_rules_read_from_configuration() {
        let rules = VintageRules::parse("go=18/0, rec = 6/6").unwrap();
        assert_eq!(rules.window(Scheme::Go).months_before, 18);
        assert_eq!(rules.window(Scheme::Rec).months_after, 6);
        assert_eq!(rules.window(Scheme::Irec), Scheme::Irec.default_vintage());
        assert!(VintageRules::parse("solar=1/1").is_err());
        assert!(VintageRules::parse("go=12").is_err());
    }

    #[test]
    fn hourly_matching_pairs_the_same_hour_only() {
        let hour = |id: &str, start: &str, end: &str, wh| Candidate {
            scheme: Scheme::Hourly,
            ..certificate(id, None, (start, end), wh)
        };
        let candidates = vec![
            hour("h10", "2026-03-01 10:00", "2026-03-01 11:00", 300),
            hour("h11", "2026-03-01 11:00", "2026-03-01 12:00", 5_000),
            // A two-hour certificate is not an hourly one.
            hour("h10-12", "2026-03-01 10:00", "2026-03-01 12:00", 5_000),
        ];
        let needs = [
            HourNeed {
                order_id: "a",
                hour_start: at("2026-03-01 10:00"),
                wh: 1_000,
            },
            HourNeed {
                order_id: "a",
                hour_start: at("2026-03-01 11:00"),
                wh: 1_000,
            },
        ];
        let grants = HourlyMatcher::new(candidates).grant(&needs);
        // Hour 10 is covered 300 of 1,000 Wh; hour 11's surplus does not roll back to it.
        assert_eq!(taken(&grants), vec![("a", "h10", 300), ("a", "h11", 1_000)]);
    }

    #[test]
    fn hourly_needs_granted_in_several_calls_get_what_one_call_gives() {
        let hour = |id: &str, expires: &str, wh| Candidate {
            scheme: Scheme::Hourly,
            ..certificate(
                id,
                Some(expires),
                ("2026-03-01 10:00", "2026-03-01 11:00"),
                wh,
            )
        };
        let candidates = vec![
            hour("late", "2027-06-01 00:00", 2_000),
            hour("soon", "2027-01-01 00:00", 1_500),
        ];
        let needs: Vec<HourNeed> = ["a", "b", "c"]
            .iter()
            .map(|order| HourNeed {
                order_id: order,
                hour_start: at("2026-03-01 10:00"),
                wh: 1_000,
            })
            .collect();
        let at_once = HourlyMatcher::new(candidates.clone()).grant(&needs);
        let mut matcher = HourlyMatcher::new(candidates);
        let mut in_parts = matcher.grant(&needs[..1]);
        in_parts.extend(matcher.grant(&needs[1..]));
        assert_eq!(in_parts, at_once);
        assert_eq!(
            taken(&at_once),
            vec![
                ("a", "soon", 1_000),
                ("b", "soon", 500),
                ("b", "late", 500),
                ("c", "late", 1_000)
            ]
        );
    }
}
