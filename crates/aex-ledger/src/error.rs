//! What can be wrong with a ledger, a signed root or a receipt: always the entry it is about,
//! when there is one, and what is wrong with it.

use std::fmt;

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The input ends inside the entry (a torn append, or a truncated file).
    Incomplete,
    /// Not an entry (or receipt) in the documented encoding; says why.
    Malformed(String),
    /// Another entry stands in its place: one was removed, or entries were reordered.
    OutOfPlace {
        /// The position the entry found there says it has.
        found: u64,
    },
    /// Its bytes are not what the next entry's hash chain says they were (it was changed, or
    /// the next entry's record of it was; without a signed root over both, the chain cannot
    /// tell which).
    Altered,
    /// A signed root that does not verify, or is not over the entries before it; says why.
    BadRoot(String),
    /// The ledger ends before this entry, but a root signed over more entries was seen.
    Missing {
        /// Entries the root seen covers.
        signed: u64,
    },
    /// A receipt that does not prove its entry; says why.
    BadReceipt(String),
    /// Reading or writing the ledger's file failed.
    Io(String),
}

/// A problem, with the entry it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The entry's position, if the problem is about one.
    pub entry: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl Error {
    /// A problem with entry `seq`.
    pub fn at(seq: u64, problem: Problem) -> Self {
        Error {
            entry: Some(seq),
            problem,
        }
    }

    /// A problem with no entry to name (a file, a receipt as a whole).
    pub fn whole(problem: Problem) -> Self {
        Error {
            entry: None,
            problem,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Incomplete => f.write_str("incomplete (the input ends inside it)"),
            Problem::Malformed(why) => write!(f, "malformed: {why}"),
            Problem::OutOfPlace { found } => write!(
                f,
                "out of place: entry {found} stands there (an entry was removed, or entries reordered)"
            ),
            Problem::Altered => f.write_str(
                "altered: the hash the next entry records for it does not match its bytes \
                 (it was changed, or that record was)",
            ),
            Problem::BadRoot(why) => write!(f, "bad signed root: {why}"),
            Problem::Missing { signed } => write!(
                f,
                "missing: the ledger ends before it, but a root signed over {signed} entries was seen (truncated)"
            ),
            Problem::BadReceipt(why) => write!(f, "bad receipt: {why}"),
            Problem::Io(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(seq) => write!(f, "entry {seq}: {}", self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

impl std::error::Error for Error {}
