//! The groups file (`auth.groups_file`), in the format of Apache's `AuthGroupFile`.
//!
//! One `group: member member …` per line, members separated by spaces; a member is a user of
//! the user file or a token of the token file. A group may span several lines (they add up).
//! Blank lines and `#` comments are skipped. A member that names no known user or token is
//! kept: users may be added later, and the groups file is not a place to check spelling.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::{Lines, valid_name};
use crate::AccessError;

/// Parses a groups file into member → its groups (sorted, deduplicated).
pub(crate) fn parse(
    path: &Path,
    text: &str,
) -> Result<HashMap<String, BTreeSet<String>>, AccessError> {
    let mut membership: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (line_no, line) in Lines::new(text) {
        let bad = |reason: &str| AccessError::Line {
            path: path.to_path_buf(),
            line: line_no,
            reason: reason.to_string(),
        };
        let Some((group, members)) = line.split_once(':') else {
            return Err(bad("expected group: member member …"));
        };
        let group = group.trim();
        if !valid_name(group) {
            return Err(bad(
                "the group name is empty or has whitespace or control characters",
            ));
        }
        for member in members.split_whitespace() {
            if !valid_name(member) {
                return Err(bad("a member name has ':' or control characters"));
            }
            membership
                .entry(member.to_string())
                .or_default()
                .insert(group.to_string());
        }
    }
    Ok(membership)
}
