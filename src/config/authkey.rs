//! The shared key file and `hapair keygen`.
//!
//! Format: the key is the file's content with surrounding whitespace (spaces, tabs, newlines)
//! trimmed, used byte for byte — it is not decoded. It must be at least 16 bytes and at most
//! 1024; under 32 bytes `check` and `run` warn (`AuthKey::warning`, SPEC §7.2). The file must
//! be a regular file owned by root (uid 0) with no group or other permission bits (mode 0600
//! or 0400). `hapair keygen` prints 64 lowercase hex characters (32 bytes from /dev/urandom)
//! and a newline, so `hapair keygen > /etc/hapair/authkey` makes a valid file (then `chmod 600`
//! it, or create it under `umask 077`).
//!
//! This file does no HMAC; `wire` uses the bytes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The shortest key accepted.
pub const KEY_LEN_MIN: usize = 16;
/// The longest key accepted.
pub const KEY_LEN_MAX: usize = 1024;
/// The shortest key accepted without a warning (SPEC §7.2).
pub const KEY_LEN_RECOMMENDED: usize = 32;

/// A loaded key. Its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    bytes: Vec<u8>,
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey({} bytes)", self.bytes.len())
    }
}

impl AuthKey {
    /// The key bytes for the HMAC.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A warning for `check` and `run` when the key is shorter than `KEY_LEN_RECOMMENDED`;
    /// `path` is the file it was loaded from. The length is the key's as loaded: the trimmed
    /// content, byte for byte, which is what the HMAC is keyed with and what `KEY_LEN_MIN`
    /// counts. It is not hex-decoded, because the key is not: 32 hex digits count as 32 bytes
    /// (and carry no warning) though they spell only 16; `hapair keygen`'s 64 count as 64.
    pub fn warning(&self, path: &Path) -> Option<String> {
        let len = self.bytes.len();
        (len < KEY_LEN_RECOMMENDED).then(|| {
            format!(
                "authkey {} holds {len} bytes of key; {KEY_LEN_RECOMMENDED} or more are \
                 recommended (make a new one with hapair keygen)",
                path.display()
            )
        })
    }

    /// A key made from bytes already in memory (tests, simulator). Same length rules.
    pub fn from_bytes(content: &[u8]) -> Result<AuthKey, String> {
        let key = content.trim_ascii();
        if key.len() < KEY_LEN_MIN {
            return Err(format!(
                "holds {} bytes of key; at least {KEY_LEN_MIN} are needed (use hapair keygen)",
                key.len()
            ));
        }
        if key.len() > KEY_LEN_MAX {
            return Err(format!("holds more than {KEY_LEN_MAX} bytes of key"));
        }
        Ok(AuthKey { bytes: key.to_vec() })
    }

    /// Opens and checks the key file. The message names the file; the caller adds where it
    /// was configured.
    pub fn load(path: &Path) -> Result<AuthKey, String> {
        let p = path.display();
        // O_NONBLOCK: a FIFO in its place must not hang us; it is refused below.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("authkey {p}: cannot open: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("authkey {p}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("authkey {p} is not a regular file"));
        }
        if meta.uid() != 0 {
            return Err(format!("authkey {p} is owned by uid {}, not root", meta.uid()));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            let who = if mode & 0o007 != 0 { "others" } else { "its group" };
            return Err(format!(
                "authkey {p} has mode {mode:04o}: readable or writable by {who} (use chmod 600)"
            ));
        }
        let content = read_capped(&mut file).map_err(|e| format!("authkey {p}: {e}"))?;
        AuthKey::from_bytes(&content).map_err(|m| format!("authkey {p} {m}"))
    }
}

fn read_capped(file: &mut File) -> std::io::Result<Vec<u8>> {
    let mut content = Vec::new();
    file.take(KEY_LEN_MAX as u64 * 4).read_to_end(&mut content)?;
    Ok(content)
}

/// A new key in the file's format: 64 lowercase hex characters and a newline.
pub fn keygen() -> std::io::Result<String> {
    let mut raw = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let mut out = String::with_capacity(65);
    for b in raw {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_trimmed_content() {
        assert_eq!(
            AuthKey::from_bytes(b"  0123456789abcdef\n").unwrap().bytes(),
            b"0123456789abcdef"
        );
        assert!(AuthKey::from_bytes(b"0123456789abcde\n").unwrap_err().contains("15 bytes"));
        assert_eq!(
            format!("{:?}", AuthKey::from_bytes(b"0123456789abcdefX").unwrap()),
            "AuthKey(17 bytes)"
        );
    }

    #[test]
    fn a_key_under_32_bytes_as_loaded_is_warned_about() {
        let path = Path::new("/etc/hapair/authkey");
        let warn = |content: &[u8]| AuthKey::from_bytes(content).unwrap().warning(path);
        assert_eq!(
            warn(b"0123456789abcdef\n").as_deref(),
            Some(
                "authkey /etc/hapair/authkey holds 16 bytes of key; 32 or more are recommended \
                 (make a new one with hapair keygen)"
            )
        );
        let k31 = b"0123456789abcdef0123456789abcde";
        assert!(warn(k31).unwrap().contains(" 31 bytes"));
        // Whitespace around the key is not key: 31 bytes with whitespace around are still 31.
        assert!(warn(b" 0123456789abcdef0123456789abcde\n\n").unwrap().contains(" 31 bytes"));
        assert_eq!(warn(b"0123456789abcdef0123456789abcdef\n"), None, "32 bytes");
        assert_eq!(warn(keygen().unwrap().as_bytes()), None);
    }

    #[test]
    fn keygen_makes_a_valid_key() {
        let k = keygen().unwrap();
        assert_eq!(k.len(), 65);
        assert!(k[..64].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(AuthKey::from_bytes(k.as_bytes()).unwrap().bytes().len(), 64);
        assert_ne!(keygen().unwrap(), k);
    }
}
