//! Stable-toolchain smoke run of the fuzz harness (`mailslot_wire::fuzz_parse`): the seed
//! corpus of `fuzz/seeds/parse/` plus a fixed number of deterministic mutations of it.
//! Bounded by iteration count, never by time. `FUZZ_SMOKE_ITERATIONS` overrides the count.

mod vectors;

use std::path::Path;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/parse");
    let mut seeds: Vec<Vec<u8>> = vectors::all().into_iter().map(|(_, v)| v).collect();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "seed corpus too small");
    seeds.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
    seeds
}

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            4 if v.len() > 1 => {
                // interesting 16-bit values at a random offset (counts/offsets)
                let i = rng.below(v.len() - 1);
                let x: u16 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF][rng.below(8)];
                v[i..i + 2].copy_from_slice(&x.to_le_bytes());
            }
            5 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0x00, 0x20, 0x3F, 0x40, 0xC0, 0xFF, b'A', b'P', b'Q'][rng.below(9)];
            }
            6 => {
                // splice another seed's tail
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

#[test]
fn seeds_and_mutations_never_panic() {
    let iterations: usize = std::env::var("FUZZ_SMOKE_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let seeds = seeds();
    for s in &seeds {
        mailslot_wire::fuzz_parse(s);
    }
    let mut rng = Rng(0x6D61_696C_736C_6F74);
    let mut parsed = 0usize;
    for _ in 0..iterations {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        mailslot_wire::fuzz_parse(&input);
        parsed += usize::from(mailslot_wire::MailslotDatagram::parse(&input).is_ok());
    }
    // The mutations must keep exercising the deep paths, not only the first length check.
    assert!(
        parsed > iterations / 50,
        "only {parsed} of {iterations} mutants parsed"
    );
}
