//! A command component that writes 32 MiB of linear memory per run.
//!
//! `main` allocates a 32 MiB buffer (the linear memory grows from about
//! 1 MiB to about 33 MiB), writes every byte of it, reads one byte per 4 KiB
//! page back into a checksum and prints one line. Every run therefore dirties
//! 8,192 host pages: what an instance costs when its work is the memory it
//! touches (an image decoder, a big JSON response being built), not
//! instantiation.

use std::hint::black_box;

/// Bytes written per run. Under siteboss's default 64 MiB store limit.
const BYTES: usize = 32 << 20;

fn main() {
    let mut buf = vec![0u8; BYTES];
    // A pattern, not zeroes, so no layer can skip the writes.
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
    }
    let buf = black_box(buf);
    let sum: u64 = buf.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    println!("wrote {} MiB, page checksum {sum}", BYTES >> 20);
}
