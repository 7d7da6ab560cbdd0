//! `initbox notify`: tell the outside world that a pod is starting or that an init step failed.
//!
//! `initbox notify URL... --title T --message M` sends one notification to every target URL
//! (webhook, CloudEvents, Slack/Mattermost/Rocket.Chat, Teams Workflows, Discord, Google Chat,
//! Telegram, ntfy, PagerDuty, SMTP, stdout/file) in parallel, each retried on transient errors
//! with backoff honouring Retry-After, all inside one time box. `initbox notify run URL... --
//! CMD ARGS` runs a command, passes its exit code on and notifies its success or failure with
//! the tail of its stderr.

mod bodies;
mod context;
mod dedupe;
mod deliver;
mod mail_providers;
mod payload;
mod run;
mod smtp;
mod target;
mod template;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use initbox_runtime::duration::{self, human};
use initbox_runtime::retry::RetryPolicy;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Applet, Code, Deadline, Failure, LogArgs, Outcome, redact};
use serde_json::{Map, Value, json};

use crate::payload::Note;
use crate::target::{Service, Target};

#[derive(Debug, Parser)]
#[command(
    name = "notify",
    version,
    about = "Send a notification (webhook, chat, e-mail, paging), or run a command and notify its outcome",
    long_about = "Send one notification to every target URL, in parallel: generic webhooks \
                  (JSON body templates, HMAC signatures), CloudEvents, Slack, Mattermost, \
                  Rocket.Chat, Microsoft Teams (Workflows), Discord, Google Chat, Telegram, ntfy, \
                  PagerDuty Events v2, SMTP e-mail, stdout and files. Each delivery is retried on \
                  transient errors with backoff, honouring Retry-After, inside one time box \
                  (--timeout).\n\n\
                  Best effort by default: a notification that cannot be delivered is logged and \
                  initbox exits 0, so it never blocks a pod; --required makes it fail the step.\n\n\
                  `initbox notify run URL... -- CMD ARGS` runs the command, passes its exit code \
                  on (128+N on signal N), and notifies its success or failure with the tail of \
                  its stderr.\n\n\
                  Title, message and --body are MiniJinja templates (strict: an unknown variable \
                  is an error) with env, pod (downward API), hostname, data (--data files), event, \
                  now, resolves, and in `run` command, exit_code, duration, stderr_tail.",
    after_help = "Examples:\n  \
      initbox notify 'slack+https://hooks.slack.com/services/${SLACK_PATH}' \\\n      \
        --title 'Starting {{ pod.name }}' --message 'Image {{ env.IMAGE }} on {{ pod.node }}'\n  \
      initbox notify 'webhook+https://hooks.example.com/in?sign=github&secret_file=/run/secrets/hook' \\\n      \
        --body '{\"pod\": {\"name\": \"{{ pod.name }}\"}, \"text\": \"{{ message }}\"}' -m started\n  \
      initbox notify run --dedupe-file /run/notify/state 'pagerduty:///${file:/run/secrets/pd}' \\\n      \
        -- /app/migrate up\n\n\
      URL targets: see `initbox notify --help` and applets/notify/README.md for every scheme.",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,

    #[command(flatten)]
    pub send: SendArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run a command, pass its exit code on, and notify its success or failure with the tail of
    /// its stderr.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub send: SendArgs,

    /// Events to notify: start, success, failure (comma-separated). With --dedupe-file, a
    /// success that resolves an earlier failure alert is always sent.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "success,failure",
        env = initbox_runtime::env::NOTIFY_ON
    )]
    pub on: Vec<Event>,

    /// Lines of the command's stderr put in the message (at most 4 KiB).
    #[arg(
        long,
        value_name = "LINES",
        default_value_t = 20,
        env = initbox_runtime::env::NOTIFY_TAIL
    )]
    pub tail: usize,

    /// The command to run.
    #[arg(last = true, value_name = "CMD", required = true)]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Event {
    Start,
    Success,
    Failure,
    Info,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Info => "info",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// Target URLs (space-separated in the variable). `env:VAR` and `file:/path` read a URL from
    /// a variable or a mounted Secret; `${VAR}` and `${file:/path}` inside a URL insert a secret.
    #[arg(value_name = "URL", env = initbox_runtime::env::NOTIFY_URLS, value_delimiter = ' ')]
    pub urls: Vec<String>,

    /// Title (a template).
    #[arg(long, value_name = "TEMPLATE", env = initbox_runtime::env::NOTIFY_TITLE)]
    pub title: Option<String>,

    /// Message (a template); `-` reads it from stdin.
    #[arg(short, long, value_name = "TEMPLATE", env = initbox_runtime::env::NOTIFY_MESSAGE)]
    pub message: Option<String>,

    /// Read the message template from a file.
    #[arg(
        long,
        value_name = "PATH",
        env = initbox_runtime::env::NOTIFY_MESSAGE_FILE,
        conflicts_with = "message"
    )]
    pub message_file: Option<PathBuf>,

    /// What this notification is about (PagerDuty: success resolves, others trigger).
    #[arg(long, value_enum, default_value = "info", env = initbox_runtime::env::NOTIFY_EVENT)]
    pub event: Event,

    /// JSON body for webhook/CloudEvents targets; every string in it is a template, so nested
    /// objects and quoting stay valid JSON.
    #[arg(long, value_name = "JSON", env = initbox_runtime::env::NOTIFY_BODY)]
    pub body: Option<String>,

    /// Read the JSON body template from a file.
    #[arg(
        long,
        value_name = "PATH",
        env = initbox_runtime::env::NOTIFY_BODY_FILE,
        conflicts_with = "body"
    )]
    pub body_file: Option<PathBuf>,

    /// JSON data for templates: `PATH` merges its object into `data`, `NAME=PATH` sets `data.NAME`.
    #[arg(
        long = "data",
        value_name = "[NAME=]PATH",
        env = initbox_runtime::env::NOTIFY_DATA,
        value_delimiter = ','
    )]
    pub data: Vec<String>,

    /// Downward-API volume directory (labels, annotations, name, namespace... become `pod.*`);
    /// POD_NAME, POD_NAMESPACE, NODE_NAME, POD_IP, POD_UID variables are read as well.
    #[arg(long, value_name = "DIR", env = initbox_runtime::env::DOWNWARD_API)]
    pub downward_api: Option<PathBuf>,

    /// A notification that cannot be delivered fails the step (exit 1).
    #[arg(long, env = initbox_runtime::env::NOTIFY_REQUIRED, value_parser = clap::builder::BoolishValueParser::new(), conflicts_with = "best_effort")]
    pub required: bool,

    /// A notification that cannot be delivered is logged and initbox exits 0 (the default).
    #[arg(long, env = initbox_runtime::env::NOTIFY_BEST_EFFORT, value_parser = clap::builder::BoolishValueParser::new())]
    pub best_effort: bool,

    /// Give up after this long (0 = no limit); the time box for delivering to all targets,
    /// retries included.
    #[arg(long, value_name = "DURATION", default_value = "15s",
          value_parser = duration::parse, env = initbox_runtime::env::TIMEOUT)]
    pub timeout: Duration,

    /// Bound on one attempt (connect, TLS, request and response).
    #[arg(long, value_name = "DURATION", default_value = "5s",
          value_parser = duration::parse, env = initbox_runtime::env::ATTEMPT_TIMEOUT)]
    pub attempt_timeout: Duration,

    /// Attempts per delivery (default: until the time box ends).
    #[arg(long, value_name = "N", env = initbox_runtime::env::NOTIFY_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,

    /// State file (on an emptyDir) so a crash-looping pod sends one message per incident and a
    /// resolve message when it later succeeds.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::NOTIFY_DEDUPE_FILE)]
    pub dedupe_file: Option<PathBuf>,

    /// With --dedupe-file: the same event for the same key is not sent again within this time.
    #[arg(long, value_name = "DURATION", default_value = "10m",
          value_parser = duration::parse, env = initbox_runtime::env::NOTIFY_COOLDOWN)]
    pub cooldown: Duration,

    /// Dedupe key (a template); also PagerDuty's dedup_key. Default: namespace/pod name, or the
    /// hostname, plus the command in `run`.
    #[arg(long, value_name = "TEMPLATE", env = initbox_runtime::env::NOTIFY_KEY)]
    pub key: Option<String>,

    /// Idempotency key sent with the notification (Idempotency-Key, webhook-id, CloudEvents id,
    /// Message-ID); a template. Default: a new random UUID per notification.
    #[arg(long, value_name = "TEMPLATE", env = initbox_runtime::env::NOTIFY_IDEMPOTENCY_KEY)]
    pub idempotency_key: Option<String>,

    /// Print the requests that would be sent (secrets masked) and send nothing.
    #[arg(long, env = initbox_runtime::env::NOTIFY_DRY_RUN, value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub tls: TlsArgs,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        match self.command {
            None => {
                let send = self.send;
                let targets = parse_targets(&send.urls)?;
                let message = message_template(&send)?.ok_or_else(|| {
                    Failure::usage("no message given (--message TEXT or --message-file PATH)")
                })?;
                let event = send.event;
                let base = Base::new(&send)?;
                let outcome = notify(
                    &send,
                    &targets,
                    &base,
                    event,
                    &message,
                    Map::new(),
                    json!({}),
                )
                .await?;
                Ok(Outcome::Exit(outcome))
            }
            Some(Sub::Run(r)) => run_command(r).await,
        }
    }
}

fn parse_targets(urls: &[String]) -> Result<Vec<Target>, Failure> {
    let urls: Vec<&String> = urls.iter().filter(|u| !u.trim().is_empty()).collect();
    if urls.is_empty() {
        return Err(Failure::usage(
            "no target URLs given (arguments or INITBOX_NOTIFY_URLS)",
        ));
    }
    urls.iter()
        .enumerate()
        .map(|(i, u)| target::parse(i + 1, u.trim()))
        .collect()
}

fn message_template(send: &SendArgs) -> Result<Option<String>, Failure> {
    match (&send.message, &send.message_file) {
        (Some(m), _) if m == "-" => {
            let text = initbox_runtime::input::read_stdin("--message - (stdin)")?;
            Ok(Some(text.trim_end_matches('\n').to_string()))
        }
        (Some(m), _) => Ok(Some(m.clone())),
        (None, Some(p)) => {
            initbox_runtime::input::read_string(p, &format!("--message-file {}", p.display()))
                .map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// What every notification of a run shares: pod metadata, data, the body template, the client.
struct Base {
    pod: Map<String, Value>,
    data: Map<String, Value>,
    body: Option<Value>,
}

impl Base {
    fn new(send: &SendArgs) -> Result<Self, Failure> {
        let pod = context::pod(send.downward_api.as_deref())?;
        let data = context::data(&send.data)?;
        let body_src = match (&send.body, &send.body_file) {
            (Some(b), _) => Some(("--body".to_string(), b.clone())),
            (None, Some(p)) => Some((
                format!("--body-file {}", p.display()),
                initbox_runtime::input::read_string(p, &format!("--body-file {}", p.display()))?,
            )),
            _ => None,
        };
        let body = match body_src {
            None => None,
            Some((what, src)) => Some(
                serde_json::from_str::<Value>(&src)
                    .map_err(|e| Failure::invalid_input(format!("{what}: not valid JSON: {e}")))?,
            ),
        };
        Ok(Base { pod, data, body })
    }
}

/// Render every string inside a JSON template (keys stay literal).
fn render_json(what: &str, v: &Value, ctx: &Value) -> Result<Value, Failure> {
    Ok(match v {
        Value::String(s) => Value::String(template::render(what, s, ctx)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_json(what, x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(what, x, ctx)?)))
                .collect::<Result<_, Failure>>()?,
        ),
        other => other.clone(),
    })
}

/// The dedupe key: `--key`, or namespace/pod (or the hostname), plus the command in `run`.
fn dedupe_key(send: &SendArgs, base: &Base, ctx: &Value) -> Result<String, Failure> {
    Ok(match &send.key {
        Some(k) => template::render("--key", k, ctx)?,
        None => match ctx.get("command") {
            Some(Value::String(c)) => format!("{}:{c}", default_key(&base.pod)),
            _ => default_key(&base.pod),
        },
    })
}

fn default_key(pod: &Map<String, Value>) -> String {
    match (pod.get("namespace"), pod.get("name")) {
        (Some(Value::String(ns)), Some(Value::String(n))) => format!("{ns}/{n}"),
        (None, Some(Value::String(n))) => n.clone(),
        _ => context::hostname(),
    }
}

/// Title, message, idempotency key and body of one notification.
struct Rendered {
    title: String,
    message: String,
    id: String,
    body: Option<Value>,
}

/// Render the notification's templates in order: title, then message (sees `title`), then the
/// idempotency key and body (see both).
fn render_parts(
    send: &SendArgs,
    base: &Base,
    message_src: &str,
    ctx: &mut Value,
) -> Result<Rendered, Failure> {
    let title = match &send.title {
        Some(t) => template::render("--title", t, ctx)?,
        None => String::new(),
    };
    ctx["title"] = Value::String(title.clone());
    let message = template::render("--message", message_src, ctx)?;
    ctx["message"] = Value::String(message.clone());
    let id = match &send.idempotency_key {
        Some(k) => template::render("--idempotency-key", k, ctx)?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let body = match &base.body {
        Some(b) => Some(render_json("--body", b, ctx)?),
        None => None,
    };
    Ok(Rendered {
        title,
        message,
        id,
        body,
    })
}

/// `notify run`: render every template once with stand-in outcome values before the command
/// runs, so a broken template (exit 3) never lets the command run without its notification.
fn preflight(
    send: &SendArgs,
    base: &Base,
    message_src: &str,
    extra: &Map<String, Value>,
) -> Result<(), Failure> {
    for event in [Event::Failure, Event::Success] {
        let mut ctx = context::base(base.pod.clone(), base.data.clone(), event.as_str());
        if let Value::Object(m) = &mut ctx {
            m.extend(extra.clone());
            m.insert(
                "exit_code".into(),
                json!(i32::from(event == Event::Failure)),
            );
            m.insert("duration".into(), Value::String("0ms".into()));
            m.insert("duration_ms".into(), json!(0));
            m.insert("stderr_tail".into(), Value::String(String::new()));
            m.insert("resolves".into(), Value::Bool(false));
        }
        let key = dedupe_key(send, base, &ctx)?;
        ctx["key"] = Value::String(key);
        render_parts(send, base, message_src, &mut ctx)?;
    }
    Ok(())
}

/// Send one notification to every target. Returns the exit code (0, or 1/5 with --required).
async fn notify(
    send: &SendArgs,
    targets: &[Target],
    base: &Base,
    event: Event,
    message_src: &str,
    extra_ctx: Map<String, Value>,
    details: Value,
) -> Result<Code, Failure> {
    let mut ctx = context::base(base.pod.clone(), base.data.clone(), event.as_str());
    if let Value::Object(m) = &mut ctx {
        m.extend(extra_ctx);
    }
    let key = dedupe_key(send, base, &ctx)?;
    let now = dedupe::now();
    let mut state = send.dedupe_file.as_deref().map(dedupe::State::load);
    let resolves = match &state {
        None => false,
        Some(s) => match s.decide(&key, event.as_str(), now, send.cooldown) {
            dedupe::Decision::Send { resolves } => resolves,
            dedupe::Decision::Skip {
                sent_at,
                suppressed,
            } => {
                tracing::info!(
                    key = %key,
                    event = event.as_str(),
                    suppressed,
                    "not sent: the same {} was sent {} ago (cooldown {})",
                    event.as_str(),
                    human(Duration::from_secs(now.saturating_sub(sent_at))),
                    human(send.cooldown)
                );
                if let (Some(s), Some(path)) = (state.as_mut(), &send.dedupe_file) {
                    s.record_skipped(&key);
                    if let Err(f) = s.save(path) {
                        tracing::warn!("dedupe state not saved: {f}");
                    }
                }
                return Ok(Code::OK);
            }
        },
    };
    ctx["resolves"] = Value::Bool(resolves);
    ctx["key"] = Value::String(key.clone());
    let Rendered {
        title,
        message,
        id,
        body,
    } = render_parts(send, base, message_src, &mut ctx)?;
    let note = Note {
        title,
        message,
        event: event.as_str().to_string(),
        id,
        key: key.clone(),
        resolves,
        body,
        details,
        pod: base.pod.clone(),
        hostname: context::hostname(),
        time: ctx["now"].as_str().unwrap_or_default().to_string(),
    };
    let unix = now;

    if send.dry_run {
        return dry_run(targets, &note, unix);
    }

    let needs_http = targets
        .iter()
        .any(|t| matches!(t.service, Service::Http(_)));
    let needs_tls = deliver::https_proxy_in_env()
        || send.tls.ca_file.is_some()
        || send.tls.client_cert.is_some()
        || targets
            .iter()
            .any(|t| matches!(&t.service, Service::Http(h) if h.url.scheme() == "https"));
    let deadline = Deadline::after((!send.timeout.is_zero()).then_some(send.timeout));
    let delivery = deliver::Delivery {
        client: if needs_http {
            Some(deliver::http_client(
                &send.tls,
                send.attempt_timeout,
                needs_tls,
            )?)
        } else {
            None
        },
        tls: send.tls.clone(),
        attempt_timeout: send.attempt_timeout,
        policy: RetryPolicy {
            max_attempts: send.max_attempts.map(|n| n as usize),
            ..RetryPolicy::REQUESTS
        },
        deadline,
    };
    let results = futures_util::future::join_all(
        targets
            .iter()
            .map(|t| deliver_one(&delivery, t, &note, unix)),
    )
    .await;

    let failures: Vec<Failure> = results.into_iter().filter_map(Result::err).collect();
    let delivered = targets.len() - failures.len();
    if delivered > 0
        && let (Some(s), Some(path)) = (state.as_mut(), &send.dedupe_file)
    {
        s.record_sent(&key, event.as_str(), now);
        if let Err(f) = s.save(path) {
            tracing::warn!("dedupe state not saved: {f}");
        }
    }
    let elapsed = human(deadline.elapsed());
    if failures.is_empty() {
        tracing::info!(
            event = event.as_str(),
            id = %note.id,
            "notified {delivered} of {} target(s){} in {elapsed}",
            targets.len(),
            if resolves { " (resolves the earlier failure)" } else { "" }
        );
        return Ok(Code::OK);
    }
    for f in &failures[1..] {
        tracing::warn!("{}", f.message);
    }
    let summary = format!(
        "{} of {} notification(s) not delivered: {}",
        failures.len(),
        targets.len(),
        failures[0].message
    );
    if send.required {
        let code = if failures.iter().all(|f| f.code == Code::CREDENTIALS) {
            Code::CREDENTIALS
        } else {
            Code::FAILED
        };
        Err(Failure::new(code, summary))
    } else {
        tracing::warn!("{summary} (best effort: not failing the step; --required to fail it)");
        Ok(Code::OK)
    }
}

async fn deliver_one(
    d: &deliver::Delivery,
    t: &Target,
    n: &Note,
    unix: u64,
) -> Result<(), Failure> {
    let what = format!("{} #{} {}", t.service.name(), t.index, t.shown);
    let started = std::time::Instant::now();
    match &t.service {
        Service::Http(h) => {
            for req in payload::requests(h, n, unix) {
                let status = d.http(&what, &req).await?;
                tracing::debug!(status, "{what}: delivered");
            }
        }
        Service::Smtp(s) => d.smtp(&what, s, n).await?,
        Service::Stdout => deliver::to_stdout(n)?,
        Service::File(p) => deliver::to_file(p, n)?,
    }
    tracing::info!("{what}: delivered in {}", human(started.elapsed()));
    Ok(())
}

fn dry_run(targets: &[Target], n: &Note, unix: u64) -> Result<Code, Failure> {
    let mut out = String::new();
    for t in targets {
        out.push_str(&format!(
            "# {} #{} {}\n",
            t.service.name(),
            t.index,
            t.shown
        ));
        match &t.service {
            Service::Http(h) => {
                for r in payload::requests(h, n, unix) {
                    out.push_str(&format!(
                        "{} {}\n",
                        r.method,
                        target::display(r.url.as_str())
                    ));
                    for (k, v) in &r.headers {
                        let sensitive = k.eq_ignore_ascii_case("authorization");
                        out.push_str(&format!(
                            "{k}: {}\n",
                            if sensitive { redact::MASK } else { v }
                        ));
                    }
                    out.push('\n');
                    out.push_str(&String::from_utf8_lossy(&r.body));
                    out.push_str("\n\n");
                }
            }
            Service::Smtp(s) => out.push_str(&format!(
                "SMTP {}:{} ({:?}) from {} to {}\nSubject: {}\n\n{}\n\n",
                s.host,
                s.port,
                s.tls,
                s.from,
                s.to.join(", "),
                n.title,
                n.message
            )),
            Service::Stdout | Service::File(_) => out.push_str(&deliver::log_line(n)),
        }
    }
    print!("{}", redact::scrub(&out));
    Ok(Code::OK)
}

fn shell_join(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const RUN_TITLE: &str = "{{ command_name }} {{ 'succeeded' if event == 'success' else \
    ('failed (exit ' ~ exit_code ~ ')' if event == 'failure' else 'starting') }}\
    {% if pod.name is defined %} in {{ pod.namespace ~ '/' if pod.namespace is defined }}{{ pod.name }}\
    {% else %} on {{ hostname }}{% endif %}";

const RUN_MESSAGE: &str = "{% if event == 'start' %}Starting `{{ command }}`.\
    {% else %}`{{ command }}` {{ 'succeeded' if event == 'success' else 'failed' }} with exit code \
    {{ exit_code }} after {{ duration }}.{% if resolves %} This resolves the earlier failure.{% endif %}\
    {% if stderr_tail and event == 'failure' %}\n\nLast lines of stderr:\n{{ stderr_tail }}{% endif %}{% endif %}";

async fn run_command(r: RunArgs) -> Result<Outcome, Failure> {
    let mut send = r.send;
    // Fail on bad configuration before the command runs.
    let targets = parse_targets(&send.urls)?;
    let message = message_template(&send)?.unwrap_or_else(|| RUN_MESSAGE.to_string());
    if send.title.is_none() {
        send.title = Some(RUN_TITLE.to_string());
    }
    let base = Base::new(&send)?;
    let command = shell_join(&r.command);
    let command_name = std::path::Path::new(&r.command[0])
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| command.clone());
    let mut ctx = Map::new();
    ctx.insert("command".into(), Value::String(command.clone()));
    ctx.insert("command_name".into(), Value::String(command_name));
    preflight(&send, &base, &message, &ctx)?;

    if r.on.contains(&Event::Start) {
        let mut c = ctx.clone();
        c.insert("exit_code".into(), Value::Null);
        c.insert("duration".into(), Value::String(String::new()));
        c.insert("duration_ms".into(), json!(0));
        c.insert("stderr_tail".into(), Value::String(String::new()));
        let code = notify(
            &send,
            &targets,
            &base,
            Event::Start,
            &message,
            c,
            json!({"command": command}),
        )
        .await?;
        if code != Code::OK {
            return Ok(Outcome::Exit(code));
        }
    }

    let ran = run::run(&r.command, r.tail, 4096).await;
    let event = if ran.code == Code::OK {
        Event::Success
    } else {
        Event::Failure
    };
    let tail = redact::scrub(&ran.stderr_tail).into_owned();
    ctx.insert("exit_code".into(), json!(ran.code.as_i32()));
    ctx.insert("duration".into(), Value::String(human(ran.duration)));
    ctx.insert("duration_ms".into(), json!(ran.duration.as_millis() as u64));
    ctx.insert("stderr_tail".into(), Value::String(tail.clone()));
    let details = json!({
        "command": command,
        "exit_code": ran.code.as_i32(),
        "duration_ms": ran.duration.as_millis() as u64,
        "stderr_tail": tail,
    });
    let wanted = r.on.contains(&event)
        || (event == Event::Success
            && send.dedupe_file.is_some()
            && would_resolve(&send, &base, &ctx));
    let notified = if wanted {
        // The command's outcome decides the exit code; a failed --required notification only
        // turns a success into exit 1.
        match notify(&send, &targets, &base, event, &message, ctx, details).await {
            Ok(c) => c,
            Err(f) => {
                tracing::error!("{}", f.message);
                f.code
            }
        }
    } else {
        Code::OK
    };
    if let Some(f) = ran.spawn_error {
        return Err(f);
    }
    if ran.code != Code::OK {
        tracing::info!(
            "`{command}` exited with {} after {}",
            ran.code,
            human(ran.duration)
        );
        return Ok(Outcome::Exit(ran.code));
    }
    Ok(Outcome::Exit(notified))
}

/// Whether a success would resolve an earlier failure recorded in the dedupe file.
fn would_resolve(send: &SendArgs, base: &Base, extra: &Map<String, Value>) -> bool {
    let Some(path) = &send.dedupe_file else {
        return false;
    };
    let mut ctx = context::base(base.pod.clone(), base.data.clone(), "success");
    if let Value::Object(m) = &mut ctx {
        m.extend(extra.clone());
    }
    let Ok(key) = dedupe_key(send, base, &ctx) else {
        return false;
    };
    matches!(
        dedupe::State::load(path).decide(&key, "success", dedupe::now(), send.cooldown),
        dedupe::Decision::Send { resolves: true }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn run_subcommand_parses() {
        let a = Args::try_parse_from([
            "notify",
            "run",
            "-v",
            "stdout://",
            "--tail",
            "5",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        match a.command {
            Some(Sub::Run(r)) => {
                assert_eq!(r.send.urls, vec!["stdout://"]);
                assert_eq!(r.command.len(), 3);
                assert_eq!(r.tail, 5);
            }
            None => panic!("no subcommand"),
        }
    }

    #[test]
    fn body_templates_keep_structure_and_escape() {
        let body: Value =
            serde_json::from_str(r#"{"a": {"b": ["{{ x }}", 3]}, "q": "{{ y }}"}"#).unwrap();
        let ctx = json!({"x": "1", "y": "say \"hi\"\nbye"});
        let out = render_json("--body", &body, &ctx).unwrap();
        assert_eq!(out, json!({"a": {"b": ["1", 3]}, "q": "say \"hi\"\nbye"}));
    }

    #[test]
    fn run_templates_render() {
        let ctx = json!({
            "event": "failure", "exit_code": 3, "command": "migrate up", "command_name": "migrate",
            "duration": "1.20s", "stderr_tail": "boom", "resolves": false, "pod": {}, "hostname": "h",
        });
        assert_eq!(
            template::render("t", RUN_TITLE, &ctx).unwrap(),
            "migrate failed (exit 3) on h"
        );
        let m = template::render("m", RUN_MESSAGE, &ctx).unwrap();
        assert!(
            m.contains("`migrate up` failed with exit code 3 after 1.20s."),
            "{m}"
        );
        assert!(m.ends_with("Last lines of stderr:\nboom"), "{m}");
    }
}
