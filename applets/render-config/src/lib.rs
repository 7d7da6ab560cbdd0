//! `initbox render-config`: placeholder until its issue lands (the helper building it replaces this file).
pub mod jinja;

use clap::Parser;
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};

#[derive(Debug, Parser)]
#[command(name = "render-config", about = "(not built yet)")]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }
    async fn run(self) -> Result<Outcome, Failure> {
        Err(Failure::failed("render-config is not built yet"))
    }
}
