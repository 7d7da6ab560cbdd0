//! The repository lock: a lease, not a lock file. The holder writes `.initbox-lock.json` (who,
//! until when), renews it while it works, and removes it at the end; a holder that died loses
//! the lease when it expires, without anyone cleaning up (the stale locks of restic and k8up).
//! Taking a lease is a conditional write (`If-None-Match: *` on S3, link(2) on files), and an
//! expired lease is taken over by overwriting it, then reading it back to see who won.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use initbox_runtime::Failure;
use serde::{Deserialize, Serialize};

use crate::Store;

pub const LOCK: &str = ".initbox-lock.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Doc {
    holder: String,
    /// Unix seconds.
    expires: u64,
}

/// A lease held on a repository.
#[derive(Debug)]
pub struct Lease {
    holder: String,
    ttl: Duration,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn show_time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

impl Lease {
    fn doc(&self) -> Vec<u8> {
        serde_json::to_vec(&Doc {
            holder: self.holder.clone(),
            expires: now() + self.ttl.as_secs(),
        })
        .unwrap_or_default()
    }

    /// Take the lease, or fail (exit 1) naming its holder and when it expires.
    pub async fn acquire(store: &Store, ttl: Duration) -> Result<Lease, Failure> {
        let holder = format!(
            "{}-{}-{:08x}",
            initbox_runtime::host::name().unwrap_or_else(|| "host".into()),
            std::process::id(),
            rand::random::<u32>()
        );
        let lease = Lease { holder, ttl };
        for _ in 0..3 {
            if store.put_if_absent(LOCK, lease.doc()).await? {
                // Read back: a server without conditional writes lets the last writer win.
                if lease.confirm(store).await? {
                    tracing::info!(holder = %lease.holder, ttl = %humantime::format_duration(ttl), "backup: lease taken");
                    return Ok(lease);
                }
                continue;
            }
            let Some(current) = lease.current(store).await? else {
                continue;
            };
            if current.expires > now() {
                return Err(Failure::failed(format!(
                    "{}: another backup holds the lease ({} until {}); it expires by itself if that backup died",
                    store.display(),
                    current.holder,
                    show_time(current.expires)
                )));
            }
            tracing::warn!(
                holder = %current.holder,
                expired = %show_time(current.expires),
                "backup: taking over an expired lease"
            );
            store.put_small(LOCK, lease.doc()).await?;
            if lease.confirm(store).await? {
                return Ok(lease);
            }
        }
        Err(Failure::failed(format!(
            "{}: could not take the lease (another backup keeps taking it)",
            store.display()
        )))
    }

    async fn current(&self, store: &Store) -> Result<Option<Doc>, Failure> {
        Ok(store
            .get_small(LOCK)
            .await?
            .and_then(|b| serde_json::from_slice::<Doc>(&b).ok()))
    }

    async fn confirm(&self, store: &Store) -> Result<bool, Failure> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(self
            .current(store)
            .await?
            .is_some_and(|d| d.holder == self.holder))
    }

    /// Extend the lease; fails when someone else took it (ours had expired).
    pub async fn renew(&self, store: &Store) -> Result<(), Failure> {
        match self.current(store).await? {
            Some(d) if d.holder == self.holder => store.put_small(LOCK, self.doc()).await,
            other => Err(Failure::failed(format!(
                "{}: the lease was lost{}",
                store.display(),
                other
                    .map(|d| format!(" to {}", d.holder))
                    .unwrap_or_default()
            ))),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Give the lease back (only if still ours).
    pub async fn release(self, store: &Store) {
        match self.current(store).await {
            Ok(Some(d)) if d.holder == self.holder => {
                if let Err(e) = store.delete(LOCK).await {
                    tracing::warn!("backup: could not release the lease: {}", e.message);
                }
            }
            _ => {}
        }
    }
}
