//! The whole API under a property-based fuzzer: schemathesis (from PyPI) generates requests from
//! the service's own OpenAPI document, valid and invalid, for every operation and every role,
//! against the demo's realistic data. No request may get a 5xx, break the connection, or panic a
//! worker, and every answer's status, content type and body must be ones the document declares.
//! `HASHGATE_FUZZ_SECONDS` sets the budget per role (20 s here; the full run uses 300).

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The roles the fuzzer runs as; `anonymous` sends no token.
const ROLES: [&str; 7] = [
    "anonymous",
    "platform",
    "officer",
    "senior_officer",
    "user",
    "regulator",
    "admin",
];

fn read(path: &std::path::Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// The first token the demo printed for `role`.
fn token_of(demo_output: &str, role: &str) -> Option<String> {
    demo_output
        .lines()
        .find(|line| line.split_whitespace().next() == Some(role))
        .and_then(|line| line.split_whitespace().last())
        .filter(|token| token.starts_with("hgt_"))
        .map(str::to_string)
}

/// Whether a failed run's summary lists only schemathesis's own runtime errors (its generator
/// occasionally fails on a schema), which say nothing about the service.
fn only_tool_errors(report: &str) -> bool {
    let summary = report.rsplit("SUMMARY").next().unwrap_or_default();
    // Problems are counted as "❌ <check>: N" and "🚫 <error>: N"; phases carry no count.
    summary
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('❌') || line.starts_with('🚫'))
        .filter(|line| {
            line.rsplit_once(':')
                .is_some_and(|(_, count)| count.trim().parse::<u32>().is_ok())
        })
        .all(|line| line.contains("Runtime Error"))
}

#[test]
fn a_summary_with_a_failed_check_is_not_only_tool_errors() {
    let failed = "== SUMMARY ==\nTest Phases:\n  🚫 Fuzzing\nErrors:\n  🚫 Runtime Error: 1\n\
                  Failures:\n  ❌ ST103 Undocumented status code: 2\n";
    assert!(!only_tool_errors(failed));
    let tool = "== SUMMARY ==\nAPI Operations:\n  Tested: 91\nTest Phases:\n  🚫 Coverage\n\
                Errors:\n  🚫 Runtime Error: 1\n";
    assert!(only_tool_errors(tool));
    assert!(!only_tool_errors(
        "== SUMMARY ==\nErrors:\n  🚫 Network Error: 1\n"
    ));
}

#[test]
#[cfg_attr(
    not(hashgate_fuzz_tests),
    ignore = "API fuzzing SKIPPED: schemathesis is not on the PATH (pip install schemathesis)"
)]
fn no_generated_request_gets_a_server_error_or_panics_the_service() {
    let seconds: u64 = std::env::var("HASHGATE_FUZZ_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let directory = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let (stdout_path, stderr_path) = (
        directory.path().join("demo.out"),
        directory.path().join("demo.err"),
    );
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_hashgate"));
    demo.arg("demo").arg("--database").arg(format!(
        "sqlite://{}",
        directory.path().join("demo.db").display()
    ));
    for (option, data) in [("--lists", "sanctions"), ("--carbon-data", "carbon")] {
        if shared.join(data).is_dir() {
            demo.arg(option).arg(shared.join(data));
        }
    }
    let mut demo = demo
        .current_dir(directory.path())
        .env_remove("DATABASE_URL")
        .env("HASHGATE_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !read(&stdout_path).contains(&format!("open http://127.0.0.1:{port}/console")) {
        if let Some(status) = demo.try_wait().unwrap() {
            panic!("the demo stopped ({status}):\n{}", read(&stderr_path));
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the demo did not start"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let demo_output = read(&stdout_path);

    let mut failures = Vec::new();
    for role in ROLES {
        let mut fuzz = Command::new("schemathesis");
        fuzz.args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args([
                "--workers",
                "2",
                "--seed",
                "20261203",
                "--max-examples",
                "40",
            ])
            .args(["--max-time", &seconds.to_string()])
            .env("NO_COLOR", "1")
            // Its cache (.schemathesis/) goes to the scratch directory, not the work tree.
            .current_dir(directory.path())
            .stdin(Stdio::null());
        if role != "anonymous" {
            let token = token_of(&demo_output, role)
                .unwrap_or_else(|| panic!("the demo printed no {role} token:\n{demo_output}"));
            fuzz.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        let output = fuzz.output().unwrap();
        let report = String::from_utf8_lossy(&output.stdout).to_string();
        let generated = report
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some("generated,"))
            .unwrap_or("no test cases")
            .trim()
            .to_string();
        eprintln!("fuzzing as {role}: {generated}");
        assert!(
            generated.contains("generated"),
            "schemathesis ran no test case as {role}:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() && !only_tool_errors(&report) {
            failures.push(format!("as {role}:\n{report}"));
        }
    }
    let _ = demo.kill();
    let _ = demo.wait();
    let log = read(&stderr_path);
    let panics: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(
        panics.is_empty(),
        "the service panicked:\n{}",
        panics.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
