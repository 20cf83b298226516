//! k-of-n shares of a root key: Shamir's scheme over GF(256) (the `blahaj` crate) on the
//! key's 32-byte seed, each share sealed under its custodian's passphrase.
//!
//! A share file says which key it belongs to, its index and the threshold, in the clear, so
//! that a set can be checked (same key, enough shares, no share twice) before anyone types
//! a passphrase. Those labels are not trusted: the key rebuilt from the shares must have the
//! key id the labels name, or nothing is signed. So an altered label or share value cannot
//! make a different key sign; it only makes the rebuild fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use blahaj::{Share, Sharks};
use mcpg_license_core::sealed::{self, Argon2Cost, SealError};
use mcpg_license_core::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::files::{self, FileError};

/// The `type` of a share file.
pub const SHARE_TYPE: &str = "mcpg-root-share-v1";

/// One share as written to its file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    /// Always [`SHARE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Key id (`k4.pid…`) of the key the shares rebuild.
    pub kid: String,
    /// Its public key (`k4.public…`), so a custodian can see what the share belongs to.
    pub public_key: String,
    /// This share's index (its x coordinate, 1…255).
    pub index: u8,
    /// How many shares rebuild the key.
    pub threshold: u8,
    /// How many shares were made.
    pub shares: u8,
    /// The share's 32 bytes, sealed under the custodian's passphrase (`k4.local-pw…`).
    pub sealed: String,
}

/// Why shares could not be made or used.
#[derive(Debug, Error)]
pub enum ShareError {
    /// Threshold and count out of range.
    #[error("--threshold {threshold} of --shares {shares}: need 2 <= threshold <= shares <= 255")]
    Counts {
        /// k.
        threshold: u8,
        /// n.
        shares: u8,
    },
    /// A file that is not a share.
    #[error("{} is not an MCPG key share: {reason}", path.display())]
    NotAShare {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Shares of different keys (or sets with different thresholds).
    #[error("{} belongs to key {other} (threshold {other_threshold}), but {} belongs to key {kid} (threshold {threshold}): shares of another key", other_path.display(), path.display())]
    OtherKey {
        /// The first share.
        path: PathBuf,
        /// Its key.
        kid: String,
        /// Its threshold.
        threshold: u8,
        /// The share that differs.
        other_path: PathBuf,
        /// Its key.
        other: String,
        /// Its threshold.
        other_threshold: u8,
    },
    /// The same share given twice.
    #[error("{} and {} are the same share (index {index}); each share counts once", first.display(), second.display())]
    Repeated {
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// The index both carry.
        index: u8,
    },
    /// Fewer shares than the threshold.
    #[error("key {kid} needs {threshold} shares; {given} given")]
    TooFew {
        /// The key.
        kid: String,
        /// k.
        threshold: u8,
        /// How many were given.
        given: usize,
    },
    /// A share that does not open.
    #[error("share {} does not open", path.display())]
    Unsealing {
        /// The file.
        path: PathBuf,
        /// Why (a wrong passphrase and an altered file are not told apart).
        source: SealError,
    },
    /// The shares open but rebuild another key.
    #[error(
        "the shares rebuild key {rebuilt}, not {expected}: a share was altered or belongs to another split"
    )]
    Mismatch {
        /// What the labels name.
        expected: String,
        /// What came out.
        rebuilt: String,
    },
    /// A share file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Splits `key` into `shares` shares, any `threshold` of which rebuild it; share `i` is
/// sealed under `passphrase(i)`. The whole secret is never written anywhere.
pub fn split(
    key: &SigningKey,
    threshold: u8,
    shares: u8,
    cost: Argon2Cost,
    mut passphrase: impl FnMut(u8) -> anyhow::Result<Zeroizing<Vec<u8>>>,
) -> anyhow::Result<Vec<ShareFile>> {
    if threshold < 2 || threshold > shares {
        return Err(ShareError::Counts { threshold, shares }.into());
    }
    let seed = key.seed_bytes();
    let mut out = Vec::with_capacity(usize::from(shares));
    for mut share in Sharks(threshold).dealer(seed.as_ref()).take(shares.into()) {
        let mut bytes = Zeroizing::new(Vec::from(&share));
        share.zeroize();
        let index = bytes[0];
        let mut value = Zeroizing::new([0u8; 32]);
        value.copy_from_slice(&bytes[1..]);
        bytes.zeroize();
        let sealed = sealed::seal_local(&value, &passphrase(index)?, cost)?;
        out.push(ShareFile {
            kind: SHARE_TYPE.to_owned(),
            kid: key.kid().to_string(),
            public_key: key.public_key().to_paserk(),
            index,
            threshold,
            shares,
            sealed,
        });
    }
    Ok(out)
}

/// Share files read and checked as a set (same key, same threshold, no repeats, enough of
/// them) but not yet opened: nobody types a passphrase for a set that cannot work.
#[derive(Debug)]
pub struct ShareSet {
    /// The key the labels name.
    pub kid: String,
    /// Its public key, from the labels.
    pub public_key: String,
    /// k.
    pub threshold: u8,
    /// The shares, with their files.
    pub shares: Vec<(PathBuf, ShareFile)>,
}

impl ShareSet {
    /// Reads and checks `paths`.
    pub fn read(paths: &[PathBuf]) -> Result<Self, ShareError> {
        let mut shares = Vec::with_capacity(paths.len());
        for path in paths {
            shares.push((path.clone(), read_share(path)?));
        }
        let Some((first_path, first)) = shares.first() else {
            return Err(ShareError::TooFew {
                kid: "(none)".into(),
                threshold: 2,
                given: 0,
            });
        };
        let mut seen: BTreeMap<u8, &Path> = BTreeMap::new();
        for (path, share) in &shares {
            if share.kid != first.kid
                || share.threshold != first.threshold
                || share.public_key != first.public_key
            {
                return Err(ShareError::OtherKey {
                    path: first_path.clone(),
                    kid: first.kid.clone(),
                    threshold: first.threshold,
                    other_path: path.clone(),
                    other: share.kid.clone(),
                    other_threshold: share.threshold,
                });
            }
            if let Some(earlier) = seen.insert(share.index, path) {
                return Err(ShareError::Repeated {
                    first: earlier.to_owned(),
                    second: path.clone(),
                    index: share.index,
                });
            }
        }
        if shares.len() < usize::from(first.threshold) {
            return Err(ShareError::TooFew {
                kid: first.kid.clone(),
                threshold: first.threshold,
                given: shares.len(),
            });
        }
        Ok(Self {
            kid: first.kid.clone(),
            public_key: first.public_key.clone(),
            threshold: first.threshold,
            shares,
        })
    }

    /// Opens each share with `passphrase(position, file)` and rebuilds the key in memory;
    /// refuses a key whose id is not the one the labels name.
    pub fn rebuild(
        &self,
        mut passphrase: impl FnMut(usize, &Path) -> anyhow::Result<Zeroizing<Vec<u8>>>,
    ) -> anyhow::Result<SigningKey> {
        let mut opened = Vec::with_capacity(self.shares.len());
        for (position, (path, share)) in self.shares.iter().enumerate() {
            let phrase = passphrase(position, path)?;
            let value = sealed::open_local(&share.sealed, &phrase).map_err(|source| {
                ShareError::Unsealing {
                    path: path.clone(),
                    source,
                }
            })?;
            let mut bytes = Zeroizing::new(Vec::with_capacity(33));
            bytes.push(share.index);
            bytes.extend_from_slice(value.as_ref());
            opened.push(
                Share::try_from(bytes.as_slice())
                    .map_err(|reason| anyhow::anyhow!("share {}: {reason}", path.display()))?,
            );
        }
        let result = self.combine(&opened);
        for share in &mut opened {
            share.zeroize();
        }
        result
    }

    fn combine(&self, opened: &[Share]) -> anyhow::Result<SigningKey> {
        let key = recover(self.threshold, opened.iter())?;
        if key.kid().as_str() == self.kid {
            return Ok(key);
        }
        // With more shares than the threshold, the one that does not fit can be named: the
        // others, without it, rebuild the expected key. Nothing is signed either way.
        if opened.len() > usize::from(self.threshold) {
            for (left_out, (path, _)) in self.shares.iter().enumerate() {
                let others = opened
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != left_out)
                    .map(|(_, share)| share);
                if recover(self.threshold, others).is_ok_and(|k| k.kid().as_str() == self.kid) {
                    anyhow::bail!(
                        "share {} does not fit the others (altered, or from another split of this key): leave it out",
                        path.display()
                    );
                }
            }
        }
        Err(ShareError::Mismatch {
            expected: self.kid.clone(),
            rebuilt: key.kid().to_string(),
        }
        .into())
    }
}

/// Lagrange interpolation of `shares` at zero: the 32-byte seed, as a key.
fn recover<'a>(
    threshold: u8,
    shares: impl Iterator<Item = &'a Share>,
) -> anyhow::Result<SigningKey> {
    let shares: Vec<&Share> = shares.collect();
    let secret = Sharks(threshold)
        .recover(shares)
        .map(Zeroizing::new)
        .map_err(|reason| anyhow::anyhow!("the shares do not combine: {reason}"))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    if secret.len() != seed.len() {
        anyhow::bail!("the shares do not hold a 32-byte key");
    }
    seed.copy_from_slice(&secret);
    Ok(SigningKey::from_seed(&seed))
}

fn read_share(path: &Path) -> Result<ShareFile, ShareError> {
    let not_a_share = |reason: String| ShareError::NotAShare {
        path: path.to_owned(),
        reason,
    };
    let text = files::read_text(path)?;
    let share: ShareFile = serde_json::from_str(&text).map_err(|e| not_a_share(e.to_string()))?;
    if share.kind != SHARE_TYPE {
        return Err(not_a_share(format!("type {:?}", share.kind)));
    }
    let public =
        PublicKey::from_paserk(&share.public_key).map_err(|e| not_a_share(e.to_string()))?;
    if public.kid().as_str() != share.kid {
        return Err(not_a_share("its kid is not its public key's id".into()));
    }
    if let Err(e) = sealed::check_sealed_local(&share.sealed) {
        return Err(not_a_share(format!("its sealed value: {e}")));
    }
    if share.index == 0 || share.threshold < 2 || share.threshold > share.shares {
        return Err(not_a_share(format!(
            "index {} and threshold {} of {} are impossible",
            share.index, share.threshold, share.shares
        )));
    }
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Cost {
        Argon2Cost::new(8, 1).expect("cost")
    }

    fn phrase(index: u8) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(format!("custodian {index} passphrase").into_bytes())
    }

    #[test]
    fn any_three_of_five_shares_rebuild_the_key_and_two_do_not() {
        let key = SigningKey::generate().expect("rng");
        let shares = split(&key, 3, 5, cheap(), |i| Ok(phrase(i))).expect("split");
        assert_eq!(shares.len(), 5);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = shares
            .iter()
            .map(|share| {
                let path = dir.path().join(format!("share-{}.json", share.index));
                let text = serde_json::to_string(share).expect("json");
                std::fs::write(&path, text).expect("write");
                path
            })
            .collect();
        let chosen = vec![paths[4].clone(), paths[0].clone(), paths[2].clone()];
        let set = ShareSet::read(&chosen).expect("a set");
        let rebuilt = set
            .rebuild(|position, _| Ok(phrase(set.shares[position].1.index)))
            .expect("rebuilds");
        assert_eq!(rebuilt.public_key(), key.public_key());
        assert!(matches!(
            ShareSet::read(&paths[..2]),
            Err(ShareError::TooFew { given: 2, .. })
        ));
        let twice = vec![paths[0].clone(), paths[1].clone(), paths[0].clone()];
        assert!(matches!(
            ShareSet::read(&twice),
            Err(ShareError::Repeated { index: 1, .. })
        ));
    }
}
