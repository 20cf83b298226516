//! "Did you mean …?" for ids a human typed: the edit distance between two strings and the
//! one close candidate, if there is exactly one.

/// The Levenshtein distance between `a` and `b`, in characters: the fewest insertions,
/// deletions and substitutions that turn one into the other.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // One row of the classic table, reused: `row[j]` is the distance between the prefix of
    // `a` read so far and the first `j` characters of `b`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The candidate closest to `typed`, when it is close (at most a third of the typed length,
/// and at least one edit) and no other candidate is as close: two equally close candidates
/// suggest nothing rather than a guess.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for candidate in candidates {
        let distance = edit_distance(typed, candidate);
        if distance == 0 || distance > limit {
            continue;
        }
        match best {
            Some((d, _)) if distance > d => {}
            Some((d, _)) if distance == d => tied = true,
            _ => {
                best = Some((distance, candidate));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("cedar", "cedar"), 0);
        assert_eq!(edit_distance("cedr", "cedar"), 1);
        assert_eq!(edit_distance("cedars", "cedar"), 1);
        assert_eq!(edit_distance("cedor", "cedar"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("sitting", "kitten"), 3);
    }

    #[test]
    fn a_typo_suggests_the_one_close_candidate() {
        let ids = [
            "plugin:policy.cedar",
            "plugin:identity.oidc",
            "plugin:identity.saml",
        ];
        assert_eq!(
            closest("plugin:policy.cedr", ids),
            Some("plugin:policy.cedar")
        );
        assert_eq!(
            closest("plugin:identity.odic", ids),
            Some("plugin:identity.oidc")
        );
    }

    #[test]
    fn nothing_is_suggested_when_nothing_is_close_or_two_are_equally_close() {
        let ids = ["plugin:policy.cedar", "plugin:identity.oidc"];
        assert_eq!(closest("plugin:billing.stripe", ids), None);
        assert_eq!(closest("plugin:policy.cedar", ids), None);
        assert_eq!(closest("plugin:a", ["plugin:b", "plugin:c"]), None);
    }
}
