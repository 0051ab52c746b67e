//! `hashgate import payouts`: the header check, each row's decoding, and the batch validation
//! the import applies before anything reaches the database.
#![no_main]

use hashgate::ledger::import::payout_csv;
use hashgate::ledger::payouts::{validate_batch, PayoutInput, MAX_BATCH};
use hashgate::ledger::{Asset, Assets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((mut reader, header)) = payout_csv(data) else {
        return;
    };
    let assets = Assets::new([("BTC", 8), ("USDT", 6), ("ETH", 9), ("USD", 2)].map(
        |(code, scale)| Asset {
            code: code.to_string(),
            scale,
        },
    ));
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        if let Ok(row) = record.deserialize::<PayoutInput>(Some(&header)) {
            rows.push(row);
        }
    }
    let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    for batch in rows.chunks(MAX_BATCH) {
        let _ = validate_batch(batch, &assets, now);
    }
});
