//! `controller`: the roadside cabinet binary.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("the cabinet runtime is not built yet (Controller issue)")
}
