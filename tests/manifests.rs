//! The SpinKube manifests in `deploy/` are what a cluster would accept and what the app
//! needs: checked by `tests/deploy/check_manifests.py` against SpinKube's SpinApp CRD and
//! `spin.toml` (see that file for every check). It first proves it rejects broken copies.
//!
//! Needs the project virtualenv (`scripts/install-deps` makes `target/py`) and the CRD kept
//! in the repository, `tests/deploy/spinkube/` (its README names the operator version it
//! comes from); without either the test fails, it never skips.

use std::path::Path;
use std::process::Command;

#[test]
fn deploy_manifests_pass_the_spinapp_crd_and_the_apps_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/py/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/install-deps (it creates the project virtualenv)",
        python.display()
    );
    let crd = root.join("tests/deploy/spinkube/core.spinkube.dev_spinapps.yaml");
    assert!(
        crd.is_file(),
        "{} is missing: it is part of the repository (see tests/deploy/spinkube/README.md)",
        crd.display()
    );
    let output = Command::new(&python)
        .arg(root.join("tests/deploy/check_manifests.py"))
        .output()
        .expect("the manifest checker runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "tests/deploy/check_manifests.py failed ({}):\n{stdout}{stderr}",
        output.status
    );
}
