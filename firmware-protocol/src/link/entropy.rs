//! The link machines' source of channel ids and `INIT` nonces.

/// SplitMix64 seeded by the caller's RNG. Channel ids and nonces travel in clear and only keep
/// hosts (and channels) apart, so they need to be unpredictable only in the weak sense that two
/// ends seeded differently pick different values; the machine owns the generator (as
/// quinn-proto's endpoint owns its seeded RNG) so that no call has to bring randomness along.
#[derive(Clone, Debug)]
pub(crate) struct Entropy(u64);

impl Entropy {
    pub(crate) const fn new(seed: u64) -> Self {
        Entropy(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        // The high half of SplitMix64's output is as good as the low half.
        (self.next_u64() >> 32) as u32
    }
}
