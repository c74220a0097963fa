//! What the benches share: a seeded generator, so every run measures the same data, and the four
//! request bodies of the load harness (`scripts/load.sh`): small, medium, large and xl-list.

use std::fmt::Write;

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Normal with this mean and standard deviation (Box–Muller; one draw of the pair is dropped).
    pub fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One request body of the load harness.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub lists: usize,
    pub items: usize,
    pub include_pairs: bool,
}

/// The load harness's payloads, as `scripts/load.sh` and the shared bench harness name them.
pub const SHAPES: [Shape; 4] = [
    Shape { name: "small", lists: 8, items: 4, include_pairs: true },
    Shape { name: "medium", lists: 64, items: 8, include_pairs: true },
    Shape { name: "large", lists: 256, items: 32, include_pairs: false },
    Shape { name: "xl-list", lists: 1, items: 2000, include_pairs: false },
];

/// The shape of this name (one of `SHAPES`).
pub fn shape(name: &str) -> Shape {
    *SHAPES.iter().find(|shape| shape.name == name).unwrap_or_else(|| panic!("no payload shape named {name}"))
}

/// The JSON body of a `POST /v1/evaluate` of this shape: lists `p0…` of items `r0…` in rank order
/// (best first), rewards of a plausible model (a downward trend plus noise) to 6 decimals.
pub fn payload(shape: Shape) -> Vec<u8> {
    let mut rng = SplitMix64(12345);
    let mut body = String::with_capacity(64 + shape.lists * (16 + shape.items * 32));
    write!(body, r#"{{"model":"bench","options":{{"include_pairs":{}}},"lists":["#, shape.include_pairs)
        .expect("writing to a String cannot fail");
    for list in 0..shape.lists {
        if list > 0 {
            body.push(',');
        }
        write!(body, r#"{{"id":"p{list}","items":["#).expect("writing to a String cannot fail");
        for item in 0..shape.items {
            if item > 0 {
                body.push(',');
            }
            let reward = (-0.3 * item as f64 + rng.gauss(0.0, 1.5)) * 1e6;
            let reward = reward.round() / 1e6;
            write!(body, r#"{{"id":"r{item}","reward":{reward}}}"#).expect("writing to a String cannot fail");
        }
        body.push_str("]}");
    }
    body.push_str("]}");
    body.into_bytes()
}
