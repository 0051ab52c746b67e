//! PostgreSQL: one statement that links a row to its hash chain and inserts it. Every writer of a
//! chain waits for the head row's lock and holds it until its transaction commits, so each round
//! trip made while holding it lowers the rate of every writer; linking in the insert takes the
//! three (advance the head, insert the row, record its hash) down to one, and a ledger entry with
//! its audit entry go in one statement too ([`insert_pair`]). The database computes the hash with
//! the formula of [`crate::chain::link_hash`]; hashgate checks it before commit.

use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, QueryResult, QueryableByName, RunQueryDsl};

use super::prepared::{FixedText, Prepared};
use crate::chain::{unlinked_tail, Chained};

/// A chained row that takes the place the database gives it.
pub trait Placed: Chained {
    fn place(&mut self, seq: i64, prev_hash: String, hash: String);

    /// Binds the row's columns in the order of its [`ChainTable`]'s `columns`, with
    /// [`crate::db::bind_values`].
    fn bind_columns<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// Where the database placed the row.
#[derive(QueryableByName)]
struct Link {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    prev_hash: String,
    #[diesel(sql_type = Text)]
    hash: String,
}

/// Where the database placed each row of a pair: `chain` 1 or 2.
#[derive(QueryableByName)]
struct PairLink {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    chain: i32,
    #[diesel(embed)]
    link: Link,
}

/// A chain and the table of its rows, with the columns [`Placed::bind_columns`] binds.
pub struct ChainTable {
    pub chain: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

/// SQL that links the unlinked tail bound after it to the head in `heads` named `chain`:
/// `prev_hash || '[' || seq || tail`, hashed as [`crate::chain::link_hash`] does.
const LINK_HASH_BEFORE_TAIL: &str =
    "SELECT seq, prev_hash, encode(sha256(convert_to(prev_hash || '[' || seq::text || ";

fn link_hash_after_tail(heads: &str, chain: &str) -> String {
    format!(", 'UTF8')), 'hex') AS hash FROM {heads} WHERE name = '{chain}')")
}

/// SQL that advances the head named `chain` to the link in `link`. One per head: a single UPDATE
/// of both heads joined to their links lost a head's advance whenever another writer had moved
/// that head after the statement began (PostgreSQL's recheck of the updated row found no link).
fn advance(name: &str, chain: &str, link: &str) -> String {
    format!(
        "{name} AS (UPDATE chain_heads SET seq = {link}.seq, hash = {link}.hash FROM {link} \
                    WHERE chain_heads.name = '{chain}')"
    )
}

/// The statement for rows on two chains, in the five pieces around its binds: the first row's
/// unlinked tail, the second's, the first row's columns, the second's. Both heads are locked by
/// one scan in a fixed order, the first chain's first, which is the order every writer of both
/// keeps (the ledger, then the audit log); each head is advanced once and each row inserted
/// linked to it. It returns where each row was placed.
pub struct PairStatement {
    pieces: [String; 5],
}

pub fn pair_statement(first: &ChainTable, second: &ChainTable) -> PairStatement {
    let order = if first.chain > second.chain {
        "DESC"
    } else {
        "ASC"
    };
    let insert = |chain: &ChainTable| {
        format!(
            "INSERT INTO {table} ({columns}, seq, prev_hash, hash) SELECT ",
            table = chain.table,
            columns = chain.columns.join(", "),
        )
    };
    let returning = |link: &str| {
        format!(", {link}.seq, {link}.prev_hash, {link}.hash FROM {link} RETURNING seq, prev_hash, hash)")
    };
    PairStatement {
        pieces: [
            format!(
                "WITH heads AS (SELECT name, seq + 1 AS seq, hash AS prev_hash FROM chain_heads \
                                WHERE name IN ('{first}', '{second}') ORDER BY name {order} \
                                FOR UPDATE), \
                      link_1 AS ({LINK_HASH_BEFORE_TAIL}",
                first = first.chain,
                second = second.chain,
            ),
            format!(
                "{}, link_2 AS ({LINK_HASH_BEFORE_TAIL}",
                link_hash_after_tail("heads", first.chain)
            ),
            format!(
                "{}, {}, {}, row_1 AS ({}",
                link_hash_after_tail("heads", second.chain),
                advance("advanced_1", first.chain, "link_1"),
                advance("advanced_2", second.chain, "link_2"),
                insert(first),
            ),
            format!("{}, row_2 AS ({}", returning("link_1"), insert(second)),
            format!(
                "{} SELECT 1 AS chain, seq, prev_hash, hash FROM row_1 \
                 UNION ALL SELECT 2, seq, prev_hash, hash FROM row_2",
                returning("link_2")
            ),
        ],
    }
}

/// The statement for one table's chain, in the three pieces around its binds: the row's
/// [`crate::chain::unlinked_tail`], then its columns.
pub struct Statement {
    before_tail: String,
    before_columns: String,
    after_columns: &'static str,
}

/// The statement for a row of `target`; it returns where the row was placed. The head is locked,
/// read and advanced once (`link` is referenced twice, so PostgreSQL materialises it).
pub fn statement(target: &ChainTable) -> Statement {
    let ChainTable {
        chain,
        table,
        columns,
    } = target;
    Statement {
        before_tail: format!(
            "WITH head AS (SELECT name, seq + 1 AS seq, hash AS prev_hash FROM chain_heads \
                           WHERE name = '{chain}' FOR UPDATE), \
                  link AS ({LINK_HASH_BEFORE_TAIL}"
        ),
        before_columns: format!(
            "{}, {} INSERT INTO {table} ({columns}, seq, prev_hash, hash) SELECT ",
            link_hash_after_tail("head", chain),
            advance("advanced", chain, "link"),
            columns = columns.join(", "),
        ),
        after_columns: ", link.seq, link.prev_hash, link.hash FROM link \
                        RETURNING seq, prev_hash, hash",
    }
}

/// One row's link-and-insert, kept prepared on each connection: a withdrawal decision makes two.
struct LinkInsert<'a, R> {
    statement: &'a Statement,
    row: &'a R,
    tail: String,
}

impl<R: Placed> FixedText for LinkInsert<'_, R> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.statement.before_tail);
        out.push_bind_param::<Text, _>(&self.tail)?;
        out.push_sql(&self.statement.before_columns);
        self.row.bind_columns(out)?;
        out.push_sql(self.statement.after_columns);
        Ok(())
    }
}

/// Runs a [`statement`] for `row`, and the row takes the place the database gave it once the hash
/// the database computed is the one `hashgate verify` computes (see [`place_checked`]).
pub fn insert<R: Placed>(
    connection: &mut PgConnection,
    statement: &Statement,
    row: &mut R,
) -> QueryResult<()> {
    let link: Link = Prepared(LinkInsert {
        statement,
        row: &*row,
        tail: unlinked_tail(row),
    })
    .get_result(connection)?;
    place_checked(row, link)
}

/// Two rows' link-and-insert on two chains, kept prepared on each connection.
struct LinkPair<'a, A, B> {
    statement: &'a PairStatement,
    rows: (&'a A, &'a B),
    tails: (String, String),
}

impl<A: Placed, B: Placed> FixedText for LinkPair<'_, A, B> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let [link_1, link_2, row_1, row_2, end] = &self.statement.pieces;
        out.push_sql(link_1);
        out.push_bind_param::<Text, _>(&self.tails.0)?;
        out.push_sql(link_2);
        out.push_bind_param::<Text, _>(&self.tails.1)?;
        out.push_sql(row_1);
        self.rows.0.bind_columns(out)?;
        out.push_sql(row_2);
        self.rows.1.bind_columns(out)?;
        out.push_sql(end);
        Ok(())
    }
}

/// Runs a [`pair_statement`] for `first` and `second`: one round trip, made while holding both
/// chain heads, where two appends made two. Each row is placed as [`insert`] places it.
pub fn insert_pair<A: Placed, B: Placed>(
    connection: &mut PgConnection,
    statement: &PairStatement,
    first: &mut A,
    second: &mut B,
) -> QueryResult<()> {
    let links: Vec<PairLink> = Prepared(LinkPair {
        statement,
        rows: (&*first, &*second),
        tails: (unlinked_tail(first), unlinked_tail(second)),
    })
    .load(connection)?;
    let [one, two] = <[PairLink; 2]>::try_from(links)
        .map_err(|_| not_linked("did not return a place for each of the two rows"))?;
    let (one, two) = if one.chain == 1 {
        (one, two)
    } else {
        (two, one)
    };
    if (one.chain, two.chain) != (1, 2) {
        return Err(not_linked("returned a place for one row twice"));
    }
    place_checked(first, one.link)?;
    place_checked(second, two.link)
}

/// The row takes its place once the hash the database computed is the one `hashgate verify`
/// computes. A difference (a canonical form changed on one side only, a database whose encoding
/// is not UTF-8) fails the write, so the transaction rolls back instead of breaking the chain.
fn place_checked<R: Placed>(row: &mut R, link: Link) -> QueryResult<()> {
    row.place(link.seq, link.prev_hash, link.hash);
    if row.compute_hash() == row.hash() {
        Ok(())
    } else {
        Err(not_linked(&format!(
            "linked entry {} with a hash hashgate does not compute",
            row.seq()
        )))
    }
}

fn not_linked(what: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("the database {what}").into())
}
