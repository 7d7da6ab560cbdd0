//! Dispatch by `argv[0]` or the first argument (clap multicall), `--list`, `--install DIR`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, ArgMatches, Command};
use initbox_runtime::Code;

use crate::registry::{self, Entry};

const FRONT: &str = "initbox";

/// The front's own command, with `applets` (the commands of the applets) under it.
fn front_command(applets: impl IntoIterator<Item = Command>) -> Command {
    let mut front = Command::new(FRONT)
        .version(env!("CARGO_PKG_VERSION"))
        .about("One small static binary for every step before an application starts")
        .long_about(
            "One small static binary for every step before an application starts.\n\n\
             Run an applet as `initbox APPLET ARGS`, or through a link named after it \
             (`initbox --install DIR`). `initbox APPLET --help` shows an applet's flags and \
             the INITBOX_* environment variables that set them.",
        )
        .subcommand_value_name("APPLET")
        .subcommand_help_heading("Applets")
        .arg_required_else_help(true)
        .arg(
            Arg::new("list")
                .long("list")
                .action(ArgAction::SetTrue)
                .exclusive(true)
                .help("List the applets in this binary, one per line"),
        )
        .arg(
            Arg::new("install")
                .long("install")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Create a link per applet in DIR (hard links; --symlink for symbolic)"),
        )
        .arg(
            Arg::new("symlink")
                .long("symlink")
                .short('s')
                .action(ArgAction::SetTrue)
                .requires("install")
                .help("With --install: create symbolic links"),
        );
    for command in applets {
        front = front.subcommand(command);
    }
    #[cfg(feature = "completions")]
    {
        front = crate::docs::commands(front);
    }
    initbox_runtime::env_names_only(front)
}

/// The applet that `argv` names, for hooks that must run before parsing.
fn named_applet<'a>(argv: &[OsString], applets: &'a [Entry]) -> Option<&'a Entry> {
    let base = |s: &OsString| {
        Path::new(s)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let first = argv.first().map(base).unwrap_or_default();
    let name = if first == FRONT {
        argv.get(1)?.to_string_lossy().into_owned()
    } else {
        first
    };
    applets.iter().find(|a| a.name == name)
}

pub fn main(mut argv: Vec<OsString>) -> ! {
    let applets = registry::all();
    initbox_runtime::inprocess::register(
        applets
            .iter()
            .map(|a| initbox_runtime::inprocess::InProcess {
                name: a.name,
                parse: a.in_process,
            })
            .collect(),
    );
    // A renamed binary (`/initbox-x86_64`, `/usr/local/bin/ib`) behaves as `initbox`.
    let known = |s: &str| s == FRONT || applets.iter().any(|a| a.name == s);
    match argv.first().and_then(|a| Path::new(a).file_name()) {
        Some(base) if known(&base.to_string_lossy()) => {}
        _ => {
            if argv.is_empty() {
                argv.push(FRONT.into());
            } else {
                argv[0] = FRONT.into();
            }
        }
    }
    let named = named_applet(&argv, &applets);
    let mut named_command = None;
    if let Some(entry) = named {
        // Renamed flags and variables keep working (warned about once logging is up).
        initbox_runtime::env::rename_environment(entry.name);
        argv = initbox_runtime::env::rename_args(entry.name, argv);
        (entry.before_parse)();
        let command = (entry.command)();
        if let Some(refused) = initbox_runtime::env::refuse_follow_up(&command, &argv) {
            initbox_runtime::fail_before_start(
                entry.name,
                &argv,
                initbox_runtime::Failure::usage(refused),
            );
        }
        named_command = Some(command);
    }
    let shown = named.map_or(FRONT, |a| a.name);

    // Only the named applet's command is built: each is hundreds of arguments with their help,
    // and building every applet's twice (under the front and as a link name) was most of the
    // start-up of a one-probe run. The front alone (`--list`, `help`, no applet) builds them all.
    let mut multicall = Command::new(FRONT).multicall(true);
    match named_command {
        Some(command) => {
            let via_front = argv.first().and_then(|a| Path::new(a).file_name())
                == Some(std::ffi::OsStr::new(FRONT));
            multicall = if via_front {
                multicall.subcommand(front_command([command]))
            } else {
                multicall.subcommand(command)
            };
        }
        _ => {
            multicall = multicall.subcommand(front_command(applets.iter().map(|a| (a.command)())));
            for a in &applets {
                multicall = multicall.subcommand((a.command)());
            }
        }
    }

    let mut matches = match multicall.try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => usage_error(e, shown, &argv),
    };
    let Some((name, mut sub)) = matches.remove_subcommand() else {
        usage_error_text(FRONT, "no applet given (see 'initbox --list')");
    };
    if name == FRONT {
        front_main(&applets, &mut sub)
    } else {
        launch(&applets, &name, &mut sub)
    }
}

fn launch(applets: &[Entry], name: &str, matches: &mut ArgMatches) -> ! {
    match applets.iter().find(|a| a.name == name) {
        Some(a) => (a.launch)(matches),
        None => usage_error_text(FRONT, &format!("unknown applet '{name}'")),
    }
}

fn front_main(applets: &[Entry], m: &mut ArgMatches) -> ! {
    if let Some((name, mut sub)) = m.remove_subcommand() {
        #[cfg(feature = "completions")]
        if let Some(code) = crate::docs::main(&name, &sub, || {
            front_command(applets.iter().map(|a| (a.command)()))
        }) {
            std::process::exit(code);
        }
        launch(applets, &name, &mut sub);
    }
    if m.get_flag("list") {
        // A closed pipe (`initbox --list | head -1`) ends the listing quietly.
        let mut out = std::io::stdout().lock();
        for a in applets {
            if writeln!(out, "{}", a.name).is_err() {
                break;
            }
        }
        std::process::exit(0);
    }
    if let Some(dir) = m.get_one::<PathBuf>("install") {
        match install(applets, dir, m.get_flag("symlink")) {
            Ok(n) => {
                eprintln!("initbox: {n} applet links in {}", dir.display());
                std::process::exit(0);
            }
            Err(msg) => initbox_runtime::fail_before_start(
                FRONT,
                &[],
                initbox_runtime::Failure::new(Code::ENV_REFUSED, msg),
            ),
        }
    }
    usage_error_text(FRONT, "no applet given")
}

/// busybox-style `--install`: one link per applet in `dir`, pointing at this binary.
fn install(applets: &[Entry], dir: &Path, symlink: bool) -> Result<usize, String> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| format!("cannot find this binary: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for a in applets {
        let link = dir.join(a.name);
        if let Ok(existing) = link.canonicalize() {
            let same = existing == exe || same_file(&existing, &exe).unwrap_or(false);
            if same {
                continue;
            }
            return Err(format!(
                "{} exists and is not a link to initbox; not replaced",
                link.display()
            ));
        }
        let _ = std::fs::remove_file(&link); // a dangling symlink
        let made = if symlink {
            std::os::unix::fs::symlink(&exe, &link)
        } else {
            std::fs::hard_link(&exe, &link)
        };
        made.map_err(|e| {
            let hint = if !symlink && e.raw_os_error() == Some(libc_exdev()) {
                " (another filesystem: use --symlink)"
            } else {
                ""
            };
            format!("cannot link {}: {e}{hint}", link.display())
        })?;
    }
    Ok(applets.len())
}

fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

const fn libc_exdev() -> i32 {
    18 // EXDEV on Linux
}

fn usage_error(e: clap::Error, applet: &str, argv: &[OsString]) -> ! {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            std::process::exit(0);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::exit(Code::USAGE.as_i32());
        }
        ErrorKind::InvalidSubcommand => {
            let given = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => "?".into(),
            };
            let suggestion = closest(&given, &registry::all());
            let msg = match suggestion {
                Some(s) => format!("unknown applet '{given}' (did you mean '{s}'?)"),
                None => format!("unknown applet '{given}'"),
            };
            usage_error_text(FRONT, &format!("{msg} (see 'initbox --list')"))
        }
        _ => initbox_runtime::usage_exit(applet, &e.render().to_string(), argv),
    }
}

/// The applet name closest to `given` by edit distance, if it is close at all.
fn closest(given: &str, applets: &[Entry]) -> Option<String> {
    applets
        .iter()
        .map(|a| (strsim::damerau_levenshtein(given, a.name), a.name))
        .filter(|(d, name)| *d <= 3.max(name.len() / 3))
        .min()
        .map(|(_, name)| name.to_string())
}

fn usage_error_text(applet: &str, msg: &str) -> ! {
    initbox_runtime::fail_before_start(applet, &[], initbox_runtime::Failure::usage(msg))
}
