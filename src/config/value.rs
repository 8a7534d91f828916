//! Leaf parsers for single words: durations, numbers, addresses, prefixes, interface names,
//! paths and names. Each returns the typed value or a message naming the word and what the
//! word is for; the caller adds the file and line.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::core::time::Duration;

/// The longest duration any directive takes: one day.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// `500ms`, `2s`, `1m`, `1h` or bare seconds, at most [`DURATION_MAX`].
pub fn duration(word: &str, what: &str) -> Result<Duration, String> {
    let bad =
        || format!("bad duration \"{word}\" for {what} (use 500ms, 2s, 1m, 1h or bare seconds)");
    let split = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let (digits, unit) = word.split_at(split);
    if digits.is_empty() || digits.len() > 12 {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if d > DURATION_MAX {
        return Err(format!("duration \"{word}\" for {what} is longer than {DURATION_MAX}"));
    }
    Ok(d)
}

/// An unsigned integer in `min..=max`.
pub fn number(word: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = match word.parse() {
        Ok(n) if word.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(format!("bad number \"{word}\" for {what}")),
    };
    if n < min || n > max {
        return Err(format!("{what} {word} is out of range ({min}..{max})"));
    }
    Ok(n)
}

/// `on` or `off`.
pub fn on_off(word: &str, what: &str) -> Result<bool, String> {
    match word {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("bad value \"{word}\" for {what} (use on or off)")),
    }
}

/// An IPv4 or IPv6 address.
pub fn addr(word: &str, what: &str) -> Result<IpAddr, String> {
    word.parse().map_err(|_| format!("bad address \"{word}\" for {what}"))
}

/// A unicast address: not unspecified, not multicast, not broadcast.
pub fn unicast(word: &str, what: &str) -> Result<IpAddr, String> {
    let a = addr(word, what)?;
    let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    if a.is_unspecified() || a.is_multicast() || broadcast {
        return Err(format!("address {word} for {what} is not a unicast address"));
    }
    Ok(a)
}

/// A multicast group of either family. An IPv6 group's scope (its second byte's low nibble)
/// must reach beyond this node: interface-local groups (`ff01::`) never leave it, and scopes
/// 0 and f are reserved (RFC 4291). A link-local group (`ff02::`) is scoped to the line's
/// interface, which every `mcast` line names.
pub fn multicast(word: &str, what: &str) -> Result<IpAddr, String> {
    let a = addr(word, what)?;
    match a {
        _ if !a.is_multicast() => Err(format!("{what} {word} is not a multicast address")),
        IpAddr::V6(v6) => match v6.segments()[0] & 0x000f {
            1 => {
                Err(format!("{what} {word} is interface-local (ff01::): it never leaves the node"))
            }
            0 | 0xf => Err(format!("{what} {word} has a reserved scope (ff00::, ff0f::)")),
            _ => Ok(a),
        },
        IpAddr::V4(_) => Ok(a),
    }
}

/// A ping node: a unicast address an echo can reach without naming an interface, so not an
/// IPv6 link-local one (`fe80::/10`), nor an IPv4-mapped one (written as IPv4, it is pinged).
pub fn ping_node(word: &str) -> Result<IpAddr, String> {
    let a = unicast(word, "ping")?;
    match a {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Err(format!(
            "ping node {word} is link-local: a ping line names no interface (use a global \
             address)"
        )),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            Err(format!("ping node {word} is IPv4-mapped: write it as an IPv4 address"))
        }
        _ => Ok(a),
    }
}

/// `ADDR/PREFIX` with the prefix in range for the family.
pub fn prefix(word: &str, what: &str) -> Result<(IpAddr, u8), String> {
    let Some((a, p)) = word.split_once('/') else {
        return Err(format!("missing /PREFIX in \"{word}\" for {what}"));
    };
    let a = unicast(a, what)?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    let canonical = p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0');
    let p = match p.parse::<u8>() {
        Ok(n) if canonical && n <= max && n > 0 => n,
        _ => return Err(format!("bad prefix \"/{p}\" in \"{word}\" for {what} (1..{max})")),
    };
    Ok((a, p))
}

/// A network interface name as the kernel accepts it: 1 to 15 bytes, not `.` or `..`, no `/`,
/// `:` or whitespace.
pub fn ifname(word: &str, what: &str) -> Result<String, String> {
    let bad_char = word.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if word.is_empty() || word.len() > 15 || word == "." || word == ".." || bad_char {
        return Err(format!(
            "bad interface name \"{word}\" for {what} (1 to 15 bytes, no '/', ':' or spaces)"
        ));
    }
    Ok(word.to_string())
}

/// An absolute path.
pub fn path(word: &str, what: &str) -> Result<PathBuf, String> {
    if !word.starts_with('/') {
        return Err(format!("path \"{word}\" for {what} must be absolute"));
    }
    Ok(PathBuf::from(word))
}

/// A name (node, resource, check, chip): letters, digits, `-`, `_`, `.`, at most 64 bytes.
pub fn name(word: &str, what: &str) -> Result<String, String> {
    short_name(word, what, 64)
}

/// A group's name: a name of at most [`GROUP_NAME_MAX`](super::GROUP_NAME_MAX) bytes (it
/// is shown in status columns and Prometheus labels).
pub fn group_name(word: &str) -> Result<String, String> {
    short_name(word, "group name", super::GROUP_NAME_MAX)
}

/// A name of at most `max` bytes: letters, digits, `-`, `_`, `.`, not starting with `.`.
fn short_name(word: &str, what: &str, max: usize) -> Result<String, String> {
    let ok = word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if word.is_empty() || word.len() > max || !ok || word.starts_with('.') {
        return Err(format!(
            "bad {what} \"{word}\" (letters, digits, '-', '_' and '.', at most {max} bytes)"
        ));
    }
    Ok(word.to_string())
}

/// A decimal number with at most three decimals (`70`, `-5`, `3.3`), in thousandths.
pub fn milli(word: &str, what: &str) -> Result<i64, String> {
    let bad = || format!("bad number \"{word}\" for {what} (like 70, -5 or 3.3)");
    let (neg, rest) = match word.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, word),
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 9 || frac.len() > 3 || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    if rest.ends_with('.') {
        return Err(bad());
    }
    let whole: i64 = int.parse().map_err(|_| bad())?;
    let mut part: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
    for _ in frac.len()..3 {
        part *= 10;
    }
    let v = whole * 1000 + part;
    Ok(if neg { -v } else { v })
}

/// Writes thousandths back as the shortest decimal (`70000` → `70`, `3300` → `3.3`).
pub fn render_milli(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let (whole, frac) = (a / 1000, a % 1000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let f = format!("{frac:03}");
    format!("{sign}{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms", "x").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2", "x").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("2s", "x").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1m", "x").unwrap(), Duration::from_secs(60));
        for bad in ["", "5x", "ms", "-1s", "1.5s", "1 s", "99999999999999999999"] {
            assert!(duration(bad, "keepalive").is_err(), "{bad:?}");
        }
        assert!(duration("5x", "keepalive").unwrap_err().contains("\"5x\" for keepalive"));
        assert!(duration("2000m", "x").unwrap_err().contains("longer"));
    }

    #[test]
    fn addresses_and_prefixes() {
        assert_eq!(prefix("192.0.2.100/24", "x").unwrap().1, 24);
        assert_eq!(prefix("2001:db8::1/64", "x").unwrap().1, 64);
        for bad in ["192.0.2.1", "192.0.2.1/33", "192.0.2.1/0", "x/24", "2001:db8::1/129"] {
            assert!(prefix(bad, "x").is_err(), "{bad}");
        }
        assert!(unicast("239.0.0.1", "x").is_err());
        assert!(unicast("255.255.255.255", "x").is_err());
        assert!(unicast("::", "x").is_err());
    }

    #[test]
    fn interface_names() {
        assert!(ifname("eth0", "x").is_ok());
        assert!(ifname("abcdefghijklmno", "x").is_ok());
        for bad in ["", "abcdefghijklmnop", "a/b", "eth0:1", ".", ".."] {
            assert!(ifname(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn milli_values() {
        assert_eq!(milli("70", "x").unwrap(), 70_000);
        assert_eq!(milli("3.3", "x").unwrap(), 3_300);
        assert_eq!(milli("-5.125", "x").unwrap(), -5_125);
        for bad in ["", "1.", ".5", "1.2345", "a", "--1", "1e3"] {
            assert!(milli(bad, "x").is_err(), "{bad}");
        }
        for v in [70_000, 3_300, -5_125, 0, 1] {
            assert_eq!(milli(&render_milli(v), "x").unwrap(), v);
        }
    }
}
