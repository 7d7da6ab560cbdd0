//! This machine's host name: the UTS namespace's, as a pod's `hostname` prints it.

/// The host name from `/proc/sys/kernel/hostname`, else `gethostname(2)`; `None` if neither
/// gives a non-empty name.
pub fn name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(uts_name)
}

fn uts_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_name_is_one_trimmed_word() {
        let name = super::name().expect("a host name");
        assert_eq!(name, name.trim());
        assert!(!name.is_empty());
    }
}
