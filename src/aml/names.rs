//! Name normalisation and similarity: the pure core of the screening matcher.
//!
//! Names are transliterated to Latin (Cyrillic, Greek, Chinese via `deunicode`), stripped of
//! diacritics, case and punctuation, and split into tokens. Honorifics are dropped; particles
//! (al, bin, de, van …) and company forms or generic words (LTD, CO, TRADING …) are kept as weak
//! tokens, so sharing only them never makes a match. Two names are compared by aligning their
//! tokens one to one (order does not matter) with Jaro-Winkler, initials and name prefixes.
//!
//! Scores are similarity ratios in [0, 1], not money, so they are floating point.

use serde::{Deserialize, Serialize};

/// What kind of subject a name belongs to; decides which words are weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Person,
    Entity,
    Vessel,
    Aircraft,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Person => "person",
            SubjectKind::Entity => "entity",
            SubjectKind::Vessel => "vessel",
            SubjectKind::Aircraft => "aircraft",
        }
    }

    pub fn parse(text: &str) -> Option<SubjectKind> {
        match text {
            "person" => Some(SubjectKind::Person),
            "entity" => Some(SubjectKind::Entity),
            "vessel" => Some(SubjectKind::Vessel),
            "aircraft" => Some(SubjectKind::Aircraft),
            _ => None,
        }
    }
}

/// Titles and honorifics: never part of the comparison.
const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mister",
    "madam",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "lord",
    "sheikh",
    "shaikh",
    "sheik",
    "haji",
    "hajji",
    "mullah",
    "maulana",
    "maulvi",
    "mawlawi",
    "qari",
    "imam",
    "general",
    "gen",
    "colonel",
    "col",
    "captain",
    "capt",
    "major",
    "lieutenant",
    "admiral",
    "brigadier",
    "commander",
    "president",
    "minister",
    "senator",
    "his",
    "her",
    "excellency",
    "hon",
    "honourable",
    "honorable",
    "jr",
    "sr",
];

/// Name particles: kept, but weigh little (`al-Assad` and `Assad` are close; `al` alone is not).
const PARTICLES: &[&str] = &[
    "al", "el", "ul", "bin", "ibn", "bint", "ben", "abu", "abd", "de", "da", "del", "della", "di",
    "do", "du", "dos", "das", "la", "le", "van", "von", "der", "den", "ter", "ten", "y", "e",
    "mac", "st",
];

/// Legal forms and generic business words: shared by thousands of unrelated companies.
const WEAK_ENTITY_WORDS: &[&str] = &[
    "ltd",
    "limited",
    "llc",
    "lc",
    "co",
    "company",
    "companies",
    "corp",
    "corporation",
    "inc",
    "incorporated",
    "plc",
    "ag",
    "gmbh",
    "mbh",
    "kg",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "sl",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "asa",
    "aps",
    "jsc",
    "ojsc",
    "cjsc",
    "pjsc",
    "oao",
    "ooo",
    "zao",
    "pao",
    "ao",
    "tov",
    "llp",
    "lp",
    "kft",
    "sro",
    "doo",
    "pte",
    "pty",
    "bhd",
    "sdn",
    "tbk",
    "pt",
    "cv",
    "fze",
    "fzco",
    "fzc",
    "fzllc",
    "dmcc",
    "joint",
    "stock",
    "public",
    "private",
    "open",
    "closed",
    "group",
    "holding",
    "holdings",
    "trading",
    "trade",
    "international",
    "intl",
    "industries",
    "industry",
    "industrial",
    "enterprise",
    "enterprises",
    "partners",
    "services",
    "service",
    "global",
    "general",
    "import",
    "export",
    "the",
    "and",
    "of",
    "for",
    "und",
    "et",
    "aktiengesellschaft",
    "gesellschaft",
    "societe",
    "anonyme",
    "sociedad",
    "anonima",
    "compania",
    "obshchestvo",
    "s",
    "e",
    "i",
    "del",
    "de",
    "la",
    "le",
    "des",
    "du",
    "sp",
    "z",
    "o",
    "oo",
    "ogranichennoi",
    "otvetstvennostiu",
    "aktsionernoe",
    "limitada",
    "ltda",
    "liability",
    "beschrankter",
    "haftung",
    "mit",
];

/// Token weights: a strong token counts fully, a particle or weak word barely.
const STRONG: f64 = 1.0;
const PARTICLE: f64 = 0.25;
const WEAK: f64 = 0.1;
/// Applied once per strong token of the shorter name that matched nothing.
const MISSING_TOKEN_FACTOR: f64 = 0.9;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Token {
    pub text: String,
    pub weight: f64,
    /// Letters, and for tokens long enough to have one, the consonant skeleton: computed once,
    /// because a query compares its tokens with thousands of listed ones.
    #[serde(skip)]
    length: usize,
    #[serde(skip)]
    skeleton: Option<String>,
}

impl Token {
    pub fn new(text: String, weight: f64) -> Token {
        let length = text.chars().count();
        Token {
            skeleton: (length >= SKELETON_MIN_LENGTH).then(|| skeleton(&text)),
            text,
            weight,
            length,
        }
    }

    pub fn is_strong(&self) -> bool {
        self.weight >= STRONG
    }

    /// A single letter: an initial, which matches any token it begins.
    pub fn is_initial(&self) -> bool {
        self.length == 1
    }

    /// The skeleton, for tokens of at least five letters (shorter ones have too few consonants
    /// for it to tell names apart).
    pub fn skeleton(&self) -> Option<&str> {
        self.skeleton.as_deref()
    }
}

const SKELETON_MIN_LENGTH: usize = 5;

/// The most a name can score with only one strong token matched when either name has more.
pub const ONE_TOKEN_CAP: f64 = 0.6;

/// A name prepared for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreparedName {
    pub kind: SubjectKind,
    pub tokens: Vec<Token>,
    /// All tokens joined: catches joined or split words (`Co-operation`, `Cooperation`).
    pub compact: String,
    /// For a name written wholly in another script: its own tokens (one per character in
    /// Chinese, Japanese and Korean). Two such names are compared in their script, because
    /// transliteration merges distinct names (高市 and 高石 both read `gao shi`).
    pub script: Option<Vec<Token>>,
}

/// Latin, lower case, no diacritics; `'` and `.` join (`O'Brien`, `L.L.C.`), other punctuation
/// separates, `&` reads as "and".
pub fn normalise(name: &str) -> String {
    let latin = deunicode::deunicode(name);
    let mut out = String::with_capacity(latin.len());
    let mut chars = latin.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '\'' | '`' | '.' => {
                // `Deutsche Bank's` is `Deutsche Bank`.
                if c == '\'' && matches!(chars.peek(), Some('s' | 'S')) {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead
                        .peek()
                        .is_none_or(|next| !next.is_ascii_alphanumeric())
                    {
                        chars.next();
                    }
                }
            }
            '&' => out.push_str(" and "),
            _ => out.push(' '),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn prepare(name: &str, kind: SubjectKind) -> PreparedName {
    let normalised = normalise(name);
    let tokens: Vec<Token> = normalised
        .split(' ')
        .filter(|text| !text.is_empty() && !HONORIFICS.contains(text))
        .map(|text| Token::new(text.to_string(), token_weight(text, kind)))
        .collect();
    PreparedName {
        kind,
        compact: compact(&tokens),
        tokens,
        script: script_tokens(name),
    }
}

fn compact(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter(|token| token.weight > WEAK)
        .map(|token| token.text.as_str())
        .collect()
}

fn script_tokens(name: &str) -> Option<Vec<Token>> {
    if name.chars().any(|c| c.is_ascii_alphanumeric()) || !name.chars().any(char::is_alphabetic) {
        return None;
    }
    let mut tokens = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, tokens: &mut Vec<Token>| {
        if !current.is_empty() {
            tokens.push(Token::new(std::mem::take(current), STRONG));
        }
    };
    for c in name.chars().flat_map(char::to_lowercase) {
        if is_syllabic(c) {
            flush(&mut current, &mut tokens);
            current.push(c);
            flush(&mut current, &mut tokens);
        } else if c.is_alphanumeric() || is_joining_mark(c) {
            current.push(c);
        } else {
            flush(&mut current, &mut tokens);
        }
    }
    flush(&mut current, &mut tokens);
    Some(tokens)
}

/// Han, kana and Hangul: one character is one syllable of a name.
fn is_syllabic(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF)
}

/// Combining marks and zero-width joiners belong to the letter before them (Bengali, Persian).
fn is_joining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x0900..=0x0DFF | 0x200C | 0x200D | 0x064B..=0x065F)
}

fn token_weight(text: &str, kind: SubjectKind) -> f64 {
    match kind {
        // Series and fund numbers tell related entities apart, but weakly.
        _ if is_number(text) => PARTICLE,
        SubjectKind::Person if PARTICLES.contains(&text) => PARTICLE,
        SubjectKind::Person => STRONG,
        _ if WEAK_ENTITY_WORDS.contains(&text) => WEAK,
        _ if PARTICLES.contains(&text) => PARTICLE,
        _ => STRONG,
    }
}

/// How one token of the query lined up with one of the candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenMatch {
    pub query: String,
    pub candidate: String,
    pub score: f64,
}

/// The comparison of two names, with what explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameComparison {
    pub score: f64,
    pub tokens: Vec<TokenMatch>,
    /// Strong tokens of either name that found no counterpart.
    pub unmatched: Vec<String>,
}

/// Similarity of two tokens: exact, initial, the same
/// consonant skeleton (transliteration variants: Husayn, Hussein), or Jaro-Winkler when the
/// spelling differs by few edits for its length (typos, not different surnames that share a
/// beginning). Numbers only match exactly.
pub fn token_similarity(a: &Token, b: &Token) -> f64 {
    if a.text == b.text {
        return 1.0;
    }
    if is_number(&a.text) || is_number(&b.text) {
        return 0.0;
    }
    let (short, long) = if a.length <= b.length { (a, b) } else { (b, a) };
    if short.length == 1 {
        return if long.text.starts_with(&short.text) {
            0.8
        } else {
            0.0
        };
    }
    if short.skeleton.is_some() && a.skeleton == b.skeleton {
        return strsim::jaro_winkler(&a.text, &b.text).max(0.9);
    }
    let allowed_edits = if long.length >= 3 {
        (long.length / 4).max(1)
    } else {
        0
    };
    // Cheap first: the edit distance is at least the difference in length.
    if long.length - short.length > allowed_edits {
        return 0.0;
    }
    let similarity = strsim::jaro_winkler(&a.text, &b.text);
    if similarity < 0.8 || strsim::osa_distance(&a.text, &b.text) > allowed_edits {
        0.0
    } else {
        similarity
    }
}

/// The first letter, then consonants without repeats, with common transliteration pairs folded.
pub fn skeleton(token: &str) -> String {
    let folded = token
        .replace("ph", "f")
        .replace("kh", "k")
        .replace("ck", "k")
        .replace("dh", "d")
        .replace("th", "t")
        .replace('q', "k")
        .replace('z', "s")
        .replace('w', "v");
    let mut out = String::new();
    for (index, c) in folded.chars().enumerate() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h');
        if (index == 0 || !vowel) && !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Digits, or a roman numeral of two or more letters (`II`, `XIV`; a lone `V` is an initial).
fn is_number(token: &str) -> bool {
    token.bytes().any(|byte| byte.is_ascii_digit())
        || (token.len() >= 2
            && token.len() <= 5
            && token.bytes().all(|byte| b"ivxl".contains(&byte)))
}

/// Compares two prepared names, in either order of tokens.
pub fn compare(query: &PreparedName, candidate: &PreparedName) -> NameComparison {
    if let (Some(query_script), Some(candidate_script)) = (&query.script, &candidate.script) {
        let in_script = |tokens: &Vec<Token>| PreparedName {
            kind: query.kind,
            compact: compact(tokens),
            tokens: tokens.clone(),
            script: None,
        };
        return compare(&in_script(query_script), &in_script(candidate_script));
    }
    let mut alignment = Alignment::default();
    alignment.align(query, candidate, &mut |i, j| {
        token_similarity(&query.tokens[i], &candidate.tokens[j])
    });
    explain(query, candidate, &alignment)
}

/// Whether two names must be compared in their own script (see [`PreparedName::script`]).
pub fn compared_in_script(query: &PreparedName, candidate: &PreparedName) -> bool {
    query.script.is_some() && candidate.script.is_some()
}

/// How the tokens of two names line up, and the score: everything but the explanation.
#[derive(Debug, Default)]
pub struct Alignment {
    pub score: f64,
    /// For each query token, the candidate token it matched and how well.
    query_used: Vec<Option<(usize, f64)>>,
    /// For each candidate token, how well it matched (0 when it did not).
    candidate_score: Vec<f64>,
    /// Scratch space, kept so that aligning thousands of candidates allocates nothing.
    pairs: Vec<(f64, usize, usize)>,
}

impl Alignment {
    /// Aligns two names' Latin tokens, each token used once, best pairs first, reusing this
    /// alignment's buffers; returns the score. `similarity(i, j)` is [`token_similarity`] of
    /// query token `i` and candidate token `j` (a caller may cache it).
    pub fn align(
        &mut self,
        query: &PreparedName,
        candidate: &PreparedName,
        similarity: &mut dyn FnMut(usize, usize) -> f64,
    ) -> f64 {
        let pairs = &mut self.pairs;
        pairs.clear();
        for i in 0..query.tokens.len() {
            for j in 0..candidate.tokens.len() {
                let similarity = similarity(i, j);
                if similarity > 0.0 {
                    pairs.push((similarity, i, j));
                }
            }
        }
        pairs.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let (query_used, candidate_score) = (&mut self.query_used, &mut self.candidate_score);
        query_used.clear();
        query_used.resize(query.tokens.len(), None);
        candidate_score.clear();
        candidate_score.resize(candidate.tokens.len(), 0.0);
        // Only pairs above zero were kept, so a candidate token is taken when its score is.
        for &(similarity, i, j) in pairs.iter() {
            if query_used[i].is_none() && candidate_score[j] == 0.0 {
                query_used[i] = Some((j, similarity));
                candidate_score[j] = similarity;
            }
        }
        let coverage = |tokens: &[Token], matched: &dyn Fn(usize) -> f64| {
            let total: f64 = tokens.iter().map(|token| token.weight).sum();
            let covered: f64 = tokens
                .iter()
                .enumerate()
                .map(|(index, token)| token.weight * matched(index))
                .sum();
            if total > 0.0 {
                covered / total
            } else {
                0.0
            }
        };
        let query_coverage = coverage(&query.tokens, &|i| query_used[i].map_or(0.0, |(_, s)| s));
        let candidate_coverage = coverage(&candidate.tokens, &|j| candidate_score[j]);
        let strong = |tokens: &[Token]| tokens.iter().filter(|token| token.is_strong()).count();
        let matched_strong = query_used
            .iter()
            .zip(&query.tokens)
            .filter(|(used, token)| used.is_some() && token.is_strong())
            .count();
        let query_is_shorter = strong(&query.tokens) <= strong(&candidate.tokens);
        let (shorter, longer) = if query_is_shorter {
            (query_coverage, candidate_coverage)
        } else {
            (candidate_coverage, query_coverage)
        };
        // A name part of the shorter name with no counterpart at all usually means another
        // person or company with otherwise the same name.
        let missing_in_shorter = if query_is_shorter {
            query_used
                .iter()
                .zip(&query.tokens)
                .filter(|(used, token)| token.is_strong() && used.is_none())
                .count()
        } else {
            candidate_score
                .iter()
                .zip(&candidate.tokens)
                .filter(|(score, token)| token.is_strong() && **score == 0.0)
                .count()
        };
        // Extra tokens in the longer name: a person's middle names matter little, a company's
        // extra words (`Santander Mexico`, `Solutions II`) usually name another company.
        let extra_weight = match query.kind {
            SubjectKind::Person => 0.15,
            _ => 0.4,
        };
        let mut score = shorter
            * (1.0 - extra_weight + extra_weight * longer)
            * MISSING_TOKEN_FACTOR.powi(i32::try_from(missing_in_shorter).unwrap_or(i32::MAX));
        // One shared strong token is not enough when either name has more.
        if matched_strong < 2 && strong(&query.tokens).max(strong(&candidate.tokens)) >= 2 {
            score = score.min(ONE_TOKEN_CAP);
        }
        // The same letters split differently (`Co-operation`, `Cooperation`) are the same name.
        if !query.compact.is_empty() && query.compact == candidate.compact {
            score = 1.0;
        }
        self.score = round3(score);
        self.score
    }
}

/// The explanation of an alignment: token pairs with their scores, and unmatched tokens.
pub fn explain(
    query: &PreparedName,
    candidate: &PreparedName,
    alignment: &Alignment,
) -> NameComparison {
    let mut tokens = Vec::new();
    let mut unmatched = Vec::new();
    for (i, used) in alignment.query_used.iter().enumerate() {
        match used {
            Some((j, similarity)) => tokens.push(TokenMatch {
                query: query.tokens[i].text.clone(),
                candidate: candidate.tokens[*j].text.clone(),
                score: round3(*similarity),
            }),
            None if query.tokens[i].is_strong() => unmatched.push(query.tokens[i].text.clone()),
            None => {}
        }
    }
    for (score, token) in alignment.candidate_score.iter().zip(&candidate.tokens) {
        if *score == 0.0 && token.is_strong() {
            unmatched.push(token.text.clone());
        }
    }
    // The same letters split differently: nothing is really missing.
    if !query.compact.is_empty() && query.compact == candidate.compact {
        unmatched.clear();
    }
    NameComparison {
        score: alignment.score,
        tokens,
        unmatched,
    }
}

/// Scores are reported to three decimals, so explanations stay readable and stable.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(a: &str, b: &str, kind: SubjectKind) -> f64 {
        compare(&prepare(a, kind), &prepare(b, kind)).score
    }

    #[test]
    fn normalises_scripts_case_and_punctuation() {
        assert_eq!(
            normalise("François  O'Brien-Müller"),
            "francois obrien muller"
        );
        assert_eq!(
            normalise("Goldman Sachs & Co. L.L.C."),
            "goldman sachs and co llc"
        );
        assert_eq!(normalise("Deutsche Bank's AG"), "deutsche bank ag");
        assert_eq!(normalise("Владимир Путин"), "vladimir putin");
        assert!(normalise("张伟").starts_with("zhang wei"));
    }

    #[test]
    fn token_order_and_honorifics_do_not_matter() {
        assert_eq!(
            score("Dr. Vladimir PUTIN", "putin, vladimir", SubjectKind::Person),
            1.0
        );
    }

    #[test]
    fn sharing_only_weak_words_is_not_a_match() {
        assert!(
            score(
                "Golden Star Trading Co",
                "Blue Ocean Trading Co",
                SubjectKind::Entity
            ) < 0.5
        );
    }
}
