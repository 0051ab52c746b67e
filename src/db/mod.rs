//! Storage: one connection type over SQLite and PostgreSQL, a pool, transactions and migrations.

pub(crate) mod chain_link;
mod checkpoint;
pub(crate) mod prepared;
pub mod riding;
pub mod schedule;
pub mod schema;
mod timestamp;

pub(crate) use timestamp::InsertTimestamp;

use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, Pool};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

/// Inserts many rows: a prepared single-row INSERT stepped per row on SQLite (parsing a
/// multi-row INSERT costs more than the rows in-process), one COPY on PostgreSQL, nothing when
/// there are none. A macro because diesel's `MultiBackend` has no batch insert, and the bounds a
/// generic function would need differ per table.
macro_rules! insert_all {
    ($connection:expr, $table:expr, $rows:expr) => {{
        use diesel::prelude::*;
        match $connection {
            _ if $rows.is_empty() => Ok(0),
            $crate::db::DbConnection::Sqlite(inner) => $rows.iter().try_fold(0, |inserted, row| {
                diesel::insert_into($table)
                    .values(row)
                    .execute(inner)
                    .map(|count| inserted + count)
            }),
            $crate::db::DbConnection::Postgresql(inner) => diesel::copy_from($table)
                .from_insertable($rows)
                .execute(inner),
        }
    }};
}
pub(crate) use insert_all;

/// Binds values in order, with a comma between their placeholders.
macro_rules! bind_values {
    ($out:ident; $first_type:ty => $first:expr $(, $sql_type:ty => $value:expr)* $(,)?) => {
        $out.push_bind_param::<$first_type, _>($first)?;
        $(
            $out.push_sql(", ");
            $out.push_bind_param::<$sql_type, _>($value)?;
        )*
    };
}
pub(crate) use bind_values;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both backends, so every query is written once.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                Err("a sqlite:// URL needs a file path, e.g. sqlite://hashgate.db".into())
            } else {
                Ok(Backend::Sqlite)
            }
        } else {
            Err(format!(
                "`{url}` must start with sqlite:// (embedded) or postgres:// (production)"
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The file path of a `sqlite://` URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
}

/// Opens connections of the configured backend; the derived `establish` would fall through to
/// SQLite and create a stray file when PostgreSQL is unreachable.
#[derive(Debug, Clone)]
pub struct ConnectionFactory {
    backend: Backend,
    url: String,
}

impl ConnectionFactory {
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            backend: Backend::from_url(url)?,
            url: url.to_string(),
        })
    }

    pub fn connect(&self) -> diesel::ConnectionResult<DbConnection> {
        match self.backend {
            Backend::Postgres => {
                let mut connection = PgConnection::establish(&self.url)?;
                // Plan each statement for its actual parameters: a generic plan cached while a
                // table was small keeps scanning it sequentially once it is large. Transactions
                // made only of lookups by key opt out (`Plans::Cached`).
                connection
                    .batch_execute("SET plan_cache_mode = force_custom_plan")
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Postgresql(connection))
            }
            Backend::Sqlite => {
                configure_sqlite();
                let path = sqlite_path(&self.url).unwrap_or_default();
                let mut connection = SqliteConnection::establish(path)?;
                // Per connection: foreign keys are off by default, and a writer waits for the lock
                // (set first, so that the pragmas after it wait too rather than fail while a
                // checkpoint or a long write holds the database).
                connection
                    .batch_execute(
                        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                         PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
                    )
                    .and_then(|()| {
                        connection.batch_execute(&format!(
                            "PRAGMA wal_autocheckpoint = {}",
                            checkpoint::WRITER_CHECKPOINT_PAGES
                        ))
                    })
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(connection))
            }
        }
    }
}

/// Configures the SQLite library once per process: multi-thread mode without memory statistics
/// (below), and the query planner stability guarantee for every connection opened from now on.
/// Without the latter a cached statement whose plan looked at a bound value is re-prepared
/// whenever that value is bound again, and since SQLite 3.46 a bound `LIMIT` counts: every
/// `.first()` paid a full parse. Plans no longer depend on bound values, which is also what we
/// want to rely on.
fn configure_sqlite() {
    use libsqlite3_sys::{
        sqlite3, sqlite3_api_routines, sqlite3_auto_extension, sqlite3_config, sqlite3_db_config,
        SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK,
    };
    use std::os::raw::{c_char, c_int};

    unsafe extern "C" fn enable_qpsg(
        db: *mut sqlite3,
        _error: *mut *mut c_char,
        _api: *const sqlite3_api_routines,
    ) -> c_int {
        // SAFETY: SQLite calls this with the connection it is opening; ENABLE_QPSG takes an int
        // and an optional int pointer for the previous setting.
        unsafe {
            sqlite3_db_config(
                db,
                SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                std::ptr::null_mut::<c_int>(),
            )
        };
        SQLITE_OK
    }

    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // Global settings, which SQLite accepts only before it initialises (registering the
        // extension below initialises it). Multi-thread mode drops the per-connection mutex
        // taken on every call: a connection is only ever used by the thread holding it from the
        // pool. Without memory statistics no global mutex is taken on every allocation. Under a
        // bulk insert the two were 6 % of the writer's time. If the library is already
        // initialised the calls fail harmlessly and the defaults (serialized mode) stay.
        // SAFETY: both options take a single int argument, as documented.
        unsafe {
            sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
            sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        }
        // SAFETY: registers a function with the signature SQLite documents for auto-extensions.
        unsafe { sqlite3_auto_extension(Some(enable_qpsg)) };
    });
}

/// How long after a connection was handed back from work that succeeded it is lent again without
/// a test query. As HikariCP's alive-bypass window: under load every request checked a
/// connection out (the token lookup, then the work) and each checkout cost PostgreSQL a round
/// trip for `SELECT 1`: two statements of every withdrawal decision. A connection that sat
/// idle longer, whose last work failed, or that was lent outside [`Db::run`] (whose work the
/// pool cannot see) is still tested, so one lost in a restart is replaced.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// A connection of the pool, with what the pool knows of its health.
pub struct PooledConnection {
    connection: DbConnection,
    /// When it was last handed back from work that succeeded.
    returned_healthy_at: Option<Instant>,
    /// The work it is lent for succeeded (see [`Db::run`]).
    work_succeeded: bool,
}

impl std::ops::Deref for PooledConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.connection
    }
}

impl std::ops::DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.connection
    }
}

impl ManageConnection for ConnectionFactory {
    type Connection = PooledConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, Self::Error> {
        let connection =
            ConnectionFactory::connect(self).map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(PooledConnection {
            connection,
            returned_healthy_at: None,
            work_succeeded: false,
        })
    }

    fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), Self::Error> {
        if pooled
            .returned_healthy_at
            .is_some_and(|at| at.elapsed() < ALIVE_BYPASS)
        {
            return Ok(());
        }
        pooled
            .connection
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    /// Called as a connection is handed back. One whose holder panicked may be mid-transaction,
    /// so it is closed.
    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        let succeeded = std::mem::take(&mut pooled.work_succeeded);
        pooled.returned_healthy_at = succeeded.then(Instant::now);
        std::thread::panicking()
    }
}

pub type DbPool = Pool<ConnectionFactory>;
pub type Conn = r2d2::PooledConnection<ConnectionFactory>;

/// The database handle shared by handlers and commands.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: Backend,
    /// On SQLite, this process's writers queue here (see [`Db::run_writer`]).
    writers: std::sync::Arc<std::sync::Mutex<()>>,
    /// On SQLite, the background WAL checkpoints, while any clone of this handle lives.
    _checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
}

impl Db {
    /// Migrates the database, then opens the pool.
    pub fn open(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let factory = ConnectionFactory::new(url).map_err(anyhow::Error::msg)?;
        let backend = factory.backend;
        let mut connection = factory
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot open the {} database: {e}", backend.name()))?;
        run_migrations(&mut connection)?;
        drop(connection);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(5))
            .build(factory.clone())?;
        let checkpointer = match backend {
            Backend::Sqlite => Some(std::sync::Arc::new(checkpoint::Checkpointer::start(
                &factory,
            )?)),
            Backend::Postgres => None,
        };
        Ok(Db {
            pool,
            backend,
            writers: std::sync::Arc::default(),
            _checkpointer: checkpointer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn connection(&self) -> Result<Conn, AppError> {
        Ok(self.pool.get()?)
    }

    /// [`Db::run`] for work that writes. SQLite allows one writer at a time and makes the others
    /// poll its lock with sleeps of up to 100 ms, which gave concurrent writers a long tail; here
    /// they wait on a mutex instead and start the moment the previous one commits.
    pub async fn run_writer<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        if self.backend != Backend::Sqlite {
            return self.run(work).await;
        }
        let writers = self.writers.clone();
        self.run(move |connection| {
            // A writer that panicked left no transaction open: the lock is still good.
            let _turn = writers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(connection)
        })
        .await
    }

    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs blocking database work on actix's blocking pool, keeping the async workers free and the
    /// caller's tracing span.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        actix_web::web::block(move || {
            let _entered = span.enter();
            let mut connection = pool.get()?;
            let result = work(&mut connection);
            connection.work_succeeded = result.is_ok();
            result
        })
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("a database task panicked")))?
    }
}

/// How PostgreSQL plans the statements of a write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Each statement for its parameters, the connection's setting (see [`ConnectionFactory`]).
    PerParameters,
    /// Each statement's generic plan, made once and reused, where planning costs more than
    /// executing. Only for transactions whose statements find rows by key through an index, so
    /// that a generic plan made on empty tables uses the same indexes (checked with EXPLAIN on a
    /// new database, its tables never analyzed). A cached plan lives as long as its pooled
    /// connection (r2d2 retires one after 30 minutes), and an ANALYZE of a table it reads
    /// replaces it. The setting travels with `BEGIN`, in the same round trip.
    ///
    /// The withdrawal gate's history (`withdrawals::store::past_activity`) is a range read: it
    /// finds the user's rows through `withdrawals_user_time` and `ledger_entries_user_time`,
    /// which hold both its conditions, so any plan of it reads only the user's rows. Without
    /// such an index, generic and custom plans alike intersected the user index with the
    /// `occurred_at` index whenever the statistics predated the latest payouts, reading every
    /// user's payouts of the look-back.
    Cached,
}

/// Runs `work` in one write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so the writer
/// lock is taken up front and waits for `busy_timeout` instead of failing mid-transaction.
pub fn write_transaction<T, E, F>(connection: &mut DbConnection, work: F) -> Result<T, E>
where
    E: From<diesel::result::Error>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    write_transaction_planned(connection, Plans::PerParameters, work)
}

/// [`write_transaction`] with its statements planned as `plans` says (SQLite has nothing to set).
pub fn write_transaction_planned<T, E, F>(
    connection: &mut DbConnection,
    plans: Plans,
    work: F,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    let postgres_begin = match plans {
        Plans::PerParameters => "BEGIN",
        Plans::Cached => "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan",
    };
    match connection {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, postgres_begin)?
        }
    }
    match work(connection) {
        Ok(value) => {
            match <DbConnection as TransactionManager<DbConnection>>::commit_transaction(connection)
            {
                Ok(()) => Ok(value),
                Err(error) => {
                    let _ =
                        <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(
                            connection,
                        );
                    Err(error.into())
                }
            }
        }
        Err(error) => {
            let _ = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(
                connection,
            );
            Err(error)
        }
    }
}

/// Walks a table a page at a time with the reading on a thread of its own, so that the next page
/// is read while `fold` handles the last one: the database and hashgate then work on both cores
/// instead of taking turns. `read` loads the page after a key, `next` gives the key a page ends at
/// (`None` when it was the last), and `fold` may stop the walk early with `Break`. An error from
/// either ends it too; the reader stops at its next page once `fold` has stopped.
pub fn read_ahead<Row: Send, Stop>(
    connection: &mut DbConnection,
    start: i64,
    read: impl Fn(&mut DbConnection, i64) -> Result<Vec<Row>, AppError> + Send,
    next: impl Fn(&[Row]) -> Option<i64> + Send,
    mut fold: impl FnMut(Vec<Row>) -> Result<std::ops::ControlFlow<Stop>, AppError>,
) -> Result<Option<Stop>, AppError> {
    std::thread::scope(|scope| {
        let (pages, received) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            let mut after = start;
            loop {
                let page = read(connection, after);
                let more = page.as_deref().ok().and_then(&next);
                if pages.send(page).is_err() {
                    return;
                }
                match more {
                    Some(key) => after = key,
                    None => return,
                }
            }
        });
        for page in received {
            if let std::ops::ControlFlow::Break(stop) = fold(page?)? {
                return Ok(Some(stop));
            }
        }
        Ok(None)
    })
}

/// The advisory lock key migrations hold on PostgreSQL ("hashgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6861_7368_6761_7465;

pub fn run_migrations(connection: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let names = |applied: Vec<diesel::migration::MigrationVersion<'_>>| {
        applied.iter().map(|version| version.to_string()).collect()
    };
    let applied = match connection {
        DbConnection::Sqlite(inner) => inner.run_pending_migrations(SQLITE_MIGRATIONS).map(names),
        DbConnection::Postgresql(inner) => {
            // Instances starting together take turns: the first migrates, the others then find
            // nothing pending. The lock is the session's, released when the migration ends.
            inner.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let applied = inner.run_pending_migrations(POSTGRES_MIGRATIONS).map(names);
            inner.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
            applied
        }
    };
    applied.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// `SELECT 1` through the pool, for readiness checks.
pub fn ping(connection: &mut DbConnection) -> Result<(), AppError> {
    connection.batch_execute("SELECT 1")?;
    Ok(())
}

/// Current UTC time truncated to microseconds: both backends store that precision, so a value
/// read back equals the value hashed.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A migrated SQLite database file in a directory of its own, for unit tests. The directory is
/// deleted when the returned guard drops.
#[cfg(test)]
pub(crate) fn scratch_sqlite(file: &str) -> (tempfile::TempDir, std::path::PathBuf, Db) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join(file);
    let db = Db::open(&format!("sqlite://{}", path.display()), 1).unwrap();
    (directory, path, db)
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use diesel::prelude::*;

    use super::{read_ahead, write_transaction, DbConnection};
    use crate::db::schema::ledger_entries;
    use crate::error::AppError;
    use crate::ledger::{store as ledger, Account, EntryKind, LedgerEntry};

    /// Sequence numbers of the payouts after `after`, three at a time.
    fn payouts_after(connection: &mut DbConnection, after: i64) -> Result<Vec<i64>, AppError> {
        Ok(ledger_entries::table
            .filter(ledger_entries::seq.gt(after))
            .filter(ledger_entries::kind.eq(EntryKind::Payout.as_str()))
            .order(ledger_entries::seq.asc())
            .limit(3)
            .select(ledger_entries::seq)
            .load(connection)?)
    }

    #[test]
    fn read_ahead_hands_every_page_over_in_order_and_stops_when_the_fold_does() {
        let (_directory, _, db) = super::scratch_sqlite("pages.db");
        let mut connection = db.connection().unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2025, 6, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let user = || "user-1".to_string();
        let mut entries = Vec::new();
        for index in 0..8 {
            let payout = (Account::PayoutPool, Account::Available(user()));
            entries.push(LedgerEntry::transfer(
                EntryKind::Payout,
                "BTC",
                1_000,
                payout,
                at,
                "test",
            ));
            if index % 3 == 0 {
                let fee = (Account::Available(user()), Account::Fees);
                entries.push(LedgerEntry::transfer(
                    EntryKind::Fee,
                    "BTC",
                    10,
                    fee,
                    at,
                    "test",
                ));
            }
        }
        let appended = write_transaction(&mut connection, |connection| {
            ledger::append_entries(connection, entries).map_err(AppError::from)
        })
        .unwrap();
        let payouts: Vec<i64> = appended
            .iter()
            .filter(|entry| entry.kind == EntryKind::Payout)
            .map(|entry| entry.seq)
            .collect();
        let next = |rows: &[i64]| rows.last().copied().filter(|_| rows.len() == 3);

        let mut pages = Vec::new();
        let stopped = read_ahead(&mut connection, 0, payouts_after, next, |page| {
            pages.push(page);
            Ok(ControlFlow::<()>::Continue(()))
        })
        .unwrap();
        assert_eq!(stopped, None);
        assert_eq!(pages.len(), 3, "8 payouts in pages of 3");
        assert_eq!(pages.concat(), payouts, "every payout once, in order");

        let mut folds = 0;
        let stopped = read_ahead(&mut connection, 0, payouts_after, next, |page| {
            folds += 1;
            Ok(ControlFlow::Break(page[0]))
        })
        .unwrap();
        assert_eq!((stopped, folds), (Some(payouts[0]), 1));

        let failed = read_ahead(&mut connection, 0, payouts_after, next, |_| {
            Err::<ControlFlow<()>, _>(AppError::bad_field("page", "refused"))
        });
        assert!(failed.is_err());
        // The reader has let go of the connection: it serves the next walk.
        let mut seen = 0;
        read_ahead(&mut connection, 0, payouts_after, next, |page| {
            seen += page.len();
            Ok(ControlFlow::<()>::Continue(()))
        })
        .unwrap();
        assert_eq!(seen, payouts.len());
    }
}
