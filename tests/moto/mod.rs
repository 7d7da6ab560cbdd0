//! moto's S3 server for the restore and backup tests. No S3-compatible server that runs here is
//! packaged (MinIO and Ceph are not in Debian or PyPI), so moto (`moto[server]` from PyPI,
//! tests/setup/20-restore.sh) is the S3 implementation: it speaks the real S3 REST API (SigV4,
//! ListObjectsV2, multipart, conditional writes) on a loopback port.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
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
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Run a boto3 snippet against this server (`s3` is a client); its stdout.
    pub fn py(&self, code: &str) -> String {
        self.py_with(code, "test", "test")
    }

    pub fn py_with(&self, code: &str, key: &str, secret: &str) -> String {
        let prog = format!(
            "import boto3, sys, json\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{key}', aws_secret_access_key='{secret}')\n{code}\n",
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
    cmd
}
