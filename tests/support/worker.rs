//! The Rails side's Sidekiq worker (tests/rails/worker.rb), run as a real process, on
//! the Redis it is given (a stack's own, or a test's private server): never the machine's.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::supervised::Watchdog;
use super::{Stack, eventually, redis_with_url, repo_root};

pub struct Worker {
    /// `None` while stopped.
    child: Option<Child>,
    /// Stops the worker if this process ends while it runs.
    watchdog: Option<Watchdog>,
    redis_url: String,
    database_url: String,
    log: PathBuf,
    /// Settings of tests/rails/worker.rb beyond the URLs (its opening comment lists them).
    env: Vec<(String, String)>,
}

impl Worker {
    /// Starts `scripts/worker` against the stack's Redis and MySQL databases, with
    /// Sidekiq's own retry behaviour (a failed job lands in the `retry` set at once).
    pub fn start(stack: &Stack) -> Self {
        Self::start_with(&stack.redis_url(), stack)
    }

    /// Like [`Worker::start`], with the queue in the Redis at `redis_url` (a server the
    /// test stops and restarts) instead of the stack's own.
    pub fn start_with(redis_url: &str, stack: &Stack) -> Self {
        Self::start_on(redis_url, &stack.database_url(), Self::log_path(stack))
    }

    /// A worker on any Redis and database (`mysql2://...` with ActiveRecord's parameters,
    /// e.g. `?sslca=...&sslverify=true`), its output in `log`. It inherits this process's
    /// environment, `SSL_CERT_FILE` included.
    pub fn start_on(redis_url: &str, database_url: &str, log: PathBuf) -> Self {
        Self::start_configured(redis_url, database_url, log, &[])
    }

    /// Like [`Worker::start`], with settings of worker.rb's own (`SEARCH=down`, ...).
    pub fn start_with_env(stack: &Stack, env: &[(&str, &str)]) -> Self {
        let log = Self::log_path(stack);
        Self::start_configured(&stack.redis_url(), &stack.database_url(), log, env)
    }

    fn start_configured(
        redis_url: &str,
        database_url: &str,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Self {
        let mut worker = Self {
            child: None,
            watchdog: None,
            redis_url: redis_url.to_owned(),
            database_url: database_url.to_owned(),
            log: log.clone(),
            env: env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        worker.spawn(File::create(&log).unwrap());
        worker
    }

    fn spawn(&mut self, log: File) {
        let child = Command::new(repo_root().join("scripts/worker"))
            .current_dir(repo_root())
            .env("REDIS_URL", &self.redis_url)
            .env("DATABASE_URL", &self.database_url)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("scripts/worker starts");
        self.watchdog = Some(Watchdog::new(child.id(), None));
        self.child = Some(child);
    }

    /// Whether the process is still there: Sidekiq exits at boot if it cannot reach Redis.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits for the worker's first heartbeat: Sidekiq registers in `processes` once it
    /// is up and fetching. Its identity is `host:pid:nonce`, and `scripts/worker` execs
    /// Sidekiq, so this process's entry is told from one an earlier run left behind.
    /// Returns how long the boot took from now.
    pub fn wait_booted(&mut self) -> Duration {
        let started = Instant::now();
        let pid = format!(":{}:", self.child.as_ref().expect("the worker runs").id());
        eventually("the worker to boot", Duration::from_secs(30), || {
            assert!(self.is_running(), "the worker exited while booting");
            let members: Vec<String> =
                redis_with_url(&self.redis_url).cmd(&["SMEMBERS", "processes"]);
            members.iter().any(|m| m.contains(&pid)).then_some(())
        });
        started.elapsed()
    }

    /// Sidekiq's own shutdown (SIGTERM): it stops fetching, pushes a job it fetched
    /// meanwhile back onto the queue, lets running jobs finish (or pushes them back after
    /// its timeout), and exits. Waits for the exit; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let mut child = self.child.take().expect("the worker runs");
        drop(self.watchdog.take());
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM the worker");
        let exit = child.wait().expect("the worker exits");
        assert!(
            exit.success(),
            "the worker's shutdown failed ({exit}); see {}",
            self.log.display()
        );
        started.elapsed()
    }

    /// Starts the worker again after [`Worker::stop`], its output appended to the same log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the worker is already running");
        let log = OpenOptions::new().append(true).open(&self.log).unwrap();
        self.spawn(log);
    }

    /// Where the worker's output goes, to read when a job failed: beside the served
    /// components' logs, in `target/test-logs/`.
    pub fn log_path(stack: &Stack) -> PathBuf {
        let dir = repo_root().join("target/test-logs");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(format!("worker-{}.log", stack.database))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// Waits until `sql` (a single-count query) reaches `expected`.
pub fn wait_for_count(stack: &Stack, what: &str, sql: &str, expected: i64) {
    eventually(what, Duration::from_secs(120), || {
        let count: i64 = stack.sql(sql)[0][0].parse().unwrap();
        (count >= expected).then_some(())
    });
}
