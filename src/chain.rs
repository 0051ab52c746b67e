//! Hash chains shared by the audit log and the ledger: each row carries
//! `hash = SHA-256(prev_hash || canonical row)`, so any change, removal or reordering shows.

use crate::crypto::sha256_hex;

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

pub fn link_hash(prev_hash: &str, canonical: &str) -> String {
    let mut bytes = Vec::with_capacity(prev_hash.len() + canonical.len());
    bytes.extend_from_slice(prev_hash.as_bytes());
    bytes.extend_from_slice(canonical.as_bytes());
    sha256_hex(&bytes)
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
