//! A `jurisdictions/<CODE>.toml` file: screening, KYC, withdrawal, monitoring, tax and report
//! rules, validated as the service validates them at start-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for code in ["HK", "DE"] {
        let _ = hashgate::jurisdiction::rules::parse(code, text);
    }
});
