//! `mailslot decode` (placeholder until the wire codec lands).
use crate::{Global, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The datagram as hex text.
    pub hex: Option<String>,
}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("decode is not built yet")
}
