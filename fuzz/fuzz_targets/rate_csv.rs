//! `hashgate import prices`: each row's decoding and the validation of prices and FX rates.
#![no_main]

use hashgate::ledger::import::rate_rows;
use hashgate::ledger::payouts::MAX_BATCH;
use hashgate::ledger::rates::validate_rates;
use hashgate::ledger::{Asset, Assets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((rows, _lines)) = rate_rows(data) else {
        return;
    };
    let assets = Assets::new([("BTC", 8), ("USDT", 6), ("USD", 2), ("HKD", 2)].map(
        |(code, scale)| Asset {
            code: code.to_string(),
            scale,
        },
    ));
    let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    for batch in rows.chunks(MAX_BATCH) {
        let _ = validate_rates(batch, &assets, now);
    }
});
