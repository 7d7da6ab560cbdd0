//! moto's S3 server for the restore and backup tests. No S3-compatible server that runs here is
//! packaged (MinIO and Ceph are not in Debian or PyPI), so moto (`moto[server]` from PyPI,
//! tests/setup/20-restore.sh) is the S3 implementation: it speaks the real S3 REST API (SigV4,
//! ListObjectsV2, multipart, conditional writes) on a loopback port.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
    /// With [`Moto::start_tls_recording`]: the certificate to trust and the request log.
    tls: Option<(PathBuf, PathBuf)>,
}

/// One request as tests/moto/recording.py logged it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The `x-amz-server-side-encryption*` headers, names in lower case.
    pub sse: serde_json::Map<String, serde_json::Value>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// A server; with `auth_after`, moto enforces IAM authentication (signatures and keys)
    /// after that many requests (`INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start(auth_after: Option<u32>) -> Moto {
        let port = super::common::free_port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(n) = auth_after {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let child = cmd
            .spawn()
            .expect("moto is installed (tests/setup/20-restore.sh)");
        wait_listening(port);
        Moto {
            child,
            port,
            tls: None,
        }
    }

    /// moto's S3 application over TLS (a self-signed certificate for 127.0.0.1 made in `dir`),
    /// logging the server-side-encryption headers of every request (tests/moto/recording.py).
    pub fn start_tls_recording(dir: &Path) -> Moto {
        let (cert, key) = super::common::pki::self_signed_loopback(dir);
        let log = dir.join("moto-requests.jsonl");
        let port = super::common::free_port();
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/moto/recording.py"
            ))
            .arg(port.to_string())
            .args([&cert, &key, &log])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto is installed (tests/setup/20-restore.sh)");
        wait_listening(port);
        Moto {
            child,
            port,
            tls: Some((cert, log)),
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The certificate a TLS server's clients must trust.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(c, _)| c.as_path())
    }

    /// The requests a recording server received, in order.
    pub fn logged(&self) -> Vec<Logged> {
        let (_, log) = self.tls.as_ref().expect("a recording server");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                Logged {
                    method: s("method"),
                    path: s("path"),
                    query: s("query"),
                    sse: v["sse"].as_object().cloned().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Run a boto3 snippet against this server (`s3` is a client); its stdout.
    pub fn py(&self, code: &str) -> String {
        self.py_with(code, "test", "test")
    }

    pub fn py_with(&self, code: &str, key: &str, secret: &str) -> String {
        let verify = match self.ca_file() {
            Some(ca) => format!("'{}'", ca.display()),
            None => "None".into(),
        };
        let prog = format!(
            "import boto3, sys, json\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{key}', aws_secret_access_key='{secret}', verify={verify})\n{code}\n",
            self.endpoint()
        );
        let o = Command::new("python3")
            .arg("-c")
            .arg(&prog)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn make_bucket(&self, name: &str) {
        self.py(&format!("s3.create_bucket(Bucket='{name}')"));
    }

    /// The keys below a prefix, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.py(&format!(
            "r = s3.list_objects_v2(Bucket='{bucket}', Prefix='{prefix}')\nprint('\\n'.join(sorted(o['Key'] for o in r.get('Contents', []))))"
        ));
        out.lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// An `initbox` command with test credentials for moto and `--s3-endpoint`.
pub fn with_s3(mut cmd: Command, moto: &Moto) -> Command {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("INITBOX_S3_ENDPOINT", moto.endpoint());
    if let Some(ca) = moto.ca_file() {
        cmd.env("INITBOX_AWS_CA_FILE", ca);
    }
    cmd
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
