//! Destination addresses: the network each asset travels on, and the address format of each
//! network checked to its checksum, so a mistyped address is refused before any money moves.
//!
//! - Bitcoin: Base58Check P2PKH (`1…`) and P2SH (`3…`), and SegWit Bech32 (v0, BIP 173) and
//!   Bech32m (v1+, BIP 350, e.g. Taproot `bc1p…`); mainnet only.
//! - Ethereum (ETH, ERC-20 USDT): `0x` and 40 hex digits; mixed case must match its EIP-55 checksum.
//! - Tron (TRC-20 USDT): Base58Check with version byte 0x41 (`T…`).

use sha2::{Digest, Sha256};
use sha3::Keccak256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Bitcoin,
    Ethereum,
    Tron,
}

impl Network {
    pub const ALL: [Network; 3] = [Network::Bitcoin, Network::Ethereum, Network::Tron];

    pub fn as_str(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Ethereum => "ethereum",
            Network::Tron => "tron",
        }
    }

    pub fn parse(text: &str) -> Option<Network> {
        Network::ALL
            .into_iter()
            .find(|network| network.as_str() == text)
    }

    /// The networks an asset may be withdrawn on.
    pub fn for_asset(asset: &str) -> &'static [Network] {
        match asset {
            "BTC" => &[Network::Bitcoin],
            "ETH" => &[Network::Ethereum],
            "USDT" => &[Network::Ethereum, Network::Tron],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{asset} cannot be withdrawn on {network}; use {allowed}")]
    WrongNetwork {
        asset: String,
        network: &'static str,
        allowed: String,
    },
    #[error("not a {0} address: {1}")]
    Malformed(&'static str, &'static str),
    #[error("the {0} address checksum does not match: a character is wrong")]
    Checksum(&'static str),
}

/// Checks that `address` is valid for `network` and that `asset` travels on it.
pub fn validate(asset: &str, network: Network, address: &str) -> Result<(), AddressError> {
    let allowed = Network::for_asset(asset);
    if !allowed.contains(&network) {
        return Err(AddressError::WrongNetwork {
            asset: asset.to_string(),
            network: network.as_str(),
            allowed: allowed
                .iter()
                .map(|network| network.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    validate_format(network, address)
}

/// The address's format and checksum on its network, whatever the asset.
pub fn validate_format(network: Network, address: &str) -> Result<(), AddressError> {
    match network {
        Network::Bitcoin => bitcoin(address),
        Network::Ethereum => ethereum(address),
        Network::Tron => tron(address),
    }
}

fn bitcoin(address: &str) -> Result<(), AddressError> {
    const NAME: &str = "Bitcoin";
    if address.len() >= 4
        && address
            .get(..3)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bc1"))
    {
        return segwit(address);
    }
    let bytes = base58check(address).map_err(|problem| match problem {
        Base58Problem::Checksum => AddressError::Checksum(NAME),
        Base58Problem::Alphabet => {
            AddressError::Malformed(NAME, "only Base58 characters (no 0, O, I or l)")
        }
    })?;
    match (bytes.len(), bytes.first()) {
        (21, Some(0x00 | 0x05)) => Ok(()),
        (21, Some(_)) => Err(AddressError::Malformed(
            NAME,
            "a mainnet address starts with 1, 3 or bc1",
        )),
        _ => Err(AddressError::Malformed(NAME, "wrong length")),
    }
}

fn ethereum(address: &str) -> Result<(), AddressError> {
    const NAME: &str = "Ethereum";
    let hex = address
        .strip_prefix("0x")
        .ok_or(AddressError::Malformed(NAME, "it starts with 0x"))?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::Malformed(
            NAME,
            "0x and 40 hexadecimal digits",
        ));
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if !(has_lower && has_upper) {
        // Single case carries no checksum (EIP-55).
        return Ok(());
    }
    let digest = Keccak256::digest(hex.to_ascii_lowercase().as_bytes());
    for (index, character) in hex.bytes().enumerate() {
        let nibble = (digest[index / 2] >> (if index % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if character.is_ascii_alphabetic() && character.is_ascii_uppercase() != (nibble >= 8) {
            return Err(AddressError::Checksum(NAME));
        }
    }
    Ok(())
}

fn tron(address: &str) -> Result<(), AddressError> {
    const NAME: &str = "Tron";
    let bytes = base58check(address).map_err(|problem| match problem {
        Base58Problem::Checksum => AddressError::Checksum(NAME),
        Base58Problem::Alphabet => AddressError::Malformed(NAME, "only Base58 characters"),
    })?;
    if bytes.len() == 21 && bytes[0] == 0x41 {
        Ok(())
    } else {
        Err(AddressError::Malformed(
            NAME,
            "a Tron address starts with T and has 34 characters",
        ))
    }
}

enum Base58Problem {
    Alphabet,
    Checksum,
}

/// Decodes Base58Check: the payload without its 4-byte double-SHA-256 checksum.
fn base58check(text: &str) -> Result<Vec<u8>, Base58Problem> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if text.is_empty() || text.len() > 64 {
        return Err(Base58Problem::Alphabet);
    }
    // Big-endian base-256 digits, least significant last.
    let mut bytes: Vec<u8> = Vec::with_capacity(32);
    for character in text.bytes() {
        let mut carry = ALPHABET
            .iter()
            .position(|&a| a == character)
            .ok_or(Base58Problem::Alphabet)? as u32;
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let leading_zeros = text.bytes().take_while(|&b| b == b'1').count();
    let mut decoded = vec![0u8; leading_zeros];
    decoded.extend(bytes);
    if decoded.len() < 5 {
        return Err(Base58Problem::Checksum);
    }
    let (payload, checksum) = decoded.split_at(decoded.len() - 4);
    let digest = Sha256::digest(Sha256::digest(payload));
    if &digest[..4] != checksum {
        return Err(Base58Problem::Checksum);
    }
    Ok(payload.to_vec())
}

/// BIP 173 / BIP 350 SegWit address on mainnet (`bc`).
fn segwit(address: &str) -> Result<(), AddressError> {
    const NAME: &str = "Bitcoin";
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const BECH32: u32 = 1;
    const BECH32M: u32 = 0x2bc8_30a3;
    if address.len() > 90 {
        return Err(AddressError::Malformed(NAME, "too long"));
    }
    let has_lower = address.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = address.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        return Err(AddressError::Malformed(NAME, "mixed upper and lower case"));
    }
    let lower = address.to_ascii_lowercase();
    let (hrp, data) = lower
        .rsplit_once('1')
        .ok_or(AddressError::Malformed(NAME, "no separator"))?;
    if hrp != "bc" || data.len() < 6 {
        return Err(AddressError::Malformed(
            NAME,
            "a mainnet SegWit address starts with bc1",
        ));
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()
        .ok_or(AddressError::Malformed(
            NAME,
            "a character outside the Bech32 alphabet",
        ))?;
    let mut expanded: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    expanded.push(0);
    expanded.extend(hrp.bytes().map(|b| b & 31));
    expanded.extend(&values);
    let constant = polymod(&expanded);
    let version = values[0];
    let expected = if version == 0 { BECH32 } else { BECH32M };
    if constant != expected {
        return Err(AddressError::Checksum(NAME));
    }
    let program = convert_bits(&values[1..values.len() - 6])
        .ok_or(AddressError::Malformed(NAME, "invalid padding"))?;
    let length_ok = match version {
        0 => program.len() == 20 || program.len() == 32,
        1..=16 => (2..=40).contains(&program.len()),
        _ => false,
    };
    if length_ok {
        Ok(())
    } else {
        Err(AddressError::Malformed(
            NAME,
            "wrong witness program length",
        ))
    }
}

fn polymod(values: &[u8]) -> u32 {
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut checksum: u32 = 1;
    for value in values {
        let top = checksum >> 25;
        checksum = ((checksum & 0x01ff_ffff) << 5) ^ u32::from(*value);
        for (bit, generator) in GENERATOR.iter().enumerate() {
            if (top >> bit) & 1 == 1 {
                checksum ^= generator;
            }
        }
    }
    checksum
}

/// 5-bit groups to bytes; padding must be zero and shorter than a group.
fn convert_bits(data: &[u8]) -> Option<Vec<u8>> {
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    for value in data {
        accumulator = (accumulator << 5) | u32::from(*value);
        bits += 5;
        while bits >= 8 {
            bits -= 8;
            out.push(((accumulator >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (accumulator << (8 - bits)) & 0xff != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real mainnet addresses from the OFAC SDN list (public data).
    const BITCOIN: [&str; 5] = [
        "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h",
        "1Kuf2Rd8mDyAViwBozGTNYnvWL8uYFrkVo",
        "bc1qsmv6lkrw65l30yazdqpdjjtwzpvk9f8gfh0cy7",
        "bc1qe95l438kzjcvnsm3kn8n5augf9gpctdlhsq7f7hpnkyvlr7rc7cqupapf7",
        // BIP 350 test vector: a Taproot (v1, Bech32m) address.
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    ];

    #[test]
    fn text_that_is_not_ascii_is_malformed_not_a_panic() {
        // Found by fuzzing: slicing "bc1" off the first three bytes split a character.
        for address in ["ééé1", "b\u{7248e}c1qar0srrr", "\u{10ffff}\u{10ffff}"] {
            for network in [Network::Bitcoin, Network::Ethereum, Network::Tron] {
                assert!(validate_format(network, address).is_err(), "{address}");
            }
        }
    }

    #[test]
    fn real_addresses_are_accepted() {
        for address in BITCOIN {
            assert_eq!(
                validate("BTC", Network::Bitcoin, address),
                Ok(()),
                "{address}"
            );
        }
        // P2SH, and a SegWit address in upper case.
        assert_eq!(
            validate(
                "BTC",
                Network::Bitcoin,
                "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                "BTC",
                Network::Bitcoin,
                "BC1QSMV6LKRW65L30YAZDQPDJJTWZPVK9F8GFH0CY7"
            ),
            Ok(())
        );
        for address in [
            "0x7F367cC41522cE07553e823bf3be79A889DEbe1B",
            "0xd882cfc20f52f2599d84b8e8d58c7fb62cfe344b",
            // EIP-55's own examples.
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        ] {
            assert_eq!(
                validate("USDT", Network::Ethereum, address),
                Ok(()),
                "{address}"
            );
            assert_eq!(
                validate("ETH", Network::Ethereum, address),
                Ok(()),
                "{address}"
            );
        }
        assert_eq!(
            validate("USDT", Network::Tron, "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre"),
            Ok(())
        );
    }

    #[test]
    fn one_wrong_character_is_caught() {
        assert_eq!(
            validate(
                "BTC",
                Network::Bitcoin,
                "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9i"
            ),
            Err(AddressError::Checksum("Bitcoin"))
        );
        assert_eq!(
            validate(
                "BTC",
                Network::Bitcoin,
                "bc1qsmv6lkrw65l30yazdqpdjjtwzpvk9f8gfh0cy8"
            ),
            Err(AddressError::Checksum("Bitcoin"))
        );
        // A v0 program with a Bech32m checksum (BIP 350 invalid vector shape).
        assert!(validate(
            "BTC",
            Network::Bitcoin,
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj1"
        )
        .is_err());
        assert_eq!(
            validate(
                "USDT",
                Network::Ethereum,
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
            ),
            Err(AddressError::Checksum("Ethereum"))
        );
        assert_eq!(
            validate("USDT", Network::Tron, "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLrf"),
            Err(AddressError::Checksum("Tron"))
        );
    }

    #[test]
    fn malformed_addresses_and_wrong_networks_are_named() {
        for (asset, network, address) in [
            ("BTC", Network::Bitcoin, "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl"),
            (
                "BTC",
                Network::Bitcoin,
                "tb1qw508d6qejxtdg4c0ap9ad4yth7vqf3gkas",
            ),
            (
                "BTC",
                Network::Bitcoin,
                "bc1QsMv6lkrw65l30yazdqpdjjtwzpvk9f8gfh0cy7",
            ),
            (
                "USDT",
                Network::Ethereum,
                "7F367cC41522cE07553e823bf3be79A889DEbe1B",
            ),
            (
                "USDT",
                Network::Ethereum,
                "0x7F367cC41522cE07553e823bf3be79A889DEbe1",
            ),
            ("USDT", Network::Tron, "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"),
        ] {
            assert!(
                matches!(
                    validate(asset, network, address),
                    Err(AddressError::Malformed(..))
                ),
                "{address}"
            );
        }
        assert!(matches!(
            validate(
                "BTC",
                Network::Ethereum,
                "0x7F367cC41522cE07553e823bf3be79A889DEbe1B"
            ),
            Err(AddressError::WrongNetwork { .. })
        ));
        assert!(matches!(
            validate(
                "USDT",
                Network::Bitcoin,
                "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"
            ),
            Err(AddressError::WrongNetwork { .. })
        ));
    }

    /// Every Bitcoin, Ethereum and Tron address on the OFAC SDN list (read by the list
    /// importer, which joins remarks continued in the comments file) passes its network's check.
    #[test]
    fn every_listed_address_is_valid_for_its_network() {
        let directory = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/sanctions"
        ));
        let (_, entries) = crate::aml::import::read_list(
            crate::aml::lists::ListSource::OfacSdn,
            &[
                directory.join("ofac"),
                directory.join("ofac-addresses/sdn_comments.csv"),
            ],
        )
        .unwrap();
        let mut checked = 0;
        let mut refused = Vec::new();
        for listed in entries.iter().flat_map(|entry| &entry.crypto_addresses) {
            let (asset, network) = match listed.currency.as_str() {
                "XBT" => ("BTC", Network::Bitcoin),
                "ETH" => ("ETH", Network::Ethereum),
                "TRX" => ("USDT", Network::Tron),
                _ => continue,
            };
            if let Err(error) = validate(asset, network, &listed.address) {
                refused.push((listed.address.clone(), error));
            }
            checked += 1;
        }
        assert!(checked > 300, "only {checked} listed addresses");
        // OFAC lists one ETH address of entry 29702 with 39 hex digits: it cannot be valid.
        assert_eq!(
            refused,
            vec![(
                "0xa7e5d5a720f06526557c513402f2e6b5fa20b00".to_string(),
                AddressError::Malformed("Ethereum", "0x and 40 hexadecimal digits")
            )],
            "of {checked}"
        );
    }
}
