// Suites that need an outside program are compiled in only when it is there; otherwise their
// tests show as ignored, with the reason, in the test output:
// - PostgreSQL: when HASHGATE_TEST_POSTGRES_URL names a server;
// - the browser: when chromedriver is on the PATH (or HASHGATE_TEST_CHROMEDRIVER names it);
// - PDF text: when poppler's pdftotext is on the PATH (an independent reader of our PDFs);
// - XML schemas: when libxml2's xmllint is on the PATH (validates exports against their XSD);
// - API fuzzing: when schemathesis (from PyPI) is on the PATH.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(hashgate_postgres_tests)");
    println!("cargo:rustc-check-cfg=cfg(hashgate_browser_tests)");
    println!("cargo:rustc-check-cfg=cfg(hashgate_pdf_tests)");
    println!("cargo:rustc-check-cfg=cfg(hashgate_xml_tests)");
    println!("cargo:rustc-check-cfg=cfg(hashgate_fuzz_tests)");
    println!("cargo:rerun-if-env-changed=HASHGATE_TEST_POSTGRES_URL");
    println!("cargo:rerun-if-env-changed=HASHGATE_TEST_CHROMEDRIVER");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");
    // `embed_migrations!` reads the migrations at compile time, but cargo does not know that: a
    // new migration would otherwise leave an incremental build with the old ones.
    println!("cargo:rerun-if-changed=migrations");
    if std::env::var_os("HASHGATE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=hashgate_postgres_tests");
    }
    if chromedriver().is_some() {
        println!("cargo:rustc-cfg=hashgate_browser_tests");
    }
    if on_path("pdftotext").is_some() {
        println!("cargo:rustc-cfg=hashgate_pdf_tests");
    }
    if on_path("xmllint").is_some() {
        println!("cargo:rustc-cfg=hashgate_xml_tests");
    }
    if on_path("schemathesis").is_some() {
        println!("cargo:rustc-cfg=hashgate_fuzz_tests");
    }
}

fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

fn chromedriver() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("HASHGATE_TEST_CHROMEDRIVER").filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    on_path("chromedriver")
}
