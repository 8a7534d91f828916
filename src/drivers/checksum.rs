//! The Internet checksum (RFC 1071), the one sum of the two packets this crate builds that
//! carry it: the ICMP echo (`ping`) and the ICMPv6 neighbour advertisement over its IPv6
//! pseudo-header (`arp`). Pure arithmetic: it neither builds nor sends a packet.

/// The one's complement of the one's-complement sum of the 16-bit big-endian words of
/// `parts`, in order; a part of odd length is padded with a zero byte. The sum of a packet
/// whose checksum field holds this value comes out as zero.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u64::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (carries
    /// folded), whose complement is 220d.
    #[test]
    fn rfc_1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&data]), !0xddf2);
        let split = internet_checksum(&[&data[..2], &data[2..6], &data[6..]]);
        assert_eq!(split, !0xddf2, "parts of even length sum as one");
    }

    #[test]
    fn odd_lengths_are_padded_with_zero() {
        assert_eq!(internet_checksum(&[&[0x12]]), internet_checksum(&[&[0x12, 0]]));
        assert_eq!(internet_checksum(&[]), 0xffff);
    }
}
