//! End-to-end tests of `initbox render-config`: golden files for both engines, compatibility
//! with Python's jinja2 and GNU envsubst (the real tools, installed by
//! tests/setup/20-render-config.sh), errors, all-or-nothing writes, kills, secrets.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::files::{Scratch, assert_no_temp_files, corpus};
use common::{Run, initbox, run};

const LIMIT: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render-config")
}

fn rc() -> Command {
    let mut c = initbox();
    c.arg("render-config");
    c
}

fn go(cmd: &mut Command) -> Run {
    run(cmd, LIMIT)
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn golden_jinja_cmd(out: &Path) -> Command {
    let f = fixtures().join("golden/jinja");
    let mut c = rc();
    c.arg(f.join("app.yaml.j2"))
        .arg(out)
        .arg("--data")
        .arg(format!("app={}", f.join("app.json").display()))
        .arg("--data")
        .arg(format!("db={}", f.join("db.yaml").display()))
        .arg("--data")
        .arg(f.join("limits.toml"))
        .arg("--data")
        .arg(format!("extra={}", f.join("extra.env").display()))
        .args(["--set", "region=eu-west-1"])
        .env("RC_TEST_HOME", "/srv/home");
    c
}

#[test]
fn golden_jinja_file() {
    let dir = Scratch::new();
    let out = dir.path().join("conf/app.yaml");
    let r = go(&mut golden_jinja_cmd(&out));
    assert_eq!(r.code(), 0, "{}", r.all());
    let expected = fs::read_to_string(fixtures().join("golden/jinja/expected.yaml")).unwrap();
    assert_eq!(fs::read_to_string(&out).unwrap(), expected);
    assert_eq!(mode_of(&out), 0o644);
    assert!(r.stderr.contains("rendered 1 file"), "{}", r.stderr);
    assert_no_temp_files(dir.path());
}

#[test]
fn golden_jinja_to_stdout_with_env_fallbacks() {
    let f = fixtures().join("golden/jinja");
    let r = go(rc()
        .env("INITBOX_RENDER_SOURCE", f.join("app.yaml.j2"))
        .env(
            "INITBOX_RENDER_DATA",
            format!(
                "app={},db={},{},extra={}",
                f.join("app.json").display(),
                f.join("db.yaml").display(),
                f.join("limits.toml").display(),
                f.join("extra.env").display()
            ),
        )
        .env("INITBOX_RENDER_SET", "region=eu-west-1")
        .env("RC_TEST_HOME", "/srv/home"));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        r.stdout,
        fs::read_to_string(f.join("expected.yaml")).unwrap()
    );
}

#[test]
fn golden_envsubst_file() {
    let f = fixtures().join("golden/envsubst");
    let dir = Scratch::new();
    let out = dir.path().join("nginx.conf");
    let r = go(rc()
        .args(["--engine", "envsubst"])
        .arg(f.join("nginx.conf.template"))
        .arg(&out)
        .env("SERVER_NAME", "example.test")
        .env("UPSTREAM_HOST", "api.internal")
        .env("UPSTREAM_PORT", "9000")
        .env("MODE", "blue")
        .env("EMPTY", "")
        .env_remove("PORT")
        .env_remove("ROOT"));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        fs::read_to_string(f.join("expected.conf")).unwrap()
    );
}

fn python_jinja2(dir: &Path, name: &str, data: &Path, trim: bool) -> String {
    let script = "import sys, json, jinja2\n\
        d, name, data, trim = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1'\n\
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(d), undefined=jinja2.StrictUndefined,\n\
            keep_trailing_newline=True, trim_blocks=trim, lstrip_blocks=trim,\n\
            extensions=['jinja2.ext.loopcontrols'])\n\
        sys.stdout.write(env.get_template(name).render(**json.load(open(data))))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(name)
        .arg(data)
        .arg(if trim { "1" } else { "0" })
        .output()
        .expect("python3 runs (bash tests/run-all.sh installs it)");
    assert!(
        out.status.success(),
        "python jinja2 failed on {name} (is jinja2 installed? tests/setup/20-render-config.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn jinja2_compatibility_corpus() {
    let dir = fixtures().join("compat/jinja");
    let data = dir.join("data.json");
    let names = corpus(&dir, ".j2");
    assert!(names.len() >= 8, "corpus: {names:?}");
    for name in names {
        let trim = name.contains("trim");
        let expected = python_jinja2(&dir, &name, &data, trim);
        let mut cmd = rc();
        cmd.arg(dir.join(&name)).arg("--data").arg(&data);
        if trim {
            cmd.args(["--trim-blocks", "--lstrip-blocks"]);
        }
        let r = go(&mut cmd);
        assert_eq!(r.code(), 0, "{name}: {}", r.all());
        assert_eq!(r.stdout, expected, "{name} differs from Python's jinja2");
    }
}

fn compat_env(cmd: &mut Command) -> &mut Command {
    for (k, v) in [
        ("APP_USER", "svc"),
        ("APP_HOME", "/srv/app"),
        ("APP_USER_X", "other"),
        ("DB_USER", "app"),
        ("DB_PASS", "pa ss"),
        ("DB_HOST", "db.internal"),
        ("DB_PORT", "5432"),
        ("EMPTY", ""),
        ("HOME", "/root-home"),
    ] {
        cmd.env(k, v);
    }
    cmd
}

fn gnu_envsubst(input: &Path, shell_format: Option<&str>) -> String {
    let mut cmd = Command::new("envsubst");
    compat_env(&mut cmd);
    if let Some(f) = shell_format {
        cmd.arg(f);
    }
    let out = cmd
        .stdin(fs::File::open(input).unwrap())
        .output()
        .expect("GNU envsubst runs (Debian gettext-base, tests/setup/20-render-config.sh)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn envsubst_matches_gnu_envsubst_where_syntax_overlaps() {
    let dir = fixtures().join("compat/envsubst");
    for name in ["01-basic.txt", "02-edges.txt"] {
        let expected = gnu_envsubst(&dir.join(name), None);
        let r = go(compat_env(
            rc().args(["--engine", "envsubst"]).arg(dir.join(name)),
        ));
        assert_eq!(r.code(), 0, "{name}: {}", r.all());
        assert_eq!(r.stdout, expected, "{name} differs from GNU envsubst");
    }
    // SHELL-FORMAT and --allow: only the listed variables change.
    let input = dir.join("03-shell-format.txt");
    let expected = gnu_envsubst(&input, Some("$APP_USER ${DB_HOST}"));
    for allow in ["$APP_USER ${DB_HOST}", "APP_USER,DB_HOST"] {
        let r = go(compat_env(
            rc().args(["--engine", "envsubst", "--allow", allow])
                .arg(&input),
        ));
        assert_eq!(r.code(), 0, "{}", r.all());
        assert_eq!(r.stdout, expected, "--allow {allow}");
    }
}

/// An error run: exit 3, the needles in stderr, no panic, no output file, no temp file.
fn assert_input_error(r: &Run, out: &Path, needles: &[&str]) {
    assert_eq!(r.code(), 3, "exit code; output: {}", r.all());
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "stderr should contain {n:?}: {}",
            r.stderr
        );
    }
    assert!(!r.all().contains("panicked"), "{}", r.all());
    assert!(
        !r.all().contains("Referenced variables"),
        "minijinja's debug dump must never show: {}",
        r.all()
    );
    assert!(!out.exists(), "{} must not be written", out.display());
    if let Some(dir) = out.parent().filter(|d| d.exists()) {
        assert_no_temp_files(dir);
    }
    // The failure itself is one log line ending the output.
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("ERROR") && last.contains("code=3"), "{last}");
}

#[test]
fn template_and_data_errors_exit_3_and_write_nothing() {
    let dir = Scratch::new();
    let d = dir.path();
    let w = |name: &str, text: &str| dir.write(name, text);
    let out = d.join("out/result.conf");
    let ok = w("ok.j2", "x={{ x | default(1) }}\n");

    // Undefined variable: location, source line, caret, the name.
    let t = w("undef.j2", "a = 1\nhost = {{ db.hostx }}\n");
    w("db.json", "{\"host\": \"h\"}");
    let r = go(rc()
        .arg(&t)
        .arg(&out)
        .arg("--data")
        .arg(format!("db={}", d.join("db.json").display())));
    assert_input_error(
        &r,
        &out,
        &[
            "undef.j2:2:11",
            "hostx",
            "2 | host = {{ db.hostx }}",
            "^^^^^^^^\n",
        ],
    );

    // Syntax error.
    let t = w("syntax.j2", "ok\n{% for x in %}\n{% endfor %}\n");
    let r = go(rc().arg(&t).arg(&out));
    assert_input_error(&r, &out, &["syntax.j2:2:", "syntax error"]);

    // Missing include.
    let t = w("inc.j2", "a\n{% include 'parts/nope.j2' %}\n");
    let r = go(rc().arg(&t).arg(&out));
    assert_input_error(
        &r,
        &out,
        &["inc.j2:2:4", "template not found", "parts/nope.j2"],
    );

    // Unreadable data files: missing, a directory.
    let r = go(rc()
        .arg(&ok)
        .arg(&out)
        .args(["--data", "v=/nonexistent/values.yaml"]));
    assert_input_error(
        &r,
        &out,
        &["data file /nonexistent/values.yaml", "no such file"],
    );
    fs::create_dir(d.join("dir.json")).unwrap();
    let r = go(rc()
        .arg(&ok)
        .arg(&out)
        .arg("--data")
        .arg(format!("v={}", d.join("dir.json").display())));
    assert_input_error(&r, &out, &["dir.json", "cannot read"]);

    // Bad YAML, JSON, TOML, each with a location.
    let bad = w("bad.yaml", "a: 1\nb: [unclosed\nc: 2\n");
    let r = go(rc()
        .arg(&ok)
        .arg(&out)
        .arg("--data")
        .arg(format!("v={}", bad.display())));
    assert_input_error(&r, &out, &["bad.yaml:", "invalid YAML"]);
    let bad = w("bad.json", "{\"a\": 1,}");
    let r = go(rc()
        .arg(&ok)
        .arg(&out)
        .arg("--data")
        .arg(format!("v={}", bad.display())));
    assert_input_error(&r, &out, &["bad.json:1:", "invalid JSON"]);
    let bad = w("bad.toml", "[a]\nb = \n");
    let r = go(rc()
        .arg(&ok)
        .arg(&out)
        .arg("--data")
        .arg(format!("v={}", bad.display())));
    assert_input_error(&r, &out, &["bad.toml:2:", "invalid TOML"]);

    // envsubst: unset variables, all named; an unterminated ${.
    let t = w(
        "e.tmpl",
        "a=$RC_UNSET_A\nb=${RC_UNSET_B}\nc=${RC_OK:-fine}\n",
    );
    let r = go(rc().args(["--engine", "envsubst"]).arg(&t).arg(&out));
    assert_input_error(
        &r,
        &out,
        &[
            "e.tmpl:1:3",
            "RC_UNSET_A is not set",
            "also not set: RC_UNSET_B",
        ],
    );
    let t = w("u.tmpl", "x=${RC_A\n");
    let r = go(rc().args(["--engine", "envsubst"]).arg(&t).arg(&out));
    assert_input_error(&r, &out, &["u.tmpl:1:3", "unterminated"]);
    let t = w("q.tmpl", "x=${RC_UNSET_Q:?set it to the queue name}\n");
    let r = go(rc().args(["--engine", "envsubst"]).arg(&t).arg(&out));
    assert_input_error(
        &r,
        &out,
        &[
            "q.tmpl:1:3",
            "RC_UNSET_Q is not set: set it to the queue name",
        ],
    );

    // `required` with a message.
    let t = w("req.j2", "{{ token | required('set --set token=...') }}\n");
    let r = go(rc().arg(&t).arg(&out));
    assert_input_error(&r, &out, &["req.j2:1:", "set --set token=..."]);

    // Strict mode refuses `if undefined`; the default accepts it.
    let t = w(
        "if.j2",
        "{% if flag %}on{% endif %}{% if flag is defined %}!{% endif %}\n",
    );
    let r = go(rc().arg(&t));
    assert_eq!((r.code(), r.stdout.as_str()), (0, "\n"), "{}", r.all());
    let r = go(rc().args(["--undefined", "strict"]).arg(&t).arg(&out));
    assert_input_error(&r, &out, &["if.j2:1:"]);
}

#[test]
fn an_error_inside_a_multibyte_character_is_exit_3_not_a_panic() {
    // The engine reports a byte offset inside `é`; the excerpt must cut at character boundaries.
    let dir = Scratch::new();
    for (name, text, line) in [
        ("t.j2", "{{ x é", 1),
        ("t2.j2", "a\n{{ x é", 2),
        ("t3.j2", "{{ é", 1),
    ] {
        let t = dir.path().join(name);
        fs::write(&t, text).unwrap();
        let r = go(rc().arg(&t).arg("-"));
        assert_eq!(r.code(), 3, "{name}: {}", r.all());
        assert!(!r.all().contains("panicked"), "{name}: {}", r.all());
        assert!(!r.all().contains("internal error"), "{name}: {}", r.all());
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{name}: {}", r.stderr);
        assert!(
            errors[0].contains(&format!("{name}:{line}:")) && errors[0].contains("code=3"),
            "{name}: {}",
            errors[0]
        );
        assert!(
            r.stdout.is_empty(),
            "{name}: nothing rendered: {}",
            r.stdout
        );
    }
}

#[test]
fn a_failed_render_in_a_tree_of_20_leaves_all_20_old_files_untouched() {
    let dir = Scratch::new();
    let src = dir.path().join("templates");
    let out = dir.path().join("config");
    fs::create_dir_all(src.join("nested")).unwrap();
    fs::create_dir_all(out.join("nested")).unwrap();
    let mut before = HashMap::new();
    for i in 0..20 {
        let rel = if i % 2 == 0 {
            format!("file{i:02}.conf")
        } else {
            format!("nested/file{i:02}.conf")
        };
        let body = if i == 13 {
            "value={{ missing_in_file_13 }}\n".to_string()
        } else {
            format!("value={{{{ env.RC_TREE_VALUE }}}}-{i}\n")
        };
        fs::write(src.join(format!("{rel}.j2")), body).unwrap();
        let old = out.join(&rel);
        fs::write(&old, format!("old {i}\n")).unwrap();
        let m = fs::metadata(&old).unwrap();
        before.insert(old, (m.ino(), m.mtime_nsec(), format!("old {i}\n")));
    }
    let r = go(rc().arg(&src).arg(&out).env("RC_TREE_VALUE", "new"));
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("file13.conf.j2:1:10"), "{}", r.stderr);
    assert!(r.stderr.contains("missing_in_file_13"), "{}", r.stderr);
    for (path, (ino, mtime, content)) in &before {
        let m = fs::metadata(path).unwrap();
        assert_eq!(
            fs::read_to_string(path).unwrap(),
            *content,
            "{}",
            path.display()
        );
        assert_eq!(
            (m.ino(), m.mtime_nsec()),
            (*ino, *mtime),
            "{}",
            path.display()
        );
    }
    assert_no_temp_files(&out);

    // Fixed, the same tree replaces all 20.
    fs::write(src.join("nested/file13.conf.j2"), "value=fixed\n").unwrap();
    let r = go(rc().arg(&src).arg(&out).env("RC_TREE_VALUE", "new"));
    assert_eq!(r.code(), 0, "{}", r.all());
    for i in 0..20 {
        let rel = if i % 2 == 0 {
            format!("file{i:02}.conf")
        } else {
            format!("nested/file{i:02}.conf")
        };
        let want = if i == 13 {
            "value=fixed\n".to_string()
        } else {
            format!("value=new-{i}\n")
        };
        assert_eq!(fs::read_to_string(out.join(&rel)).unwrap(), want);
    }
    assert!(r.stderr.contains("rendered 20 files"), "{}", r.stderr);
}

#[test]
fn tree_mode_templated_names_suffixes_excludes_and_modes() {
    let dir = Scratch::new();
    let src = dir.path().join("t");
    let out = dir.path().join("o");
    fs::create_dir_all(src.join("_partials")).unwrap();
    fs::create_dir_all(src.join("{{ app }}.d")).unwrap();
    fs::write(src.join("_partials/head.j2"), "# {{ app }} config").unwrap();
    fs::write(
        src.join("main.conf.j2"),
        "{% include '_partials/head.j2' %}\nport={{ port }}\n",
    )
    .unwrap();
    fs::write(
        src.join("{{ app }}.d/{{ app }}-extra.conf.tmpl"),
        "extra for {{ app }}\n",
    )
    .unwrap();
    fs::write(src.join("entry.sh.j2"), "#!/bin/sh\nexec {{ app }}\n").unwrap();
    fs::set_permissions(src.join("entry.sh.j2"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(src.join("README.md"), "docs, not rendered").unwrap();
    let r = go(rc()
        .arg(&src)
        .arg(&out)
        .args(["--set", "app=shop", "--set", "port=8080"])
        .args(["--exclude", "_partials/**", "--exclude", "*.md"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        fs::read_to_string(out.join("main.conf")).unwrap(),
        "# shop config\nport=8080\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("shop.d/shop-extra.conf")).unwrap(),
        "extra for shop\n"
    );
    assert_eq!(mode_of(&out.join("entry.sh")), 0o755);
    assert_eq!(mode_of(&out.join("main.conf")), 0o644);
    assert!(!out.join("_partials").exists());
    assert!(!out.join("README.md").exists());

    // --mode and --owner apply to every file (root in CI: chown to an arbitrary id works).
    let out2 = dir.path().join("o2");
    let mut cmd = rc();
    cmd.arg(&src)
        .arg(&out2)
        .args([
            "--set",
            "app=shop",
            "--set",
            "port=1",
            "--exclude",
            "_partials/**,*.md",
        ])
        .args(["--mode", "0640"]);
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        cmd.args(["--owner", "4242:4343"]);
    }
    let r = go(&mut cmd);
    assert_eq!(r.code(), 0, "{}", r.all());
    let m = fs::metadata(out2.join("shop.d/shop-extra.conf")).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o640);
    if is_root {
        assert_eq!((m.uid(), m.gid()), (4242, 4343));
        let dm = fs::metadata(out2.join("shop.d")).unwrap();
        assert_eq!((dm.uid(), dm.gid()), (4242, 4343));
    }

    // A file name rendering to something that is not a name is an error.
    fs::write(src.join("{{ slash }}.conf.j2"), "x\n").unwrap();
    let out3 = dir.path().join("o3");
    let r = go(rc()
        .arg(&src)
        .arg(&out3)
        .args(["--set", "app=shop", "--set", "port=1", "--set", "slash=a/b"])
        .args(["--exclude", "_partials/**,*.md"]));
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("not a file name"), "{}", r.stderr);
    assert!(!out3.exists() || fs::read_dir(&out3).unwrap().count() == 0);
}

#[test]
fn kill_during_the_write_leaves_no_partial_file() {
    let dir = Scratch::new();
    let t = dir.path().join("big.j2");
    // ~24 MB of output from a small loop: rendering and writing take long enough to be hit.
    fs::write(
        &t,
        "{% for a in range(400) %}{% for b in range(1000) %}line {{ a * 1000 + b }} {{ pad }}\n{% endfor %}{% endfor %}",
    )
    .unwrap();
    let pad = "x".repeat(48);
    let out = dir.path().join("out/big.conf");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    fs::write(&out, "old\n").unwrap();
    let full: String = (0..400000).map(|i| format!("line {i} {pad}\n")).collect();
    let mut killed_mid_run = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 160, 200, 300, 400, 600] {
        let mut child = rc()
            .arg(&t)
            .arg(&out)
            .args(["--set", &format!("pad={pad}"), "--max-input-size", "64M"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no cleanup code runs
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_mid_run += 1;
        }
        let content = fs::read(&out).unwrap();
        let ok_old = content == b"old\n";
        let ok_new = content == full.as_bytes();
        assert!(
            ok_old || ok_new,
            "partial file after kill at {delay_ms} ms: {} bytes",
            content.len()
        );
    }
    assert!(killed_mid_run > 0, "no run was killed while working");
    // A complete run after all that produces the whole file.
    // (24 MB is more than the default output limit of 16 MiB.)
    let r = go(rc().arg(&t).arg(&out).args([
        "--set",
        &format!("pad={pad}"),
        "--max-input-size",
        "64M",
    ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(fs::read(&out).unwrap(), full.as_bytes());
}

const CANARY: &str = "canary-S3cr3t-9f2e1d";

#[test]
fn canary_secret_values_never_appear_in_errors() {
    let dir = Scratch::new();
    let d = dir.path();
    let secret_file = dir.write(
        "db.json",
        format!("{{\"password\": \"{CANARY}\", \"user\": \"app\"}}"),
    );
    let secret_ref = format!("ref+file://{}#/password", secret_file.display());
    let out = d.join("out/app.conf");
    let w = |name: &str, text: String| dir.write(name, text);
    let mut outputs = Vec::new();

    // The secret is used, then an undefined variable fails the render.
    let t = w(
        "a.j2",
        format!("pw={{{{ secret('{secret_ref}') }}}}\nx={{{{ nope }}}}\n"),
    );
    outputs.push(go(rc().arg(&t).arg(&out)));
    // The secret as an include name.
    let t = w("b.j2", format!("{{% include secret('{secret_ref}') %}}\n"));
    outputs.push(go(rc().arg(&t).arg(&out)));
    // The secret as an int conversion / attribute error.
    let t = w(
        "c.j2",
        format!("{{{{ secret('{secret_ref}') | int + {{}} }}}}\n"),
    );
    outputs.push(go(rc().arg(&t).arg(&out)));
    let t = w(
        "c2.j2",
        format!("{{{{ secret('{secret_ref}').nope.deeper }}}}\n"),
    );
    outputs.push(go(rc().arg(&t).arg(&out)));
    // From the environment via ref+env, then a failing --check-cmd that prints the file.
    let t = w(
        "d.j2",
        "pw={{ secret('ref+env://RC_CANARY') }}\n".to_string(),
    );
    outputs.push(go(rc()
        .arg(&t)
        .arg(&out)
        .env("RC_CANARY", CANARY)
        .args(["--check-cmd", "sh -c 'cat \"$0\"; exit 1' {}"])));
    // --secret-data file with an error in another template value.
    let t = w(
        "e.j2",
        "u={{ db.user }} p={{ db.password }} {{ db.password.nope.x }}\n".to_string(),
    );
    outputs.push(go(rc()
        .arg(&t)
        .arg(&out)
        .arg("--secret-data")
        .arg(format!("db={}", secret_file.display()))));
    // A secret-data YAML file that does not parse, with the secret on the bad line.
    let bad = w("bad.yaml", format!("password: [{CANARY}\nuser: app\n"));
    let t = w("f.j2", "x\n".to_string());
    outputs.push(go(rc()
        .arg(&t)
        .arg(&out)
        .arg("--secret-data")
        .arg(format!("db={}", bad.display()))));
    // A dotenv secret-data file with a bad line.
    let bad = w("bad.env", format!("GOOD=1\nBAD LINE {CANARY}\n"));
    outputs.push(go(rc()
        .arg(&t)
        .arg(&out)
        .arg("--secret-data")
        .arg(format!("db={}", bad.display()))));
    // JSON log format: the same scrubbing.
    let t = w("g.j2", format!("{{{{ secret('{secret_ref}') ~ nope }}}}\n"));
    outputs.push(go(rc().args(["--log-format", "json"]).arg(&t).arg(&out)));
    // Lint prints variables and errors, never values.
    outputs.push(go(rc().arg("--lint").arg(d.join("a.j2"))));

    for (i, r) in outputs.iter().enumerate() {
        assert_ne!(r.code(), 0, "case {i} should fail: {}", r.all());
        assert!(
            !r.all().contains(CANARY),
            "case {i} leaked the secret: {}",
            r.all()
        );
        assert!(
            !r.all().contains("Referenced variables"),
            "case {i}: {}",
            r.all()
        );
        assert!(!out.exists(), "case {i} wrote {}", out.display());
    }
    assert_eq!(
        outputs[4].code(),
        1,
        "check-cmd rejection: {}",
        outputs[4].all()
    );
    assert!(
        outputs[4].all().contains("[REDACTED]"),
        "{}",
        outputs[4].all()
    );

    let plain = w("plain.j2", "x=1\n".to_string());
    // Into a directory, cp-style: the template suffix is dropped.
    let into = d.join("into");
    fs::create_dir(&into).unwrap();
    let r = go(rc().arg(&plain).arg(&into));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(fs::read_to_string(into.join("plain")).unwrap(), "x=1\n");

    // Success: files with a secret get 0400, the others 0644; --mode wins.
    let t = w("ok.j2", format!("pw={{{{ secret('{secret_ref}') }}}}\n"));
    let r = go(rc()
        .args(["-t", &format!("{}:{}", t.display(), out.display())])
        .args([
            "-t",
            &format!("{}:{}", plain.display(), d.join("out/plain.conf").display()),
        ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains(CANARY));
    assert_eq!(fs::read_to_string(&out).unwrap(), format!("pw={CANARY}\n"));
    assert_eq!(mode_of(&out), 0o400);
    assert_eq!(mode_of(&d.join("out/plain.conf")), 0o644);
    let r = go(rc().arg(&t).arg(&out).args(["--mode", "0440"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(mode_of(&out), 0o440);
    // --secret-data values taint the files that contain them.
    let t = w("sd.j2", "p={{ db.password }}\n".to_string());
    let out2 = d.join("out/sd.conf");
    let r = go(rc()
        .arg(&t)
        .arg(&out2)
        .arg("--secret-data")
        .arg(format!("db={}", secret_file.display())));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(mode_of(&out2), 0o400);
    // Also in envsubst mode (unnamed secret data: its top-level values are variables).
    let t = w("sd.tmpl", "p=$password\n".to_string());
    let out3 = d.join("out/sd.env");
    let r = go(rc()
        .args(["--engine", "envsubst"])
        .arg(&t)
        .arg(&out3)
        .arg("--secret-data")
        .arg(&secret_file));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(fs::read_to_string(&out3).unwrap(), format!("p={CANARY}\n"));
    assert_eq!(mode_of(&out3), 0o400);
}

#[test]
fn check_cmd_gates_the_install() {
    let dir = Scratch::new();
    let d = dir.path();
    let t = d.join("app.conf.j2");
    fs::write(&t, "listen {{ port }};\n").unwrap();
    let out = d.join("app.conf");
    fs::write(&out, "old\n").unwrap();
    // The check sees the staged file, not the destination.
    let r = go(rc().arg(&t).arg(&out).args([
        "--set",
        "port=80",
        "--check-cmd",
        "grep -q 'listen 80;' {}",
    ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(fs::read_to_string(&out).unwrap(), "listen 80;\n");
    // Rejected: exit 1, the validator's words shown, nothing replaced.
    let r = go(rc().arg(&t).arg(&out).args([
        "--set",
        "port=81",
        "--check-cmd",
        "sh -c 'echo \"bad config in $0\" >&2; exit 7' {}",
    ]));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("exit 7"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("bad config in {}", out.display())),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "listen 80;\n");
    assert_no_temp_files(d);
    // A check command that does not exist is a usage error.
    let r = go(rc().arg(&t).arg(&out).args([
        "--set",
        "port=1",
        "--check-cmd",
        "/nonexistent/validator {}",
    ]));
    assert_eq!(r.code(), 2, "{}", r.all());
    assert_eq!(fs::read_to_string(&out).unwrap(), "listen 80;\n");
}

#[test]
fn lint_lists_needed_and_missing_variables_and_writes_nothing() {
    let dir = Scratch::new();
    let d = dir.path();
    fs::write(
        d.join("a.j2"),
        "{{ db.host }}:{{ db.port }} {{ region }} {{ opt | default('x') }} {% for i in items %}{{ i }}{% endfor %}\n",
    )
    .unwrap();
    fs::write(d.join("vals.yaml"), "db:\n  host: h\nitems: [1]\n").unwrap();
    let r = go(rc()
        .arg("--lint")
        .arg(d.join("a.j2"))
        .arg("--data")
        .arg(d.join("vals.yaml")));
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stdout
            .contains("needs db.host, db.port, items, opt, region"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("missing db.port, opt, region"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("does not render"), "{}", r.stdout);
    // All set: exit 0.
    let r = go(rc()
        .arg("--lint")
        .arg(d.join("a.j2"))
        .arg("--data")
        .arg(d.join("vals.yaml"))
        .args(["--set", "db.port=1", "--set", "region=eu"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("a.j2: renders"), "{}", r.stdout);
    assert!(
        r.stdout.contains("a.j2: not set, defaulted opt\n"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("missing"), "{}", r.stdout);
    // envsubst lint separates required from defaulted.
    fs::write(d.join("e.tmpl"), "$RC_REQ ${RC_OPT:-x} ${RC_SET}\n").unwrap();
    let r = go(rc()
        .args(["--lint", "--engine", "envsubst"])
        .arg(d.join("e.tmpl"))
        .env("RC_SET", "1"));
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stdout.contains("missing RC_REQ\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not set, defaulted RC_OPT"),
        "{}",
        r.stdout
    );
    let entries: Vec<_> = fs::read_dir(d).unwrap().collect();
    assert_eq!(entries.len(), 3, "lint must not write");
}

#[test]
fn custom_delimiters_keep_helm_braces() {
    let dir = Scratch::new();
    let t = dir.write("chart.yaml", "image: {{ .Values.image }}\nname: [[ name ]][% if verbose is defined %] (verbose)[% endif %][# note #]\n");
    let r = go(rc()
        .arg(&t)
        .args(["--delimiters", "[[ ]]", "--set", "name=web"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "image: {{ .Values.image }}\nname: web\n");
    let r = go(rc().arg(&t).args(["--delimiters", "[["]));
    assert_eq!(r.code(), 2, "{}", r.all());
}

#[test]
fn a_destination_that_is_a_mount_point_is_written_in_place() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root for a private mount namespace (CI runs as root)");
    }
    let dir = Scratch::new();
    let d = dir.path();
    let t = d.join("t.j2");
    fs::write(&t, "value={{ v }}\n").unwrap();
    let backing = d.join("backing.conf");
    fs::write(&backing, "old\n").unwrap();
    let dest = d.join("dest.conf");
    fs::write(&dest, "").unwrap();
    // Inside a private mount namespace: bind `backing` over `dest` (like a subPath mount);
    // a rename over `dest` fails with EBUSY, so the file must be written in place.
    let script = format!(
        "mount --bind '{b}' '{dst}' && '{bin}' render-config '{t}' '{dst}' --set v=new && cat '{dst}'",
        b = backing.display(),
        dst = dest.display(),
        bin = env!("CARGO_BIN_EXE_initbox"),
        t = t.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("value=new"), "{text}");
    assert!(text.contains("in place"), "{text}");
    // The write went through the mount into the backing file.
    assert_eq!(fs::read_to_string(&backing).unwrap(), "value=new\n");
    assert_no_temp_files(d);
}

#[test]
fn usage_errors_exit_2() {
    let r = go(&mut rc());
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr.contains("no template given"), "{}", r.stderr);
    let r = go(rc().args(["--engine", "envsubst", "--delimiters", "[[ ]]", "x"]));
    assert_eq!(r.code(), 2, "{}", r.all());
    let r = go(rc().args(["--mode", "999", "x"]));
    assert_eq!(r.code(), 2, "{}", r.all());
    let r = go(rc().args([
        "--data",
        "v=x.ini",
        &format!("{}", fixtures().join("golden/jinja/macros.j2").display()),
    ]));
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr.contains("cannot tell the format"), "{}", r.stderr);
}

#[test]
fn check_cmd_output_is_kept_as_a_bounded_tail() {
    let dir = Scratch::new();
    let d = dir.path();
    let t = d.join("app.conf.j2");
    fs::write(&t, "x={{ x }}\n").unwrap();
    let out = d.join("app.conf");
    // 500 MB of output, then the validator's last words: under a 384 MiB address-space cap,
    // only a bounded tail may be kept.
    let mut c = rc();
    c.arg(&t).arg(&out).args([
        "--set",
        "x=1",
        "--check-cmd",
        "sh -c 'yes | head -c 500000000; echo; echo last words >&2; exit 3'",
    ]);
    common::cap_address_space(&mut c, 384 << 20);
    let r = run(&mut c, Duration::from_secs(60));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("(exit 3): last words"), "{}", r.stderr);
    assert!(!out.exists());
    // A validator that never stops talking nor exits: stopped at --check-timeout.
    let mut c = rc();
    c.arg(&t).arg(&out).args([
        "--set",
        "x=1",
        "--check-cmd",
        "yes",
        "--check-timeout",
        "2s",
    ]);
    common::cap_address_space(&mut c, 384 << 20);
    let r = run(&mut c, Duration::from_secs(30));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("no answer within 2s"), "{}", r.stderr);
    assert!(!out.exists());
}

/// Run the fidelity corpus's reference (Python's jinja2 with ansible-core's filter and test
/// plugins, tests/setup/21-template-ansible.sh) once over every template `names` in `dir`,
/// with `dir/data.json` as the data.
fn ansible_reference(dir: &Path, names: &[String]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(fixtures().join("fidelity/reference.py"))
        .arg(dir)
        .arg(dir.join("data.json"))
        .args(names)
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs (bash tests/run-all.sh installs it)");
    assert!(
        out.status.success(),
        "the jinja2 + ansible-core reference failed (installed? tests/setup/21-template-ansible.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference prints JSON")
}

/// Issue 14: ≥ 40 realistic templates (Ansible roles, entrypoints, j2cli examples) covering
/// every Jinja2 and Ansible filter and test initbox implements, byte-identical to Python's
/// jinja2 with ansible-core's filters (as Ansible's template module applies a `#jinja2:` line).
#[test]
fn ansible_fidelity_corpus_is_byte_identical_to_jinja2_with_ansible_core() {
    let dir = fixtures().join("fidelity");
    let names = corpus(&dir, ".j2");
    assert!(names.len() >= 40, "corpus has {} templates", names.len());
    let reference = ansible_reference(&dir, &names);
    let mut differ = Vec::new();
    for name in &names {
        let expected = reference[name]["ok"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: the reference refused it: {}", reference[name]));
        let r = go(rc()
            .arg(dir.join(name))
            .arg("-")
            .arg("--data")
            .arg(dir.join("data.json")));
        if r.code() != 0 || r.stdout != expected {
            differ.push(format!(
                "{name}: exit {}\n--- python\n{expected}\n--- initbox\n{}\n{}",
                r.code(),
                r.stdout,
                r.stderr
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} templates differ:\n{}",
        differ.len(),
        names.len(),
        differ.join("\n")
    );
}

/// Ansible's `bool` turns anything it does not know into False (with a deprecation warning in
/// 2.19): initbox refuses instead, and reads every word Ansible knows the same way.
#[test]
fn bool_refuses_what_ansible_would_silently_turn_into_false() {
    let tmp = Scratch::new();
    let t = tmp.write("t.j2", "{% for v in ['yes','No','ON','off','TRUE','false','1','0'] %}{{ v | bool }} {% endfor %}{{ 1 | bool }} {{ none | bool }}\n");
    let r = go(rc().arg(&t));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        r.stdout,
        "True False True False True False True False True False\n"
    );
    for word in ["y", "n", "enabled", "2"] {
        fs::write(&t, format!("flag={{{{ '{word}' | bool }}}}\n")).unwrap();
        let out = tmp.path().join("out.conf");
        let r = go(rc().arg(&t).arg(&out));
        assert_input_error(&r, &out, &["t.j2:1", "bool", "not a boolean"]);
    }
}

/// The official nginx image's templates: only variables that are set are substituted, so
/// nginx's own `$host` and `$uri` stay; the reference is GNU envsubst called exactly as the
/// image's 20-envsubst-on-templates.sh calls it (SHELL-FORMAT = the defined variables).
#[test]
fn envsubst_only_defined_matches_the_nginx_image() {
    let tmp = Scratch::new();
    let t = tmp.write("default.conf.template", "server {\n    listen ${NGINX_PORT};\n    server_name ${NGINX_HOST} $host;\n    \
         location / {\n        proxy_pass http://${BACKEND}:$BACKEND_PORT$uri;\n        \
         proxy_set_header X-Real-IP $remote_addr;\n        return 301 https://$host$request_uri;\n    }\n}\n");
    let vars = [
        ("NGINX_PORT", "8080"),
        ("NGINX_HOST", "example.com"),
        ("BACKEND", "api"),
        ("BACKEND_PORT", "9000"),
    ];
    let mut gnu = Command::new("sh");
    gnu.arg("-c")
        .arg(
            "defined_envs=$(printf '${%s} ' $(awk 'END { for (name in ENVIRON) { print name } }' </dev/null)); \
             envsubst \"$defined_envs\" < \"$1\"",
        )
        .arg("sh")
        .arg(&t);
    let mut ours = rc();
    ours.args(["--engine", "envsubst", "--only-defined"])
        .arg(&t);
    for (k, v) in vars {
        gnu.env(k, v);
        ours.env(k, v);
    }
    let expected = gnu.output().expect("GNU envsubst runs");
    assert!(expected.status.success());
    let expected = String::from_utf8(expected.stdout).unwrap();
    assert!(
        expected.contains("$host") && expected.contains("listen 8080;"),
        "{expected}"
    );
    let r = go(&mut ours);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, expected);
    // Strict by default: the same template without --only-defined names nginx's variables.
    let mut strict = rc();
    strict.args(["--engine", "envsubst"]).arg(&t);
    for (k, v) in vars {
        strict.env(k, v);
    }
    let r = go(&mut strict);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("host"), "{}", r.stderr);
    // `\$` is a literal dollar sign, whatever the mode; with --allow, only set names change.
    fs::write(
        &t,
        "price=\\$5 user=\\$USER_X ${APP_NAME} ${APP_UNSET} $OTHER\n",
    )
    .unwrap();
    let r = go(rc()
        .args(["--engine", "envsubst", "--only-defined", "--allow", "APP_*"])
        .arg(&t)
        .env("APP_NAME", "shop")
        .env("OTHER", "x"));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "price=$5 user=$USER_X shop ${APP_UNSET} $OTHER\n");
}

/// YAML data is YAML 1.2 (`no` is a string) unless --yaml-version 1.1 asks for Ansible's
/// reading (yes/no/on/off are booleans; quoted words and block scalars stay strings).
#[test]
fn yaml_data_is_1_2_with_1_1_booleans_on_request() {
    let tmp = Scratch::new();
    let data = tmp.write(
        "vars.yml",
        "enable_tls: yes\nlegacy: 'no'\nmodes: [on, off]\nnote: |\n  yes\n",
    );
    let t = tmp.write(
        "t.j2",
        "{{ enable_tls }} {{ legacy }} {{ modes }} {{ note | trim }} {{ enable_tls | bool }}\n",
    );
    let r = go(rc().arg(&t).arg("--data").arg(&data));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "yes no ['on', 'off'] yes True\n");
    let r = go(rc()
        .arg(&t)
        .arg("--data")
        .arg(&data)
        .args(["--yaml-version", "1.1"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "True no [True, False] yes True\n");
}

fn go_env(cmd: &mut Command) -> &mut Command {
    cmd.env("PORT", "8080")
        .env("HOST", "example.com")
        .env("MODE", "prod")
        .env("EMPTY", "")
        .env("HOSTS", "a.internal,b.internal,c.internal")
        .env("FEATURE", "true")
        .env_remove("UNSET_VAR_X")
}

/// Issue 14, item 7: ≥ 20 Go templates as dockerize and gomplate users write them; each
/// `.expected` file is the output Go's text/template with those tools' documented functions
/// gives (no Go toolchain here: the expectations follow the text/template documentation and
/// gomplate's/dockerize's function references).
#[test]
fn go_templates_render_as_text_template_with_gomplate_and_dockerize_functions() {
    let dir = fixtures().join("go");
    let names = corpus(&dir, ".tmpl");
    assert!(names.len() >= 20, "corpus has {} templates", names.len());
    for name in &names {
        let expected = fs::read_to_string(dir.join(name.replace(".tmpl", ".expected"))).unwrap();
        let r = go(go_env(
            rc().args(["--engine", "go"])
                .arg(dir.join(name))
                .arg("--data")
                .arg(dir.join("data.json")),
        ));
        assert_eq!(r.code(), 0, "{name}: {}", r.all());
        assert_eq!(r.stdout, expected, "{name}");
    }
}

/// Strict like gomplate (`missingkey=error`), dockerize's conventions on request, and a
/// template read in the wrong engine says so.
#[test]
fn go_templates_are_strict_and_wrong_engine_errors_suggest_the_other() {
    let tmp = Scratch::new();
    let t = tmp.path().join("app.conf.tmpl");
    let out = tmp.path().join("app.conf");
    fs::write(&t, "host={{ .Env.NOT_SET_ANYWHERE }}\n").unwrap();
    let r = go(go_env(rc().args(["--engine", "go"]).arg(&t).arg(&out)));
    assert_input_error(
        &r,
        &out,
        &["app.conf.tmpl:1", "NOT_SET_ANYWHERE", "Go template"],
    );
    // dockerize: a missing .Env key is empty, and `default VALUE DEFAULT`.
    fs::write(
        &t,
        "host={{ .Env.NOT_SET_ANYWHERE }} v={{ default .Env.NOT_SET_ANYWHERE \"0.1.2\" }} m={{ default .Env.MODE \"dev\" }}\n",
    )
    .unwrap();
    let r = go(go_env(
        rc().args(["--engine", "go", "--go-dialect", "dockerize"])
            .arg(&t),
    ));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "host= v=0.1.2 m=prod\n");
    // A Go template read as Jinja (the default engine) suggests --engine go.
    fs::write(&t, "{{ range split .Env.HOSTS \",\" }}{{ . }}{{ end }}\n").unwrap();
    let r = go(go_env(rc().arg(&t).arg(&out)));
    assert_input_error(&r, &out, &["Jinja", "--engine go"]);
    // A Jinja template read as Go suggests --engine jinja.
    fs::write(&t, "{% for h in hosts %}{{ h }}{% endfor %}\n").unwrap();
    let r = go(go_env(rc().args(["--engine", "go"]).arg(&t).arg(&out)));
    assert_input_error(&r, &out, &["--engine jinja"]);
}

/// Where jinja2 with ansible-core refuses a template, initbox refuses it too (exit 3, one
/// line naming the file, nothing written): bad `password_hash` salts and rounds, `%` with the
/// wrong arguments, `do` on an undefined name. The line and column are the user's own, although
/// minijinja reads `%` and `do` rewritten into calls.
#[test]
fn refusals_match_jinja2_with_ansible_core() {
    let dir = Scratch::new();
    fs::copy(
        fixtures().join("fidelity/data.json"),
        dir.path().join("data.json"),
    )
    .unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "salt-long.j2",
            "{{ 'pw' | password_hash('sha512', 'abcdefghijklmnopq') }}\n",
            "salt too large (sha512_crypt requires <= 16 chars)",
        ),
        (
            "salt-chars.j2",
            "x\n{{ 'pw' | password_hash('sha256', 'bad$salt', rounds=5000) }}\n",
            "invalid characters in sha256_crypt salt",
        ),
        (
            "rounds.j2",
            "{{ 'pw' | password_hash('sha512', 'salt', rounds=999) }}\n",
            "rounds (999)",
        ),
        (
            "algo.j2",
            "{{ 'pw' | password_hash('pbkdf2_sha256', 'salt') }}\n",
            "not in the list of supported",
        ),
        (
            "not-str.j2",
            "{{ app.replicas | password_hash('sha512', 'salt') }}\n",
            "must be a string",
        ),
        (
            "few.j2",
            "a\nb = {{ \"%s:%s\" % (db.host,) }}\n",
            "2:8: invalid operation: not enough arguments for format string",
        ),
        (
            "many.j2",
            "{% set x = \"%s\" % (1, 2) %}\n",
            "not all arguments converted during string formatting",
        ),
        (
            "kind.j2",
            "    {{ app.name ~ ('%d' % app.name) }}\n",
            "1:20: invalid operation: %d format: a real number is required, not str",
        ),
        (
            "char.j2",
            "{{ '%z' % 1 }}\n",
            "unsupported format character 'z' (0x7a) at index 1",
        ),
        ("undefined-arg.j2", "{{ '%s' % (nope,) }}\n", "undefined"),
        (
            "do-undefined.j2",
            "ok\n  {% do missing_role.users %}\n",
            "2:9: undefined value",
        ),
    ];
    let names: Vec<String> = cases
        .iter()
        .map(|(name, text, _)| {
            dir.write(name, text);
            name.to_string()
        })
        .collect();
    let reference = ansible_reference(dir.path(), &names);
    for (name, _, needle) in cases {
        assert!(
            reference[*name]["err"].is_string(),
            "{name}: the reference rendered it: {}",
            reference[*name]
        );
        let out = dir.path().join("out.conf");
        let r = go(rc()
            .arg(dir.path().join(name))
            .arg(&out)
            .arg("--data")
            .arg(dir.path().join("data.json")));
        assert_input_error(&r, &out, &[name, needle]);
    }
}

/// Without a salt, `password_hash` makes a random one as passlib does: two runs differ, and
/// passlib verifies both. md5_crypt is refused (Ansible accepts it): it is broken.
#[test]
fn password_hash_random_salts_verify_with_passlib_and_md5_is_refused() {
    let dir = Scratch::new();
    let t = dir.write(
        "t.j2",
        "{{ pw | password_hash('sha512', rounds=5000) }}\n{{ pw | password_hash('sha256') }}\n{{ pw | password_hash('bcrypt', rounds=4) }}\n",
    );
    let render = || {
        let r = go(rc().arg(&t).args(["--set", "pw=correct horse"]));
        assert_eq!(r.code(), 0, "{}", r.all());
        r.stdout
    };
    let (a, b) = (render(), render());
    assert_ne!(a, b, "random salts");
    for hashes in [a, b] {
        let check = Command::new("python3")
            .arg("-c")
            .arg(
                "import sys\nfrom passlib.hash import sha512_crypt, sha256_crypt, bcrypt\n\
                 h = sys.argv[1].split()\n\
                 assert h[0].startswith('$6$') and h[1].startswith('$5$rounds=535000$') and h[2].startswith('$2b$04$'), h\n\
                 print(sha512_crypt.verify('correct horse', h[0]), sha256_crypt.verify('correct horse', h[1]), bcrypt.verify('correct horse', h[2]))",
            )
            .arg(&hashes)
            .output()
            .expect("python3 with passlib (tests/setup/21-template-ansible.sh)");
        assert_eq!(
            String::from_utf8_lossy(&check.stdout),
            "True True True\n",
            "{hashes}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let t = dir.write("md5.j2", "{{ 'pw' | password_hash('md5', 'saltsalt') }}\n");
    let out = dir.path().join("md5.conf");
    let r = go(rc().arg(&t).arg(&out));
    assert_input_error(&r, &out, &["md5.j2:1:", "md5_crypt is not supported"]);
}
