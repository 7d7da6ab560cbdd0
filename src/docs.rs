//! `initbox completions SHELL` and `initbox man DIR`: shell completions and man pages generated
//! from the same clap command tree the front parses with, so they never drift from the flags.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgMatches, Command};
use clap_complete::Shell;
use initbox_runtime::Code;
use initbox_runtime::atomic::{self, WriteOptions};

const COMPLETIONS: &str = "completions";
const MAN: &str = "man";

/// Add the two generator commands to the front's command.
pub fn commands(front: Command) -> Command {
    front
        .subcommand(
            Command::new(COMPLETIONS)
                .about("Print a shell completion script (bash, zsh, fish, elvish, powershell)")
                .after_help(
                    "Examples:\n  initbox completions bash > /etc/bash_completion.d/initbox\n  \
                     initbox completions zsh > \"${fpath[1]}/_initbox\"",
                )
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(clap::value_parser!(Shell)),
                ),
        )
        .subcommand(
            Command::new(MAN)
                .about("Write man pages (initbox.1 and initbox-APPLET.1) into DIR")
                .after_help("Example:\n  initbox man /usr/local/share/man/man1")
                .arg(
                    Arg::new("dir")
                        .value_name("DIR")
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                ),
        )
}

/// Handle `completions`/`man`; `None` if `name` is neither (an applet).
pub fn main(name: &str, m: &ArgMatches, front: impl Fn() -> Command) -> Option<i32> {
    match name {
        COMPLETIONS => {
            let shell = *m.get_one::<Shell>("shell")?;
            let mut cmd = front();
            clap_complete::generate(shell, &mut cmd, "initbox", &mut std::io::stdout());
            Some(0)
        }
        MAN => {
            let dir = m.get_one::<PathBuf>("dir")?;
            Some(match write_man_pages(front(), dir) {
                Ok(n) => {
                    eprintln!("initbox: {n} man pages in {}", dir.display());
                    0
                }
                Err(f) => {
                    eprintln!("initbox man: error: {f}");
                    f.code.as_i32()
                }
            })
        }
        _ => None,
    }
}

fn render(cmd: Command) -> Result<Vec<u8>, initbox_runtime::Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| initbox_runtime::Failure::failed(format!("cannot render a man page: {e}")))?;
    Ok(out)
}

/// `initbox.1` plus one `initbox-APPLET.1` per applet, each written atomically (mode 0644).
fn write_man_pages(mut front: Command, dir: &Path) -> Result<usize, initbox_runtime::Failure> {
    front.build();
    let opts = WriteOptions {
        mode: 0o644,
        owner: None,
        create_dirs: true,
    };
    let mut pages = vec![("initbox.1".to_string(), render(front.clone())?)];
    for sub in front.get_subcommands().filter(|s| s.get_name() != "help") {
        // clap names are `&'static str` without its `string` feature; this process ends soon.
        let page: &'static str = Box::leak(format!("initbox-{}", sub.get_name()).into_boxed_str());
        let cmd = sub
            .clone()
            .name(page)
            .bin_name(format!("initbox {}", sub.get_name()));
        pages.push((format!("{page}.1"), render(cmd)?));
    }
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| {
            initbox_runtime::Failure::new(
                Code::ENV_REFUSED,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    for (name, text) in &pages {
        atomic::write(&dir.join(name), text, &opts)?;
    }
    Ok(pages.len())
}
