// The PostgreSQL half of the integration suite is compiled in only when a server is configured;
// otherwise those tests show as ignored, with the reason, in the test output.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(hashgate_postgres_tests)");
    println!("cargo:rerun-if-env-changed=HASHGATE_TEST_POSTGRES_URL");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("HASHGATE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=hashgate_postgres_tests");
    }
}
