//! The Rails side's Sidekiq worker (tests/rails/worker.rb), run as a real process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Stack, eventually, repo_root};

pub struct Worker {
    child: Child,
}

impl Worker {
    /// Starts `scripts/worker` against the stack's Redis and MySQL databases, with
    /// Sidekiq's own retry behaviour (a failed job lands in the `retry` set at once).
    pub fn start(stack: &Stack) -> Self {
        Self::start_with(&stack.redis_url(), stack)
    }

    /// Like [`Worker::start`], with the queue in the Redis at `redis_url` (a test's
    /// private server) instead of the stack's database of the shared one.
    pub fn start_with(redis_url: &str, stack: &Stack) -> Self {
        let log = std::fs::File::create(Self::log_path(stack)).unwrap();
        let child = Command::new(repo_root().join("scripts/worker"))
            .current_dir(repo_root())
            .env("REDIS_URL", redis_url)
            .env("DATABASE_URL", stack.database_url())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("scripts/worker starts");
        Self { child }
    }

    /// Whether the process is still there: Sidekiq exits at boot if it cannot reach Redis.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Where the worker's output goes, to read when a job failed.
    pub fn log_path(stack: &Stack) -> PathBuf {
        std::env::temp_dir().join(format!("chat-service-worker-{}.log", stack.database))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Waits until `sql` (a single-count query) reaches `expected`.
pub fn wait_for_count(stack: &Stack, what: &str, sql: &str, expected: i64) {
    eventually(what, Duration::from_secs(120), || {
        let count: i64 = stack.sql(sql)[0][0].parse().unwrap();
        (count >= expected).then_some(())
    });
}
