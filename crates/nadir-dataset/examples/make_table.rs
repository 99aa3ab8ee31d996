//! Writes a synthetic flow-like table for the benchmark: ROWS x COLS numeric features plus a
//! `label` column, low-rank structure plus noise, about 1 % NaN and 0.5 % Infinity cells.
//!
//! `cargo run --release -p nadir-dataset --example make_table -- OUT.csv 3000000 80`

use std::io::{BufWriter, Write};

use rand::{Rng, SeedableRng};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(rows), Some(cols)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: make_table OUT.csv ROWS COLS");
        std::process::exit(2);
    };
    let rows: usize = rows.parse().expect("ROWS is a number");
    let cols: usize = cols.parse().expect("COLS is a number");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    const LATENT: usize = 12;
    let weights: Vec<f32> = (0..LATENT * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let magnitude: Vec<f32> = (0..cols).map(|c| 10f32.powi((c % 7) as i32 - 1)).collect();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let header: Vec<String> = (0..cols)
        .map(|c| format!("f{c}"))
        .chain(["label".to_string()])
        .collect();
    writeln!(w, "{}", header.join(","))?;
    let mut latent = [0f32; LATENT];
    for _ in 0..rows {
        let attack = rng.random_bool(0.1);
        for l in latent.iter_mut() {
            *l = rng.random_range(-1.0..1.0) + if attack { 0.5 } else { 0.0 };
        }
        for c in 0..cols {
            let p: f32 = rng.random();
            if p < 0.01 {
                w.write_all(b"NaN,")?;
            } else if p < 0.015 {
                w.write_all(b"Infinity,")?;
            } else {
                let v: f32 = (0..LATENT)
                    .map(|l| latent[l] * weights[l * cols + c])
                    .sum::<f32>()
                    + 0.1 * rng.random_range(-1.0f32..1.0);
                write!(w, "{},", v * magnitude[c])?;
            }
        }
        writeln!(w, "{}", u8::from(attack))?;
    }
    w.flush()
}
