//! SQLite's WAL checkpoints on a thread of their own.
//!
//! By default the connection whose commit pushes the WAL past 1,000 pages copies the WAL back into
//! the database file and fsyncs it, inside its commit: under a bulk load that was a sixth of the
//! writer's time, on the one thread SQLite lets write. Here a background connection checkpoints
//! (PASSIVE: it never blocks readers or the writer) a few times a second on the other core, and
//! writers checkpoint themselves only if the WAL still grows past [`WRITER_CHECKPOINT_PAGES`].

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::ConnectionFactory;

/// Pages (4 KiB) of WAL at which a writer falls back to checkpointing in its own commit: only
/// reached when the background checkpointer cannot keep up.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

const INTERVAL: Duration = Duration::from_millis(100);

/// Runs until dropped (the last clone of the [`super::Db`] that started it).
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(factory: &ConnectionFactory) -> anyhow::Result<Checkpointer> {
        let mut connection = factory
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot open the checkpoint connection: {e}"))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                while !*stopped {
                    stopped = wake
                        .wait_timeout(stopped, INTERVAL)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    // A busy or failed checkpoint is retried on the next tick; the WAL keeps the
                    // data meanwhile.
                    if let Err(error) = connection.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::debug!(%error, "WAL checkpoint did not run");
                    }
                }
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use diesel::connection::SimpleConnection;

    #[test]
    fn copies_committed_pages_into_the_database_file_in_the_background() {
        let (_directory, path, db) = crate::db::scratch_sqlite("checkpoint.db");
        let mut connection = db.connection().unwrap();
        // About 4 MB, a quarter of the WAL at which a writer would checkpoint by itself: without
        // the background checkpoints these pages would stay in the WAL.
        connection
            .batch_execute(
                "CREATE TABLE filler (payload BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO filler SELECT randomblob(4000) FROM n;",
            )
            .unwrap();
        let database_size = || std::fs::metadata(&path).unwrap().len();
        let started = Instant::now();
        while database_size() < 4_000_000 && started.elapsed() < super::INTERVAL * 50 {
            std::thread::sleep(super::INTERVAL);
        }
        assert!(
            database_size() >= 4_000_000,
            "the database file holds {} bytes after {:?}",
            database_size(),
            started.elapsed()
        );
    }
}
