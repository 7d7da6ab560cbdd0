//! Checksums as users publish them: `--sha256 HEX` (or `sha256:HEX`, the form of OCI digests and
//! Helm/Bazel lock files) and checksums files as `sha256sum` writes them and `sha256sum -c`
//! reads them:
//! - `HEX  NAME` (text mode), `HEX *NAME` (binary mode), `HEX NAME`;
//! - a leading `\` marks an escaped name (`\\` and `\n` inside it), as GNU writes names that
//!   hold a backslash or a newline;
//! - the BSD/`--tag` form `SHA256 (NAME) = HEX`;
//! - a file of one bare digest (`NAME.sha256` beside a release).
//!
//! Lines that fit none of these are skipped, as `sha256sum -c` skips improperly formatted
//! lines. The line for a download is the one whose name is the download's file name, or ends
//! with `/NAME` (`./NAME`, `dist/NAME`); two lines that name it with different digests are an
//! error, never a guess.

/// A SHA-256 digest as given on the command line: 64 hex digits, optionally `sha256:`-prefixed.
pub fn parse_sha256(s: &str) -> Result<String, String> {
    let t = s.trim();
    let hex = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .unwrap_or(t);
    if is_sha256(hex) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{s}' is not a SHA-256 digest (64 hex digits, optionally sha256:-prefixed)"
        ))
    }
}

fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One line of a checksums file: (digest, name).
fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    // BSD tag form: SHA256 (NAME) = HEX
    if let Some(rest) = line.strip_prefix("SHA256 (")
        && let Some((name, hex)) = rest.rsplit_once(") = ")
    {
        return is_sha256(hex).then(|| (hex.to_ascii_lowercase(), name.to_string()));
    }
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let hex = line.get(..64)?;
    if !is_sha256(hex) {
        return None;
    }
    let rest = &line[64..];
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .or_else(|| rest.strip_prefix(' '))?;
    if name.is_empty() {
        return None;
    }
    let name = if escaped {
        unescape(name)?
    } else {
        name.to_string()
    };
    Some((hex.to_ascii_lowercase(), name))
}

/// GNU's name escaping: `\\` is a backslash, `\n` a newline; any other escape is malformed.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The digest a checksums file gives for `name`.
pub fn find(body: &[u8], name: &str) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if let [one] = lines.as_slice()
        && is_sha256(one.trim())
    {
        return Ok(one.trim().to_ascii_lowercase());
    }
    let mut found: Vec<String> = lines
        .iter()
        .filter_map(|l| parse_line(l))
        .filter(|(_, n)| {
            n == name || n.strip_prefix("./") == Some(name) || n.ends_with(&format!("/{name}"))
        })
        .map(|(h, _)| h)
        .collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("has no line for {name}")),
        _ => Err(format!("lists {name} with different digests")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const B: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn digests_on_the_command_line() {
        assert_eq!(parse_sha256(A).unwrap(), A);
        assert_eq!(parse_sha256(&format!("sha256:{A}")).unwrap(), A);
        assert_eq!(parse_sha256(&A.to_uppercase()).unwrap(), A);
        assert!(parse_sha256("sha256:abc").is_err());
        assert!(parse_sha256(&format!("md5:{A}")).is_err());
    }

    #[test]
    fn sha256sum_output_forms() {
        // What `sha256sum a.tar.gz b/c.zip` and `sha256sum -b` print.
        let body = format!("{A}  a.tar.gz\n{B} *dist/c.zip\r\n# comment\n");
        assert_eq!(find(body.as_bytes(), "a.tar.gz").unwrap(), A);
        assert_eq!(find(body.as_bytes(), "c.zip").unwrap(), B);
        assert_eq!(
            find(body.as_bytes(), "zz").unwrap_err(),
            "has no line for zz"
        );
        // `sha256sum --tag`.
        let tag = format!("SHA256 (a.tar.gz) = {A}\nSHA256 (x (1).bin) = {B}\n");
        assert_eq!(find(tag.as_bytes(), "a.tar.gz").unwrap(), A);
        assert_eq!(find(tag.as_bytes(), "x (1).bin").unwrap(), B);
        // A name with a backslash, as GNU escapes it.
        let esc = format!("\\{A}  back\\\\slash\n");
        assert_eq!(find(esc.as_bytes(), "back\\slash").unwrap(), A);
        // One bare digest.
        assert_eq!(find(format!("{A}\n").as_bytes(), "any").unwrap(), A);
        // A name listed twice with different digests is refused, never guessed.
        let two = format!("{A}  v1/a.bin\n{B}  v2/a.bin\n");
        assert!(
            find(two.as_bytes(), "a.bin")
                .unwrap_err()
                .contains("different")
        );
        // A name that only ends like it is not it.
        let near = format!("{A}  xa.bin\n");
        assert!(find(near.as_bytes(), "a.bin").is_err());
    }
}
