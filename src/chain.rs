//! Hash chains shared by the audit log and the ledger: each row carries
//! `hash = SHA-256(prev_hash || canonical row)`, so any change, removal or reordering shows.

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A row of a hash chain.
pub trait Chained {
    fn seq(&self) -> i64;
    fn prev_hash(&self) -> &str;
    fn hash(&self) -> &str;
    /// Every field but the hashes, in a fixed order and format.
    fn canonical(&self) -> String;

    fn compute_hash(&self) -> String {
        link_hash(self.prev_hash(), &self.canonical())
    }
}

/// The canonical form of a row not yet linked (its seq is 0) after the sequence number: a row
/// linked as entry N hashes `prev_hash` followed by `[N` and this, which lets the database link
/// it under the chain's lock (see `db::chain_link`). Every canonical form begins with the seq.
pub fn unlinked_tail(row: &impl Chained) -> String {
    debug_assert_eq!(row.seq(), 0, "the row is already linked");
    let canonical = row.canonical();
    canonical
        .strip_prefix("[0")
        .map(str::to_string)
        .unwrap_or(canonical)
}

pub fn link_hash(prev_hash: &str, canonical: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// Builds the canonical form of a row: a compact JSON array of its fields in a fixed order, with
/// times as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Written directly, since rows are hashed by the
/// million.
pub struct Canonical(String);

impl Default for Canonical {
    fn default() -> Self {
        Canonical(String::with_capacity(512))
    }
}

impl Canonical {
    fn separator(&mut self) {
        self.0.push(if self.0.is_empty() { '[' } else { ',' });
    }

    pub fn int(mut self, value: i64) -> Self {
        use std::fmt::Write;
        self.separator();
        let _ = write!(self.0, "{value}");
        self
    }

    pub fn text(mut self, value: &str) -> Self {
        self.separator();
        // JSON escapes only quotes, backslashes and control characters; most values have none.
        if value
            .bytes()
            .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
        {
            self.0.push('"');
            self.0.push_str(value);
            self.0.push('"');
        } else if let Ok(quoted) = serde_json::to_string(value) {
            // Serialising a &str into a String cannot fail.
            self.0.push_str(&quoted);
        }
        self
    }

    pub fn time(mut self, value: &chrono::NaiveDateTime) -> Self {
        use chrono::{Datelike, Timelike};
        use std::fmt::Write;
        self.separator();
        let _ = write!(
            self.0,
            "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"",
            value.year(),
            value.month(),
            value.day(),
            value.hour(),
            value.minute(),
            value.second(),
            value.nanosecond() / 1_000
        );
        self
    }

    fn null(mut self) -> Self {
        self.separator();
        self.0.push_str("null");
        self
    }

    pub fn opt_text(self, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    pub fn opt_int(self, value: Option<i64>) -> Self {
        match value {
            Some(value) => self.int(value),
            None => self.null(),
        }
    }

    pub fn opt_time(self, value: Option<&chrono::NaiveDateTime>) -> Self {
        match value {
            Some(value) => self.time(value),
            None => self.null(),
        }
    }

    pub fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('[');
        }
        self.0.push(']');
        self.0
    }
}

/// Why a chain does not verify, naming the first entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("{chain} entry {seq}: its content does not match its hash (altered)")]
    HashMismatch { chain: &'static str, seq: i64 },
    #[error("{chain} entry {seq}: prev_hash does not match the hash of entry {previous}")]
    LinkBroken {
        chain: &'static str,
        seq: i64,
        previous: i64,
    },
    #[error("{chain} entry {expected} is missing (next present is {found})")]
    Gap {
        chain: &'static str,
        expected: i64,
        found: i64,
    },
    #[error("the {chain} chain ends at entry {last} but its head records entry {head} (entries removed)")]
    Truncated {
        chain: &'static str,
        last: i64,
        head: i64,
    },
    #[error("the last {chain} entry's hash differs from the recorded chain head")]
    HeadMismatch { chain: &'static str },
}

/// Checks entries in sequence order, one at a time, so any number of rows can be streamed through.
pub struct ChainVerifier {
    chain: &'static str,
    previous_seq: i64,
    previous_hash: String,
}

impl ChainVerifier {
    pub fn new(chain: &'static str) -> Self {
        Self {
            chain,
            previous_seq: 0,
            previous_hash: GENESIS_HASH.to_string(),
        }
    }

    pub fn check(&mut self, entry: &impl Chained) -> Result<(), ChainBreak> {
        let chain = self.chain;
        let expected = self.previous_seq + 1;
        if entry.seq() != expected {
            return Err(ChainBreak::Gap {
                chain,
                expected,
                found: entry.seq(),
            });
        }
        if entry.prev_hash() != self.previous_hash {
            return Err(ChainBreak::LinkBroken {
                chain,
                seq: entry.seq(),
                previous: self.previous_seq,
            });
        }
        if entry.compute_hash() != entry.hash() {
            return Err(ChainBreak::HashMismatch {
                chain,
                seq: entry.seq(),
            });
        }
        self.previous_seq = entry.seq();
        self.previous_hash = entry.hash().to_string();
        Ok(())
    }

    /// After the last entry: the chain must reach the recorded head.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        if self.previous_seq != head_seq {
            return Err(ChainBreak::Truncated {
                chain: self.chain,
                last: self.previous_seq,
                head: head_seq,
            });
        }
        if self.previous_hash != head_hash {
            return Err(ChainBreak::HeadMismatch { chain: self.chain });
        }
        Ok(self.previous_seq)
    }
}

/// Outcome of walking a whole chain.
#[derive(Debug)]
pub enum Verification {
    Intact {
        entries: i64,
        /// The hash of the last entry (the chain head): a backup's head must be found again
        /// after its restore.
        head: String,
    },
    Broken(ChainBreak),
    /// The chain holds, but state derived from it (e.g. a balance) does not match it.
    Inconsistent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Row {
        seq: i64,
        body: String,
        prev_hash: String,
        hash: String,
    }

    impl Chained for Row {
        fn seq(&self) -> i64 {
            self.seq
        }
        fn prev_hash(&self) -> &str {
            &self.prev_hash
        }
        fn hash(&self) -> &str {
            &self.hash
        }
        fn canonical(&self) -> String {
            format!("[{},{:?}]", self.seq, self.body)
        }
    }

    #[test]
    fn canonical_text_is_the_json_string() {
        for value in [
            "plain",
            "张伟 Müller",
            "quote \" here",
            "back\\slash",
            "tab\tnew\nline",
            "\u{1}",
            "",
        ] {
            let canonical = Canonical::default().text(value).finish();
            let expected = format!("[{}]", serde_json::to_string(value).unwrap());
            assert_eq!(canonical, expected, "{value:?}");
        }
    }

    fn chain(length: i64) -> Vec<Row> {
        let mut previous = GENESIS_HASH.to_string();
        (1..=length)
            .map(|seq| {
                let mut row = Row {
                    seq,
                    body: format!("row {seq}"),
                    prev_hash: previous.clone(),
                    hash: String::new(),
                };
                row.hash = row.compute_hash();
                previous = row.hash.clone();
                row
            })
            .collect()
    }

    fn verify(rows: &[Row]) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::new("test");
        for row in rows {
            verifier.check(row)?;
        }
        let last = chain(3).pop().unwrap();
        verifier.finish(last.seq, &last.hash)
    }

    #[test]
    fn canonical_rows_are_compact_json_arrays() {
        let at = chrono::DateTime::from_timestamp(1_767_200_400, 5_000)
            .unwrap()
            .naive_utc();
        let text = Canonical::default()
            .int(-7)
            .text("quote \" and \\ and é")
            .opt_text(None)
            .time(&at)
            .opt_int(Some(3))
            .finish();
        let expected = serde_json::json!([
            -7,
            "quote \" and \\ and é",
            null,
            "2025-12-31T17:00:00.000005Z",
            3
        ]);
        assert_eq!(text, expected.to_string());
        assert_eq!(Canonical::default().finish(), "[]");
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(3)), Ok(3));
    }

    #[test]
    fn any_alteration_names_the_entry() {
        let mut rows = chain(3);
        rows[1].body = "changed".into();
        assert_eq!(
            verify(&rows),
            Err(ChainBreak::HashMismatch {
                chain: "test",
                seq: 2
            })
        );

        let mut rows = chain(3);
        rows.remove(1);
        assert_eq!(
            verify(&rows),
            Err(ChainBreak::Gap {
                chain: "test",
                expected: 2,
                found: 3
            })
        );

        let mut rows = chain(3);
        rows.pop();
        assert_eq!(
            verify(&rows),
            Err(ChainBreak::Truncated {
                chain: "test",
                last: 2,
                head: 3
            })
        );
    }

    #[test]
    fn rehashing_an_altered_entry_breaks_the_next_link() {
        let mut rows = chain(3);
        rows[0].body = "forged".into();
        rows[0].hash = rows[0].compute_hash();
        assert_eq!(
            verify(&rows),
            Err(ChainBreak::LinkBroken {
                chain: "test",
                seq: 2,
                previous: 1
            })
        );
    }
}
