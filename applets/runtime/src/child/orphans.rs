//! Processes that escaped their process group: a daemon that called `setsid()` (or a
//! double fork) is no longer reached by stopping the group its parent ran in. Once initbox is
//! a child subreaper ([`become_subreaper`]), such processes are re-parented to initbox instead
//! of PID 1 when their parent exits, so they can be found ([`find`]) and stopped ([`stop`]).
//!
//! A command can be tagged ([`TAG_VAR`] in its environment, inherited by everything it starts
//! unless a program clears its environment), so the orphans of one command can be told from
//! those of another while both run.

use std::time::{Duration, Instant};

/// The variable that carries a command's tag to everything it starts.
pub const TAG_VAR: &str = "INITBOX_RUN_STEP";

/// Make initbox the reaper of every orphaned descendant (Linux `PR_SET_CHILD_SUBREAPER`);
/// `false` where the kernel refuses. Undo it with [`stop_being_subreaper`] before an exec.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl(2) with an integer argument; no pointers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Stop being a subreaper (the setting survives execve: the follow-up command must not
/// inherit orphans it does not expect).
pub fn stop_being_subreaper() {
    // SAFETY: as above.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    }
}

/// initbox's child processes other than `known` (children it started and still waits for):
/// re-parented orphans, running or not yet reaped. With `tag`, only those whose environment
/// carries `TAG_VAR=tag`.
pub fn find(known: &[u32], tag: Option<&str>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || known.contains(&(pid as u32)) || parent_of(pid) != Some(me) {
            continue;
        }
        if let Some(tag) = tag
            && !has_tag(pid, tag)
        {
            continue;
        }
        found.push(pid);
    }
    found
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn has_tag(pid: i32, tag: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{TAG_VAR}={tag}");
    env.split(|b| *b == 0).any(|v| v == want.as_bytes())
}

/// Reap those of `pids` that exited (they are initbox's children); the ones still running.
fn reap(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|&pid| {
            let mut st = 0;
            // SAFETY: waitpid(2) with WNOHANG on one pid that is our child.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            // 0: still running; pid: reaped now; -1: not ours (any more).
            r == 0
        })
        .collect()
}

/// Stop the orphans re-parented to initbox (with `tag`: only those of one command), pass after
/// pass (at most five), since stopping a daemon may orphan its own children. `run` calls it
/// after each command step and at its end, `schedule` after each run and at its end. Blocks the
/// calling thread (use `spawn_blocking`).
pub fn sweep(tag: Option<&str>, grace: Duration) {
    for _ in 0..5 {
        let found = find(&[], tag);
        if found.is_empty() {
            return;
        }
        tracing::info!(
            processes = found.len(),
            "stopping processes a command left behind outside its process group"
        );
        stop(&found, grace);
    }
}

/// Stop orphaned processes: SIGTERM (traps run), up to `grace` for them to exit, then
/// SIGKILL, reaping each. Blocks the calling thread for up to `grace` plus a moment.
pub fn stop(pids: &[i32], grace: Duration) {
    if pids.is_empty() {
        return;
    }
    crate::signals::set_stop_grace(grace + Duration::from_secs(2));
    let mut left = reap(pids);
    for &pid in &left {
        // SAFETY: kill(2) on a child of ours not yet reaped (so the pid is not reused).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let until = Instant::now() + grace;
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        left = reap(&left);
    }
    for &pid in &left {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let until = Instant::now() + Duration::from_secs(2);
    while !left.is_empty() && Instant::now() < until {
        left = reap(&left);
        std::thread::sleep(Duration::from_millis(5));
    }
}
