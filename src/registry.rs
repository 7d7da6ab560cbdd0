//! The applets compiled into this binary, one cargo feature each.

use clap::{ArgMatches, Command};

/// One applet of the multi-call binary.
pub struct Entry {
    pub name: &'static str,
    pub command: fn() -> Command,
    pub before_parse: fn(),
    pub launch: fn(&mut ArgMatches) -> !,
    /// Parse and run in this process (for `run`), returning the outcome instead of exiting.
    pub in_process: initbox_runtime::inprocess::ParseFn,
}

macro_rules! applets {
    ($($feature:literal => $args:ty),* $(,)?) => {
        /// Every applet enabled at build time, in the order `--list` shows them.
        #[allow(unused_mut, clippy::vec_init_then_push)]
        pub fn all() -> Vec<Entry> {
            let mut v = Vec::new();
            $(
                #[cfg(feature = $feature)]
                v.push(Entry {
                    name: $feature,
                    command: || {
                        initbox_runtime::env::shape(
                            initbox_runtime::duration::accept_hyphen_values(
                                initbox_runtime::env_names_only(
                                    <$args as clap::CommandFactory>::command(),
                                ),
                            )
                            .name($feature),
                        )
                    },
                    before_parse: <$args as initbox_runtime::Applet>::before_parse,
                    launch: initbox_runtime::launch_from_matches::<$args>,
                    in_process: initbox_runtime::inprocess::parse::<$args>,
                });
            )*
            v
        }
    };
}

applets! {
    "wait-for-tcp" => initbox_wait_for_tcp::Args,
    "wait-for-dns" => initbox_wait_for_dns::Args,
    "wait-for" => initbox_wait_for::Args,
    "run-migrations" => initbox_run_migrations::Args,
    "fetch-secret" => initbox_fetch_secret::Args,
    "render-config" => initbox_render_config::Args,
    "network-check" => initbox_network_check::Args,
    "notify" => initbox_notify::Args,
    "run" => initbox_run::Args,
    "copy-self" => initbox_copy_self::Args,
    "restore" => initbox_restore::Args,
    "backup" => initbox_backup::Args,
    "schedule" => initbox_schedule::Args,
    "prepare-volume" => initbox_prepare_volume::Args,
    "download" => initbox_download::Args,
    "git-checkout" => initbox_git_checkout::Args,
    "net-setup" => initbox_net_setup::Args,
}
