//! A politically-exposed-persons list file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hashgate::aml::lists::parse_pep(data);
});
