//! Splits one line into words under the quoting rules of the module doc (`config`). It knows
//! nothing of directives; it only turns characters into words or says why it cannot.

/// Splits `line` into words. `comments` makes a `#` at the start of a word end the line.
pub fn words(line: &str, comments: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None => return Ok(out),
            Some('#') if comments => return Ok(out),
            Some(_) => {}
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            if c == '"' {
                quoted(&mut chars, &mut word)?;
            } else if c.is_control() {
                return Err(format!("control character {:?} in a word", c));
            } else {
                word.push(c);
            }
        }
        out.push(word);
    }
}

/// Reads the rest of a quoted part (after its opening quote) into `word`.
fn quoted(chars: &mut impl Iterator<Item = char>, word: &mut String) -> Result<(), String> {
    loop {
        match chars.next() {
            None => return Err(format!("unterminated quote in \"{word}")),
            Some('"') => return Ok(()),
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => word.push(c),
                // Escaped for the message: a carriage return or an escape sequence there
                // would garble the one line the user reads.
                Some(c) => {
                    let c = c.escape_debug();
                    return Err(format!("bad escape \\{c} in quotes (only \\\" and \\\\)"));
                }
                None => return Err(format!("unterminated quote in \"{word}")),
            },
            Some(c) if c.is_control() && c != '\t' => {
                return Err(format!("control character {:?} in quotes", c));
            }
            Some(c) => word.push(c),
        }
    }
}

/// Writes `word` so that [`words`] reads it back unchanged: bare when it can be, else quoted.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && !word.starts_with('#')
        && !word.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\');
    if plain {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_comments() {
        assert_eq!(words("  node  alpha # c", true).unwrap(), ["node", "alpha"]);
        assert_eq!(
            words(r#"resource exec web start="a \"b\" \\c" x#y"#, true).unwrap(),
            ["resource", "exec", "web", r#"start=a "b" \c"#, "x#y"]
        );
        assert_eq!(words(r##"check x "#" "" "##, true).unwrap(), ["check", "x", "#", ""]);
        assert_eq!(words("a #b", false).unwrap(), ["a", "#b"]);
    }

    #[test]
    fn refuses_bad_quoting() {
        assert!(words(r#"a "b"#, true).unwrap_err().contains("unterminated"));
        assert!(words(r#"a "b\n""#, true).unwrap_err().contains("bad escape \\n"));
        assert!(words("a \"b\\", true).unwrap_err().contains("unterminated"));
        // A control character after the backslash is shown escaped, never raw (the fuzzer
        // found a carriage return garbling the message: tests/fuzz/corpus/cmdline/crash-*).
        let e = words("a \"b\\\r\"", true).unwrap_err();
        assert_eq!(e, r#"bad escape \\r in quotes (only \" and \\)"#);
    }

    #[test]
    fn quote_round_trips() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(r#"q"\"#), r#""q\"\\""#);
        assert_eq!(quote("#x"), "\"#x\"");
        for w in ["plain", "", "a b", "#x", r#"q"\"#, "x#y", "tab\there"] {
            assert_eq!(words(&quote(w), true).unwrap(), [w], "{w:?}");
        }
    }
}
