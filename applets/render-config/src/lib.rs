//! `initbox render-config`: configuration files from templates, strict, atomic, with secrets and
//! the environment as data.
//!
//! Two engines from `initbox-template` (crates/template): [`jinja`] (minijinja, strict undefined,
//! no auto-escaping; shared with `notify`) and [`envsubst`] (POSIX-style `${VAR:-default}`
//! expansion, unset is an error). Every template is rendered in memory first; only when all
//! succeeded are the files staged (temporary file beside each destination with its final mode
//! and owner), checked with `--check-cmd`, and committed by rename (in place when the
//! destination is a mount point).

pub use initbox_template::{data, envsubst, jinja};
pub mod output;
pub mod secret;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use initbox_runtime::atomic::{parse_mode, parse_owner};
use initbox_runtime::logging::LogFormat;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, redact};
use minijinja::Value;

use crate::data::{Context, DataArg, SetArg, parse_data_arg, parse_set_arg};
use crate::envsubst::{Allow, Need};
use crate::jinja::{Delimiters, Engine, Options, RenderError, SecretSource, Undefined};
use crate::output::{CheckCmd, Planned, parse_check_cmd};
use initbox_template::gotmpl;

/// File name suffixes that mark a template; stripped from output names in directory mode.
pub const TEMPLATE_SUFFIXES: &[&str] = &[".j2", ".jinja2", ".jinja", ".tmpl", ".tpl", ".template"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Jinja2 syntax (minijinja).
    Jinja,
    /// $VAR, ${VAR:-default}, ${VAR:?message} ...
    Envsubst,
    /// Go text/template: {{ .Env.HOST }}, {{ range split .Env.HOSTS "," }} (dockerize, gomplate).
    Go,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoDialectArg {
    /// A missing key is an error; `default DEFAULT VALUE`.
    Gomplate,
    /// A missing `.Env` key is empty; `default VALUE DEFAULT`.
    Dockerize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UndefinedArg {
    /// Printing or iterating an undefined value fails; `if x`, `is defined`, `default()` work.
    SemiStrict,
    /// Also `{% if x %}` on an undefined value fails (Jinja2's StrictUndefined).
    Strict,
}

#[derive(Debug, Parser)]
#[command(
    name = "render-config",
    version,
    about = "Render configuration files from Jinja, Go or envsubst templates, strictly and atomically",
    long_about = "Render configuration files from templates: one file to one file, or a directory \
                  tree to a directory tree. Everything is rendered in memory first; files are \
                  written only if every template rendered (and passed --check-cmd), each one \
                  atomically with its final mode set before its content.\n\n\
                  An undefined variable is an error naming the file, line and column, never an \
                  empty string. Data: `env` (the environment), --data files (JSON, YAML, TOML, \
                  dotenv), --set pairs, and secret(\"ref+...\") in Jinja templates. Files that \
                  contain a secret get mode 0400 unless --mode says otherwise. Secret values never \
                  appear in messages.",
    after_help = "Examples:\n  \
        initbox render-config /templates/app.conf.j2 /config/app.conf --data db=/etc/db.yaml\n  \
        initbox render-config /templates/ /config/ --set region=eu --check-cmd 'nginx -t -c {}'\n  \
        initbox render-config --engine envsubst nginx.conf.template /etc/nginx/nginx.conf\n  \
        initbox render-config --engine envsubst --only-defined /etc/nginx/templates/ /etc/nginx/conf.d/\n  \
        initbox render-config --engine go app.conf.tmpl /config/app.conf\n  \
        initbox render-config --lint /templates/ --data values.yaml\n\n\
        Exit codes: 0 ok; 1 --check-cmd rejected a file or writing failed; 2 usage; \
        3 template or data error (nothing written); 4 permission refused."
)]
pub struct Args {
    /// Template file or directory.
    #[arg(value_name = "SOURCE", env = initbox_runtime::env::RENDER_SOURCE)]
    pub source: Option<PathBuf>,

    /// Output file or directory (a template file into an existing directory or a path ending in
    /// '/' lands there under its name without the template suffix); omitted or '-': standard
    /// output (one template only).
    #[arg(value_name = "DEST", env = initbox_runtime::env::RENDER_DEST)]
    pub dest: Option<PathBuf>,

    /// More SOURCE:DEST pairs (repeatable, or comma-separated).
    #[arg(
        short = 't',
        long = "template",
        value_name = "SOURCE:DEST",
        env = initbox_runtime::env::RENDER_TEMPLATES,
        value_delimiter = ','
    )]
    pub templates: Vec<String>,

    /// Template language.
    #[arg(
        long,
        value_enum,
        default_value = "jinja",
        env = initbox_runtime::env::RENDER_ENGINE
    )]
    pub engine: EngineKind,

    /// Data file (JSON, YAML, TOML, dotenv, by extension): NAME=FILE puts it under NAME,
    /// a bare FILE merges its top-level keys. Repeatable, or comma-separated.
    #[arg(short = 'd', long = "data", value_name = "[NAME=]FILE", env = initbox_runtime::env::RENDER_DATA,
          value_delimiter = ',', value_parser = parse_data_arg)]
    pub data: Vec<DataArg>,

    /// Like --data, for a file of secrets (e.g. written by fetch-secret): its values are
    /// redacted from every message and files that contain them get --secret-mode.
    #[arg(long = "secret-data", value_name = "[NAME=]FILE", env = initbox_runtime::env::RENDER_SECRET_DATA,
          value_delimiter = ',', value_parser = parse_data_arg)]
    pub secret_data: Vec<DataArg>,

    /// A value: KEY=VALUE, dotted keys nest (db.host=x); wins over data files. Repeatable.
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE", env = initbox_runtime::env::RENDER_SET,
          value_parser = parse_set_arg)]
    pub set: Vec<SetArg>,

    /// Jinja delimiters, e.g. '[[ ]]' (blocks become [% %], comments [# #]) or all six:
    /// '[[ ]] [% %] [# #]'.
    #[arg(long, value_name = "'OPEN CLOSE'", env = initbox_runtime::env::RENDER_DELIMITERS,
          value_parser = Delimiters::parse)]
    pub delimiters: Option<Delimiters>,

    /// How undefined values behave in Jinja templates.
    #[arg(
        long,
        value_enum,
        default_value = "semi-strict",
        env = initbox_runtime::env::RENDER_UNDEFINED
    )]
    pub undefined: UndefinedArg,

    /// Jinja: remove the first newline after a block tag.
    #[arg(long, env = initbox_runtime::env::RENDER_TRIM_BLOCKS, value_parser = clap::builder::BoolishValueParser::new())]
    pub trim_blocks: bool,

    /// Jinja: strip spaces and tabs before a block tag.
    #[arg(long, env = initbox_runtime::env::RENDER_LSTRIP_BLOCKS, value_parser = clap::builder::BoolishValueParser::new())]
    pub lstrip_blocks: bool,

    /// envsubst: substitute only these variables (names or NAME_* prefixes, comma or space
    /// separated); other references stay as written, like GNU envsubst's SHELL-FORMAT.
    #[arg(long, value_name = "VARS", env = initbox_runtime::env::RENDER_ALLOW, value_parser = Allow::parse)]
    pub allow: Option<Allow>,

    /// envsubst: substitute only variables that are set (with --allow: those of its names and
    /// prefixes that are set) and leave every other `$name` as written, like the official nginx
    /// image's templates (`$host`, `$uri` stay nginx's own variables).
    #[arg(long, env = initbox_runtime::env::RENDER_ONLY_DEFINED, value_parser = clap::builder::BoolishValueParser::new())]
    pub only_defined: bool,

    /// YAML version of --data/--secret-data YAML files: 1.2 (`no`, `off` are strings) or 1.1
    /// (`yes`/`no`/`on`/`off` are booleans, as Ansible reads them).
    #[arg(long, value_name = "VERSION", default_value = "1.2", env = initbox_runtime::env::RENDER_YAML_VERSION,
          value_parser = ["1.1", "1.2"])]
    pub yaml_version: String,

    /// Go templates: whose conventions to follow where gomplate and dockerize differ (missing
    /// keys, the argument order of `default`).
    #[arg(
        long,
        value_enum,
        default_value = "gomplate",
        env = initbox_runtime::env::RENDER_GO_DIALECT
    )]
    pub go_dialect: GoDialectArg,

    /// Mode of every written file [default: 0644, 0755 for executable templates, --secret-mode
    /// for files that contain a secret].
    #[arg(long, value_name = "OCTAL", env = initbox_runtime::env::RENDER_MODE, value_parser = parse_mode)]
    pub mode: Option<u32>,

    /// Mode of files that contain a secret value (unless --mode is given).
    #[arg(long, value_name = "OCTAL", default_value = "0400", env = initbox_runtime::env::RENDER_SECRET_MODE,
          value_parser = parse_mode)]
    pub secret_mode: u32,

    /// Owner of written files and created directories, UID:GID (needs root or CAP_CHOWN).
    #[arg(long, value_name = "UID:GID", env = initbox_runtime::env::RENDER_OWNER, value_parser = parse_owner)]
    pub owner: Option<(u32, u32)>,

    /// Validate each staged file before anything is installed: '{}' is the staged file's path
    /// (appended when absent). Run directly, without a shell. Non-zero exit: nothing is written.
    #[arg(long, value_name = "CMD", env = initbox_runtime::env::RENDER_CHECK_CMD,
          value_parser = parse_check_cmd)]
    pub check_cmd: Option<CheckCmd>,

    /// Time limit for each check command run (--check-cmd).
    #[arg(long, value_name = "DURATION", default_value = "60s",
          env = initbox_runtime::env::RENDER_CHECK_TIMEOUT,
          value_parser = initbox_runtime::duration::parse)]
    pub check_timeout: Duration,

    /// Directory mode: skip files whose path (relative to SOURCE) matches this glob
    /// (`*`, `?`, `**`); repeatable. Skipped files can still be included.
    #[arg(
        long,
        value_name = "GLOB",
        env = initbox_runtime::env::RENDER_EXCLUDE,
        value_delimiter = ','
    )]
    pub exclude: Vec<String>,

    /// List the variables each template needs and which are missing; write nothing.
    /// Exit 3 if a template does not render.
    #[arg(long, env = initbox_runtime::env::RENDER_LINT, value_parser = clap::builder::BoolishValueParser::new())]
    pub lint: bool,

    /// Give up after this long (0 = no limit); the deadline for resolving every
    /// secret("ref+...").
    #[arg(long, value_name = "DURATION", env = initbox_runtime::env::TIMEOUT, default_value = "60s",
          value_parser = initbox_runtime::duration::parse)]
    pub timeout: std::time::Duration,

    /// Timeout of each HTTP request (to a secret backend).
    #[arg(long, value_name = "DURATION", env = initbox_runtime::env::REQUEST_TIMEOUT, default_value = "10s",
          value_parser = initbox_runtime::duration::parse)]
    pub request_timeout: std::time::Duration,

    /// Secret backends for secret("ref+..."), as in fetch-secret.
    #[command(flatten)]
    pub backends: initbox_secrets::BackendArgs,

    /// Largest template, data file or rendered output accepted (bytes, or 64K, 16M, 1G).
    #[arg(long, value_name = "SIZE", default_value = "16M", env = initbox_runtime::env::MAX_INPUT_SIZE,
          value_parser = initbox_runtime::input::parse_size)]
    pub max_input_size: u64,

    #[command(flatten)]
    pub log: LogArgs,
}

/// Where one template's output goes.
#[derive(Debug, Clone)]
enum Dest {
    Stdout,
    File(PathBuf),
    /// Directory mode: `root` joined with `rel` whose components may be templates.
    Tree {
        root: PathBuf,
        rel: PathBuf,
    },
}

#[derive(Debug, Clone)]
struct Job {
    template: PathBuf,
    dest: Dest,
    executable: bool,
}

/// One rendered template (no `Debug`: the text may hold secrets).
struct Done {
    template: PathBuf,
    dest: Option<PathBuf>,
    text: String,
    contains_secret: bool,
    executable: bool,
}

/// Everything the render phase needs, shared with the blocking thread.
struct Renderer {
    kind: EngineKind,
    engine: Engine,
    allow: Option<Allow>,
    ctx: Context,
    ctx_value: Value,
    /// The Go engine's dot: the data plus `.Env`.
    go_ctx: Value,
    go_dialect: gotmpl::Dialect,
    vars: BTreeMap<String, String>,
    /// Top-level names whose values came from --secret-data.
    secret_keys: BTreeSet<String>,
}

impl Renderer {
    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn render_text(&self, name: &str, source: &str) -> Result<(String, bool), RenderError> {
        match self.kind {
            EngineKind::Jinja => {
                let r = self
                    .engine
                    .render_str(name, source, self.ctx_value.clone())?;
                Ok((r.text, r.contains_secret))
            }
            EngineKind::Go => {
                let text = jinja::render_section(name, || {
                    gotmpl::parse(name, source)
                        .and_then(|t| t.render(&self.go_ctx, self.go_dialect))
                        .map_err(|e| with_hint(e, source, EngineKind::Go))
                })?;
                let secret = self.engine.contains_secret_value(&text)
                    || self.secret_keys.iter().any(|k| source.contains(k.as_str()));
                Ok((text, secret))
            }
            EngineKind::Envsubst => {
                let text = jinja::render_section(name, || {
                    envsubst::render(name, source, &|k| self.lookup(k), self.allow.as_ref())
                })?;
                let secret = self.engine.contains_secret_value(&text)
                    || envsubst::variables(name, source)
                        .is_ok_and(|vars| vars.keys().any(|v| self.secret_keys.contains(v)));
                Ok((text, secret))
            }
        }
    }

    fn render_job(&self, job: &Job) -> Result<Done, RenderError> {
        let name = jinja::path_name(&job.template);
        let (text, contains_secret) = match self.kind {
            EngineKind::Jinja => {
                let r = self
                    .engine
                    .render_file(&job.template, self.ctx_value.clone())
                    .map_err(|e| match std::fs::read_to_string(&job.template) {
                        Ok(src) => with_hint(e, &src, EngineKind::Jinja),
                        Err(_) => e,
                    })?;
                (r.text, r.contains_secret)
            }
            EngineKind::Envsubst | EngineKind::Go => {
                let source = read_template(&job.template)?;
                self.render_text(&name, &source)?
            }
        };
        let dest = match &job.dest {
            Dest::Stdout => None,
            Dest::File(p) => Some(p.clone()),
            Dest::Tree { root, rel } => Some(root.join(self.render_name(&job.template, rel)?)),
        };
        Ok(Done {
            template: job.template.clone(),
            dest,
            text,
            contains_secret,
            executable: job.executable,
        })
    }

    /// Render templated path components (`{{ env.APP }}.conf`, `${APP}.conf`).
    fn render_name(&self, template: &Path, rel: &Path) -> Result<PathBuf, RenderError> {
        let mut out = PathBuf::new();
        for comp in rel.components() {
            let raw = comp.as_os_str().to_string_lossy().into_owned();
            let templated = match self.kind {
                EngineKind::Jinja => raw.contains(&self.variable_open()),
                EngineKind::Envsubst => raw.contains('$'),
                EngineKind::Go => raw.contains("{{"),
            };
            if !templated {
                out.push(comp.as_os_str());
                continue;
            }
            let label = format!("{} (file name)", template.display());
            let (name, _) = self.render_text(&label, &raw)?;
            let name = name.trim().to_string();
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                return Err(RenderError::new(
                    label,
                    format!("the file name {raw:?} renders to {name:?}, which is not a file name"),
                ));
            }
            out.push(name);
        }
        Ok(out)
    }

    fn variable_open(&self) -> String {
        self.engine
            .environment()
            .syntax()
            .variable_delimiters()
            .0
            .to_string()
    }
}

/// A syntax error names the engine the template was read as; when the text looks like the
/// other template language, the message says which flag reads it so.
fn with_hint(mut e: RenderError, source: &str, kind: EngineKind) -> RenderError {
    if !e.message.starts_with("syntax error") && !e.message.contains("read as a Go template") {
        return e;
    }
    let go_like = [
        "{{ .",
        "{{- .",
        "{{ end",
        "{{- end",
        "{{ range ",
        "{{ if .",
        "{{ $",
    ]
    .iter()
    .any(|p| source.contains(p));
    let jinja_like = ["{%", "{#", "| default(", "}} {% "]
        .iter()
        .any(|p| source.contains(p));
    match kind {
        EngineKind::Jinja => {
            e.message.push_str(" (read as a Jinja template");
            if go_like {
                e.message
                    .push_str("; it looks like a Go template: try --engine go");
            }
            e.message.push(')');
        }
        EngineKind::Go if jinja_like => {
            e.message
                .push_str(" (it looks like a Jinja template: try --engine jinja)");
        }
        _ => {}
    }
    e
}

fn read_template(path: &Path) -> Result<String, RenderError> {
    let name = jinja::path_name(path);
    let bytes = initbox_runtime::input::read(path, "template")
        .map_err(|f| RenderError::new(&name, f.message).with_code(f.code))?;
    String::from_utf8(bytes).map_err(|_| RenderError::new(&name, "the template is not UTF-8 text"))
}

/// Minimal glob: `*` (within a path segment), `?`, `**` (any number of segments).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = if p.get(2) == Some(&b'/') {
                    &p[3..]
                } else {
                    &p[2..]
                };
                if rest.is_empty() {
                    return true;
                }
                (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && go(rest, &s[i..]))
                    || go(rest, s)
            }
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && go(&p[1..], &s[1..]),
            Some(&c) => !s.is_empty() && s[0] == c && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
        || (!pattern.contains('/')
            && path
                .rsplit('/')
                .next()
                .is_some_and(|base| go(pattern.as_bytes(), base.as_bytes())))
}

fn strip_template_suffix(name: &str) -> String {
    for s in TEMPLATE_SUFFIXES {
        if let Some(stem) = name.strip_suffix(s)
            && !stem.is_empty()
        {
            return stem.to_string();
        }
    }
    name.to_string()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Every file under `dir` (symlinked files followed; `..data`-style Kubernetes directories and
/// initbox's own temporary files skipped), sorted.
fn walk(dir: &Path, exclude: &[String]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = std::fs::read_dir(&here).map_err(|e| {
            Failure::invalid_input(format!("cannot read directory {}: {e}", here.display()))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                Failure::invalid_input(format!("cannot read directory {}: {e}", here.display()))
            })?;
            let name = entry.file_name();
            let name_s = name.to_string_lossy();
            if name_s.starts_with("..") || name_s.starts_with(".initbox-") {
                continue;
            }
            let rel_child = rel.join(&name);
            let rel_s = rel_child.to_string_lossy();
            if exclude.iter().any(|g| glob_match(g, &rel_s)) {
                continue;
            }
            let ft = entry.file_type().map_err(|e| {
                Failure::invalid_input(format!("cannot read {}: {e}", entry.path().display()))
            })?;
            if ft.is_dir() {
                stack.push(rel_child);
            } else if ft.is_file() || (ft.is_symlink() && entry.path().is_file()) {
                out.push(rel_child);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Args {
    fn jobs(&self) -> Result<Vec<Job>, Failure> {
        let mut pairs: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
        if let Some(src) = &self.source {
            let dest = self.dest.clone().filter(|d| d.as_os_str() != "-");
            pairs.push((src.clone(), dest));
        } else if self.dest.is_some() {
            return Err(Failure::usage("DEST given without SOURCE"));
        }
        for t in &self.templates {
            let (s, d) = t
                .split_once(':')
                .ok_or_else(|| Failure::usage(format!("--template '{t}' is not SOURCE:DEST")))?;
            if s.is_empty() || d.is_empty() {
                return Err(Failure::usage(format!(
                    "--template '{t}' is not SOURCE:DEST"
                )));
            }
            pairs.push((PathBuf::from(s), Some(PathBuf::from(d))));
        }
        if pairs.is_empty() {
            return Err(Failure::usage(
                "no template given (expected SOURCE [DEST] or --template SOURCE:DEST)",
            ));
        }
        let mut jobs = Vec::new();
        for (src, dest) in pairs {
            let meta = std::fs::metadata(&src).map_err(|e| {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                    std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                    _ => e.to_string(),
                };
                Failure::invalid_input(format!("template {}: {why}", src.display()))
            })?;
            if meta.is_dir() {
                let root = match dest {
                    Some(d) => d,
                    None if self.lint => PathBuf::from("."),
                    None => {
                        return Err(Failure::usage(format!(
                            "{} is a directory: give an output directory",
                            src.display()
                        )));
                    }
                };
                for rel in walk(&src, &self.exclude)? {
                    let template = src.join(&rel);
                    let mut out_rel = rel.clone();
                    if let Some(name) = rel.file_name() {
                        out_rel.set_file_name(strip_template_suffix(&name.to_string_lossy()));
                    }
                    jobs.push(Job {
                        executable: is_executable(&template),
                        template,
                        dest: Dest::Tree {
                            root: root.clone(),
                            rel: out_rel,
                        },
                    });
                }
            } else {
                // Like cp: into an existing directory (or a path ending in '/'), under the
                // template's name without its template suffix.
                let dest = dest.map(|d| {
                    let into_dir = d.is_dir() || d.as_os_str().to_string_lossy().ends_with('/');
                    match src.file_name() {
                        Some(name) if into_dir => {
                            d.join(strip_template_suffix(&name.to_string_lossy()))
                        }
                        _ => d,
                    }
                });
                jobs.push(Job {
                    executable: meta.permissions().mode() & 0o111 != 0,
                    template: src,
                    dest: match dest {
                        Some(d) => Dest::File(d),
                        None => Dest::Stdout,
                    },
                });
            }
        }
        let stdout_jobs = jobs
            .iter()
            .filter(|j| matches!(j.dest, Dest::Stdout))
            .count();
        if stdout_jobs > 0 && jobs.len() > 1 && !self.lint {
            return Err(Failure::usage(
                "standard output takes one template only: give every template a DEST",
            ));
        }
        Ok(jobs)
    }

    /// The render context, and the top-level names whose values came from --secret-data.
    fn context(&self, engine: &Engine) -> Result<(Context, BTreeSet<String>), Failure> {
        let mut ctx = Context::new();
        ctx.insert("env", jinja::env_value());
        let mut secret_values = Vec::new();
        let mut secret_keys = BTreeSet::new();
        for (arg, secret) in self
            .data
            .iter()
            .map(|d| (d, false))
            .chain(self.secret_data.iter().map(|d| (d, true)))
        {
            let value = data::load_file(&arg.path)?;
            if secret {
                secret_values.extend(data::register_secret_data(&value));
                match &arg.name {
                    Some(name) => {
                        secret_keys.insert(name.clone());
                    }
                    None => {
                        if let Ok(keys) = value.try_iter() {
                            secret_keys.extend(keys.filter_map(|k| k.as_str().map(str::to_string)));
                        }
                    }
                }
            }
            match &arg.name {
                Some(name) => ctx.insert(name, value),
                None => ctx.merge_top(&value, &arg.path.display().to_string())?,
            }
        }
        engine.add_secret_values(secret_values);
        for s in &self.set {
            ctx.set(s);
        }
        Ok((ctx, secret_keys))
    }

    fn engine(&self) -> Result<Engine, Failure> {
        let mut backends = self.backends.clone();
        backends.request_timeout = self.request_timeout;
        let deadline = Deadline::after((!self.timeout.is_zero()).then_some(self.timeout));
        let secrets: Arc<dyn SecretSource> = Arc::new(secret::FetchSecrets::new(
            initbox_secrets::Resolver::new(&backends, deadline),
            tokio::runtime::Handle::current(),
        ));
        Engine::new(Options {
            undefined: match self.undefined {
                UndefinedArg::SemiStrict => Undefined::SemiStrict,
                UndefinedArg::Strict => Undefined::Strict,
            },
            delimiters: self.delimiters.clone().unwrap_or_default(),
            trim_blocks: self.trim_blocks,
            lstrip_blocks: self.lstrip_blocks,
            keep_trailing_newline: true,
            filesystem: true,
            secrets: Some(secrets),
        })
    }

    fn check_flags(&self) -> Result<(), Failure> {
        if self.engine != EngineKind::Jinja {
            if self.delimiters.is_some() {
                return Err(Failure::usage(
                    "--delimiters applies to --engine jinja only",
                ));
            }
            if self.trim_blocks || self.lstrip_blocks {
                return Err(Failure::usage(
                    "--trim-blocks/--lstrip-blocks apply to --engine jinja only",
                ));
            }
        }
        if self.engine != EngineKind::Envsubst && (self.allow.is_some() || self.only_defined) {
            return Err(Failure::usage(
                "--allow and --only-defined apply to --engine envsubst only",
            ));
        }
        Ok(())
    }
}

/// Show a render error's source excerpt (text logs) or a structured event (JSON logs).
fn show_error(log: &LogArgs, e: &RenderError) {
    match log.log_format {
        LogFormat::Text => {
            if let Some(ex) = e.excerpt() {
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "{}\n{ex}",
                    redact::scrub(&format!("  --> {}", e.location()))
                );
            }
        }
        LogFormat::Json => {
            tracing::error!(
                location = %e.location(),
                source_line = e.source_line.as_deref().unwrap_or(""),
                "{e}"
            );
        }
    }
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        initbox_runtime::input::set_limit(self.max_input_size);
        initbox_template::data::set_yaml_11_booleans(self.yaml_version == "1.1");
        self.check_flags()?;
        let jobs = self.jobs()?;
        let engine = self.engine()?;
        let (ctx, secret_keys) = self.context(&engine)?;
        let ctx_value = engine.track_secret_keys(ctx.to_value(), secret_keys.clone());
        let mut vars = BTreeMap::new();
        if self.engine == EngineKind::Envsubst {
            vars.extend(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            );
            vars.extend(ctx.scalars());
        }
        let go_ctx = if self.engine == EngineKind::Go {
            let top = ctx.to_value();
            let mut m = indexmap::IndexMap::new();
            for k in top.try_iter().into_iter().flatten() {
                if let Ok(v) = top.get_item(&k) {
                    m.insert(k, v);
                }
            }
            m.insert(Value::from("Env"), jinja::env_value());
            Value::from_object(m)
        } else {
            Value::from(())
        };
        let renderer = Arc::new(Renderer {
            kind: self.engine,
            go_ctx,
            go_dialect: match self.go_dialect {
                GoDialectArg::Gomplate => gotmpl::Dialect::Gomplate,
                GoDialectArg::Dockerize => gotmpl::Dialect::Dockerize,
            },
            engine,
            allow: if self.only_defined {
                Some(Allow::defined_only(self.allow.clone()))
            } else {
                self.allow.clone()
            },
            ctx_value,
            secret_keys,
            ctx,
            vars,
        });

        if self.lint {
            let r = Arc::clone(&renderer);
            let jobs2 = jobs.clone();
            let (report, errors) = tokio::task::spawn_blocking(move || lint(&r, &jobs2))
                .await
                .map_err(|e| Failure::failed(format!("lint stopped: {e}")))?;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(redact::scrub(&report).as_bytes());
            let _ = stdout.flush();
            return finish_errors(&self.log, errors, jobs.len()).map(|_| Outcome::OK);
        }

        // 1. Render everything in memory (a blocking thread: secret() may wait on a backend).
        let r = Arc::clone(&renderer);
        let jobs2 = jobs.clone();
        let results = tokio::task::spawn_blocking(move || {
            jobs2.iter().map(|j| r.render_job(j)).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Failure::failed(format!("rendering stopped: {e}")))?;
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(d) => done.push(d),
                Err(e) => errors.push(e),
            }
        }
        finish_errors(&self.log, errors, jobs.len())?;

        // Standard output: one template, printed.
        if done.len() == 1 && done[0].dest.is_none() {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(done[0].text.as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(|e| Failure::failed(format!("cannot write to standard output: {e}")))?;
            return Ok(Outcome::OK);
        }

        // 2. Plan: modes, duplicates.
        let mut seen = HashSet::new();
        let mut planned = Vec::new();
        let mut secret_files = 0;
        for d in done {
            let dest = d.dest.expect("only stdout jobs lack a destination");
            if !seen.insert(dest.clone()) {
                return Err(Failure::usage(format!(
                    "two templates render to {} (the second is {})",
                    dest.display(),
                    d.template.display()
                )));
            }
            if d.contains_secret {
                secret_files += 1;
            }
            let mode = match (self.mode, d.contains_secret, d.executable) {
                (Some(m), _, _) => m,
                (None, true, _) => self.secret_mode,
                (None, false, true) => 0o755,
                (None, false, false) => 0o644,
            };
            planned.push(Planned {
                dest,
                contents: d.text.into_bytes(),
                mode,
                owner: self.owner,
                source: d.template.display().to_string(),
            });
        }

        // 3. Stage all (dropping the list on any error removes every temporary file).
        let total = planned.len();
        let staged = tokio::task::spawn_blocking(move || output::stage_all(planned))
            .await
            .map_err(|e| Failure::failed(format!("staging stopped: {e}")))??;
        // 4. Validate.
        if let Some(check) = &self.check_cmd {
            for f in &staged {
                check
                    .run(f.path(), f.destination(), self.check_timeout)
                    .await?;
            }
        }
        // 5. Commit all.
        let (installed, failure) = tokio::task::spawn_blocking(move || output::commit_all(staged))
            .await
            .map_err(|e| Failure::failed(format!("installing stopped: {e}")))?;
        if let Some(f) = failure {
            return Err(if installed > 0 {
                f.context(format!("{installed} of {total} files were installed"))
            } else {
                f
            });
        }
        tracing::info!(
            files = total,
            with_secrets = secret_files,
            "rendered {total} file{}",
            if total == 1 { "" } else { "s" }
        );
        Ok(Outcome::OK)
    }
}

/// Show every render error; fail with the first (exit 3).
fn finish_errors(log: &LogArgs, errors: Vec<RenderError>, total: usize) -> Result<(), Failure> {
    let Some(first) = errors.first() else {
        return Ok(());
    };
    for e in errors.iter().skip(1) {
        show_error(log, e);
        tracing::error!("{e}");
    }
    show_error(log, first);
    let mut f = first.to_failure();
    if errors.len() > 1 {
        f.message.push_str(&format!(
            " ({} of {total} templates failed; nothing was written)",
            errors.len()
        ));
    } else {
        f.message.push_str(" (nothing was written)");
    }
    Err(f)
}

/// `--lint`: variables per template and which are missing; then a trial render.
fn lint(r: &Renderer, jobs: &[Job]) -> (String, Vec<RenderError>) {
    let mut report = String::new();
    let mut errors = Vec::new();
    for job in jobs {
        let name = jinja::path_name(&job.template);
        let (needed, missing, optional_missing): (BTreeSet<String>, Vec<String>, Vec<String>) =
            match r.kind {
                EngineKind::Jinja => match r.engine.variables_of_file(&job.template) {
                    Ok(vars) => {
                        let missing = vars
                            .iter()
                            .filter(|v| !r.ctx.has_path(v))
                            .cloned()
                            .collect();
                        (vars, missing, Vec::new())
                    }
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
                EngineKind::Go => (BTreeSet::new(), Vec::new(), Vec::new()),
                EngineKind::Envsubst => {
                    let source = match read_template(&job.template) {
                        Ok(s) => s,
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    };
                    match envsubst::variables(&name, &source) {
                        Ok(vars) => {
                            let vars: BTreeMap<String, Need> = vars
                                .into_iter()
                                .filter(|(k, _)| r.allow.as_ref().is_none_or(|a| a.allows(k)))
                                .collect();
                            let unset = |k: &String| r.lookup(k).is_none();
                            let missing = vars
                                .iter()
                                .filter(|(k, n)| **n == Need::Required && unset(k))
                                .map(|(k, _)| k.clone())
                                .collect();
                            let optional = vars
                                .iter()
                                .filter(|(k, n)| **n == Need::Optional && unset(k))
                                .map(|(k, _)| k.clone())
                                .collect();
                            (vars.into_keys().collect(), missing, optional)
                        }
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    }
                }
            };
        let rendered = r.render_job(job);
        // Jinja: unset variables of a template that still renders are handled by it
        // (`default()`, `is defined`); only a failed render makes them missing.
        let (missing, optional_missing) = if r.kind == EngineKind::Jinja && rendered.is_ok() {
            (Vec::new(), missing)
        } else {
            (missing, optional_missing)
        };
        let list = |v: &mut dyn Iterator<Item = &String>| {
            let s: Vec<&str> = v.map(String::as_str).collect();
            if s.is_empty() {
                "-".to_string()
            } else {
                s.join(", ")
            }
        };
        report.push_str(&format!("{name}: needs {}\n", list(&mut needed.iter())));
        if !missing.is_empty() {
            report.push_str(&format!("{name}: missing {}\n", list(&mut missing.iter())));
        }
        if !optional_missing.is_empty() {
            report.push_str(&format!(
                "{name}: not set, defaulted {}\n",
                list(&mut optional_missing.iter())
            ));
        }
        match rendered {
            Ok(_) => report.push_str(&format!("{name}: renders\n")),
            Err(e) => {
                report.push_str(&format!("{name}: does not render: {e}\n"));
                errors.push(e);
            }
        }
    }
    (report, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.md", "README.md"));
        assert!(glob_match("*.md", "docs/x.md"));
        assert!(!glob_match("docs/*.md", "docs/a/x.md"));
        assert!(glob_match("docs/**/*.md", "docs/a/b/x.md"));
        assert!(glob_match("docs/**", "docs/a/b"));
        assert!(glob_match("_partials/*", "_partials/h.j2"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
    }

    #[test]
    fn suffixes() {
        assert_eq!(strip_template_suffix("app.conf.j2"), "app.conf");
        assert_eq!(strip_template_suffix("nginx.conf.template"), "nginx.conf");
        assert_eq!(strip_template_suffix(".j2"), ".j2");
        assert_eq!(strip_template_suffix("plain.conf"), "plain.conf");
    }

    /// `secret()` backends are async (HTTP); rendering runs on a blocking thread and waits on
    /// the applet's current-thread runtime, which keeps driving timers and IO meanwhile.
    #[test]
    fn async_secret_backends_work_from_the_render_thread() {
        struct Slow(tokio::runtime::Handle);
        impl SecretSource for Slow {
            fn resolve(&self, reference: &str) -> Result<String, String> {
                let r = reference.to_string();
                self.0.block_on(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = l.local_addr().unwrap();
                    let c = tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
                    let _ = l.accept().await.unwrap();
                    c.await.unwrap().unwrap();
                    Ok(format!("value-of-{}", r.trim_start_matches("ref+test://")))
                })
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let engine = Engine::new(Options {
                secrets: Some(Arc::new(Slow(tokio::runtime::Handle::current()))),
                ..Default::default()
            })
            .unwrap();
            tokio::task::spawn_blocking(move || {
                engine
                    .render_str("t", "{{ secret('ref+test://a') }}", Value::from(()))
                    .unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(out.text, "value-of-a");
        assert!(out.contains_secret);
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
