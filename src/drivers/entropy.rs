//! Random numbers from the kernel, drawn at start-up only: the run and first challenge of the
//! freshness handshake (`wire::session`) and the ping cookie (`drivers::ping`). It never
//! waits: getrandom(2) with GRND_NONBLOCK, and /dev/urandom when the kernel's pool is not
//! initialised yet (early boot) or the call does not exist. The loop never calls it.

use std::io::Read;

use nix::errno::Errno;

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        // INVARIANT: `filled <= buf.len()`: getrandom(2) writes at most what it is given.
        let rest = &mut buf[filled..];
        // Raw libc: nix has no getrandom.
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes, and getrandom(2) writes
        // at most that many; GRND_NONBLOCK makes it fail with EAGAIN instead of waiting.
        let n =
            unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), libc::GRND_NONBLOCK) };
        match usize::try_from(n) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => filled += n,
            Err(_) => match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN | Errno::ENOSYS => {
                    log::debug!("getrandom refused: reading /dev/urandom");
                    return std::fs::File::open("/dev/urandom")
                        .and_then(|mut f| f.read_exact(rest))
                        .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw));
                }
                e => return Err(e),
            },
        }
    }
    Ok(())
}

/// Two random u32s.
pub fn two_u32() -> Result<(u32, u32), Errno> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        let a = super::two_u32().expect("getrandom");
        let b = super::two_u32().expect("getrandom");
        assert_ne!(a, b, "two draws of 64 random bits are equal");
    }
}
