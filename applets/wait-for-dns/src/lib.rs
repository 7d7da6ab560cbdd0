//! placeholder
use clap::Parser;
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};
#[derive(Debug, Parser)]
#[command(name = "wait-for-dns", about = "Wait until a DNS name resolves")]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,
}
impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }
    async fn run(self) -> Result<Outcome, Failure> {
        Err(Failure::failed("todo"))
    }
}
