//! Environment expansion in config values (SPEC §1.1): `${VAR}`, `$VAR`, `${VAR:-default}`
//! and `$$` for a literal `$`. Applied to each parsed string, never to the raw file, so
//! positions stay true.

/// Why a value could not be expanded. Messages name variables, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${VAR}` or `$VAR` with `VAR` unset and no default.
    #[error(
        "environment variable `{0}` is not set; set it, or write ${{{0}:-default}} to give a default"
    )]
    Unset(String),
    /// `${` without its closing `}`.
    #[error("`${{` is not closed by `}}`; write `$$` for a literal `$`")]
    Unclosed,
    /// `${…}` whose content is neither `NAME` nor `NAME:-default`.
    #[error("`${{{0}}}` is not a valid reference; use ${{NAME}} or ${{NAME:-default}}")]
    BadReference(String),
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands references in `text`, looking variables up with `lookup`. A `$` that starts no
/// reference (`5$`, `$1`) is kept as written.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let close = matching_brace(&after[1..]).ok_or(ExpandError::Unclosed)?;
                let inner = &after[1..=close];
                out.push_str(&braced(inner, lookup)?);
                rest = &after[close + 2..];
            }
            Some(c) if is_name_start(c) => {
                let end = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
                let name = &after[..end];
                out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset(name.to_owned()))?);
                rest = &after[end..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The byte index of the `}` closing a `${` whose content starts `text`, allowing nested
/// `${…}` in a default.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0_usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Expands the content of `${…}`: `NAME` or `NAME:-default` (default used when `NAME` is unset
/// or empty, as in the shell; the default is itself expanded).
fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let valid = name.chars().next().is_some_and(is_name_start) && name.chars().all(is_name_char);
    if !valid {
        return Err(ExpandError::BadReference(inner.to_owned()));
    }
    match (lookup(name), default) {
        (Some(value), Some(_)) if !value.is_empty() => Ok(value),
        (Some(value), None) => Ok(value),
        (_, Some(default)) => expand(default, lookup),
        (None, None) => Err(ExpandError::Unset(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            "PASS" => Some("s3cr$t".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, ExpandError> {
        expand(text, &env)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("no references here").unwrap(), "no references here");
    }

    #[test]
    fn both_reference_forms_expand() {
        assert_eq!(run("${HOME}/x").unwrap(), "/root/x");
        assert_eq!(run("$HOME/x").unwrap(), "/root/x");
        assert_eq!(run("a${HOME}b$HOME.c").unwrap(), "a/rootb/root.c");
        assert_eq!(
            run("$HOMEX").unwrap_err(),
            ExpandError::Unset("HOMEX".into())
        );
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(run("$$").unwrap(), "$");
        assert_eq!(run("pa$$word").unwrap(), "pa$word");
        assert_eq!(run("$$HOME").unwrap(), "$HOME");
        assert_eq!(run("$$$HOME").unwrap(), "$/root");
        assert_eq!(run("$${HOME}").unwrap(), "${HOME}");
    }

    #[test]
    fn expanded_values_are_not_expanded_again() {
        assert_eq!(run("${PASS}").unwrap(), "s3cr$t");
    }

    #[test]
    fn a_dollar_that_starts_no_reference_is_kept() {
        assert_eq!(run("5$").unwrap(), "5$");
        assert_eq!(run("$1 and $-").unwrap(), "$1 and $-");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${HOME:-fallback}").unwrap(), "/root");
        assert_eq!(run("${NOPE:-}").unwrap(), "");
        assert_eq!(run("${NOPE:-${HOME}/d}").unwrap(), "/root/d");
        assert_eq!(run("${NOPE:-a:-b}").unwrap(), "a:-b");
        assert_eq!(run("${EMPTY}").unwrap(), "");
    }

    #[test]
    fn unset_variables_are_named_in_the_error() {
        let err = run("${MISSING}").unwrap_err();
        assert_eq!(err, ExpandError::Unset("MISSING".into()));
        assert_eq!(
            err.to_string(),
            "environment variable `MISSING` is not set; set it, or write ${MISSING:-default} to give a default"
        );
        assert_eq!(
            run("${NOPE:-${ALSO_MISSING}}").unwrap_err(),
            ExpandError::Unset("ALSO_MISSING".into())
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert_eq!(run("${HOME").unwrap_err(), ExpandError::Unclosed);
        assert_eq!(
            run("${}").unwrap_err(),
            ExpandError::BadReference(String::new())
        );
        assert_eq!(
            run("${1A}").unwrap_err(),
            ExpandError::BadReference("1A".into())
        );
        assert_eq!(
            run("${A:?x}").unwrap_err(),
            ExpandError::BadReference("A:?x".into())
        );
    }
}
