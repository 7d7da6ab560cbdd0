//! `initbox git-checkout URL --to DIR [--ref REF] [--commit SHA]`: a repository at a ref or a
//! commit, shallow, into a directory: git-sync's one-time mode without a git binary.
//!
//! - The remote is asked what REF points at (one small request); when DIR already holds that
//!   commit from that URL, nothing else happens. With `--commit` and DIR already at it, not even
//!   that: a pinned checkout restarts without the network.
//! - `--commit SHA` is verified: with `--ref`, the ref must point at it (else exit 1, nothing
//!   downloaded); alone, that commit is fetched by its id. The commit received is checked out
//!   only after gix has verified every object's hash and the commit is the one asked for.
//! - The fetch and checkout happen in `DIR/.initbox-staging-*`, then replace DIR's contents
//!   through a journal (`place`), so a kill leaves either the old checkout or the new one.
//! - DIR ends as a real shallow repository (`.git`, detached HEAD at the commit, `origin` set),
//!   as `git clone --depth 1` leaves it; `.gitattributes` filters apply as git applies them.
//! - Transports: `https://` and `http://` (smart HTTP through the toolkit's HTTP client and TLS
//!   settings; a token from `--token-file` only over https), `git://` (git daemon).

mod place;
mod transport;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use gix::remote::Direction;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, duration, env, redact};
use tracing::info;

use place::Marker;

#[derive(Debug, Parser)]
#[command(
    name = "git-checkout",
    version,
    about = "Check out a git repository at a ref or commit into a directory: shallow, verified, atomic, a no-op when already there",
    after_help = "URLs: https://HOST/PATH (smart HTTP; --token-file), http://HOST/PATH, git://HOST/PATH (git daemon).\n\n\
                  Examples:\n  \
                  initbox git-checkout https://github.com/org/site --to /srv/site --ref main\n  \
                  initbox git-checkout https://git.example.com/org/app --to /app --ref v1.4.2 --commit 3f2a…(40 hex) --token-file /var/run/secrets/git/token"
)]
pub struct Args {
    /// Repository URL: https://, http:// or git://.
    #[arg(value_name = "URL", env = env::GIT_URL)]
    pub url: String,

    /// Directory to check out into (created when missing; may be a mount point). Anything in it that is not initbox's checkout is refused.
    #[arg(long, value_name = "DIR", env = env::GIT_TO)]
    pub to: PathBuf,

    /// Branch, tag, full ref (refs/...) or commit id; default: the remote's default branch.
    #[arg(long = "ref", value_name = "REF", env = env::GIT_REF)]
    pub reference: Option<String>,

    /// The commit (40 hex digits) that must be checked out: REF must point at it, or without --ref it is fetched by id.
    #[arg(long, value_name = "SHA", value_parser = parse_commit, env = env::GIT_COMMIT)]
    pub commit: Option<String>,

    /// Commits of history to fetch (1: the commit alone; 0: all history).
    #[arg(long, value_name = "N", default_value = "1", env = env::GIT_DEPTH)]
    pub depth: u32,

    /// File holding the token (or password) sent with --username over https; never logged.
    #[arg(long, value_name = "PATH", env = env::GIT_TOKEN_FILE)]
    pub token_file: Option<PathBuf>,

    /// User name sent with the token (GitHub: x-access-token; GitLab: oauth2 or the deploy token's name).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "x-access-token",
        env = env::GIT_USERNAME
    )]
    pub username: String,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse, env = env::TIMEOUT)]
    pub timeout: Duration,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_commit(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{s}' is not a full commit id (40 hexadecimal digits)"
        ))
    }
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        let deadline = Deadline::after((!self.timeout.is_zero()).then_some(self.timeout));
        let plan = Plan::new(self)?;
        let shown = plan.shown.clone();
        let handle = tokio::runtime::Handle::current();
        // The blocking thread logs inside the caller's span (`run`'s step name).
        let span = tracing::Span::current();
        let work = async move {
            tokio::task::spawn_blocking(move || span.in_scope(|| plan.execute(&handle)))
                .await
                .map_err(|e| Failure::failed(format!("the checkout stopped: {e}")))?
        };
        deadline
            .run(work, || format!("checking out {shown}"))
            .await
            .map(|()| Outcome::OK)
    }
}

/// How the remote is reached.
enum Via {
    Http {
        client: reqwest::Client,
        authorization: Option<reqwest::header::HeaderValue>,
    },
    Git,
}

/// Everything checked before the first request.
struct Plan {
    url: String,
    /// The URL as logs show it (no user information).
    shown: String,
    dir: PathBuf,
    reference: Option<String>,
    commit: Option<String>,
    depth: Option<NonZeroU32>,
    via: Via,
    with_token: bool,
}

impl Plan {
    fn new(args: Args) -> Result<Plan, Failure> {
        let parsed = url::Url::parse(&args.url).map_err(|e| {
            Failure::usage(format!(
                "'{}' is not a repository URL: {e}",
                redact::url_for_display(&args.url)
            ))
        })?;
        let shown = redact::url_for_display(&args.url);
        if parsed.password().is_some() {
            return Err(Failure::usage(format!(
                "{shown}: the URL carries a password; put the token in --token-file instead"
            )));
        }
        if let Some(r) = &args.reference
            && (r.is_empty() || r.starts_with('-') || r.contains("..") || r.contains(':'))
        {
            return Err(Failure::usage(format!("'{r}' is not a ref name")));
        }
        let token = match &args.token_file {
            Some(p) => Some(initbox_runtime::input::read_secret(
                p,
                "--token-file",
                false,
            )?),
            None => None,
        };
        let via = match parsed.scheme() {
            "https" | "http" => {
                if token.is_some() && parsed.scheme() == "http" {
                    return Err(Failure::usage(format!(
                        "{shown}: a token is never sent over plain http; use https"
                    )));
                }
                let user = if parsed.username().is_empty() {
                    args.username.clone()
                } else {
                    parsed.username().to_string()
                };
                let authorization = token
                    .as_ref()
                    .map(|t| {
                        use base64::Engine;
                        let b64 =
                            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{t}"));
                        redact::register(&b64);
                        let mut v = reqwest::header::HeaderValue::from_str(&format!("Basic {b64}"))
                            .map_err(|_| {
                                Failure::invalid_input(
                                    "--token-file: the token holds characters no HTTP header can carry",
                                )
                            })?;
                        v.set_sensitive(true);
                        Ok::<_, Failure>(v)
                    })
                    .transpose()?;
                let tls = initbox_runtime::tls::client_config(&args.tls)?;
                let mut opts = initbox_runtime::http::ClientOptions::new(
                    tls,
                    concat!("git/initbox-", env!("CARGO_PKG_VERSION")),
                    // One request may carry a whole pack: bounded by --timeout, not per request.
                    Duration::from_secs(365 * 24 * 3600),
                );
                opts.connect_timeout = Duration::from_secs(30);
                let client = initbox_runtime::http::client(opts)?;
                Via::Http {
                    client,
                    authorization,
                }
            }
            "git" => {
                if token.is_some() {
                    return Err(Failure::usage(format!(
                        "{shown}: git:// has no authentication; --token-file needs https"
                    )));
                }
                Via::Git
            }
            other => {
                return Err(Failure::usage(format!(
                    "{shown}: {other}:// is not supported (https://, http:// and git:// are; ssh needs a binary the image does not have)"
                )));
            }
        };
        Ok(Plan {
            url: args.url,
            shown,
            dir: args.to,
            reference: args.reference,
            commit: args.commit,
            depth: NonZeroU32::new(args.depth),
            via,
            with_token: token.is_some(),
        })
    }

    /// The ref asked for, as the marker records it.
    fn asked(&self) -> String {
        match (&self.reference, &self.commit) {
            (Some(r), _) => r.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => "HEAD".into(),
        }
    }

    fn execute(self, handle: &tokio::runtime::Handle) -> Result<(), Failure> {
        let started = Instant::now();
        let _lock = place::lock(&self.dir)?;
        place::resume(&self.dir)?;
        place::remove_stale_staging(&self.dir);

        let current = Marker::read(&self.dir);
        let ours = current.as_ref().is_some_and(|m| m.url == self.url);
        if current.is_none() && !place::data_entries(&self.dir)?.is_empty() {
            return Err(Failure::env_refused(format!(
                "{} is not empty and holds no checkout of initbox's; refusing to replace it",
                self.dir.display()
            )));
        }
        if let (Some(want), Some(m)) = (&self.commit, &current)
            && ours
            && &m.commit == want
            && m.reference == self.asked()
        {
            info!(url = %self.shown, commit = %want, dir = %self.dir.display(),
                "git-checkout: already at {want}; nothing to do");
            return Ok(());
        }

        let staging = place::new_staging(&self.dir)?;
        let result =
            self.fetch_and_check_out(&staging, current.as_ref().filter(|_| ours), handle, started);
        match result {
            Ok(Some(marker)) => {
                place::swap(&self.dir, &staging)?;
                info!(url = %self.shown, r#ref = %marker.reference, commit = %marker.commit,
                    dir = %self.dir.display(), elapsed_ms = started.elapsed().as_millis() as u64,
                    "git-checkout: {} is at {} ({})", self.dir.display(), short(&marker.commit), marker.reference);
                Ok(())
            }
            Ok(None) => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(f) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(f)
            }
        }
    }

    /// Fetch into `staging` and check out there; `None` when DIR is already at the commit.
    fn fetch_and_check_out(
        &self,
        staging: &Path,
        current: Option<&Marker>,
        handle: &tokio::runtime::Handle,
        started: Instant,
    ) -> Result<Option<Marker>, Failure> {
        let repo = gix::ThreadSafeRepository::init_opts(
            staging,
            gix::create::Kind::WithWorktree,
            gix::create::Options::default(),
            // No user or system configuration; the reflog's identity is initbox's.
            gix::open::Options::isolated().config_overrides([
                "committer.name=initbox",
                "committer.email=initbox@localhost",
            ]),
        )
        .map_err(|e| {
            Failure::env_refused(format!(
                "cannot create a repository in {}: {e}",
                staging.display()
            ))
        })?
        .to_thread_local();

        let specs = refspecs(self.reference.as_deref(), self.commit.as_deref());
        let remote = repo
            .remote_at(self.url.as_str())
            .and_then(|r| r.with_refspecs(specs.iter().map(String::as_str), Direction::Fetch))
            .map_err(|e| Failure::usage(format!("{}: {e}", self.shown)))?;
        let seen = Arc::new(Mutex::new(transport::Seen::default()));
        info!(url = %self.shown, r#ref = %self.asked(), "git-checkout: asking {} for {}", self.shown, self.asked());
        match &self.via {
            Via::Http {
                client,
                authorization,
            } => {
                let url = gix::url::parse(gix::bstr::BStr::new(self.url.as_bytes()))
                    .map_err(|e| Failure::usage(format!("{}: {e}", self.shown)))?;
                let http = transport::Remote::new(
                    client.clone(),
                    handle.clone(),
                    authorization.clone(),
                    seen.clone(),
                );
                let t = gix_transport::client::blocking_io::http::connect_http(
                    http,
                    url,
                    gix::protocol::transport::Protocol::V2,
                    false,
                );
                let connection = remote.to_connection_with_transport(t);
                self.fetch(&repo, connection, current, &seen, started)
            }
            Via::Git => {
                let connection = remote
                    .connect(Direction::Fetch)
                    .map_err(|e| self.network_failure(&e.to_string(), &seen))?;
                self.fetch(&repo, connection, current, &seen, started)
            }
        }
    }

    fn fetch<T: gix::protocol::transport::client::blocking_io::Transport>(
        &self,
        repo: &gix::Repository,
        connection: gix::remote::Connection<'_, '_, '_, T>,
        current: Option<&Marker>,
        seen: &Arc<Mutex<transport::Seen>>,
        started: Instant,
    ) -> Result<Option<Marker>, Failure> {
        let connection = connection.with_credentials(|_| {
            Err(gix::error::message("no credential helper: give --token-file").into())
        });
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| self.network_failure(&chain(&e), seen))?;
        let target = self.resolve(prepare.ref_map())?;
        if let Some(want) = &self.commit
            && self.reference.is_some()
            && &target.commit != want
        {
            return Err(Failure::failed(format!(
                "{} {} is at {}, not at the expected commit {want}; nothing was changed",
                self.shown, target.name, target.commit
            )));
        }
        if current.is_some_and(|m| m.commit == target.commit) {
            info!(url = %self.shown, commit = %target.commit, dir = %self.dir.display(),
                "git-checkout: {} is already at {} ({}); nothing to do", self.dir.display(), short(&target.commit), target.name);
            return Ok(None);
        }
        let mut prepare = prepare;
        if let Some(depth) = self.depth {
            prepare = prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth));
        }
        let interrupt = AtomicBool::new(false);
        let ticker = Ticker::start(seen, target.commit.clone());
        let outcome = prepare
            .receive(gix::progress::Discard, &interrupt)
            .map_err(|e| self.network_failure(&chain(&e), seen))?;
        drop(ticker);
        let fetched = match &outcome.status {
            gix::remote::fetch::Status::Change {
                write_pack_bundle, ..
            } => write_pack_bundle.index.num_objects,
            _ => 0,
        };
        info!(
            objects = fetched,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "git-checkout: received {fetched} objects"
        );

        // The commit itself, verified: present, a commit (peeling an annotated tag), the one
        // the remote advertised and, with --commit, the one asked for.
        let tip = gix::ObjectId::from_hex(target.tip.as_bytes())
            .map_err(|e| Failure::failed(format!("{}: bad object id: {e}", self.shown)))?;
        let commit = repo
            .find_object(tip)
            .map_err(|e| {
                Failure::failed(format!(
                    "{}: the fetched data lacks {}: {e}",
                    self.shown, target.tip
                ))
            })?
            .peel_to_commit()
            .map_err(|e| {
                Failure::failed(format!(
                    "{} {} is not a commit: {e}",
                    self.shown, target.name
                ))
            })?;
        let commit_id = commit.id.to_string();
        if commit_id != target.commit || self.commit.as_ref().is_some_and(|c| c != &commit_id) {
            return Err(Failure::failed(format!(
                "{}: received commit {commit_id}, expected {}; nothing was changed",
                self.shown,
                self.commit.as_deref().unwrap_or(&target.commit)
            )));
        }
        let tree = commit
            .tree_id()
            .map_err(|e| {
                Failure::failed(format!(
                    "{}: commit {commit_id} has no tree: {e}",
                    self.shown
                ))
            })?
            .detach();

        finish_repository(repo, &self.url, commit.id)?;
        let files = check_out(repo, tree)?;
        info!(
            files,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "git-checkout: wrote {files} files"
        );
        let marker = Marker {
            url: self.url.clone(),
            reference: self.asked(),
            commit: commit_id,
        };
        marker.write(repo.git_dir())?;
        Ok(Some(marker))
    }

    /// The commit the remote's ref map points at.
    fn resolve(&self, map: &gix::protocol::fetch::RefMap) -> Result<Target, Failure> {
        // Mappings come in refspec order: a branch before a tag of the same name, as
        // `git clone --branch` prefers.
        let mut mappings: Vec<_> = map.mappings.iter().collect();
        mappings.sort_by_key(|m| match m.spec_index {
            gix::protocol::fetch::refmap::SpecIndex::ExplicitInRemote(i) => (0, i),
            gix::protocol::fetch::refmap::SpecIndex::Implicit(i) => (1, i),
        });
        let Some(m) = mappings.first() else {
            return Err(Failure::failed(format!(
                "{} has no {}",
                self.shown,
                match &self.reference {
                    Some(r) => format!("branch, tag or ref named '{r}'"),
                    None => "default branch (an empty repository?)".to_string(),
                }
            )));
        };
        let (name, tip, peeled) = match &m.remote {
            gix::protocol::fetch::refmap::Source::ObjectId(id) => {
                ("commit".to_string(), id.to_string(), None)
            }
            gix::protocol::fetch::refmap::Source::Ref(r) => {
                let (name, target, peeled) = r.unpack();
                let Some(target) = target else {
                    return Err(Failure::failed(format!(
                        "{} {name} points at no commit yet (an empty repository?)",
                        self.shown
                    )));
                };
                (
                    name.to_string(),
                    target.to_string(),
                    peeled.map(|p| p.to_string()),
                )
            }
        };
        Ok(Target {
            name,
            commit: peeled.unwrap_or_else(|| tip.clone()),
            tip,
        })
    }

    /// A failed exchange with the remote, as the toolkit's exit codes say it.
    fn network_failure(&self, detail: &str, seen: &Mutex<transport::Seen>) -> Failure {
        let status = seen.lock().ok().and_then(|s| s.status);
        let detail = redact::scrub(detail).into_owned();
        match status {
            Some(401) | Some(403) if self.with_token => Failure::credentials(format!(
                "{} refused the token from --token-file (HTTP {})",
                self.shown,
                status.unwrap_or_default()
            )),
            Some(401) | Some(403) => Failure::credentials(format!(
                "{} needs credentials (HTTP {}): give --token-file",
                self.shown,
                status.unwrap_or_default()
            )),
            Some(404) => Failure::failed(format!("{}: no repository there (HTTP 404)", self.shown)),
            _ => Failure::failed(format!("{}: {detail}", self.shown)),
        }
    }
}

/// A progress line every [`Ticker::EVERY`] while a pack is received, until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    const EVERY: Duration = Duration::from_secs(10);

    fn start(seen: &Arc<Mutex<transport::Seen>>, commit: String) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt, span) = (seen.clone(), stop.clone(), tracing::Span::current());
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let _in = span.enter();
            let mut next = Ticker::EVERY;
            while !halt.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if started.elapsed() < next {
                    continue;
                }
                next += Ticker::EVERY;
                let bytes = seen.lock().map(|s| s.bytes).unwrap_or_default();
                info!(
                    bytes,
                    elapsed_s = started.elapsed().as_secs(),
                    "git-checkout: receiving {}: {} so far",
                    short(&commit),
                    initbox_runtime::http::human_bytes(bytes as usize)
                );
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the remote's ref points at.
struct Target {
    /// The remote ref's full name (or "commit").
    name: String,
    /// The object the ref points at (a tag object for an annotated tag).
    tip: String,
    /// The commit.
    commit: String,
}

/// The refspecs for `reference`: a branch is tracked as `refs/remotes/origin/NAME`, a tag as
/// `refs/tags/NAME`, as `git clone --branch` leaves them.
fn refspecs(reference: Option<&str>, commit: Option<&str>) -> Vec<String> {
    match (reference, commit) {
        (None, Some(c)) => vec![c.to_string()],
        (None, None) | (Some("HEAD"), _) => vec!["HEAD".into()],
        (Some(r), _) if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) => {
            vec![r.to_ascii_lowercase()]
        }
        (Some(r), _) if r.starts_with("refs/heads/") => {
            vec![format!(
                "+{r}:refs/remotes/origin/{}",
                &r["refs/heads/".len()..]
            )]
        }
        (Some(r), _) if r.starts_with("refs/tags/") => vec![format!("+{r}:{r}")],
        (Some(r), _) if r.starts_with("refs/") => vec![r.to_string()],
        (Some(r), _) => vec![
            format!("+refs/heads/{r}:refs/remotes/origin/{r}"),
            format!("+refs/tags/{r}:refs/tags/{r}"),
        ],
    }
}

/// HEAD detached at the commit, `origin` configured as `git clone` configures it, initbox's
/// own entries excluded from `git status`.
fn finish_repository(
    repo: &gix::Repository,
    url: &str,
    commit: gix::ObjectId,
) -> Result<(), Failure> {
    use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
    let refused =
        |what: &str, e: &dyn std::fmt::Display| Failure::env_refused(format!("cannot {what}: {e}"));
    repo.edit_reference(RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: "initbox git-checkout".into(),
            },
            expected: PreviousValue::Any,
            new: gix::refs::Target::Object(commit),
        },
        name: "HEAD".try_into().map_err(|e| refused("name HEAD", &e))?,
        deref: false,
    })
    .map_err(|e| refused("set HEAD", &e))?;

    let config_path = repo.git_dir().join("config");
    let mut config =
        gix::config::File::from_path_no_includes(config_path.clone(), gix::config::Source::Local)
            .map_err(|e| refused("read .git/config", &e))?;
    let mut origin = repo
        .remote_at(url)
        .and_then(|r| r.with_refspecs(["+refs/heads/*:refs/remotes/origin/*"], Direction::Fetch))
        .map_err(|e| refused("configure origin", &e))?;
    origin
        .save_as_to("origin", &mut config)
        .map_err(|e| refused("configure origin", &e))?;
    std::fs::write(&config_path, config.to_bstring())
        .map_err(|e| refused("write .git/config", &e))?;

    let exclude = repo.git_dir().join("info").join("exclude");
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    text.push_str("# initbox git-checkout's lock, journal and staging\n/.initbox-*\n");
    if let Some(parent) = exclude.parent() {
        std::fs::create_dir_all(parent).map_err(|e| refused("create .git/info", &e))?;
    }
    std::fs::write(&exclude, text).map_err(|e| refused("write .git/info/exclude", &e))
}

/// Write the worktree and index of `tree` into the repository's work directory, with the
/// `.gitattributes` filters git applies; the number of files.
fn check_out(repo: &gix::Repository, tree: gix::ObjectId) -> Result<usize, Failure> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| Failure::failed(format!("checkout: {what}: {e}"));
    let workdir = repo
        .workdir()
        .ok_or_else(|| Failure::failed("checkout: the staging repository has no work directory"))?
        .to_path_buf();
    let state = repo
        .index_from_tree(&tree)
        .map_err(|e| failed("cannot read the tree", &e))?;
    let mut index = state;
    let mut opts = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| failed("options", &e))?;
    opts.destination_is_initially_empty = true;
    let interrupt = AtomicBool::new(false);
    let objects = repo
        .objects
        .clone()
        .into_arc()
        .map_err(|e| failed("object database", &e))?;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        &workdir,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        &interrupt,
        opts,
    )
    .map_err(|e| failed("cannot write the files", &e))?;
    if let Some(e) = outcome.errors.first() {
        return Err(Failure::failed(format!(
            "checkout: cannot write {}: {}",
            e.path, e.error
        )));
    }
    if let Some(c) = outcome.collisions.first() {
        return Err(Failure::failed(format!(
            "checkout: {} collides with another path on this filesystem",
            c.path
        )));
    }
    index
        .write(Default::default(), gix_fs::SharedPermissions::Umask)
        .map_err(|e| failed("cannot write the index", &e))?;
    Ok(outcome.files_updated)
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refspecs_follow_what_the_ref_is() {
        assert_eq!(refspecs(None, None), ["HEAD"]);
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(refspecs(None, Some(c)), [c]);
        assert_eq!(
            refspecs(Some("main"), Some(c))[0],
            "+refs/heads/main:refs/remotes/origin/main"
        );
        assert_eq!(refspecs(Some("v1"), None)[1], "+refs/tags/v1:refs/tags/v1");
        assert_eq!(
            refspecs(Some("refs/tags/v1"), None),
            ["+refs/tags/v1:refs/tags/v1"]
        );
        assert_eq!(
            refspecs(Some("refs/pull/1/head"), None),
            ["refs/pull/1/head"]
        );
    }

    #[test]
    fn commit_ids_are_full_and_hex() {
        assert!(parse_commit("abc").is_err());
        assert!(parse_commit(&"g".repeat(40)).is_err());
        assert_eq!(parse_commit(&"AB".repeat(20)).unwrap(), "ab".repeat(20));
    }
}
