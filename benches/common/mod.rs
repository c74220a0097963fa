//! What the benches share: a seeded generator, so every run measures the same data, and the four
//! request bodies of the load harness (`scripts/load.sh`): small, medium, large and xl-list.

use std::fmt::Write;

// The tests' generator, so that both draw the same way.
pub use prefeval_testkit::SplitMix64;

/// A normal draw with this mean and standard deviation (Box–Muller; one draw of the pair is
/// dropped).
pub fn gauss(rng: &mut SplitMix64, mean: f64, sd: f64) -> f64 {
    let u1 = 1.0 - rng.unit(); // (0, 1]: ln is finite
    let u2 = rng.unit();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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
    let mut rng = SplitMix64::new(12345);
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
            let reward = (-0.3 * item as f64 + gauss(&mut rng, 0.0, 1.5)) * 1e6;
            let reward = reward.round() / 1e6;
            write!(body, r#"{{"id":"r{item}","reward":{reward}}}"#).expect("writing to a String cannot fail");
        }
        body.push_str("]}");
    }
    body.push_str("]}");
    body.into_bytes()
}
