//! `initbox wait-for URL...`: protocol-level readiness. An open port is not a ready service:
//! each scheme asks the service itself (an HTTP status, `SELECT 1`, `PING`, an AMQP connection,
//! a CONNACK...), with the same timing, parallelism, `--any`, `--invert`, `--once`, progress and
//! `-- CMD` behaviour as `wait-for-tcp` (the runtime's wait engine).
//!
//! Every target is parsed, and every file it needs (password files, CA files, URL files) read,
//! before the first attempt: a typo is a one-line error (exit 2, or 3 for an unreadable file),
//! not a wait that can never succeed.

// The probes live in crates/probe; wait-for wires URLs to them.
pub use initbox_probe::{amqp, http, local, mqtt, nats, net, redis, sql};
pub mod icmp;
pub mod k8s;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use initbox_probe::dns::{DnsProbe, DnsQuery, QueryType};
use initbox_probe::tcp::TcpProbe;
use initbox_runtime::resolve::{Resolver, ResolverArgs};
use initbox_runtime::target::parse_host_port;
use initbox_runtime::url as safe_url;
use initbox_runtime::wait::{self, Probe, WaitArgs};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome, redact};

use crate::net::{Endpoint, UrlParts, read_password_file};

/// The schemes `wait-for` understands, for messages and `--help`.
pub const SCHEMES: &str = "tcp, dns, http, https, postgres, postgresql, mysql, mariadb, redis, \
                           rediss, amqp, amqps, nats, mqtt, mqtts, grpc, grpcs, k8s, icmp, file, unix, exec:";

#[derive(Debug, Parser)]
#[command(
    name = "wait-for",
    version,
    about = "Wait until services are ready at the protocol level, then exec a command",
    long_about = "Wait until every URL is ready (--any: one of them), asking each service in its \
                  own protocol, then exit 0 or exec the command given after `--` (same PID). \
                  A failed wait never runs the command.\n\n\
                  Schemes: tcp:// (connects), dns://NAME[?type=A&min=N] (resolves), http(s):// \
                  (status in --status, default 2xx; --body-regex, --json), postgres(ql):// and \
                  mysql:// / mariadb:// (SELECT 1 or --query; starting up is not ready; wrong \
                  password exit 5, missing database exit 3), redis(s):// (PING answers PONG; \
                  LOADING is not ready), amqp(s):// (the AMQP connection opens), nats:// \
                  (INFO, PING/PONG), mqtt(s):// (CONNACK accepted), grpc(s)://HOST:PORT[/SERVICE] \
                  (grpc.health.v1 Check answers SERVING; UNIMPLEMENTED exit 1), \
                  k8s://[NAMESPACE/]RESOURCE/NAME or k8s://[NAMESPACE/]RESOURCE?selector=LABELS \
                  (Job Complete, Failed exit 1; Pods Ready, &count=N; Deployment, StatefulSet, \
                  DaemonSet rolled out; Service ready endpoints; ?condition=TYPE[=STATUS], \
                  ?jsonpath={.PATH}=VALUE, ?exists, ?deleted; watched, via the service account \
                  or a kubeconfig), icmp://HOST (answers an echo; ping socket, else raw), \
                  file:///PATH[?nonempty|\
                  ?contains=REGEX], unix:///PATH (the socket accepts), exec:CMD ARGS and --cmd \
                  (exits 0; no shell unless --shell).\n\n\
                  Passwords may come from files: --password-file, ?password_file=PATH in a URL, \
                  or @PATH to read the whole URL from a file (a mounted Kubernetes Secret); or \
                  from variables: INITBOX_PASSWORD, then PGPASSWORD (postgres), MYSQL_PWD \
                  (mysql, mariadb), REDISCLI_AUTH (redis). A password in the URL wins, then \
                  ?password_file=, --password-file, INITBOX_PASSWORD, the service's variable. \
                  A password in a URL must be percent-encoded (@ as %40, / as %2F, : as %3A, \
                  # as %23); an ambiguous one is refused (exit 2). Logs show database, Redis, \
                  AMQP, NATS and MQTT URLs as scheme://host:port only; passwords never appear.",
    after_help = "Examples:\n  \
                  initbox wait-for postgres://app@db:5432/app --password-file /run/secrets/pg -- /app/server\n  \
                  initbox wait-for http://api:8080/healthz --json status=UP redis://cache:6379\n  \
                  initbox wait-for @/run/secrets/database-url --query 'SELECT 1 FROM schema_migrations LIMIT 1'\n  \
                  initbox wait-for --once https://localhost:8443/ready   # HEALTHCHECK"
)]
pub struct Args {
    /// Targets: tcp://, dns://, http(s)://, postgres://, mysql://, redis://, amqp://, nats://,
    /// mqtt://, file://, unix://, exec: (`--help` says what each checks); `@PATH` reads a URL
    /// from a file. Several, or one per line in the variable.
    #[arg(
        value_name = "URL",
        env = initbox_runtime::env::WAIT_FOR_TARGETS,
        value_delimiter = '\n'
    )]
    pub targets: Vec<String>,

    /// A command that must exit 0 (same as the target `exec:CMD ARGS`); repeatable.
    #[arg(
        long = "cmd",
        value_name = "CMD ARGS",
        env = initbox_runtime::env::WAIT_FOR_CMD,
        value_delimiter = '\n'
    )]
    pub cmds: Vec<String>,

    /// Run `exec:` and --cmd commands with /bin/sh -c (shell syntax: pipes, &&, globs).
    #[arg(long, env = initbox_runtime::env::WAIT_FOR_SHELL, value_parser = clap::builder::BoolishValueParser::new())]
    pub shell: bool,

    /// Password for every URL that has none, read from this file (database, Redis, AMQP, NATS,
    /// MQTT); the file's content without its trailing newline.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::PASSWORD_FILE)]
    pub password_file: Option<PathBuf>,

    /// SQL that must return a row whose first column is not false/0/NULL (postgres://, mysql://);
    /// an error (a table not created yet) counts as not ready.
    #[arg(long, value_name = "SQL", env = initbox_runtime::env::SQL_QUERY)]
    pub query: Option<String>,

    #[command(flatten)]
    pub http: http::HttpArgs,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub kube: initbox_kube::KubeArgs,

    #[command(flatten)]
    pub resolver: ResolverArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec once every target is ready (never after a failure).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        // Scrubbed whether or not a target uses them (sqlx reads PGPASSWORD by itself).
        safe_url::register_env_passwords(PASSWORD_VAR);
        self.wait.validate()?;
        if let Some(sa) = &self.kube.print_rbac {
            return k8s::print_rbac(&self.targets, &self.kube, sa);
        }
        let probes = build_probes(&self)?;
        wait::wait(probes, &self.wait, self.command).await
    }
}

type HttpShared = (reqwest::Client, Arc<http::RequestSpec>, Arc<http::Expect>);

/// What building the probes needs, made once and shared.
struct Shared<'a> {
    args: &'a Args,
    resolver: Option<Arc<Resolver>>,
    http: Option<HttpShared>,
    tls: Option<Arc<rustls::ClientConfig>>,
    password: Option<String>,
    sql_targets: usize,
    kube: k8s::Shared,
}

impl Shared<'_> {
    fn resolver(&mut self) -> Result<Arc<Resolver>, Failure> {
        if let Some(r) = &self.resolver {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(Resolver::new(
            &self.args.resolver,
            self.args.wait.attempt_timeout,
        )?);
        self.resolver = Some(Arc::clone(&r));
        Ok(r)
    }

    fn tls(&mut self) -> Result<Arc<rustls::ClientConfig>, Failure> {
        if let Some(t) = &self.tls {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(initbox_runtime::tls::client_config(&self.args.http.tls)?);
        self.tls = Some(Arc::clone(&t));
        Ok(t)
    }

    fn http(&mut self) -> Result<HttpShared, Failure> {
        if let Some(h) = &self.http {
            return Ok(h.clone());
        }
        let a = &self.args.http;
        // A user name or password in any http(s) target: the shared client keeps redirects on
        // the origin.
        let url_credentials = self.args.targets.iter().any(|t| {
            url::Url::parse(t.trim()).is_ok_and(|u| {
                u.scheme().starts_with("http")
                    && (!u.username().is_empty() || u.password().is_some())
            })
        });
        let h = (
            a.client(self.args.wait.attempt_timeout, url_credentials)?,
            Arc::new(a.request()?),
            Arc::new(a.expect()),
        );
        self.http = Some(h.clone());
        Ok(h)
    }

    /// The `--password-file` content, read once.
    fn global_password(&mut self) -> Result<Option<String>, Failure> {
        if self.password.is_none()
            && let Some(p) = &self.args.password_file
        {
            self.password = Some(read_password_file(p, "--password-file")?);
        }
        Ok(self.password.clone())
    }
}

fn build_probes(args: &Args) -> Result<Vec<Arc<dyn Probe>>, Failure> {
    let targets: Vec<&str> = args
        .targets
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    let cmds: Vec<&str> = args
        .cmds
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    if targets.is_empty() && cmds.is_empty() {
        return Err(Failure::usage(format!(
            "no targets given (expected URL arguments, --cmd or INITBOX_WAIT_FOR_TARGETS; schemes: {SCHEMES})"
        )));
    }
    let mut shared = Shared {
        args,
        resolver: None,
        http: None,
        tls: None,
        password: None,
        sql_targets: 0,
        kube: None,
    };
    let mut probes = Vec::with_capacity(targets.len() + cmds.len());
    for raw in targets {
        probes.push(build_probe(raw, &mut shared)?);
    }
    for c in cmds {
        probes.push(Arc::new(local::ExecProbe::new(c, args.shell)?) as Arc<dyn Probe>);
    }
    if args.query.is_some() && shared.sql_targets == 0 {
        return Err(Failure::usage(
            "--query needs a postgres://, postgresql://, mysql:// or mariadb:// target",
        ));
    }
    Ok(probes)
}

/// Read a URL from `@PATH`.
fn url_from_file(path: &str) -> Result<String, Failure> {
    let data = initbox_runtime::input::read_secret(
        std::path::Path::new(path),
        &format!("URL file @{path}"),
        false,
    )?;
    let url = data.trim().to_string();
    if url.is_empty() || url.contains('\n') {
        return Err(Failure::invalid_input(format!(
            "URL file @{path}: expected exactly one URL"
        )));
    }
    // Register its password before anything can print it.
    safe_url::display(&url);
    Ok(url)
}

/// Build one probe from a target as the user gave it.
fn build_probe(raw: &str, shared: &mut Shared<'_>) -> Result<Arc<dyn Probe>, Failure> {
    let url = match raw.strip_prefix('@') {
        Some(path) => url_from_file(path)?,
        None => raw.to_string(),
    };
    if url.len() >= 5 && url.is_char_boundary(5) && url[..5].eq_ignore_ascii_case("exec:") {
        return Ok(Arc::new(local::ExecProbe::new(
            &url[5..],
            shared.args.shell,
        )?));
    }
    // A libpq keyword string (`host=db dbname=app`) is a postgres:// target; PG*/MYSQL_*
    // variables fill what a database URL leaves out (crates/database).
    let url = if initbox_database::is_keyword_string(&url) {
        initbox_database::keywords_to_url(&url).map_err(|e| Failure::usage(e.to_string()))?
    } else {
        url
    };
    let url = match initbox_database::fill_from_env(&url, &|k| std::env::var(k).ok()) {
        Ok(filled) => filled,
        Err(e) => {
            // A URL the service parser refuses (ambiguous user information) gets its own
            // message, which names the fix; anything else is the fill's error.
            initbox_runtime::url::parse_service_url(
                &url,
                "the service's password variable, INITBOX_PASSWORD or --password-file",
            )?;
            return Err(Failure::usage(format!(
                "'{}': {e}",
                safe_url::display(&url)
            )));
        }
    };
    let shown = safe_url::display(&url);
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(Failure::usage(format!(
            "'{shown}': not a URL (expected SCHEME://...; schemes: {SCHEMES})"
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    let args = shared.args;
    match scheme.as_str() {
        "tcp" => {
            let hp = parse_host_port(&url, None).map_err(Failure::usage)?;
            Ok(Arc::new(TcpProbe::new(hp, shared.resolver()?)))
        }
        "dns" => Ok(Arc::new(DnsProbe::new(
            dns_query(&url)?,
            shared.resolver()?,
        ))),
        "http" | "https" => {
            let (client, request, expect) = shared.http()?;
            Ok(Arc::new(http::HttpProbe::new(
                &url, client, request, expect,
            )?))
        }
        "grpc" | "grpcs" => {
            let target = initbox_grpc_health::Target::parse(&url).map_err(Failure::usage)?;
            let tls = if target.tls {
                Some(shared.tls()?)
            } else {
                None
            };
            Ok(Arc::new(initbox_grpc_health::GrpcHealthProbe::new(
                target,
                shared.resolver()?,
                tls,
            )))
        }
        "k8s" | "kubernetes" => k8s::probe(&url, args, &mut shared.kube),
        "icmp" => Ok(Arc::new(icmp::IcmpProbe::new(
            &url,
            shared.resolver()?,
            args.wait.attempt_timeout,
        )?)),
        "file" => Ok(Arc::new(local::FileProbe::new(&url)?)),
        "unix" => Ok(Arc::new(local::UnixProbe::new(&url)?)),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "redis" | "rediss" | "amqp" | "amqps"
        | "nats" | "mqtt" | "mqtts" => {
            let parsed = safe_url::parse_service_url(&url, &separately(&scheme))?;
            let shown = parsed.to_string();
            let (with_password, password) = with_password(parsed.into_url(), &shown, shared)?;
            match scheme.as_str() {
                "postgres" | "postgresql" | "mysql" | "mariadb" => {
                    shared.sql_targets += 1;
                    Ok(Arc::new(sql::SqlProbe::new(
                        shown,
                        &with_password,
                        args.query.clone(),
                        &args.http.tls,
                    )?))
                }
                _ => service_probe(&scheme, with_password.as_str(), shown, password, shared),
            }
        }
        other => Err(Failure::usage(format!(
            "'{shown}': unknown scheme '{other}://' (schemes: {SCHEMES})"
        ))),
    }
}

/// How a password can be given instead of inside a URL of `scheme`, for the ambiguity error.
fn separately(scheme: &str) -> String {
    match safe_url::service_password_var(scheme) {
        Some(var) => format!("{var}, {PASSWORD_VAR} or --password-file"),
        None => format!("{PASSWORD_VAR} or --password-file"),
    }
}

/// The variable that gives every password-less target its password (after `--password-file`).
pub const PASSWORD_VAR: &str = initbox_runtime::env::PASSWORD;

/// The URL with its password filled in and the `password_file` parameter removed. The password
/// comes from the first of: the URL itself, `?password_file=`, `--password-file`,
/// `INITBOX_PASSWORD`, then the service's own variable (`PGPASSWORD`, `MYSQL_PWD`,
/// `REDISCLI_AUTH`): what is written for this target beats what is set for every target, and a
/// variable is the fallback, as with libpq, mysql and redis-cli.
fn with_password(
    mut parsed: url::Url,
    shown: &str,
    shared: &mut Shared<'_>,
) -> Result<(url::Url, Option<String>), Failure> {
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Failure::usage(format!("'{shown}': missing host")));
    }
    let mut file_param = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "password_file" {
                file_param = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if file_param.is_some() {
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let password = if let Some(p) = parsed.password() {
        let p = net::percent_decode(p)
            .ok_or_else(|| Failure::usage(format!("'{shown}': bad percent-encoding")))?;
        redact::register(&p);
        Some(p)
    } else if let Some(path) = file_param {
        Some(read_password_file(
            std::path::Path::new(&path),
            "password_file",
        )?)
    } else if let Some(p) = shared.global_password()? {
        Some(p)
    } else {
        safe_url::password_from_env(parsed.scheme(), PASSWORD_VAR).map(|(p, var)| {
            tracing::debug!("{shown}: password from {var}");
            p
        })
    };
    if let Some(p) = &password {
        if parsed.password().is_none() {
            parsed
                .set_password(Some(p))
                .map_err(|_| Failure::usage(format!("'{shown}': cannot carry a password")))?;
        }
        // The URL's encoded form as well, should a library print it.
        if let Some(enc) = parsed.password() {
            redact::register(enc);
        }
    }
    Ok((parsed, password))
}

fn service_probe(
    scheme: &str,
    url: &str,
    shown: String,
    password: Option<String>,
    shared: &mut Shared<'_>,
) -> Result<Arc<dyn Probe>, Failure> {
    let (port, tls) = match scheme {
        "redis" => (6379, false),
        "rediss" => (6379, true),
        "amqp" => (5672, false),
        "amqps" => (5671, true),
        "nats" => (4222, false),
        "mqtt" => (1883, false),
        "mqtts" => (8883, true),
        _ => {
            return Err(Failure::usage(format!(
                "'{shown}': unknown scheme '{scheme}://'"
            )));
        }
    };
    let parts = UrlParts::parse(url, &shown, port)?;
    let tls = if tls { Some(shared.tls()?) } else { None };
    let endpoint = Endpoint::new(&parts, shared.resolver()?, tls)?;
    Ok(match scheme {
        "redis" | "rediss" => Arc::new(redis::RedisProbe::new(shown, &parts, endpoint, password)?),
        "amqp" | "amqps" => Arc::new(amqp::AmqpProbe::new(shown, &parts, endpoint, password)),
        "nats" => Arc::new(nats::NatsProbe::new(shown, &parts, endpoint, password)),
        _ => Arc::new(mqtt::MqttProbe::new(shown, &parts, endpoint, password)),
    })
}

/// `dns://NAME[?type=A|AAAA|CNAME|SRV|TXT|MX&min=N&expect=VALUE]`: the same check as
/// `wait-for-dns` (system resolver, or `--server`).
pub fn dns_query(url: &str) -> Result<DnsQuery, Failure> {
    let rest = &url["dns://".len()..];
    let (name, query) = match rest.split_once('?') {
        Some((n, q)) => (n, q),
        None => (rest, ""),
    };
    let name = name.trim_end_matches('/');
    if name.is_empty() {
        return Err(Failure::usage(format!(
            "'{url}': missing name (expected dns://NAME[?type=A&min=N])"
        )));
    }
    let name = initbox_probe::dns::parse_name(name)
        .map_err(|e| Failure::usage(format!("'{url}': {e}")))?;
    let mut q = DnsQuery {
        name,
        kind: QueryType::default(),
        min_count: 1,
        expect: Vec::new(),
        absent: false,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "type" => {
                q.kind = QueryType::from_str(v, true).map_err(|_| {
                    Failure::usage(format!(
                        "'{url}': type '{v}' is not one of address, A, AAAA, CNAME, SRV, TXT, MX"
                    ))
                })?
            }
            "min" => {
                q.min_count = v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    Failure::usage(format!("'{url}': min '{v}' is not a number of at least 1"))
                })?
            }
            "expect" => q.expect.push(v.to_string()),
            other => {
                return Err(Failure::usage(format!(
                    "'{url}': unknown parameter '{other}' (expected type, min, expect)"
                )));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("wait-for").chain(v.iter().copied())).unwrap()
    }

    fn err(v: &[&str]) -> Failure {
        match build_probes(&args(v)) {
            Ok(_) => panic!("{v:?} should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_scheme_builds() {
        let a = args(&[
            "tcp://127.0.0.1:1",
            "dns://localhost?type=a&min=1",
            "http://127.0.0.1:1/healthz",
            "https://example.invalid/",
            "postgres://u:pw-canary-1@127.0.0.1/db",
            "postgresql://127.0.0.1/db",
            "mysql://root@127.0.0.1:3306/test",
            "mariadb://root@127.0.0.1/test",
            "redis://127.0.0.1",
            "rediss://:pw@127.0.0.1:6380/1",
            "amqp://guest:guest@127.0.0.1/%2f",
            "amqps://127.0.0.1",
            "nats://127.0.0.1",
            "mqtt://127.0.0.1",
            "mqtts://127.0.0.1",
            "file:///etc/hostname?nonempty",
            "unix:///run/x.sock",
            "exec:true",
            "grpc://127.0.0.1:50051/pkg.Svc",
            "grpcs://localhost:443",
            "icmp://127.0.0.1",
        ]);
        let probes = build_probes(&a).unwrap();
        assert_eq!(probes.len(), 21);
        let shown: Vec<String> = probes.iter().map(|p| p.target()).collect();
        assert!(
            shown.iter().all(|s| !s.contains("pw-canary-1")),
            "{shown:?}"
        );
        assert!(shown.contains(&"postgres://127.0.0.1".to_string()));
    }

    #[test]
    fn bad_targets_are_usage_errors() {
        use initbox_runtime::Code;
        for (t, needle) in [
            ("localhost:5432", "not a URL"),
            ("gopher://x", "unknown scheme 'gopher://'"),
            ("redis://", "missing host"),
            ("redis://h:99999", "99999"),
            ("redis://h/abc", "not a database number"),
            ("postgres://app:p@ss/w:rd@db:5432/app", "percent-encode"),
            ("redis://:secret#1@cache", "REDISCLI_AUTH"),
            ("tcp://h", "missing port"),
            ("dns://", "missing name"),
            ("dns://x?type=bogus", "type 'bogus'"),
            ("dns://x?min=0", "min '0'"),
            ("file://relative", "three slashes"),
            ("http://", "http://"),
            ("exec:", "empty command"),
            ("grpc://h", "missing port"),
            ("icmp://", "icmp://HOST"),
            ("k8s://job", "missing name"),
            ("k8s://gizmo/x", "unknown resource"),
        ] {
            let e = err(&[t]);
            assert_eq!(e.code, Code::USAGE, "{t}: {}", e.message);
            assert!(e.message.contains(needle), "{t}: {}", e.message);
            assert!(!e.message.contains('\n'));
        }
        let e = err(&["--query", "SELECT 1", "redis://h"]);
        assert!(e.message.contains("--query"), "{}", e.message);
    }

    #[test]
    fn passwords_from_files() {
        use initbox_runtime::Code;
        let dir = std::env::temp_dir().join(format!("initbox-wf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "file-canary-p@ss\n").unwrap();
        let a = args(&[
            "--password-file",
            pw.to_str().unwrap(),
            "postgres://app@127.0.0.1/app",
        ]);
        let mut shared = Shared {
            args: &a,
            resolver: None,
            http: None,
            tls: None,
            password: None,
            sql_targets: 0,
            kube: None,
        };
        let parse = |s: &str| url::Url::parse(s).unwrap();
        let (u, p) =
            with_password(parse("postgres://app@127.0.0.1/app"), "x", &mut shared).unwrap();
        assert_eq!(p.as_deref(), Some("file-canary-p@ss"));
        assert_eq!(u.password(), Some("file-canary-p%40ss"));
        assert!(!redact::scrub(u.as_str()).contains("canary"));
        let q = format!("redis://127.0.0.1/0?password_file={}", pw.display());
        let (u, p) = with_password(parse(&q), "x", &mut shared).unwrap();
        assert_eq!(p.as_deref(), Some("file-canary-p@ss"));
        assert!(u.query().is_none(), "{u}");

        let e = err(&["--password-file", "/nonexistent/pw", "redis://127.0.0.1"]);
        assert_eq!(e.code, Code::INVALID_INPUT);
        assert!(e.message.contains("/nonexistent/pw"), "{}", e.message);
        let e = err(&["@/nonexistent/url"]);
        assert_eq!(e.code, Code::INVALID_INPUT);
        let urlfile = dir.join("url");
        std::fs::write(&urlfile, "redis://:url-canary-77@127.0.0.1:6379\n").unwrap();
        let a = args(&[&format!("@{}", urlfile.display())]);
        let p = build_probes(&a).unwrap();
        assert_eq!(p[0].target(), "redis://127.0.0.1:6379");
        let _ = std::fs::remove_dir_all(dir);
    }
}
