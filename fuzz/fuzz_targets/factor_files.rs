//! `hashgate import emission-factors`: the Ember CSV, the Nordic JSON, the plain CSV and the
//! Canadian provinces' mix with its per-source factors (split at the first NUL byte), chosen by
//! the input's first byte; every row read is then checked as the import checks it.
#![no_main]

use hashgate::carbon::factors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((format, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let rows = match format % 4 {
        0 => factors::read_ember_csv(text, "fuzz"),
        1 => factors::read_nordic_json(text, "fuzz"),
        2 => factors::read_plain_csv(text),
        _ => {
            let (mix, per_source) = text.split_once('\0').unwrap_or((text, ""));
            factors::read_canada_provinces(mix, per_source, 2023, "fuzz")
        }
    };
    for row in rows.iter().flatten() {
        let _ = factors::check(row);
    }
});
