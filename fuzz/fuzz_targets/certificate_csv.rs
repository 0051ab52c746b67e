//! `hashgate import certificates`: each row's decoding and the certificate checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hashgate::carbon::import::read_certificates(data);
});
