//! Cost of the payment cryptography, against the raw block cipher as the reference.
//! Figures and ratios: docs/BENCHMARKS.md (`cargo bench -p firmware-protocol --bench crypto`).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use firmware_protocol::crypto::dukpt::{self, DukptScheme, DukptUsage};
use firmware_protocol::crypto::keys::{
    BaseDerivationKey, KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, MacKey, PinKey,
};
use firmware_protocol::crypto::mac::{self, MacAlgorithm, Padding};
use firmware_protocol::crypto::pinblock::{self, Pan, Pin, PinBlockFormat};
use firmware_protocol::crypto::primitives::BlockCipher;
use firmware_protocol::crypto::tr31::{self, Header, KeyLengthMasking};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIZES: [usize; 3] = [64, 1024, 4096];

fn raw_blocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("raw_cipher");
    let aes = BlockCipher::new(&KeyMaterial::new(KeyAlgorithm::Aes, &[0x11; 16]).unwrap());
    let tdes = BlockCipher::new(&KeyMaterial::new(KeyAlgorithm::Tdes, &[0x22; 16]).unwrap());
    let des = BlockCipher::new(&KeyMaterial::new(KeyAlgorithm::Tdes, &[0x33; 8]).unwrap());
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        // Chained like a MAC: each block depends on the previous, so this is the sequential
        // cipher cost a CBC-MAC or CMAC cannot beat.
        for (name, cipher) in [("aes128", &aes), ("tdes2", &tdes), ("des", &des)] {
            let block_size = cipher.block_size();
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                let mut state = [0u8; 16];
                b.iter(|| {
                    for _ in 0..size / block_size {
                        cipher.ecb_encrypt(&mut state[..block_size]).unwrap();
                    }
                    black_box(state)
                })
            });
        }
    }
    group.finish();
}

fn macs(c: &mut Criterion) {
    let mut group = c.benchmark_group("mac");
    let aes_key = MacKey::new(KeyAlgorithm::Aes, &[0x11; 16]).unwrap();
    let tdes_key = MacKey::new(KeyAlgorithm::Tdes, &[0x22; 16]).unwrap();
    for size in SIZES {
        let data = vec![0x5a; size];
        group.throughput(Throughput::Bytes(size as u64));
        for (name, key, alg) in [
            ("aes_cmac", &aes_key, MacAlgorithm::AesCmac),
            ("tdes_cmac", &tdes_key, MacAlgorithm::TdesCmac),
            (
                "iso9797_alg1_tdes",
                &tdes_key,
                MacAlgorithm::Iso9797Alg1(Padding::Method2),
            ),
            (
                "iso9797_alg3",
                &tdes_key,
                MacAlgorithm::Iso9797Alg3(Padding::Method2),
            ),
        ] {
            group.bench_with_input(BenchmarkId::new(name, size), &data, |b, data| {
                b.iter(|| mac::compute(key, alg, black_box(data)).unwrap())
            });
        }
    }
    group.finish();
}

fn pin_block(c: &mut Criterion) {
    let key = PinKey::new(KeyAlgorithm::Aes, &[0x44; 16]).unwrap();
    let pin = Pin::new("271828").unwrap();
    let pan = Pan::new("4111111111111111").unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    c.bench_function("pinblock/format4_encipher", |b| {
        b.iter(|| {
            pinblock::encrypt_pin(PinBlockFormat::Iso4, &pin, Some(&pan), &key, &mut rng).unwrap()
        })
    });
}

fn tr31_unwrap(c: &mut Criterion) {
    let kbpk = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x55; 32]).unwrap();
    let header = Header::parse("D0000P0AE00E0000").unwrap();
    let key = KeyMaterial::new(KeyAlgorithm::Aes, &[0x66; 16]).unwrap();
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let block = tr31::wrap(
        &kbpk,
        &header,
        &key,
        KeyLengthMasking::AlgorithmMaximum,
        &mut rng,
    )
    .unwrap();
    c.bench_function("tr31/version_d_unwrap", |b| {
        b.iter(|| tr31::unwrap(&kbpk, black_box(&block)).unwrap())
    });
}

fn dukpt_derivation(c: &mut Criterion) {
    let bdk = BaseDerivationKey::new(KeyAlgorithm::Aes, &[0x77; 16]).unwrap();
    // Counter with 8 one-bits: a typical mid-life derivation walk.
    let ksn = hex::decode("1234567890123456000000ff").unwrap();
    c.bench_function("dukpt/aes128_pin_key", |b| {
        b.iter(|| {
            dukpt::derive_working_key(
                DukptScheme::Aes,
                &bdk,
                black_box(&ksn),
                DukptUsage::PinEncryption,
            )
            .unwrap()
        })
    });
}

criterion_group!(
    benches,
    raw_blocks,
    macs,
    pin_block,
    tr31_unwrap,
    dukpt_derivation
);
criterion_main!(benches);
