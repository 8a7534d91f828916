//! Reads a heartbeat v1 `authkeys` only to tell the operator what happens to it: hapair
//! authenticates every frame with HMAC-SHA256 under its own key file, so heartbeat's key is
//! never reused (nor copied anywhere, not even into a finding: the secret is not kept past
//! the word it is on). `heartbeat` generates a new key instead.
//!
//! The format: `auth N` selects the method-id used to send; each `N METHOD [SECRET]` line
//! defines one (`crc` takes no secret, `sha1` and `md5` do).

use super::Findings;

/// What the file said, without its secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthKeys {
    /// The `auth N` method-id.
    pub auth_id: Option<String>,
    /// (method-id, method) of each definition, in file order.
    pub methods: Vec<(String, String)>,
}

impl AuthKeys {
    /// The method the `auth` line selects, if it is defined.
    pub fn active(&self) -> Option<&str> {
        let id = self.auth_id.as_deref()?;
        self.methods.iter().find(|(i, _)| i == id).map(|(_, m)| m.as_str())
    }

    /// The old method in a few words: `method sha1 (id 1)`.
    pub fn old(&self) -> String {
        match (self.auth_id.as_deref(), self.active()) {
            (Some(id), Some("crc")) => format!("method crc (id {id}), which authenticated nothing"),
            (Some(id), Some(m)) => format!("method {m} (id {id})"),
            _ => "no usable method".to_string(),
        }
    }

    /// One sentence on what becomes of the old authentication (for stderr).
    pub fn summary(&self) -> String {
        format!(
            "heartbeat's {} is not reused: hapair authenticates every frame with HMAC-SHA256 \
             under its own key file; a new key was generated",
            self.old()
        )
    }
}

/// Reads `text` (the file authkeys). Secrets are dropped as soon as they are seen.
pub fn parse(text: &str, found: &mut Findings) -> AuthKeys {
    let mut keys = AuthKeys::default();
    for (i, raw) in text.lines().enumerate() {
        let at = format!("authkeys:{}", i + 1);
        let words: Vec<&str> = raw.split_whitespace().take_while(|w| !w.starts_with('#')).collect();
        match words.as_slice() {
            [] => {}
            ["auth", id] => keys.auth_id = Some((*id).to_string()),
            [id, method, ..] if id.bytes().all(|b| b.is_ascii_digit()) => {
                let method = method.to_ascii_lowercase();
                if !matches!(method.as_str(), "crc" | "sha1" | "md5") {
                    found.skip(&at, &format!("method {method}"), "unknown to heartbeat v1");
                }
                keys.methods.push(((*id).to_string(), method));
            }
            // The line may hold a secret: say where it is, never what it says.
            _ => found.skip(&at, "a line (not shown)", "not `auth N` nor `N METHOD [KEY]`"),
        }
    }
    match (&keys.auth_id, keys.active()) {
        (None, _) => found.skip("authkeys", "auth", "no `auth N` line"),
        (Some(id), None) => found.skip("authkeys", &format!("auth {id}"), "method-id not defined"),
        _ => {}
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (AuthKeys, Findings) {
        let mut f = Findings::default();
        (parse(text, &mut f), f)
    }

    #[test]
    fn each_method_is_recognised_and_no_secret_is_kept() {
        for (text, method) in [
            ("auth 1\n1 crc\n", "crc"),
            ("# keys\nauth 2\n1 crc\n2 sha1 SuperSecret1 # x\n", "sha1"),
            ("auth 3\n3 md5 SuperSecret2\n", "md5"),
        ] {
            let (k, f) = read(text);
            assert_eq!(k.active(), Some(method), "{text}");
            assert!(f.not_converted.is_empty(), "{f:?}");
            let shown = format!("{k:?}{f:?}{}", k.summary());
            assert!(!shown.contains("SuperSecret"), "{shown}");
            assert!(k.summary().contains("new key was generated"));
        }
        assert!(read("auth 1\n1 crc\n").0.summary().contains("authenticated nothing"));
    }

    #[test]
    fn problems_are_listed_without_secrets() {
        let (k, f) = read("auth 4\n1 sha1 SuperSecret\nSuperSecret3 alone\nx\n");
        assert_eq!(k.active(), None);
        let all = f.not_converted.join("\n");
        assert!(all.contains("authkeys:3: a line (not shown)"), "{all}");
        assert!(all.contains("authkeys: auth 4: method-id not defined"), "{all}");
        assert!(!all.contains("SuperSecret"), "{all}");
        let (_, f) = read("1 rot13 SuperSecret\n");
        assert!(f.not_converted[0].contains("method rot13"), "{f:?}");
        assert!(f.not_converted[1].contains("no `auth N` line"), "{f:?}");
    }
}
