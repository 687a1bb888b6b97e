//! [`Verdict`]: what a check concluded about one object.

/// What a check concluded about one object: accepted, or refused with the reason. Distinct
/// from a [`BundleError`](crate::BundleError), which stops the whole run: a refused object is
/// listed in the run's report and the run goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub(crate) enum Verdict {
    /// It passed: proven in the signed tree, consistent with every record it must agree with.
    Accepted,
    /// It did not, for this reason (one line).
    Refused(String),
}

/// `return Ok(Verdict::Refused(format!(…)))`: refuses from a check that returns
/// `Result<Verdict, BundleError>`.
macro_rules! refuse {
    ($($reason:tt)+) => {
        return Ok($crate::verdict::Verdict::Refused(format!($($reason)+)))
    };
}

pub(crate) use refuse;
