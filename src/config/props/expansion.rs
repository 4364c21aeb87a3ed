//! Environment expansion against a reference model of SPEC §1.1.

use super::*;

/// One piece of a value to expand, as the user writes it.
#[derive(Debug, Clone)]
enum Piece {
    /// Text without `$`.
    Literal(String),
    /// `$$`.
    Dollar,
    /// `${NAME}`.
    Braced(&'static str),
    /// `$NAME`, followed by a `/` that ends the name.
    Bare(&'static str),
    /// `${NAME:-default}`, the default without `$` or braces.
    Default(&'static str, String),
    /// `$` and a character that starts no reference (`$1`, `$-`, `$ `).
    Lone(char),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[^$]{0,8}".prop_map(Piece::Literal),
        Just(Piece::Dollar),
        any_name().prop_map(Piece::Braced),
        any_name().prop_map(Piece::Bare),
        (any_name(), "[^${}]{0,6}").prop_map(|(n, d)| Piece::Default(n, d)),
        prop::sample::select(vec!['1', '-', '.', ' ', ':', '/', 'é']).prop_map(Piece::Lone),
    ]
}

fn written(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Literal(text) => text.clone(),
            Piece::Dollar => "$$".into(),
            Piece::Braced(name) => format!("${{{name}}}"),
            Piece::Bare(name) => format!("${name}/"),
            Piece::Default(name, default) => format!("${{{name}:-{default}}}"),
            Piece::Lone(c) => format!("${c}"),
        })
        .collect()
}

/// What SPEC §1.1 says the pieces expand to, written the plain way.
fn reference(pieces: &[Piece]) -> Result<String, ExpandError> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Dollar => out.push('$'),
            Piece::Braced(name) => {
                out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset((*name).into()))?);
            }
            Piece::Bare(name) => {
                out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset((*name).into()))?);
                out.push('/');
            }
            // Like the shell's `:-`, an empty value takes the default too.
            Piece::Default(name, default) => match lookup(name).filter(|v| !v.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(default),
            },
            Piece::Lone(c) => {
                out.push('$');
                out.push(*c);
            }
        }
    }
    Ok(out)
}

proptest! {
    #[test]
    fn expansion_answers_any_text(text in prop_oneof![any::<String>(), "[${}:a-zA-Z_0-9 -]{0,24}"]) {
        let _ = expand(&text, &lookup);
    }

    #[test]
    fn text_without_a_dollar_is_unchanged(text in "[^$]{0,40}") {
        prop_assert_eq!(expand(&text, &lookup), Ok(text));
    }

    #[test]
    fn a_double_dollar_is_one_dollar(chunks in proptest::collection::vec("[^$]{0,6}", 1..6)) {
        prop_assert_eq!(expand(&chunks.join("$$"), &lookup), Ok(chunks.join("$")));
    }

    #[test]
    fn an_unset_variable_takes_its_default(name in prop::sample::select(&UNSET[..]), default in "[^${}]{0,12}") {
        prop_assert_eq!(expand(&format!("${{{name}:-{default}}}"), &lookup), Ok(default));
    }

    /// Expansion equals the reference model; an unset variable without a default is an
    /// error that names the first such variable.
    #[test]
    fn expansion_matches_the_reference_model(pieces in proptest::collection::vec(piece(), 0..8)) {
        let text = written(&pieces);
        prop_assert_eq!(expand(&text, &lookup), reference(&pieces), "expanding {:?}", text);
    }
}
