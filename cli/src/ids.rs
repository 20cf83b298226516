//! Random identifiers for licenses, certificates and token ids: a prefix and 128 random
//! bits in lowercase Crockford base32 (`lic_01hx…`, 26 characters).

/// Crockford's base32 alphabet, lowercase: no `i l o u`, so ids survive being read aloud.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new id `PREFIX_` + 26 base32 characters from the operating system's random generator.
pub fn random_id(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(format!("{prefix}_{}", encode(u128::from_be_bytes(bytes))))
}

fn encode(mut value: u128) -> String {
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_prefix_and_26_base32_characters() {
        let id = random_id("lic").expect("rng");
        let body = id.strip_prefix("lic_").expect("prefixed");
        assert_eq!(body.len(), 26);
        assert!(body.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(random_id("lic").expect("rng"), id);
    }

    #[test]
    fn encoding_is_big_endian_base32() {
        assert_eq!(encode(0), "0".repeat(26));
        assert_eq!(encode(u128::MAX), format!("7{}", "z".repeat(25)));
        assert_eq!(encode(33), format!("{}11", "0".repeat(24)));
    }
}
