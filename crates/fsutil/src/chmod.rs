//! Modes to force, rsync's `--chmod` numeric form.

/// Modes to force, rsync's `--chmod` numeric form: `D0750,F0640` (directories, everything
/// else), or one mode for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chmod {
    pub dirs: Option<u32>,
    pub files: Option<u32>,
}

impl Chmod {
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let octal = |t: &str| {
            u32::from_str_radix(t, 8)
                .ok()
                .filter(|m| *m <= 0o7777 && !t.is_empty())
                .ok_or_else(|| format!("'{t}' is not an octal mode"))
        };
        let mut c = Chmod::default();
        for part in s.split(',').map(str::trim) {
            if let Some(m) = part.strip_prefix('D') {
                c.dirs = Some(octal(m)?);
            } else if let Some(m) = part.strip_prefix('F') {
                c.files = Some(octal(m)?);
            } else {
                let m = octal(part)?;
                c.dirs = Some(m);
                c.files = Some(m);
            }
        }
        Ok(c)
    }

    /// Whether it forces anything.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_none() && self.files.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rsync_numeric_form() {
        assert_eq!(
            Chmod::parse("D2775,F664").unwrap(),
            Chmod {
                dirs: Some(0o2775),
                files: Some(0o664)
            }
        );
        assert_eq!(
            Chmod::parse("0640").unwrap(),
            Chmod {
                dirs: Some(0o640),
                files: Some(0o640)
            }
        );
        assert!(Chmod::parse("u+x").is_err());
        assert!(Chmod::parse("D").is_err());
        assert!(Chmod::parse("F17777").is_err());
    }
}
