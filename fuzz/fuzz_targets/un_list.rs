//! The UN Security Council consolidated list (XML).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hashgate::aml::lists::parse_un(data);
});
