//! "Did you mean …?": the closest candidate by edit distance, if it is close enough to be a
//! plausible typo.

/// The candidate closest to `input`, when the edit distance (ignoring case) is at most a
/// third of the input's length (and at least 1).
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = input.to_lowercase();
    let budget = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&wanted, &c.to_lowercase()), c))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, c)| (*distance, *c))
        .map(|(_, c)| c)
}

/// `Some("did you mean `x`?")` for the closest candidate.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(input, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_seed_gateway() {
        assert_eq!(
            closest("my-egressgw", ["myeg", "myegressgw"]),
            Some("myegressgw")
        );
    }

    #[test]
    fn refuses_far_candidates() {
        assert_eq!(closest("backend", ["myeg", "frontend-gateway"]), None);
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(
            closest("destinationCIDR", ["destinationCIDRs", "excludedCIDRs"]),
            Some("destinationCIDRs")
        );
    }
}
