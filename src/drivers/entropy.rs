//! Random numbers from the kernel, drawn at start-up only: the run and first challenge of the
//! freshness handshake (`wire::session`). It allocates nothing but may block until the
//! kernel's pool is initialised (at boot, before the loop starts); the loop never calls it.

use std::fs::File;
use std::io::{self, Read};

/// Reads `N` random bytes from /dev/urandom.
pub fn bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

/// Two random u32s.
pub fn two_u32() -> io::Result<(u32, u32)> {
    let b: [u8; 8] = bytes()?;
    Ok((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        let a = super::two_u32().expect("urandom");
        let b = super::two_u32().expect("urandom");
        assert_ne!(a, b, "two draws of 64 random bits are equal");
    }
}
