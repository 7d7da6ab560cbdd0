//! Ansible's `password_hash(hashtype='sha512', salt=None, salt_size=None, rounds=None,
//! ident=None)` as ansible-core computes it through passlib: the same algorithm names, the same
//! default rounds (passlib's: 656000 for sha512_crypt, 535000 for sha256_crypt, cost 12 for
//! bcrypt), `rounds=` left out of the hash at 5000 as passlib does, and the same refusals of
//! bad salts and rounds. The algorithms themselves come from RustCrypto's `sha-crypt` and the
//! `bcrypt` crate; this module only reads the arguments and lays out the result.
//!
//! One deliberate difference: `md5` (md5_crypt) is refused: it is broken, and no well-kept
//! crate implements it.

use base64ct::{Base64ShaCrypt, Encoding};
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// The characters of a crypt(3) salt, in passlib's order (`./0-9A-Za-z`).
const SALT_CHARS: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha512,
    Bcrypt,
}

impl Algorithm {
    /// Ansible's names (`sha512`, `blowfish`) and passlib's (`sha512_crypt`, `bcrypt`).
    fn from_name(name: &str) -> Result<Algorithm, Error> {
        match name {
            "sha512" | "sha512_crypt" => Ok(Algorithm::Sha512),
            "sha256" | "sha256_crypt" => Ok(Algorithm::Sha256),
            "blowfish" | "bcrypt" => Ok(Algorithm::Bcrypt),
            "md5" | "md5_crypt" => Err(invalid(
                "password_hash: md5_crypt is not supported (it is broken); use 'sha512'",
            )),
            other => Err(invalid(format!(
                "password_hash: {} is not in the list of supported algorithms: sha512, sha256, blowfish (bcrypt)",
                crate::python::str_repr(other)
            ))),
        }
    }

    fn passlib_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256_crypt",
            Algorithm::Sha512 => "sha512_crypt",
            Algorithm::Bcrypt => "bcrypt",
        }
    }

    /// passlib's default rounds (bcrypt: the cost).
    fn default_rounds(self) -> u32 {
        match self {
            Algorithm::Sha256 => 535_000,
            Algorithm::Sha512 => 656_000,
            Algorithm::Bcrypt => 12,
        }
    }

    fn default_salt_size(self) -> usize {
        match self {
            Algorithm::Bcrypt => 22,
            _ => 16,
        }
    }
}

/// The filter. `value` is the password; it must be a string, as passlib requires.
pub fn password_hash(
    value: &Value,
    hashtype: Option<String>,
    salt: Option<Value>,
    rest: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    // salt_size and rounds may come by position too.
    let positional = |i: usize| -> Result<Option<u32>, Error> {
        match rest.get(i).filter(|v| !v.is_none()) {
            Some(v) => u32::try_from(v.clone()).map(Some),
            None => Ok(None),
        }
    };
    let (salt_size, rounds) = (positional(0)?.map(|n| n as usize), positional(1)?);
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let hashtype = crate::filters::arg(&kwargs, "hashtype", hashtype)?;
    let salt = crate::filters::arg(&kwargs, "salt", salt)?;
    let salt_size = crate::filters::arg(&kwargs, "salt_size", salt_size)?;
    let rounds = crate::filters::arg(&kwargs, "rounds", rounds)?;
    let ident: Option<String> = kwargs.get("ident")?;
    kwargs.assert_all_used()?;
    let Some(password) = value.as_str().filter(|_| value.kind() == ValueKind::String) else {
        return Err(invalid(format!(
            "password_hash: the password must be a string, not {}",
            value.kind()
        )));
    };
    let alg = Algorithm::from_name(hashtype.as_deref().unwrap_or("sha512"))?;
    // Ansible passes a falsy salt on as "none": a random one is made.
    let salt = match salt {
        Some(s) if s.is_true() => Some(crate::python::to_str(&s)),
        _ => None,
    };
    let salt = match salt {
        Some(s) => s,
        None => random_salt(salt_size.unwrap_or(alg.default_salt_size()))?,
    };
    let rounds = rounds.unwrap_or(alg.default_rounds());
    match alg {
        Algorithm::Sha256 | Algorithm::Sha512 => {
            if ident.is_some() {
                return Err(invalid(format!(
                    "password_hash: {} takes no ident",
                    alg.passlib_name()
                )));
            }
            sha_crypt(alg, password, &salt, rounds)
        }
        Algorithm::Bcrypt => bcrypt(password, &salt, rounds, ident.as_deref()),
    }
}

fn random_salt(size: usize) -> Result<String, Error> {
    use ring::rand::SecureRandom;
    if size == 0 || size > 1024 {
        return Err(invalid("password_hash: salt_size must be from 1 to 1024"));
    }
    let mut bytes = vec![0u8; size];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| invalid("password_hash: the system gave no random bytes for a salt"))?;
    // 64 divides 256: every salt character is equally likely.
    Ok(bytes
        .iter()
        .map(|b| SALT_CHARS[usize::from(*b) % 64] as char)
        .collect())
}

/// SHA-crypt (Drepper's specification): `$5$` or `$6$`, `rounds=N$` unless N is 5000.
fn sha_crypt(alg: Algorithm, password: &str, salt: &str, rounds: u32) -> Result<String, Error> {
    let name = alg.passlib_name();
    if salt.len() > 16 {
        return Err(invalid(format!(
            "password_hash: salt too large ({name} requires <= 16 chars)"
        )));
    }
    if !salt.bytes().all(|b| SALT_CHARS.contains(&b)) {
        return Err(invalid(format!(
            "password_hash: invalid characters in {name} salt"
        )));
    }
    let params = sha_crypt::Params::new(rounds).map_err(|_| {
        invalid(format!(
            "password_hash: {name}: rounds ({rounds}) must be from 1000 to 999999999"
        ))
    })?;
    // The specification's byte order of the encoded digest.
    const SHA256_ORDER: [usize; 32] = [
        20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27, 8,
        28, 18, 29, 19, 9, 30, 31,
    ];
    const SHA512_ORDER: [usize; 64] = [
        42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29,
        8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15,
        16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
    ];
    let (id, digest): (&str, Vec<u8>) = match alg {
        Algorithm::Sha256 => {
            let d = sha_crypt::sha256_crypt(password.as_bytes(), salt.as_bytes(), params);
            ("5", SHA256_ORDER.iter().map(|&i| d[i]).collect())
        }
        _ => {
            let d = sha_crypt::sha512_crypt(password.as_bytes(), salt.as_bytes(), params);
            ("6", SHA512_ORDER.iter().map(|&i| d[i]).collect())
        }
    };
    let rounds_field = if rounds == 5000 {
        String::new()
    } else {
        format!("rounds={rounds}$")
    };
    Ok(format!(
        "${id}${rounds_field}{salt}${}",
        Base64ShaCrypt::encode_string(&digest)
    ))
}

/// bcrypt with a 22-character salt in bcrypt's alphabet; as passlib does, the salt's last
/// character loses its four unused bits (`...2` becomes `...u`).
fn bcrypt(password: &str, salt: &str, cost: u32, ident: Option<&str>) -> Result<String, Error> {
    let version = match ident.unwrap_or("2b") {
        "2b" => bcrypt::Version::TwoB,
        "2a" => bcrypt::Version::TwoA,
        "2y" => bcrypt::Version::TwoY,
        other => {
            return Err(invalid(format!(
                "password_hash: bcrypt ident must be '2b', '2a' or '2y', not {}",
                crate::python::str_repr(other)
            )));
        }
    };
    if !(4..=31).contains(&cost) {
        return Err(invalid(format!(
            "password_hash: bcrypt: rounds ({cost}) must be from 4 to 31"
        )));
    }
    const BCRYPT_CHARS: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if salt.len() != 22 {
        return Err(invalid(format!(
            "password_hash: bcrypt requires a salt of exactly 22 characters, not {}",
            salt.chars().count()
        )));
    }
    // bcrypt's base64 (no padding): 22 characters carry 132 bits, the first 128 are the salt.
    let mut raw = [0u8; 16];
    let mut acc: u32 = 0;
    let mut n_bits = 0;
    let mut out = 0;
    for b in salt.bytes() {
        let Some(v) = BCRYPT_CHARS.iter().position(|c| *c == b) else {
            return Err(invalid("password_hash: invalid characters in bcrypt salt"));
        };
        acc = ((acc << 6) | v as u32) & 0xffff;
        n_bits += 6;
        if n_bits >= 8 && out < 16 {
            n_bits -= 8;
            raw[out] = (acc >> n_bits) as u8;
            out += 1;
        }
    }
    let parts = bcrypt::hash_with_salt(password.as_bytes(), cost, raw)
        .map_err(|e| invalid(format!("password_hash: bcrypt: {e}")))?;
    Ok(parts.format_for_version(version))
}
