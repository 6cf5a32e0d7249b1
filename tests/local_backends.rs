//! The machine's own databases stay as they were: the suite and `scripts/serve` use a
//! MariaDB account of the project's own, made by `scripts/start-backends`, which changes
//! no other account: letting root in over TCP with an empty password would be a lasting
//! downgrade of the machine the suite runs on.

mod support;

use std::process::Command;

use support::{MYSQL_USER, repo_root, run, sql};

/// Every account and its privileges, read as the machine's administrator (root through
/// the unix socket, Debian's default, which `scripts/start-backends` also uses).
fn accounts() -> String {
    run(Command::new("mariadb")
        .args(["-uroot", "--batch", "--skip-column-names", "-e"])
        .arg("SELECT user, host, priv FROM mysql.global_priv ORDER BY user, host"))
}

#[test]
fn the_suite_uses_the_projects_own_account_and_start_backends_changes_no_other() {
    let before = accounts();
    // MariaDB only: the suite never connects to the machine's Redis.
    run(Command::new(repo_root().join("scripts/start-backends")).arg("mariadb"));
    assert_eq!(
        accounts(),
        before,
        "scripts/start-backends changed an account that was already there"
    );

    let current = sql("", "SELECT CURRENT_USER()");
    assert_eq!(
        current[0][0].split('@').next(),
        Some(MYSQL_USER),
        "the suite's SQL runs as {current:?}"
    );
    // Its grants reach the project's databases and nothing else.
    let grants: Vec<String> = sql("", "SHOW GRANTS")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    for grant in &grants {
        // Batch output escapes the backslashes of the `\_` in the patterns.
        let unescaped = grant.replace('\\', "");
        let scoped = unescaped.contains("ON `chat_service_%`.*")
            || unescaped.contains("ON `chat_system_%`.*")
            || grant.starts_with("GRANT RELOAD ON *.*")
            || grant.starts_with("GRANT USAGE ON *.*");
        assert!(scoped, "a grant beyond the project's databases: {grant}");
    }
    assert!(
        grants
            .iter()
            .any(|grant| grant.replace('\\', "").contains("ON `chat_service_%`.*")),
        "no grant on the project's databases: {grants:?}"
    );
    let other = sql(
        "",
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'mysql'",
    );
    assert_eq!(
        other,
        vec![vec!["0".to_owned()]],
        "the account sees the mysql schema"
    );
}
