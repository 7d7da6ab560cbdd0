//! The strict Jinja engine of initbox (minijinja), shared by `render-config` and `notify`.
//!
//! What it guarantees:
//! - printing, iterating or coercing an undefined value is an error naming the variable, while
//!   `{% if x is defined %}`, `{% if x %}` and `x | default(...)` keep working
//!   ([`Undefined::SemiStrict`], the default; [`Undefined::Strict`] also refuses `{% if x %}`);
//! - no auto-escaping, whatever the template's extension;
//! - custom delimiters (`[[ ]]`) for templates that live inside Helm charts;
//! - includes resolved relative to the including template (when the filesystem is enabled);
//! - filters `tojson`, `toyaml`, `fromjson`, `fromyaml`, `b64encode`, `b64decode`, `required`,
//!   `sha256`, minijinja's builtins and minijinja-contrib's (with Python method compatibility
//!   such as `.items()` and `.upper()`), Jinja2's and Ansible's where they differ
//!   ([`crate::filters`]); numbers, lists and dicts print as Python prints them;
//! - Ansible's `#jinja2: trim_blocks: False, ...` first line is applied, not printed;
//! - a `secret("ref+...")` function that resolves through a [`SecretSource`], registers every
//!   value with the runtime's scrubber and marks the render as containing a secret;
//! - bounded work: a render has [`FUEL`] instructions, its output at most the input limit
//!   (`--max-input-size`, 16 MiB by default), and filters that can multiply a string
//!   (`center`, `indent`, `replace`, `join`, `tojson(indent=)`) refuse results past it; each is
//!   exit 3 naming the template and, where minijinja knows it, the line; whatever else a
//!   template builds (`~`, list `+`) is bounded by the runtime's allocation section
//!   ([`render_section`]): exit 3 naming the template;
//! - errors as `file:line:col: message` plus a source excerpt with a caret ([`RenderError`]),
//!   scrubbed of secrets; minijinja's debug dump (which prints variable values) is never shown.
//!
//! ```no_run
//! use initbox_template::jinja::{Engine, Options};
//! let engine = Engine::new(Options::default()).unwrap();
//! let ctx = minijinja::context! { name => "db" };
//! let out = engine.render_str("title", "{{ name }} is ready", ctx).unwrap();
//! assert_eq!(out.text, "db is ready");
//! ```

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use initbox_runtime::{Code, Failure, redact};
use minijinja::value::{Kwargs, Rest, StringInput, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::rewrite::SourceMap;

/// Resolves a secret reference (`ref+vault://...`, `ref+file://...`) to its value.
///
/// Implementations return an error message that names the reference and what is wrong, never
/// a value.
pub trait SecretSource: Send + Sync {
    fn resolve(&self, reference: &str) -> Result<String, String>;

    /// Like [`SecretSource::resolve`], with the exit code the failure should end the run with
    /// (default 3, invalid input). Backends override it to keep 1 (not found), 4 (permission),
    /// 5 (credentials rejected) or 124 (deadline).
    fn resolve_with_code(&self, reference: &str) -> Result<String, Failure> {
        self.resolve(reference).map_err(Failure::invalid_input)
    }
}

impl<F> SecretSource for F
where
    F: Fn(&str) -> Result<String, String> + Send + Sync,
{
    fn resolve(&self, reference: &str) -> Result<String, String> {
        self(reference)
    }
}

/// How undefined values behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Undefined {
    /// Printing, iterating, coercing or looking into an undefined value fails; testing it
    /// (`is defined`, `{% if x %}`) and `default()` work.
    #[default]
    SemiStrict,
    /// Like `SemiStrict`, and `{% if x %}` on an undefined value fails too (Jinja2's
    /// `StrictUndefined`).
    Strict,
}

/// Template delimiters: `{{ }}`, `{% %}`, `{# #}` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiters {
    pub variable: (String, String),
    pub block: (String, String),
    pub comment: (String, String),
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            variable: ("{{".into(), "}}".into()),
            block: ("{%".into(), "%}".into()),
            comment: ("{#".into(), "#}".into()),
        }
    }
}

impl Delimiters {
    /// Parse `'[[ ]]'` (variables; blocks become `[% %]` and comments `[# #]`), or six words
    /// `'[[ ]] [% %] [# #]'` for variables, blocks and comments.
    pub fn parse(spec: &str) -> Result<Delimiters, String> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let bad = || {
            format!(
                "'{spec}' is not a delimiter pair (expected e.g. '[[ ]]' or '[[ ]] [% %] [# #]')"
            )
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        match words.as_slice() {
            [l, r] => {
                let (mut lc, mut rc) = (l.chars(), r.chars());
                let (Some(lf), Some(rl)) = (lc.next(), rc.next_back()) else {
                    return Err(bad());
                };
                if l.chars().count() < 2 || r.chars().count() < 2 {
                    return Err(bad());
                }
                let d = Delimiters {
                    variable: pair(l, r),
                    block: (format!("{lf}%"), format!("%{rl}")),
                    comment: (format!("{lf}#"), format!("#{rl}")),
                };
                if d.block == d.variable || d.comment == d.variable {
                    return Err(format!(
                        "'{spec}': the block delimiters derived from it ({} {}) are the same; \
                         give all six, e.g. '{l} {r} {{% %}} {{# #}}'",
                        d.block.0, d.block.1
                    ));
                }
                Ok(d)
            }
            [vl, vr, bl, br, cl, cr] => Ok(Delimiters {
                variable: pair(vl, vr),
                block: pair(bl, br),
                comment: pair(cl, cr),
            }),
            _ => Err(bad()),
        }
    }
}

/// Engine settings.
#[derive(Clone)]
pub struct Options {
    pub undefined: Undefined,
    pub delimiters: Delimiters,
    /// Remove the first newline after a block tag (Jinja2 `trim_blocks`).
    pub trim_blocks: bool,
    /// Strip whitespace before a block tag on its line (Jinja2 `lstrip_blocks`).
    pub lstrip_blocks: bool,
    /// Keep the template's final newline (default true: configuration files end with one).
    pub keep_trailing_newline: bool,
    /// Load templates and includes from the filesystem, names being paths; includes are
    /// relative to the including template.
    pub filesystem: bool,
    /// Where `secret("ref+...")` resolves; `None` makes every `secret()` call an error.
    pub secrets: Option<Arc<dyn SecretSource>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            undefined: Undefined::SemiStrict,
            delimiters: Delimiters::default(),
            trim_blocks: false,
            lstrip_blocks: false,
            keep_trailing_newline: true,
            filesystem: false,
            secrets: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("undefined", &self.undefined)
            .field("delimiters", &self.delimiters)
            .field("trim_blocks", &self.trim_blocks)
            .field("lstrip_blocks", &self.lstrip_blocks)
            .field("keep_trailing_newline", &self.keep_trailing_newline)
            .field("filesystem", &self.filesystem)
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

/// Secret bookkeeping of an engine: a cache per reference and whether the current render used
/// a secret.
#[derive(Default)]
struct SecretState {
    source: Option<Arc<dyn SecretSource>>,
    cache: Mutex<HashMap<String, String>>,
    used: AtomicBool,
    values: Mutex<Vec<String>>,
    /// The exit code of a failed `secret()` call during the current render.
    failure: Mutex<Option<Code>>,
}

/// The result of a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// `secret()` was called, or the output contains a value known to be secret.
    pub contains_secret: bool,
}

/// Instructions one render may execute: far above any configuration template, low enough that
/// a runaway loop ends in seconds.
pub const FUEL: u64 = 10_000_000;

/// The largest output of one render, and of any one filter result: the input limit.
pub(crate) fn max_output() -> usize {
    usize::try_from(initbox_runtime::input::limit()).unwrap_or(usize::MAX)
}

fn too_large(what: &str) -> Error {
    invalid(too_large_message(what))
}

/// `WHAT would be larger than LIMIT (raise with ...)`.
pub(crate) fn too_large_message(what: &str) -> String {
    let limit = initbox_runtime::input::human_size(max_output() as u64);
    format!(
        "{what} would be larger than {limit} ({})",
        initbox_runtime::input::raise_hint()
    )
}

/// The memory a render may use, from the output limit (16 MiB by default): one value (a
/// string, a list) at most [`SINGLE_FACTOR`] times it, everything the render holds at once at
/// most [`TOTAL_FACTOR`] times it. Far above any render that stays within the output limit,
/// so only a template that builds values it can never print (`s ~ s` doubling, list `+`) meets
/// them.
pub const SINGLE_FACTOR: usize = 4;
/// See [`SINGLE_FACTOR`].
pub const TOTAL_FACTOR: usize = 16;

/// Run one render of template `name` (Jinja or envsubst) in a bounded allocation section: past
/// the limits of [`SINGLE_FACTOR`] the process ends with exit 3 and one line naming `name`
/// (minijinja has no hook on `~` or list `+`, so this is where they are bounded).
pub fn render_section<R>(name: &str, f: impl FnOnce() -> R) -> R {
    let limit = max_output();
    let limits = initbox_runtime::alloc::Limits {
        single: limit.saturating_mul(SINGLE_FACTOR),
        total: limit.saturating_mul(TOTAL_FACTOR),
    };
    let human = |n: usize| initbox_runtime::input::human_size(n as u64);
    let message = format!(
        "{name}: a value the template builds would be larger than {}, or all of them together \
         larger than {} ({SINGLE_FACTOR} and {TOTAL_FACTOR} times the {} output limit; {})",
        human(limits.single),
        human(limits.total),
        human(limit),
        initbox_runtime::input::raise_hint()
    );
    initbox_runtime::alloc::bounded(limits, &message, f)
}

/// Bytes written by the current render; set past the limit by [`BoundedOutput`].
#[derive(Default)]
struct Budget {
    written: AtomicUsize,
    overflow: AtomicBool,
}

/// The render's output buffer, refusing to grow past [`max_output`].
struct BoundedOutput<'a> {
    buf: Vec<u8>,
    budget: &'a Budget,
    limit: usize,
}

impl std::io::Write for BoundedOutput<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.budget.overflow.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        self.budget.written.store(self.buf.len(), Ordering::SeqCst);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A strict minijinja environment with initbox's filters and functions.
pub struct Engine {
    env: Environment<'static>,
    options: Options,
    secrets: Arc<SecretState>,
    budget: Arc<Budget>,
    sources: Arc<Sources>,
}

/// The templates whose source was rewritten (see [`crate::rewrite`]), by name: the user's own
/// text and where the insertions are, so that errors show the user's line and column.
#[derive(Default)]
struct Sources(Mutex<HashMap<String, (String, SourceMap)>>);

impl Sources {
    /// `source` as minijinja should read it, remembering the original under `name`.
    fn prepare(&self, name: &str, source: String, delimiters: &Delimiters) -> String {
        match crate::rewrite::rewrite(&source, delimiters) {
            Some((rewritten, map)) => {
                lock(&self.0).insert(name.to_string(), (source, map));
                rewritten
            }
            None => {
                lock(&self.0).remove(name);
                source
            }
        }
    }

    fn error(&self, err: &Error, fallback_name: &str) -> RenderError {
        RenderError::from_minijinja_mapped(err, fallback_name, &|name| {
            lock(&self.0).get(name).cloned()
        })
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// Build the environment. Fails (exit 2) only on bad delimiters.
    pub fn new(options: Options) -> Result<Engine, Failure> {
        let secrets = Arc::new(SecretState {
            source: options.secrets.clone(),
            ..Default::default()
        });
        let budget = Arc::new(Budget::default());
        let sources = Arc::new(Sources::default());
        let env = build_environment(
            &options,
            Arc::clone(&secrets),
            Arc::clone(&budget),
            Arc::clone(&sources),
        )?;
        Ok(Engine {
            env,
            options,
            secrets,
            budget,
            sources,
        })
    }

    /// The underlying environment, e.g. to add filters or globals.
    pub fn environment(&self) -> &Environment<'static> {
        &self.env
    }

    /// Mutable access to the underlying environment.
    pub fn environment_mut(&mut self) -> &mut Environment<'static> {
        &mut self.env
    }

    /// Mark values as secret: outputs containing them count as [`Rendered::contains_secret`].
    /// They are registered with the runtime's scrubber too.
    pub fn add_secret_values<I: IntoIterator<Item = String>>(&self, values: I) {
        let mut known = lock(&self.secrets.values);
        for v in values {
            redact::register(&v);
            if v.len() >= redact::MIN_LEN && !known.contains(&v) {
                known.push(v);
            }
        }
    }

    /// Wrap the root context so that reading any top-level name in `secret_keys` (names whose
    /// values came from a secret, e.g. `--secret-data`) marks the render as containing a
    /// secret. The mark is taken where the value is read, so it survives every filter applied
    /// to it afterwards (`b64encode`, `upper`, slicing, hashing); a template that merely tests
    /// such a value is marked too, which errs on the tight side.
    pub fn track_secret_keys(&self, root: Value, secret_keys: BTreeSet<String>) -> Value {
        if secret_keys.is_empty() {
            return root;
        }
        Value::from_object(TrackedRoot {
            inner: root,
            keys: secret_keys,
            state: Arc::clone(&self.secrets),
        })
    }

    /// Whether `text` contains a value known to be secret (from `secret()` or
    /// [`Engine::add_secret_values`]).
    pub fn contains_secret_value(&self, text: &str) -> bool {
        let known = lock(&self.secrets.values);
        known.iter().any(|v| text.contains(v.as_str()))
    }

    /// Render `source` under `name` (the name appears in error locations).
    pub fn render_str(
        &self,
        name: &str,
        source: &str,
        ctx: Value,
    ) -> Result<Rendered, RenderError> {
        self.begin();
        let (header_env, source, delimiters) = match split_header(source) {
            Some((line, rest)) => (
                Some(self.header_environment(name, line)?),
                rest,
                apply_header(&self.options, line)
                    .map(|o| o.delimiters)
                    .unwrap_or_else(|_| self.options.delimiters.clone()),
            ),
            None => (None, source, self.options.delimiters.clone()),
        };
        let env = header_env.as_ref().unwrap_or(&self.env);
        let source = self.sources.prepare(name, source.to_string(), &delimiters);
        let tmpl = env
            .template_from_named_str(name, &source)
            .map_err(|e| self.sources.error(&e, name))?;
        let text = self.render_bounded(&tmpl, ctx, name)?;
        Ok(self.finish(text))
    }

    /// An environment with the settings of an Ansible `#jinja2:` header line applied.
    fn header_environment(
        &self,
        name: &str,
        line: &str,
    ) -> Result<Environment<'static>, RenderError> {
        let options = apply_header(&self.options, line)
            .map_err(|m| RenderError::new(name, format!("the #jinja2: header line: {m}")))?;
        build_environment(
            &options,
            Arc::clone(&self.secrets),
            Arc::clone(&self.budget),
            Arc::clone(&self.sources),
        )
        .map_err(|f| RenderError::new(name, format!("the #jinja2: header line: {}", f.message)))
    }

    /// Render the template at `path` (filesystem mode: includes relative to it).
    pub fn render_file(&self, path: &Path, ctx: Value) -> Result<Rendered, RenderError> {
        let name = path_name(path);
        self.begin();
        let header_env = match initbox_runtime::input::read(path, "template") {
            Ok(bytes) if bytes.starts_with(HEADER.as_bytes()) => {
                let text = String::from_utf8_lossy(&bytes);
                let line = split_header(&text)
                    .map(|(l, _)| l.to_string())
                    .unwrap_or_default();
                Some(self.header_environment(&name, &line)?)
            }
            _ => None,
        };
        let env = header_env.as_ref().unwrap_or(&self.env);
        let tmpl = env
            .get_template(&name)
            .map_err(|e| self.sources.error(&e, &name))?;
        let text = self.render_bounded(&tmpl, ctx, &name)?;
        Ok(self.finish(text))
    }

    /// Render into a buffer that stops at [`max_output`].
    fn render_bounded(
        &self,
        tmpl: &minijinja::Template<'_, '_>,
        ctx: Value,
        name: &str,
    ) -> Result<String, RenderError> {
        let limit = max_output();
        let mut out = BoundedOutput {
            buf: Vec::new(),
            budget: &self.budget,
            limit,
        };
        let result = render_section(name, || tmpl.render_captured_to(ctx, &mut out).map(|_| ()));
        if self.budget.overflow.load(Ordering::SeqCst) {
            return Err(RenderError::new(name, too_large_message("the output")));
        }
        result.map_err(|e| self.error(&e, name))?;
        // Only whole `str`s are written, so the buffer is UTF-8.
        String::from_utf8(out.buf)
            .map_err(|_| RenderError::new(name, "the output is not UTF-8 text"))
    }

    /// The variables a template reads from its context (dotted for attribute lookups such as
    /// `db.host`), without globals and functions of the environment.
    pub fn variables_of_str(
        &self,
        name: &str,
        source: &str,
    ) -> Result<BTreeSet<String>, RenderError> {
        let source = self
            .sources
            .prepare(name, source.to_string(), &self.options.delimiters);
        let tmpl = self
            .env
            .template_from_named_str(name, &source)
            .map_err(|e| self.sources.error(&e, name))?;
        Ok(self.filter_globals(tmpl.undeclared_variables(true)))
    }

    /// Like [`Engine::variables_of_str`] for a template file.
    pub fn variables_of_file(&self, path: &Path) -> Result<BTreeSet<String>, RenderError> {
        let name = path_name(path);
        let tmpl = self
            .env
            .get_template(&name)
            .map_err(|e| self.sources.error(&e, &name))?;
        Ok(self.filter_globals(tmpl.undeclared_variables(true)))
    }

    fn filter_globals(&self, vars: std::collections::HashSet<String>) -> BTreeSet<String> {
        let globals: Vec<String> = self.env.globals().map(|(k, _)| k.to_string()).collect();
        vars.into_iter()
            .filter(|v| {
                let root = v.split('.').next().unwrap_or(v);
                !globals.iter().any(|g| g == root)
            })
            .collect()
    }

    fn begin(&self) {
        self.budget.written.store(0, Ordering::SeqCst);
        self.budget.overflow.store(false, Ordering::SeqCst);
        self.secrets.used.store(false, Ordering::SeqCst);
        *lock(&self.secrets.failure) = None;
    }

    /// A render error, with the exit code of a failed `secret()` call if one caused it.
    fn error(&self, e: &Error, name: &str) -> RenderError {
        let mut out = self.sources.error(e, name);
        if let Some(code) = lock(&self.secrets.failure).take() {
            out.code = code;
        }
        out
    }

    fn finish(&self, text: String) -> Rendered {
        let contains_secret =
            self.secrets.used.load(Ordering::SeqCst) || self.contains_secret_value(&text);
        Rendered {
            text,
            contains_secret,
        }
    }
}

/// The root context of a render with secret top-level names (see
/// [`Engine::track_secret_keys`]).
struct TrackedRoot {
    inner: Value,
    keys: BTreeSet<String>,
    state: Arc<SecretState>,
}

impl fmt::Debug for TrackedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("context")
    }
}

impl minijinja::value::Object for TrackedRoot {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self
            .inner
            .get_item(key)
            .ok()
            .filter(|v| !v.is_undefined())?;
        if key.as_str().is_some_and(|k| self.keys.contains(k)) {
            self.state.used.store(true, Ordering::SeqCst);
        }
        Some(v)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        match self.inner.try_iter() {
            Ok(keys) => minijinja::value::Enumerator::Values(keys.collect()),
            Err(_) => minijinja::value::Enumerator::Empty,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A path as a template name.
pub fn path_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Join `name` (from an `{% include %}`) to the directory of `parent`, lexically.
fn join_relative(name: &str, parent: &str) -> String {
    let name_path = Path::new(name);
    let joined = if name_path.is_absolute() {
        name_path.to_path_buf()
    } else {
        Path::new(parent)
            .parent()
            .map(|d| d.join(name_path))
            .unwrap_or_else(|| name_path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    path_name(&out)
}

/// The first line of an Ansible template that sets Jinja options: `#jinja2: trim_blocks: False`.
const HEADER: &str = "#jinja2:";

/// `(settings, rest of the template)` when `source` starts with a `#jinja2:` line.
fn split_header(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix(HEADER)?;
    Some(match rest.find('\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    })
}

/// Apply a `#jinja2:` line as Ansible's template module does: comma-separated `key: value`
/// pairs, each value a Python literal (`True`, `False`, `'[%'`).
fn apply_header(base: &Options, line: &str) -> Result<Options, String> {
    let mut o = base.clone();
    for pair in line.split(',') {
        let Some((key, val)) = pair.split_once(':') else {
            return Err(format!("'{}' is not 'key: value'", pair.trim()));
        };
        let (key, val) = (key.trim(), val.trim());
        let boolean = || match val {
            "True" => Ok(true),
            "False" => Ok(false),
            _ => Err(format!("{key}: expected True or False, not {val}")),
        };
        let string = || {
            let b = val.as_bytes();
            if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
                Ok(val[1..val.len() - 1].to_string())
            } else {
                Err(format!("{key}: expected a quoted string, not {val}"))
            }
        };
        match key {
            "trim_blocks" => o.trim_blocks = boolean()?,
            "lstrip_blocks" => o.lstrip_blocks = boolean()?,
            "keep_trailing_newline" => o.keep_trailing_newline = boolean()?,
            "variable_start_string" => o.delimiters.variable.0 = string()?,
            "variable_end_string" => o.delimiters.variable.1 = string()?,
            "block_start_string" => o.delimiters.block.0 = string()?,
            "block_end_string" => o.delimiters.block.1 = string()?,
            "comment_start_string" => o.delimiters.comment.0 = string()?,
            "comment_end_string" => o.delimiters.comment.1 = string()?,
            "newline_sequence" if matches!(val, "'\\n'" | "\"\\n\"") => {}
            _ => return Err(format!("unknown or unsupported setting {key}")),
        }
    }
    Ok(o)
}

fn build_environment(
    options: &Options,
    secrets: Arc<SecretState>,
    budget: Arc<Budget>,
    sources: Arc<Sources>,
) -> Result<Environment<'static>, Failure> {
    let mut env = Environment::new();
    env.set_debug(true); // needed for ranges and sources in errors; the dump is never printed
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    // Refuse a `{{ value }}` that would take the output past its limit here, where minijinja
    // still knows the line (the output buffer itself catches literal text).
    env.set_formatter(move |out, state, value| {
        let len = value.as_str().map_or(0, str::len);
        if budget.written.load(Ordering::SeqCst).saturating_add(len) > max_output() {
            return Err(too_large("the output"));
        }
        // Numbers, lists and dicts print as Python prints them (`1e+16`, `['a', 1]`).
        match value.kind() {
            ValueKind::Number if !value.is_integer() => {
                let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
                out.write_str(&crate::python::float_repr(f))
                    .map_err(|_| Error::from(ErrorKind::WriteFailure))
            }
            ValueKind::Seq | ValueKind::Map
                if value
                    .as_object()
                    .is_none_or(|o| !matches!(o.repr(), minijinja::value::ObjectRepr::Plain)) =>
            {
                out.write_str(&crate::python::to_str(value))
                    .map_err(|_| Error::from(ErrorKind::WriteFailure))
            }
            _ => minijinja::escape_formatter(out, state, value),
        }
    });
    env.set_undefined_behavior(match options.undefined {
        Undefined::SemiStrict => UndefinedBehavior::SemiStrict,
        Undefined::Strict => UndefinedBehavior::Strict,
    });
    env.set_recursion_limit(200);
    let d = &options.delimiters;
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .variable_delimiters(d.variable.0.clone(), d.variable.1.clone())
        .block_delimiters(d.block.0.clone(), d.block.1.clone())
        .comment_delimiters(d.comment.0.clone(), d.comment.1.clone())
        .trim_blocks(options.trim_blocks)
        .lstrip_blocks(options.lstrip_blocks)
        .keep_trailing_newline(options.keep_trailing_newline)
        .build()
        .map_err(|e| Failure::usage(format!("--delimiters: {}", describe_kind(&e))))?;
    env.set_syntax(syntax);

    if options.filesystem {
        env.set_auto_reload(false);
        env.set_path_join_callback(|name, parent| Cow::Owned(join_relative(name, parent)));
        let delimiters = options.delimiters.clone();
        env.set_loader(move |name| {
            if !Path::new(name).exists() {
                return Ok(None);
            }
            // Bounded: a template from /dev/zero or a FIFO stops at the input limit.
            match initbox_runtime::input::read(Path::new(name), name) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    // The `#jinja2:` header line is settings, not text (see `apply_header`).
                    Ok(s) => {
                        let s = match split_header(&s) {
                            Some((_, rest)) => rest.to_string(),
                            None => s,
                        };
                        Ok(Some(sources.prepare(name, s, &delimiters)))
                    }
                    Err(_) => Err(Error::new(
                        ErrorKind::TemplateNotFound,
                        format!("{name} is not UTF-8 text"),
                    )),
                },
                Err(f) => Err(Error::new(ErrorKind::InvalidOperation, f.message)),
            }
        });
    }

    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(crate::filters::unknown_method);

    env.add_filter("tojson", to_json_sorted);
    env.add_filter("toyaml", to_yaml);
    env.add_filter("fromjson", from_json);
    env.add_filter("from_json", from_json);
    env.add_filter("fromyaml", from_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("required", required);
    env.add_filter("sha256", sha256);
    env.add_filter("center", center);
    env.add_filter("replace", bounded_replace);
    env.add_filter("join", bounded_join);
    env.add_filter("truncate", truncate);
    crate::filters::register(&mut env);
    env.add_filter("indent", crate::filters::indent);

    // The calls `%` and `do EXPR` are rewritten into (see `crate::rewrite`).
    env.add_function(crate::rewrite::MOD_FUNCTION, |a: &Value, b: &Value| {
        crate::percent::modulo(a, b)
    });
    env.add_function(crate::rewrite::DO_FUNCTION, |_: Rest<Value>| ());
    env.add_function("secret", move |reference: String| -> Result<Value, Error> {
        resolve_secret(&secrets, &reference).map(Value::from)
    });
    Ok(env)
}

fn resolve_secret(state: &SecretState, reference: &str) -> Result<String, Error> {
    if let Some(v) = lock(&state.cache).get(reference) {
        state.used.store(true, Ordering::SeqCst);
        return Ok(v.clone());
    }
    let Some(source) = &state.source else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("secret({reference:?}): no secret backend is available"),
        ));
    };
    let value = source.resolve_with_code(reference).map_err(|f| {
        *lock(&state.failure) = Some(f.code);
        Error::new(
            ErrorKind::InvalidOperation,
            format!("secret({reference:?}): {}", f.message),
        )
    })?;
    redact::register(&value);
    state.used.store(true, Ordering::SeqCst);
    lock(&state.cache).insert(reference.to_string(), value.clone());
    if value.len() >= redact::MIN_LEN {
        lock(&state.values).push(value.clone());
    }
    Ok(value)
}

fn invalid(msg: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

fn to_yaml(value: &Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    serde_norway::to_string(value).map_err(|e| invalid(format!("toyaml: {e}")))
}

/// An indent wider than this is no formatting but a way to multiply the output.
const MAX_JSON_INDENT: usize = 64;

fn check_json_indent(indent: Option<usize>) -> Result<(), Error> {
    match indent {
        Some(n) if n > MAX_JSON_INDENT => Err(invalid(format!(
            "tojson: indent={n} is more than {MAX_JSON_INDENT}"
        ))),
        _ => Ok(()),
    }
}

/// Jinja2's `tojson`: keys sorted, `", "`/`": "` separators (or `indent=N`), and `<`, `>`,
/// `&`, `'` escaped so the output is safe inside HTML too.
fn to_json_sorted(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let indent = kwargs.get::<Option<usize>>("indent")?.or(indent);
    kwargs.assert_all_used()?;
    check_json_indent(indent)?;
    let json = serde_json::to_value(value).map_err(|e| invalid(format!("tojson: {e}")))?;
    let mut out = String::new();
    write_json(&json, indent, 0, &mut out);
    let out = out
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027");
    // Python's json.dumps escapes every non-ASCII character (ensure_ascii).
    let mut ascii = String::with_capacity(out.len());
    for c in out.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Ok(Value::from_safe_string(ascii))
}

fn write_json(v: &serde_json::Value, indent: Option<usize>, level: usize, out: &mut String) {
    use serde_json::Value as J;
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                write_json(item, indent, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        J::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                out.push_str(&J::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(&map[k], indent, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn from_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str::<Value>(text).map_err(|e| invalid(format!("fromjson: {e}")))
}

fn from_yaml(text: &str) -> Result<Value, Error> {
    serde_norway::from_str::<Value>(text)
        .map_err(|e| invalid(format!("fromyaml: {}", first_line(&e.to_string()))))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn bytes_of(value: &Value) -> Result<Vec<u8>, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let Some(b) = value.as_bytes() {
        return Ok(b.to_vec());
    }
    Ok(value.to_string().into_bytes())
}

fn b64encode(value: &Value) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes_of(value)?))
}

fn b64decode(value: &str) -> Result<Value, Error> {
    let trimmed: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed.as_bytes()))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(trimmed.as_bytes()))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed.as_bytes()))
        .map_err(|_| invalid("b64decode: the value is not valid base64"))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => Value::from(s),
        Err(e) => Value::from_bytes(e.into_bytes()),
    })
}

fn required(value: &Value, message: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        let msg = message.unwrap_or_else(|| "a required value is missing".into());
        return Err(Error::new(ErrorKind::UndefinedError, msg));
    }
    Ok(value.clone())
}

fn sha256(value: &Value) -> Result<String, Error> {
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes_of(value)?);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// Jinja2's `truncate(length=255, killwords=false, end='...', leeway=5)`, positional or named.
fn truncate(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if args.len() > 4 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let pos = |i: usize| args.get(i).filter(|v| !v.is_none() && !v.is_undefined());
    let num = |i: usize| -> Result<Option<usize>, Error> {
        pos(i)
            .map(|v| usize::try_from(v.clone()))
            .transpose()
            .map_err(|_| invalid("truncate: expected a whole number"))
    };
    let length = kwargs
        .get::<Option<usize>>("length")?
        .or(num(0)?)
        .unwrap_or(255);
    let killwords = kwargs
        .get::<Option<bool>>("killwords")?
        .or(pos(1).map(Value::is_true))
        .unwrap_or(false);
    let end = kwargs
        .get::<Option<String>>("end")?
        .or(pos(2).map(Value::to_string))
        .unwrap_or_else(|| "...".into());
    let leeway = kwargs
        .get::<Option<usize>>("leeway")?
        .or(num(3)?)
        .unwrap_or(5);
    kwargs.assert_all_used()?;
    let s = value.to_string();
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= length + leeway {
        return Ok(s);
    }
    let keep = length.saturating_sub(end.chars().count());
    let head: String = chars[..keep.min(chars.len())].iter().collect();
    if killwords {
        return Ok(head + &end);
    }
    let head = match head.rsplit_once(' ') {
        Some((h, _)) => h.to_string(),
        None => head,
    };
    Ok(head + &end)
}

/// minijinja's `replace`, refusing a result past [`max_output`].
fn bounded_replace(
    state: &mut minijinja::State,
    value: StringInput<'_>,
    from: StringInput<'_>,
    to: StringInput<'_>,
) -> Result<Value, Error> {
    let (s, f, t) = (value.as_str(), from.as_str(), to.as_str());
    if t.len() > f.len() {
        let n = if f.is_empty() {
            s.chars().count() + 1
        } else {
            s.matches(f).count()
        };
        if n.saturating_mul(t.len() - f.len()).saturating_add(s.len()) > max_output() {
            return Err(too_large("replace()"));
        }
    }
    minijinja::filters::replace(state, value, from, to)
}

/// minijinja's `join`, refusing a result past [`max_output`].
fn bounded_join(
    state: &mut minijinja::State,
    value: &Value,
    joiner: Option<StringInput<'_>>,
    attribute: Option<&str>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let sep = joiner.as_ref().map_or(0, |j| j.as_str().len());
    if let Ok(items) = value.try_iter() {
        let mut total = 0usize;
        for item in items {
            let len = match item.as_str() {
                Some(s) => s.len(),
                None => 8,
            };
            total = total.saturating_add(len).saturating_add(sep);
            if total > max_output() {
                return Err(too_large("join()"));
            }
        }
    }
    minijinja::filters::join(state, value, joiner, attribute, kwargs)
}

/// Jinja2's `center`: pad to `width`, the extra space on the right.
fn center(value: &Value, width: Option<usize>) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let s = value.to_string();
    let width = width.unwrap_or(80);
    if width > max_output() {
        return Err(too_large(&format!("center({width})")));
    }
    let len = s.chars().count();
    if len >= width {
        return Ok(s);
    }
    let total = width - len;
    // Python's str.center puts the odd space on the left when the width is odd.
    let left = total / 2 + (total & width & 1);
    Ok(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(total - left)
    ))
}

fn describe_kind(e: &Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// A template or data error with its location and source excerpt.
///
/// `Display` is the one-line form `file:line:col: message` (scrubbed of registered secrets);
/// [`RenderError::excerpt`] is the source line with a caret under the failing expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The source line of the error, if known.
    pub source_line: Option<String>,
    /// Length of the failing expression on that line (for the caret).
    pub span: usize,
    /// Exit code: 3 (invalid input) unless a secret backend failed otherwise.
    pub code: Code,
}

impl RenderError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        RenderError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
            source_line: None,
            span: 1,
            code: Code::INVALID_INPUT,
        }
    }

    /// The same error with another exit code.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    /// Point at byte `start..end` of `source`. The offsets come from the template engine and
    /// may fall inside a multi-byte character (an error at the end of the source): `start` is
    /// moved back and `end` forward to the nearest character boundary.
    pub fn at(mut self, source: &str, start: usize, end: usize) -> Self {
        let mut start = start.min(source.len());
        while !source.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = source[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(source.len());
        let line_no = source[..start].matches('\n').count() + 1;
        let col = source[line_start..start].chars().count() + 1;
        let mut end = end.clamp(start, line_end);
        while !source.is_char_boundary(end) {
            end += 1;
        }
        self.line = Some(line_no);
        self.column = Some(col);
        self.source_line = Some(source[line_start..line_end].to_string());
        self.span = source[start..end].chars().count().max(1);
        self
    }

    /// Convert a minijinja error; `fallback_name` is used when the error carries no name.
    pub fn from_minijinja(err: &Error, fallback_name: &str) -> Self {
        Self::from_minijinja_mapped(err, fallback_name, &|_| None)
    }

    /// Like [`RenderError::from_minijinja`], for templates whose source minijinja read
    /// rewritten: `original` gives a template's own text and the map of the insertions.
    fn from_minijinja_mapped(
        err: &Error,
        fallback_name: &str,
        original: &dyn Fn(&str) -> Option<(String, SourceMap)>,
    ) -> Self {
        // Errors inside includes are wrapped: the innermost error with a location is the one
        // to show.
        let mut best = err;
        let mut cur: &dyn std::error::Error = err;
        while let Some(next) = cur.source() {
            if let Some(inner) = next.downcast_ref::<Error>()
                && inner.line().is_some()
            {
                best = inner;
            }
            cur = next;
        }
        let err = best;
        let file = err.name().unwrap_or(fallback_name).to_string();
        let message = describe_kind(err);
        let mapped = original(&file).filter(|(_, map)| !map.is_empty());
        let src_and_range = match (&mapped, err.template_source(), err.range()) {
            (Some((orig, map)), Some(_), Some(range)) => Some((
                orig.as_str(),
                map.original(range.start),
                map.original(range.end),
            )),
            (_, Some(src), Some(range)) => Some((src, range.start, range.end)),
            _ => None,
        };
        let mut out = RenderError::new(file, message);
        let src_only = mapped
            .as_ref()
            .map(|(orig, _)| orig.as_str())
            .or(err.template_source());
        match (src_only, src_and_range) {
            (_, Some((src, start, end))) => out = out.at(src, start, end),
            (Some(src), None) => {
                if let Some(line) = err.line() {
                    let start = nth_line_offset(src, line);
                    out = out.at(src, start, start);
                    out.column = None;
                    out.span = 0;
                }
            }
            _ => out.line = err.line(),
        }
        out
    }

    /// `file:line:col` (or `file:line`, or `file`).
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }

    /// The source line and a caret under the failing part, scrubbed; `None` without a source.
    pub fn excerpt(&self) -> Option<String> {
        let line = self.source_line.as_ref()?;
        let no = self.line?.to_string();
        let pad = " ".repeat(no.len());
        let shown: String = line.chars().take(200).collect();
        let mut out = format!("{pad} |\n{no} | {shown}\n");
        if let Some(col) = self.column {
            let lead: String = line
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let lead: String = lead.chars().take(200).collect();
            out.push_str(&format!(
                "{pad} | {lead}{}\n",
                "^".repeat(self.span.clamp(1, 200))
            ));
        }
        Some(redact::scrub(&out).into_owned())
    }

    /// The one-line form with its exit code (3 unless a secret backend said otherwise).
    pub fn to_failure(&self) -> Failure {
        Failure::new(self.code, self.to_string())
    }
}

fn nth_line_offset(src: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    src.match_indices('\n')
        .nth(line - 2)
        .map(|(i, _)| i + 1)
        .unwrap_or(src.len())
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = format!("{}: {}", self.location(), self.message);
        f.write_str(&redact::scrub(&line))
    }
}

impl std::error::Error for RenderError {}

impl From<RenderError> for Failure {
    fn from(e: RenderError) -> Failure {
        e.to_failure()
    }
}

/// The process environment as a template value (`env.HOME`); non-UTF-8 variables are skipped.
pub fn env_value() -> Value {
    let map: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    Value::from(map)
}

/// Whether `value` is a map (for merging data into the top level).
pub fn is_map(value: &Value) -> bool {
    value.kind() == ValueKind::Map
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn engine() -> Engine {
        Engine::new(Options::default()).unwrap()
    }

    #[test]
    fn undefined_print_fails_with_name_and_location() {
        let e = engine()
            .render_str(
                "cfg.ini",
                "a={{ a }}\nhost = {{ hostx }}\n",
                context! { a => 1 },
            )
            .unwrap_err();
        assert_eq!(e.location(), "cfg.ini:2:11");
        assert!(e.message.contains("hostx"), "{}", e.message);
        let ex = e.excerpt().unwrap();
        assert!(ex.contains("2 | host = {{ hostx }}"), "{ex}");
        assert!(ex.contains("  |           ^^^^^"), "{ex}");
    }

    #[test]
    fn defined_tests_and_default_work() {
        let out = engine()
            .render_str(
                "t",
                "{% if x is defined %}x{% endif %}{% if y %}y{% endif %}{{ z | default('dz') }}",
                context! {},
            )
            .unwrap();
        assert_eq!(out.text, "dz");
        let strict = Engine::new(Options {
            undefined: Undefined::Strict,
            ..Default::default()
        })
        .unwrap();
        assert!(
            strict
                .render_str("t", "{% if y %}y{% endif %}", context! {})
                .is_err()
        );
        assert_eq!(
            strict
                .render_str(
                    "t",
                    "{% if y is defined %}y{% endif %}{{ z|default(1) }}",
                    context! {}
                )
                .unwrap()
                .text,
            "1"
        );
    }

    #[test]
    fn no_auto_escape_and_trailing_newline_kept() {
        let out = engine()
            .render_str("x.html", "{{ v }}\n", context! { v => "<a&b>" })
            .unwrap();
        assert_eq!(out.text, "<a&b>\n");
    }

    #[test]
    fn filters() {
        let e = engine();
        let r = |s: &str| {
            e.render_str(
                "t",
                s,
                context! { m => context!{ a => 1, b => [1, 2] }, s => "hi" },
            )
            .unwrap()
            .text
        };
        assert_eq!(r("{{ s | b64encode }}"), "aGk=");
        assert_eq!(r("{{ 'aGk=' | b64decode }}"), "hi");
        assert_eq!(
            r("{{ s | sha256 }}"),
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
        );
        assert_eq!(r("{{ m | tojson }}"), r#"{"a": 1, "b": [1, 2]}"#);
        assert_eq!(r("{{ m | to_json }}"), r#"{"a": 1, "b": [1, 2]}"#);
        assert_eq!(r("{{ m | toyaml }}"), "a: 1\nb:\n- 1\n- 2\n");
        assert_eq!(r("{{ s | required }}"), "hi");
        assert_eq!(r("{{ 'a\nb' | indent(2) }}"), "a\n  b");
        assert_eq!(r("{{ 'a\nb\n' | indent(4) }}"), "a\n    b\n");
        assert_eq!(r("{{ m.items() | list | length }}"), "2");
        assert_eq!(r("{{ s.upper() }}"), "HI");
        assert_eq!(r("{{ \"it's\" | quote }}"), r#"'it'"'"'s'"#);
        assert_eq!(r("{{ 'safe-word' | quote }}"), "safe-word");
        let err = e
            .render_str("t", "{{ missing | required('set MISSING') }}", context! {})
            .unwrap_err();
        assert!(err.message.contains("set MISSING"), "{}", err.message);
    }

    #[test]
    fn custom_delimiters() {
        let e = Engine::new(Options {
            delimiters: Delimiters::parse("[[ ]]").unwrap(),
            ..Default::default()
        })
        .unwrap();
        let out = e
            .render_str(
                "t",
                "{{ helm }} [[ v ]][% if v %]![% endif %][# c #]",
                context! { v => 1 },
            )
            .unwrap();
        assert_eq!(out.text, "{{ helm }} 1!");
        assert!(Delimiters::parse("[").is_err());
        assert!(
            Delimiters::parse("<% %>")
                .unwrap_err()
                .contains("give all six")
        );
        let six = Delimiters::parse("<% %> {% %} {# #}").unwrap();
        assert_eq!(six.block, ("{%".to_string(), "%}".to_string()));
    }

    #[test]
    fn secrets_mark_output_and_are_scrubbed_from_errors() {
        let src: Arc<dyn SecretSource> = Arc::new(|r: &str| {
            if r == "ref+env://PW" {
                Ok("canary-Jx81-secret".to_string())
            } else {
                Err(format!("{r}: not found"))
            }
        });
        let e = Engine::new(Options {
            secrets: Some(src),
            ..Default::default()
        })
        .unwrap();
        let out = e
            .render_str("t", "pw={{ secret('ref+env://PW') }}", context! {})
            .unwrap();
        assert_eq!(out.text, "pw=canary-Jx81-secret");
        assert!(out.contains_secret);
        let plain = e.render_str("t", "x", context! {}).unwrap();
        assert!(!plain.contains_secret);
        let err = e
            .render_str(
                "t",
                "{% set p = secret('ref+env://PW') %}{% include p %}",
                context! {},
            )
            .unwrap_err();
        assert!(!err.to_string().contains("canary-Jx81"), "{err}");
        let err = e
            .render_str("t", "{{ secret('ref+env://NOPE') }}", context! {})
            .unwrap_err();
        assert!(err.message.contains("not found"), "{err}");
        assert_eq!(err.to_failure().code, Code::INVALID_INPUT);

        struct Denied;
        impl SecretSource for Denied {
            fn resolve(&self, _: &str) -> Result<String, String> {
                Err("permission denied".into())
            }
            fn resolve_with_code(&self, r: &str) -> Result<String, Failure> {
                Err(Failure::credentials(format!("{r}: token rejected")))
            }
        }
        let e = Engine::new(Options {
            secrets: Some(Arc::new(Denied)),
            ..Default::default()
        })
        .unwrap();
        let err = e
            .render_str("t", "x\n{{ secret('ref+vault://a#/b') }}", context! {})
            .unwrap_err();
        assert_eq!(err.to_failure().code, Code::CREDENTIALS);
        assert!(err.to_string().contains("token rejected"), "{err}");
        let ok = e.render_str("t", "fine", context! {}).unwrap();
        assert_eq!(ok.text, "fine");
    }

    #[test]
    fn syntax_errors_have_locations() {
        let e = engine()
            .render_str("t.j2", "ok\n{% for x in %}\n", context! {})
            .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.starts_with("syntax error"), "{}", e.message);
        assert!(e.excerpt().unwrap().contains("{% for x in %}"));
    }

    #[test]
    fn engine_is_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Engine>();
        shareable::<RenderError>();
    }

    #[test]
    fn relative_joins() {
        assert_eq!(join_relative("b.j2", "dir/a.j2"), "dir/b.j2");
        assert_eq!(join_relative("../c.j2", "dir/sub/a.j2"), "dir/c.j2");
        assert_eq!(join_relative("/abs/x", "dir/a.j2"), "/abs/x");
        assert_eq!(join_relative("x", "a.j2"), "x");
    }
}
