//! "Did you mean" suggestions and lists of valid values for `help:` lines.
//!
//! A name within two edits of a valid one (Levenshtein distance, counting a swap of adjacent
//! characters as one edit, so `pnog` is closest to `pong`), or a prefix of one, is probably a
//! typo of it; the valid values are listed either way, so the user never has to guess.

/// How many valid values a help line lists before eliding the rest.
const MAX_LISTED: usize = 16;

/// The valid value `given` is most likely a typo of, if any.
pub fn did_you_mean<'a>(given: &str, valid: &'a [String]) -> Option<&'a str> {
    valid
        .iter()
        .filter(|candidate| candidate.as_str() != given)
        .filter_map(|candidate| {
            let distance = distance(given, candidate);
            let close = distance <= 2 && distance < given.chars().count().max(2);
            let prefix = !given.is_empty() && candidate.starts_with(given);
            (close || prefix).then_some((distance, candidate.as_str()))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A help line: ``did you mean `x`? valid <noun>: a, b``, or just the list; `None` when nothing
/// is valid.
pub(super) fn help(given: &str, noun: &str, valid: &[String]) -> Option<String> {
    if valid.is_empty() {
        return None;
    }
    let list = list(valid);
    Some(match did_you_mean(given, valid) {
        Some(close) => format!("did you mean `{close}`? valid {noun}: {list}"),
        None => format!("valid {noun}: {list}"),
    })
}

/// `a, b, c`, elided past [`MAX_LISTED`].
pub(super) fn list(valid: &[String]) -> String {
    let mut out = valid
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if valid.len() > MAX_LISTED {
        out.push_str(&format!(", ... ({} more)", valid.len() - MAX_LISTED));
    }
    out
}

/// The number of single-character insertions, deletions, substitutions and swaps of adjacent
/// characters from `a` to `b` (optimal string alignment distance).
pub(super) fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the classic table: two rows back (for swaps), the previous one, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitute = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            current[j] = substitute.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}
