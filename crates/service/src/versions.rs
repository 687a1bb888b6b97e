//! The few Go semver questions the service asks, answered by `gomod`.

use std::cmp::Ordering;

use gomod::Version;

/// True for a pseudo-version (`v0.0.0-20230102030405-abcdefabcdef` and its two other forms).
pub(crate) fn is_pseudo(version: &Version) -> bool {
    version.is_pseudo()
}

/// Go semver order (build metadata ignored), ties broken by the string so the order is total.
pub(crate) fn compare(a: &Version, b: &Version) -> Ordering {
    a.cmp(b)
}

/// How good a candidate for `@latest` a version is, the go command's way: any release beats any
/// prerelease, which beats any pseudo-version.
pub(crate) fn latest_rank(version: &Version) -> u8 {
    if version.is_pseudo() {
        0
    } else if version.is_prerelease() {
        1
    } else {
        2
    }
}
