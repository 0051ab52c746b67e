//! Jurisdictions: country codes now; the per-jurisdiction rules of `jurisdictions/*.toml` later.

/// ISO 3166-1 alpha-2, the 249 officially assigned codes.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK \
HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK \
LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI \
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI \
SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

mod country_names;
pub mod rules;

pub use rules::{Jurisdiction, Jurisdictions, ScreeningRules};

/// The ISO code of a country named in English ("Russia", "Korea, North", "Côte d'Ivoire").
pub fn country_code(name: &str) -> Option<&'static str> {
    let latin = deunicode::deunicode(name).to_ascii_lowercase();
    let words: Vec<&str> = latin
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let normalised = words.join(" ");
    let normalised = normalised.as_str();
    country_names::COUNTRY_NAMES
        .binary_search_by(|(known, _)| known.cmp(&normalised))
        .ok()
        .map(|index| country_names::COUNTRY_NAMES[index].1)
}

/// Whether `code` is an assigned ISO 3166-1 alpha-2 country code (upper case).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2
        && ISO_3166_ALPHA_2
            .split_whitespace()
            .any(|known| known == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_assigned_codes_only() {
        assert_eq!(ISO_3166_ALPHA_2.split_whitespace().count(), 249);
        for code in [
            "CN", "HK", "SG", "US", "GB", "DE", "CH", "KZ", "JP", "AU", "CA",
        ] {
            assert!(is_country_code(code), "{code}");
        }
        for code in ["XX", "hk", "UK", "H", "HKG", ""] {
            assert!(!is_country_code(code), "{code}");
        }
    }
}
