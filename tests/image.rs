//! The container image, end to end: build the Dockerfile's final `FROM scratch` stage with
//! buildah (the prebuilt path: a static binary packaged by scripts/image-rootfs.sh), check its
//! configuration and size, then export its root filesystem and run applets inside it with
//! `chroot` as uid/gid 65532 and nothing else present: no shell, no libc, no /dev, no /proc.
//!
//! This file checks the image's contents file by file (an exported root filesystem, run with
//! chroot); tests/containers.rs runs the same Dockerfile's image under podman (runc), as pods
//! with `podman kube play` and as the compose example.
//! Needs root (chroot), buildah, podman and openssl: tests/setup/30-ship.sh installs them.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::static_bin::static_binary;
use common::{Run, pki, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NONROOT: &str = "65532:65532";
/// The goal is an image of at most 10 MiB as registries store and pull it (gzip-compressed
/// layer); uncompressed it must stay under 20 MiB (every applet: 12.5 MiB before the volume,
/// network and git applets; 17.7 MiB with them on 2026-12-01, git-checkout's pure-Rust git
/// alone 2.2 MiB; 0.8 MiB less since the static build packs its relative relocations,
/// DT_RELR: a 16.7 MiB binary; see bench/image.sh for the per-feature sizes and bench/lean.sh
/// for the before/after). A regression past either bound fails.
const MAX_PULL_BYTES: u64 = 10 * 1024 * 1024;
const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

/// buildah/podman with storage of their own, removed when the test ends.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("initbox-image-test-")
            .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
            .unwrap();
        Store { dir }
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--storage-driver")
            .arg("vfs");
        c
    }

    fn ok(&self, cmd: &mut Command, what: &str) -> String {
        let r = run(cmd, Duration::from_secs(300));
        assert_eq!(r.code(), 0, "{what} failed: {}", r.all());
        r.stdout
    }

    /// Build the Dockerfile's final stage from a context holding only Dockerfile + dist/rootfs.
    fn build(&self, tag: &str, binary: &Path, ca_bundle: &Path) -> String {
        let ctx = self.dir.path().join(format!("ctx-{tag}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::copy(Path::new(ROOT).join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
        let r = run(
            Command::new("bash")
                .arg(Path::new(ROOT).join("scripts/image-rootfs.sh"))
                .arg(binary)
                .arg(ctx.join("dist/rootfs"))
                .arg(ca_bundle),
            Duration::from_secs(60),
        );
        assert_eq!(r.code(), 0, "image-rootfs.sh: {}", r.all());
        let image = format!("localhost/initbox-test:{tag}");
        self.ok(
            self.tool("buildah")
                .args(["bud", "--quiet", "--build-arg", "BINARY_SOURCE=prebuilt"])
                .args(["--build-arg", "REVISION=test", "-t", &image, "-f"])
                .arg(ctx.join("Dockerfile"))
                .arg(&ctx),
            "buildah bud",
        );
        image
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(
            self.tool("podman").args(["image", "inspect", image]),
            "podman image inspect",
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// Copy the image's root filesystem out (buildah from + mount; vfs mounts are directories).
    fn export(&self, image: &str, dest: &Path) {
        let ctr = self
            .ok(self.tool("buildah").args(["from", image]), "buildah from")
            .trim()
            .to_string();
        let mnt = self
            .ok(self.tool("buildah").args(["mount", &ctr]), "buildah mount")
            .trim()
            .to_string();
        let r = run(
            Command::new("cp")
                .arg("-a")
                .arg(format!("{mnt}/."))
                .arg(dest),
            Duration::from_secs(60),
        );
        assert_eq!(r.code(), 0, "copy rootfs: {}", r.all());
        let _ = run(
            self.tool("buildah").args(["umount", &ctr]),
            Duration::from_secs(60),
        );
        let _ = run(
            self.tool("buildah").args(["rm", &ctr]),
            Duration::from_secs(60),
        );
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // buildah may leave mounts behind on a failure; storage is ours alone.
        let _ = Command::new("buildah")
            .arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs", "rm", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Run `argv` inside `root` as 65532:65532 with exactly `env`.
fn chroot(root: &Path, env: &[(String, String)], argv: &[&str]) -> Run {
    // Absolute: the cleared environment's PATH (the image's) must not be used to find chroot.
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils)");
    let mut c = Command::new(chroot);
    c.arg(format!("--userspec={NONROOT}"))
        .arg(root)
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    run(&mut c, Duration::from_secs(60))
}

fn image_env(config: &serde_json::Value) -> Vec<(String, String)> {
    config["Config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|e| {
            e.as_str()?
                .split_once('=')
                .map(|(k, v)| (k.into(), v.into()))
        })
        .collect()
}

/// Every path in `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

/// The applet is in the image and is not a placeholder (`(not built yet)` in its help).
fn has_applet(root: &Path, env: &[(String, String)], name: &str) -> bool {
    if root.join("bin").join(name).symlink_metadata().is_err() {
        return false;
    }
    let r = chroot(root, env, &["/initbox", name, "--help"]);
    if r.stdout.contains("(not built yet)") {
        eprintln!("{name} is a placeholder in this build: its image check is skipped");
        return false;
    }
    true
}

#[test]
fn the_scratch_image_runs_every_kind_of_step_as_nonroot() {
    let binary = static_binary();
    let store = Store::new();
    let work = store.dir.path().to_path_buf();
    let debian_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");

    // ---- the image as shipped: Debian's CA bundle ----------------------------------------
    let image = store.build("shipped", &binary, debian_bundle);
    let config = store.inspect(&image);
    assert_eq!(config["Config"]["User"], NONROOT, "{config}");
    assert_eq!(
        config["Config"]["Entrypoint"],
        serde_json::json!(["/initbox"])
    );
    let env = image_env(&config);
    assert!(
        env.iter()
            .any(|(k, v)| k == "SSL_CERT_FILE" && v == "/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    let labels = &config["Labels"];
    for key in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.source",
    ] {
        assert!(labels[key].is_string(), "label {key} missing: {labels}");
    }
    assert_eq!(labels["org.opencontainers.image.revision"], "test");
    let size = config["Size"].as_u64().expect("Size");
    assert!(
        size <= MAX_IMAGE_BYTES,
        "image is {size} bytes, over the {MAX_IMAGE_BYTES}-byte bound"
    );

    // ---- its root filesystem, and nothing else ----------------------------------------------
    let root = work.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    store.export(&image, &root);
    let applets: Vec<String> = {
        let r = run(
            Command::new(&binary).arg("--list").env_clear(),
            Duration::from_secs(10),
        );
        r.stdout.lines().map(str::to_string).collect()
    };
    let mut expected: Vec<String> = vec![
        "bin".into(),
        "etc".into(),
        "etc/group".into(),
        "etc/passwd".into(),
        "etc/ssl".into(),
        "etc/ssl/certs".into(),
        "etc/ssl/certs/ca-certificates.crt".into(),
        "home".into(),
        "home/nonroot".into(),
        "initbox".into(),
    ];
    expected.extend(applets.iter().map(|a| format!("bin/{a}")));
    expected.sort();
    assert_eq!(tree(&root), expected, "the image holds exactly these files");
    for a in &applets {
        assert_eq!(
            std::fs::read_link(root.join("bin").join(a)).unwrap(),
            PathBuf::from("/initbox")
        );
    }
    let r = run(
        Command::new("bash").arg("-c").arg(format!(
            "tar -C {} -cf - . | gzip -9 | wc -c",
            root.display()
        )),
        Duration::from_secs(120),
    );
    let pulled: u64 = r.stdout.trim().parse().expect("compressed size");
    assert!(
        pulled <= MAX_PULL_BYTES,
        "compressed image layer is {pulled} bytes, over the 10 MiB goal"
    );
    eprintln!("image: {size} bytes, compressed layer {pulled} bytes");
    let meta = std::fs::metadata(root.join("initbox")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
    assert_eq!(
        (home.uid(), home.gid()),
        (65532, 65532),
        "nonroot owns its home"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    assert_eq!(
        std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        std::fs::read(debian_bundle).unwrap()
    );

    // ---- --list, by the front and through a link ---------------------------------------------
    let r = chroot(&root, &env, &["/initbox", "--list"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), applets);

    // ---- a wait on a port this test opens, via the applet link ----------------------------------
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = chroot(
        &root,
        &env,
        &[
            "/bin/wait-for-tcp",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "10s",
        ],
    );
    assert_eq!(r.code(), 0, "wait through the link: {}", r.all());
    drop(listener);
    let r = chroot(
        &root,
        &env,
        &[
            "/initbox",
            "wait-for-tcp",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(r.code(), 124, "a closed port times out: {}", r.all());

    // ---- copy-self into a writable volume, then run the copy ---------------------------------
    let shared = root.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(65532), Some(65532)).unwrap();
    let r = chroot(
        &root,
        &env,
        &["/initbox", "copy-self", "--links", "/shared"],
    );
    assert_eq!(r.code(), 0, "copy-self: {}", r.all());
    let copy = std::fs::metadata(shared.join("initbox")).unwrap();
    assert_eq!(copy.uid(), 65532);
    assert_eq!(copy.permissions().mode() & 0o777, 0o755);
    assert_eq!(copy.len(), meta.len());
    let r = chroot(&root, &env, &["/shared/wait-for-tcp", "--help"]);
    assert_eq!(r.code(), 0, "the copied link runs: {}", r.all());
    // The image root is not writable for 65532: refused with exit 4, nothing written.
    let r = chroot(&root, &env, &["/initbox", "copy-self", "/etc"]);
    assert_eq!(r.code(), 4, "read-only destination: {}", r.all());
    assert!(!root.join("etc/initbox").exists());

    // ---- render into a writable dir ------------------------------------------------------------
    if has_applet(&root, &env, "render-config") {
        render_in_image(&root, &env);
        let out = root.join("out");
        let text = std::fs::read_to_string(out.join("app.conf")).unwrap();
        assert_eq!(text, "listen = 8080\nname = image-test\n");
        let m = std::fs::metadata(out.join("app.conf")).unwrap();
        assert_eq!(m.uid(), 65532);
    }

    // ---- https with the bundled CAs ------------------------------------------------------------
    let tls = work.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    pki::ca_and_localhost(&tls, "initbox image test CA");
    let server = pki::https_ok(&tls);
    let url = format!("https://{}/", server.authority());
    if !has_applet(&root, &env, "wait-for") {
        return;
    }
    // The shipped bundle does not know the test CA: verification fails, nothing is accepted.
    let r = chroot(
        &root,
        &env,
        &["/initbox", "wait-for", &url, "--timeout", "2s"],
    );
    assert_ne!(r.code(), 0, "an unknown CA must be refused: {}", r.all());
    assert!(
        r.all().to_lowercase().contains("certificate"),
        "the error names the certificate problem: {}",
        r.all()
    );
    // The same image built with the test CA appended to Debian's bundle trusts it.
    let bundle = tls.join("bundle.crt");
    let mut pem = std::fs::read(debian_bundle).unwrap();
    pem.extend(std::fs::read(tls.join("ca.crt")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let image = store.build("test-ca", &binary, &bundle);
    let root2 = work.join("rootfs-test-ca");
    std::fs::create_dir_all(&root2).unwrap();
    store.export(&image, &root2);
    let r = chroot(
        &root2,
        &env,
        &["/initbox", "wait-for", &url, "--timeout", "10s"],
    );
    assert_eq!(
        r.code(),
        0,
        "https through the bundled CA file: {}",
        r.all()
    );
}

/// Render a template with env data into /out as 65532.
fn render_in_image(root: &Path, env: &[(String, String)]) {
    let input = root.join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(
        input.join("app.conf.tmpl"),
        "listen = {{ env.PORT }}\nname = {{ env.APP_NAME }}\n",
    )
    .unwrap();
    let out = root.join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(65532), Some(65532)).unwrap();
    let mut env = env.to_vec();
    env.push(("PORT".into(), "8080".into()));
    env.push(("APP_NAME".into(), "image-test".into()));
    let r = chroot(
        root,
        &env,
        &[
            "/initbox",
            "render-config",
            "/in/app.conf.tmpl",
            "/out/app.conf",
        ],
    );
    assert_eq!(r.code(), 0, "render-config in the image: {}", r.all());
}

#[test]
fn the_dockerfile_final_stage_is_scratch_nonroot_and_shell_free() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let final_stage = text
        .rsplit_once("\nFROM scratch\n")
        .expect("a final `FROM scratch` stage")
        .1;
    assert!(final_stage.contains("USER 65532:65532"));
    assert!(final_stage.contains("ENTRYPOINT [\"/initbox\"]"));
    assert!(final_stage.contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
    assert!(
        !final_stage
            .lines()
            .any(|l| l.trim_start().starts_with("RUN")),
        "no RUN in the final stage (there is no shell)"
    );
}
