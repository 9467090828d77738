//! Time to build generated NxN grids (`synth::grid`, which checks them with
//! `Network::from_spec`): `cargo run --release -p simulator --example load_time`.

#[allow(clippy::disallowed_methods)]
fn main() {
    for n in [8, 16, 32] {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let (net, _) = simulator::synth::grid(n, 400.0, 1).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!(net.intersections.len(), n * n);
        }
        println!("grid {n}x{n}: {:.1} ms (best of 3)", best * 1000.0);
    }
}
