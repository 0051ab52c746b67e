//! The screening index: every name, alias, identity document and crypto address of the active
//! list versions, with posting lists so a query scores only the names that share a token (or a
//! token's consonant skeleton) with it, never the whole list.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::lists::{ListEntry, ListSource};
use super::names::{
    self, compare, compared_in_script, explain, prepare, round3, Alignment, NameComparison,
    PreparedName, SubjectKind, Token,
};

/// An active list entry as loaded, with the version that identifies it.
#[derive(Debug, Clone)]
pub struct LoadedEntry {
    pub source: ListSource,
    pub list_version: i64,
    pub content_hash: String,
    pub entry: ListEntry,
}

struct IndexedName {
    entry: u32,
    name: String,
    weak: bool,
    prepared: PreparedName,
    /// The vocabulary number of each of `prepared.tokens`.
    token_numbers: Vec<u32>,
    /// Strong tokens that are initials: each may match any query token it begins.
    initials: u32,
}

#[derive(Default)]
pub struct ScreeningIndex {
    entries: Vec<LoadedEntry>,
    names: Vec<IndexedName>,
    /// Key to (name number, position of the token in the name).
    postings: HashMap<String, Vec<(u32, u8)>>,
    /// Every distinct token of the listed names, so a query compares each of its tokens with
    /// each listed token once, however many names share it.
    vocabulary: HashMap<String, u32>,
    crypto_addresses: HashMap<String, Vec<u32>>,
    documents: HashMap<String, Vec<u32>>,
}

/// What a hit matched on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MatchedOn {
    Name {
        name: String,
        /// `primary`, `alias` or `weak_alias`.
        alias: &'static str,
        #[serde(flatten)]
        comparison: NameComparison,
    },
    CryptoAddress {
        /// Every currency the entry lists this address under (ETH and ETC share addresses).
        currencies: Vec<String>,
        address: String,
    },
    Document {
        kind: String,
        number: String,
    },
}

/// A qualifier that moved the score, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Qualifier {
    pub factor: &'static str,
    pub effect: f64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub source: ListSource,
    pub entry_id: String,
    /// The entry's content hash: the "entry version" a dismissal is remembered for.
    pub entry_version: String,
    pub list_version: i64,
    pub kind: SubjectKind,
    pub primary_name: String,
    pub programs: Vec<String>,
    pub score: f64,
    pub matched_on: MatchedOn,
    pub qualifiers: Vec<Qualifier>,
}

/// A person or entity to screen.
#[derive(Debug, Clone, Default)]
pub struct SubjectQuery {
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    /// ISO 3166-1 alpha-2: nationality of a person, country of an entity.
    pub country: Option<String>,
    pub document_number: Option<String>,
}

/// A weak alias is by definition a poor identifier: its name score counts less.
const WEAK_ALIAS_FACTOR: f64 = 0.9;
const BIRTH_DATE_AGREES: f64 = 0.05;
const BIRTH_DATE_DIFFERS: f64 = -0.2;
const COUNTRY_AGREES: f64 = 0.03;
const COUNTRY_DIFFERS: f64 = -0.1;

fn skeleton_key(token: &Token) -> Option<String> {
    token.skeleton().map(|skeleton| format!("~{skeleton}"))
}

/// The token without one of its letters, for each letter: two tokens one edit apart (a letter
/// changed, added, dropped or two swapped) share one of these or one is the other.
fn deletions(token: &str) -> Vec<String> {
    if token.chars().count() < 3 {
        return Vec::new();
    }
    token
        .char_indices()
        .map(|(at, c)| format!("{}{}", &token[..at], &token[at + c.len_utf8()..]))
        .collect()
}

/// The keys a listed token is found under: itself, its skeleton and its one-letter deletions.
fn listed_keys(token: &Token) -> Vec<String> {
    let mut keys = vec![token.text.clone()];
    keys.extend(skeleton_key(token));
    keys.extend(deletions(&token.text).into_iter().map(|d| format!("-{d}")));
    keys
}

/// The keys a query token looks up: listed tokens equal to it, with its skeleton, or one edit
/// away from it. An initial looks up only itself (it matches by prefix, when aligned).
fn query_keys(token: &Token) -> Vec<String> {
    let mut keys = vec![token.text.clone()];
    if token.is_initial() {
        return keys;
    }
    keys.extend(skeleton_key(token));
    keys.push(format!("-{}", token.text));
    for deletion in deletions(&token.text) {
        keys.push(format!("-{deletion}"));
        keys.push(deletion);
    }
    keys
}

/// The most the qualifiers can add to a name's score.
const MAX_QUALIFIER_GAIN: f64 = BIRTH_DATE_AGREES + COUNTRY_AGREES;

/// Crypto addresses compare exactly, except where the format is case-insensitive (hex, bech32).
pub fn normalise_address(address: &str) -> String {
    let address = address.trim();
    let lower = address.to_ascii_lowercase();
    if lower.starts_with("0x")
        || ["bc1", "tb1", "ltc1", "bitcoincash:"]
            .iter()
            .any(|prefix| lower.starts_with(prefix))
    {
        lower
    } else {
        address.to_string()
    }
}

/// Document numbers compare on letters and digits only, in upper case.
pub fn normalise_document(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl ScreeningIndex {
    pub fn build(entries: Vec<LoadedEntry>) -> ScreeningIndex {
        let mut index = ScreeningIndex::default();
        for (position, loaded) in entries.iter().enumerate() {
            let entry_number = u32::try_from(position).unwrap_or(u32::MAX);
            let entry = &loaded.entry;
            let all_names = entry
                .names
                .iter()
                .map(|name| (name, false))
                .chain(entry.weak_names.iter().map(|name| (name, true)));
            let mut seen = HashSet::new();
            for (name, weak) in all_names {
                let prepared = prepare(name, entry.kind);
                if prepared.tokens.is_empty() || !seen.insert(prepared.compact.clone()) {
                    continue;
                }
                let name_number = u32::try_from(index.names.len()).unwrap_or(u32::MAX);
                let mut keys: HashSet<(String, u8)> = HashSet::new();
                for (position, token) in prepared.tokens.iter().enumerate() {
                    if token.is_strong() {
                        let position = u8::try_from(position).unwrap_or(u8::MAX);
                        keys.extend(listed_keys(token).into_iter().map(|key| (key, position)));
                    }
                }
                for token in prepared.script.iter().flatten() {
                    keys.insert((token.text.clone(), u8::MAX));
                    keys.extend(skeleton_key(token).map(|key| (key, u8::MAX)));
                }
                if keys.is_empty() {
                    keys.extend(prepared.tokens.iter().enumerate().map(|(position, token)| {
                        (
                            token.text.clone(),
                            u8::try_from(position).unwrap_or(u8::MAX),
                        )
                    }));
                }
                for (key, position) in keys {
                    index
                        .postings
                        .entry(key)
                        .or_default()
                        .push((name_number, position));
                }
                let token_numbers = prepared
                    .tokens
                    .iter()
                    .map(|token| {
                        let next = u32::try_from(index.vocabulary.len()).unwrap_or(u32::MAX);
                        *index.vocabulary.entry(token.text.clone()).or_insert(next)
                    })
                    .collect();
                let initials = prepared
                    .tokens
                    .iter()
                    .filter(|token| token.is_strong() && token.is_initial())
                    .count() as u32;
                index.names.push(IndexedName {
                    initials,
                    entry: entry_number,
                    name: name.clone(),
                    weak,
                    prepared,
                    token_numbers,
                });
            }
            for address in &entry.crypto_addresses {
                index
                    .crypto_addresses
                    .entry(normalise_address(&address.address))
                    .or_default()
                    .push(entry_number);
            }
            for document in &entry.documents {
                let number = normalise_document(&document.number);
                if number.len() >= 5 {
                    index
                        .documents
                        .entry(number)
                        .or_default()
                        .push(entry_number);
                }
            }
        }
        index.entries = entries;
        index
    }

    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Screens a person (or, with `kind` Entity, a company, vessel or aircraft): hits at or above
    /// `threshold`, best first, one per list entry.
    pub fn screen(&self, query: &SubjectQuery, kind: SubjectKind, threshold: f64) -> Vec<Hit> {
        let prepared = prepare(&query.name, kind);
        // Candidates: names sharing a token, a token's skeleton or a token one edit away.
        // For each name: which query tokens reached it, and which of its tokens were reached.
        let mut reached = vec![(0u64, 0u64); self.names.len()];
        let mut candidates = Vec::new();
        let mut reach = |keys: Vec<String>, bit: u64| {
            for key in keys {
                for &(name_number, position) in self.postings.get(&key).into_iter().flatten() {
                    if let Some((query_tokens, listed_tokens)) =
                        reached.get_mut(name_number as usize)
                    {
                        if *query_tokens == 0 {
                            candidates.push(name_number);
                        }
                        *query_tokens |= bit;
                        *listed_tokens |= 1 << position.min(63);
                    }
                }
            }
        };
        for (position, token) in prepared.tokens.iter().enumerate() {
            reach(query_keys(token), 1 << position.min(62));
        }
        for token in prepared.script.iter().flatten() {
            reach(
                std::iter::once(token.text.clone())
                    .chain(skeleton_key(token))
                    .collect(),
                1 << 63,
            );
        }
        // Above the cap on one-token matches, a name must be able to match two strong tokens of
        // a query that has them: by a shared key, or through an initial on either side.
        let strong_tokens = prepared.tokens.iter().filter(|t| t.is_strong()).count();
        let needs_two = prepared.script.is_none()
            && strong_tokens >= 2
            && threshold - MAX_QUALIFIER_GAIN > names::ONE_TOKEN_CAP;
        let strong_mask: u64 = prepared
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, token)| token.is_strong() && !token.is_initial())
            .fold(0, |mask, (position, _)| mask | 1 << position.min(62));
        let query_initials = prepared
            .tokens
            .iter()
            .filter(|token| token.is_strong() && token.is_initial())
            .count() as u32;
        let mut best: HashMap<u32, Hit> = HashMap::new();
        // Token similarities by query token and vocabulary number, computed once per query.
        let vocabulary = self.vocabulary.len();
        let mut similarities = vec![f64::NAN; prepared.tokens.len() * vocabulary];
        let mut alignment = Alignment::default();
        for name_number in candidates {
            let Some(indexed) = self.names.get(name_number as usize) else {
                continue;
            };
            // Each token matches at most one: no more pairs than reached tokens on either side.
            let (query_tokens, listed_tokens) = reached[name_number as usize];
            let matchable = (query_tokens & strong_mask)
                .count_ones()
                .min(listed_tokens.count_ones())
                + query_initials
                + indexed.initials;
            if needs_two && matchable < 2 {
                continue;
            }
            let loaded = &self.entries[indexed.entry as usize];
            if !kinds_compatible(kind, loaded.entry.kind) {
                continue;
            }
            let in_script = compared_in_script(&prepared, &indexed.prepared)
                .then(|| compare(&prepared, &indexed.prepared));
            let mut score = if let Some(comparison) = &in_script {
                comparison.score
            } else {
                alignment.align(&prepared, &indexed.prepared, &mut |i, j| {
                    let slot = i * vocabulary + indexed.token_numbers[j] as usize;
                    if similarities[slot].is_nan() {
                        similarities[slot] = names::token_similarity(
                            &prepared.tokens[i],
                            &indexed.prepared.tokens[j],
                        );
                    }
                    similarities[slot]
                })
            };
            let mut qualifiers = Vec::new();
            if indexed.weak {
                qualifiers.push(Qualifier {
                    factor: "weak_alias",
                    effect: round3(score * WEAK_ALIAS_FACTOR - score),
                    detail: "matched a low-quality alias".into(),
                });
                score *= WEAK_ALIAS_FACTOR;
            }
            // Qualifiers only matter for names close enough to be worth explaining.
            if score < threshold - 0.25 {
                continue;
            }
            qualifiers.extend(birth_date_qualifier(query, &loaded.entry));
            qualifiers.extend(country_qualifier(query, &loaded.entry));
            score += qualifiers
                .iter()
                .filter(|q| q.factor != "weak_alias")
                .map(|q| q.effect)
                .sum::<f64>();
            let score = round3(score.clamp(0.0, 1.0));
            if score < threshold {
                continue;
            }
            let comparison =
                in_script.unwrap_or_else(|| explain(&prepared, &indexed.prepared, &alignment));
            let alias = if indexed.weak {
                "weak_alias"
            } else if loaded.entry.primary_name() == indexed.name {
                "primary"
            } else {
                "alias"
            };
            let hit = self.hit(
                indexed.entry,
                score,
                MatchedOn::Name {
                    name: indexed.name.clone(),
                    alias,
                    comparison,
                },
                qualifiers,
            );
            match best.get(&indexed.entry) {
                Some(existing) if existing.score >= hit.score => {}
                _ => {
                    best.insert(indexed.entry, hit);
                }
            }
        }
        if let Some(number) = query.document_number.as_deref() {
            for entry_number in self
                .documents
                .get(&normalise_document(number))
                .into_iter()
                .flatten()
            {
                let document = self.entries[*entry_number as usize]
                    .entry
                    .documents
                    .iter()
                    .find(|d| normalise_document(&d.number) == normalise_document(number));
                if let Some(document) = document {
                    let hit = self.hit(
                        *entry_number,
                        1.0,
                        MatchedOn::Document {
                            kind: document.kind.clone(),
                            number: document.number.clone(),
                        },
                        Vec::new(),
                    );
                    best.insert(*entry_number, hit);
                }
            }
        }
        sorted(best.into_values().collect())
    }

    /// Exact identifier match: a crypto address on a list scores 1.0, anything else nothing.
    pub fn screen_address(&self, address: &str) -> Vec<Hit> {
        let wanted = normalise_address(address);
        let mut entry_numbers: Vec<u32> = self
            .crypto_addresses
            .get(&wanted)
            .cloned()
            .unwrap_or_default();
        entry_numbers.sort_unstable();
        entry_numbers.dedup();
        let mut hits = Vec::new();
        for entry_number in entry_numbers {
            let entry = &self.entries[entry_number as usize].entry;
            let listed: Vec<_> = entry
                .crypto_addresses
                .iter()
                .filter(|listed| normalise_address(&listed.address) == wanted)
                .collect();
            if let Some(first) = listed.first() {
                hits.push(
                    self.hit(
                        entry_number,
                        1.0,
                        MatchedOn::CryptoAddress {
                            currencies: listed
                                .iter()
                                .map(|l| l.currency.clone())
                                .collect::<std::collections::BTreeSet<_>>()
                                .into_iter()
                                .collect(),
                            address: first.address.clone(),
                        },
                        Vec::new(),
                    ),
                );
            }
        }
        sorted(hits)
    }

    fn hit(
        &self,
        entry_number: u32,
        score: f64,
        matched_on: MatchedOn,
        qualifiers: Vec<Qualifier>,
    ) -> Hit {
        let loaded = &self.entries[entry_number as usize];
        Hit {
            source: loaded.source,
            entry_id: loaded.entry.entry_id.clone(),
            entry_version: loaded.content_hash.clone(),
            list_version: loaded.list_version,
            kind: loaded.entry.kind,
            primary_name: loaded.entry.primary_name().to_string(),
            programs: loaded.entry.programs.clone(),
            score,
            matched_on,
            qualifiers,
        }
    }
}

fn sorted(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.entry_id.cmp(&b.entry_id))
    });
    hits
}

/// A person is screened against persons; a company against entities, vessels and aircraft.
fn kinds_compatible(query: SubjectKind, listed: SubjectKind) -> bool {
    match query {
        SubjectKind::Person => listed == SubjectKind::Person,
        _ => listed != SubjectKind::Person,
    }
}

fn birth_date_qualifier(query: &SubjectQuery, entry: &ListEntry) -> Option<Qualifier> {
    let date = query.date_of_birth?;
    if entry.birth_dates.is_empty() {
        return None;
    }
    Some(
        if entry
            .birth_dates
            .iter()
            .any(|known| known.agrees_with(date))
        {
            Qualifier {
                factor: "date_of_birth",
                effect: BIRTH_DATE_AGREES,
                detail: format!("{date} agrees with a listed date of birth"),
            }
        } else {
            Qualifier {
                factor: "date_of_birth",
                effect: BIRTH_DATE_DIFFERS,
                detail: format!("{date} differs from every listed date of birth"),
            }
        },
    )
}

fn country_qualifier(query: &SubjectQuery, entry: &ListEntry) -> Option<Qualifier> {
    let code = query.country.as_deref()?;
    let listed: Vec<&str> = entry
        .nationalities
        .iter()
        .filter_map(|name| crate::jurisdiction::country_code(name))
        .collect();
    if listed.is_empty() {
        return None;
    }
    Some(if listed.contains(&code) {
        Qualifier {
            factor: "country",
            effect: COUNTRY_AGREES,
            detail: format!("{code} is a listed nationality or country"),
        }
    } else {
        Qualifier {
            factor: "country",
            effect: COUNTRY_DIFFERS,
            detail: format!("{code} is not among the listed {}", listed.join(", ")),
        }
    })
}
