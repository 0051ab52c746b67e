//! The OFAC legacy CSV files: SDN, addresses, aliases and remarks, split from one input at NUL
//! bytes in that order.
#![no_main]

use hashgate::aml::lists::{parse_ofac, OfacFiles};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |byte| *byte == 0);
    let files = OfacFiles {
        sdn: parts.next().unwrap_or_default().to_vec(),
        addresses: parts.next().map(<[u8]>::to_vec),
        aliases: parts.next().map(<[u8]>::to_vec),
        comments: parts
            .next()
            .map(|bytes| vec![("sdn_comments.csv".to_string(), bytes.to_vec())])
            .unwrap_or_default(),
    };
    let _ = parse_ofac(&files);
});
