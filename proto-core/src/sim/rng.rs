//! The simulator's PRNG, written here so a seed means the same thing on
//! every platform and every version of every dependency.
//!
//! [`Rng`] is xoshiro256** seeded through SplitMix64. Each consumer draws
//! from its own *stream* ([`Rng::stream`]), derived from the run's seed and a
//! stable label (for a link: the two host names), so that adding a host, a
//! link or a workload step never shifts what another stream draws.

/// One SplitMix64 step: used to expand a seed into xoshiro state and to mix
/// labels into stream seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit digest of a label (FNV-1a, then one SplitMix64 round to
/// spread it). Only used to name streams, never for security.
pub fn label_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(&mut h)
}

/// xoshiro256**: fast, small state, good statistical quality; plenty for
/// picking faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is expanded from `seed` by SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut sm);
        }
        // All-zero state is the one xoshiro cannot leave; SplitMix64 never
        // yields four zeros in a row, but be explicit.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The independent stream named by `label` under the run's `seed`.
    pub fn stream(seed: u64, label: &[&[u8]]) -> Self {
        Rng::new(seed ^ label_hash(label))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `lo..=hi` (`lo` if `hi < lo`). Multiply-shift, so no
    /// modulo bias worth the name for the small ranges used here.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let r = (u128::from(self.next_u64()) * u128::from(span + 1)) >> 64;
        lo + r as u64
    }

    /// True with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.range(0, 999_999) < u64::from(per_million)
    }

    /// Uniform in `0..n` (0 if `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.range(0, n as u64 - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_known_answer() {
        // Reference values for xoshiro256** from state [1, 2, 3, 4]
        // (computed from the algorithm's published definition).
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1509978240);
        assert_eq!(r.next_u64(), 1215971899390074240);
    }

    #[test]
    fn splitmix_known_answer() {
        // First output of SplitMix64 seeded with 0.
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn streams_are_independent_of_each_other() {
        let a1: alloc::vec::Vec<u64> = {
            let mut r = Rng::stream(7, &[b"link", b"a", b"b"]);
            (0..4).map(|_| r.next_u64()).collect()
        };
        // Drawing from another stream in between changes nothing.
        let mut other = Rng::stream(7, &[b"link", b"a", b"c"]);
        let _ = other.next_u64();
        let mut r = Rng::stream(7, &[b"link", b"a", b"b"]);
        let a2: alloc::vec::Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a1, a2);
        assert_ne!(label_hash(&[b"ab", b"c"]), label_hash(&[b"a", b"bc"]));
    }

    #[test]
    fn range_stays_in_bounds() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let v = r.range(3, 9);
            assert!((3..=9).contains(&v));
        }
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.range(5, 2), 5);
        assert_eq!(r.below(0), 0);
    }
}
