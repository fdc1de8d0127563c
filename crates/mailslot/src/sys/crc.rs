//! CRC-32C, the checksum of every record, and the copy that computes it on the way.
//!
//! A record's bytes are copied once on each side (into the ring by the writer, out of it by
//! the reader), and checksummed once on each side. Done one after the other, the checksum of a
//! large record costs almost as much again as its copy; where the CPU has AVX-512 and
//! VPCLMULQDQ the two are one pass instead: each 64-byte piece loaded is stored and folded
//! into the checksum while in registers (about 1.1x a `memcpy` for 1 MiB, against 1.8x for a
//! copy and then the fastest separate checksum). Elsewhere, and for short records, it is the
//! copy and then `crc-fast`.
//!
//! The fold: 256 bytes are kept as 16 lanes of 128 bits, in four 512-bit registers. Each lane
//! `X` is moved 2048 bits on, to the same lane of the next 256 bytes, by two carry-less
//! multiplications: with `X = H·x⁶⁴ + L` (reflected, so the first 8 bytes are `H`), `X·x²⁰⁴⁸ ≡
//! H·(x²⁰⁴⁸⁺⁶³ mod P)·x + L·(x²⁰⁴⁷ mod P)·x (mod P)`, the extra `x` being the one a carry-less
//! product of reflected operands is shifted by. The 256 bytes left at the end are congruent to
//! everything before them, so the hardware CRC instruction finishes on them, then on the tail.

/// CRC-32C of what `crc` was the checksum of, followed by `data` (the checksum of `data`
/// alone with `crc` = 0).
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    let mut digest = crc_fast::Digest::new_with_init_state(
        crc_fast::CrcAlgorithm::Crc32Iscsi,
        // The register before the final inversion.
        u64::from(!crc),
    );
    digest.update(data);
    digest.finalize() as u32
}

/// The one-pass copy and checksum, if this CPU has it and `len` is worth it; `None` (and
/// nothing copied) otherwise. The checksum is that of the bytes stored into `dst`, whatever
/// another process does to `src` meanwhile.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, and they must not
/// overlap. Either may be shared memory that another process writes concurrently.
pub(super) unsafe fn fused(crc: u32, src: *const u8, dst: *mut u8, len: usize) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        if len >= x86::BLOCK
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("vpclmulqdq")
            && std::arch::is_x86_feature_detected!("sse4.2")
        {
            // SAFETY: the features are present (checked above); the caller vouches for the
            // ranges; `len >= BLOCK`.
            return Some(unsafe { x86::copy_crc(crc, src, dst, len) });
        }
    }
    let _ = (crc, src, dst, len);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Bytes folded per step: four 512-bit registers.
    pub(super) const BLOCK: usize = 256;

    /// `x^n mod P` for CRC-32C's P (0x1EDC6F41 and x³²), bit m the coefficient of xᵐ.
    const fn xpow_mod(n: u32) -> u32 {
        let mut r: u32 = 1;
        let mut i = 0;
        while i < n {
            let carry = r & 0x8000_0000 != 0;
            r <<= 1;
            if carry {
                r ^= 0x1EDC_6F41;
            }
            i += 1;
        }
        r
    }

    /// The reflected 64-bit operand of a polynomial of degree < 32 (bit 63 - m for xᵐ).
    const fn reflected(p: u32) -> u64 {
        (p as u64).reverse_bits()
    }

    const FOLD_BITS: u32 = (BLOCK * 8) as u32;
    /// Multiplies the first (reflected: higher) half of a lane; the second half's.
    const K_HIGH: u64 = reflected(xpow_mod(FOLD_BITS + 63));
    const K_LOW: u64 = reflected(xpow_mod(FOLD_BITS - 1));

    /// # Safety
    /// The CPU has AVX-512F, VPCLMULQDQ and SSE4.2; `src` is valid for reads and `dst` for
    /// writes of `len >= BLOCK` bytes, not overlapping.
    #[target_feature(enable = "avx512f,vpclmulqdq,sse4.2")]
    pub(super) unsafe fn copy_crc(crc: u32, src: *const u8, dst: *mut u8, len: usize) -> u32 {
        let k = _mm512_set_epi64(
            K_LOW as i64,
            K_HIGH as i64,
            K_LOW as i64,
            K_HIGH as i64,
            K_LOW as i64,
            K_HIGH as i64,
            K_LOW as i64,
            K_HIGH as i64,
        );
        // Every `at` below has `at + 64 <= len`.
        // SAFETY: 64 bytes inside the source range; unaligned loads are allowed.
        let load = |at: usize| unsafe { _mm512_loadu_si512(src.add(at).cast()) };
        // SAFETY: 64 bytes inside the destination range; unaligned stores are allowed.
        let store = |at: usize, v: __m512i| unsafe { _mm512_storeu_si512(dst.add(at).cast(), v) };
        let mut acc = [load(0), load(64), load(128), load(192)];
        for (i, &v) in acc.iter().enumerate() {
            store(64 * i, v);
        }
        // The register's start value (!crc) enters as the first four bytes' XOR.
        acc[0] = _mm512_xor_si512(
            acc[0],
            _mm512_zextsi128_si512(_mm_cvtsi32_si128(!crc as i32)),
        );
        let mut at = BLOCK;
        while at + BLOCK <= len {
            for (i, a) in acc.iter_mut().enumerate() {
                let v = load(at + 64 * i);
                store(at + 64 * i, v);
                let high = _mm512_clmulepi64_epi128::<0x00>(*a, k);
                let low = _mm512_clmulepi64_epi128::<0x11>(*a, k);
                // high ^ low ^ v
                *a = _mm512_ternarylogic_epi64::<0x96>(high, low, v);
            }
            at += BLOCK;
        }
        let mut words = [0u64; BLOCK / 8];
        for (i, &a) in acc.iter().enumerate() {
            // SAFETY: 64 bytes at word 8 * i of a 32-word array.
            unsafe { _mm512_storeu_si512(words.as_mut_ptr().add(8 * i).cast(), a) };
        }
        let mut r = words.iter().fold(0u64, |r, &w| _mm_crc32_u64(r, w));
        // The tail, under one block: through a buffer of ours, so that what is checksummed
        // is what was stored even if another process writes `src` or `dst` meanwhile.
        let tail = len - at;
        let mut buf = [0u8; BLOCK];
        // SAFETY: the last `tail` bytes of both ranges, through `buf` (`tail < BLOCK`).
        unsafe {
            std::ptr::copy_nonoverlapping(src.add(at), buf.as_mut_ptr(), tail);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), dst.add(at), tail);
        }
        let mut words = buf[..tail].chunks_exact(8);
        for w in &mut words {
            r = _mm_crc32_u64(r, u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let mut r = r as u32;
        for &b in words.remainder() {
            r = _mm_crc32_u8(r, b);
        }
        !r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `SharedMap::read_crc` and `write_crc` do, on ordinary memory.
    fn copy_crc32c(crc: u32, src: &[u8], dst: &mut [u8]) -> u32 {
        assert_eq!(src.len(), dst.len());
        // SAFETY: two slices of `len` bytes, one borrowed mutably: valid and disjoint.
        if let Some(crc) = unsafe { fused(crc, src.as_ptr(), dst.as_mut_ptr(), src.len()) } {
            return crc;
        }
        dst.copy_from_slice(src);
        crc32c_append(crc, src)
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    #[test]
    fn the_check_value_in_one_piece_and_continued() {
        // RFC 3720, B.4.
        assert_eq!(crc32c_append(0, b"123456789"), 0xe306_9283);
        assert_eq!(
            crc32c_append(crc32c_append(0, b"1234"), b"56789"),
            0xe306_9283
        );
    }

    /// The fused copy agrees with the separate checksum at every length around the block
    /// size, at every alignment, from any start value (on a CPU without it, the fallback is
    /// what is tested).
    #[test]
    fn copy_and_checksum_agree_with_the_checksum_alone() {
        let src = noise((1 << 20) + 64);
        let mut dst = vec![0u8; src.len()];
        let lens = (0..1100).chain([4095, 4096, 65_537, 1 << 20]);
        for len in lens {
            for align in [0usize, 1, 7, 8, 63] {
                for start in [0u32, 0xdead_beef] {
                    let (s, d) = (&src[align..align + len], &mut dst[align..align + len]);
                    d.fill(0);
                    let crc = copy_crc32c(start, s, d);
                    assert_eq!(d, s, "len {len} align {align}: copy");
                    assert_eq!(
                        crc,
                        crc32c_append(start, s),
                        "len {len} align {align} start {start:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_flipped_bit_changes_the_fused_checksum() {
        let mut src = noise(4096);
        let mut dst = vec![0u8; 4096];
        let clean = copy_crc32c(0, &src, &mut dst);
        for bit in [0usize, 7, 2047, 4096 * 8 - 1] {
            src[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(copy_crc32c(0, &src, &mut dst), clean, "bit {bit}");
            src[bit / 8] ^= 1 << (bit % 8);
        }
    }
}
