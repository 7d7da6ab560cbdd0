//! Database connection settings the way users already write them for libpq, psql, the mysql
//! client and the migration tools, turned into one URL that sqlx reads:
//!
//! - a URL (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`, `sqlite:`);
//! - a libpq keyword string (`host=db user=app dbname=app sslmode=disable`), parsed by libpq's
//!   rules: `keyword = value` pairs separated by white space, values in single quotes where
//!   they hold spaces or are empty, `\'` and `\\` escapes;
//! - what the URL or string leaves out, from the variables libpq reads (`PGHOST`, `PGPORT`,
//!   `PGUSER`, `PGDATABASE`, `PGSSLMODE`; `PGPASSWORD` is the caller's, with its other password
//!   sources) or the mysql client reads (`MYSQL_HOST`, `MYSQL_TCP_PORT`; `MYSQL_PWD` likewise);
//! - nothing at all, when those variables are set: `postgres://` (or `mysql://`) filled from them.
//!
//! Errors name the keyword or the part that is wrong, never a value (a value may be a password).

use std::fmt;

/// Why settings could not be read. The message never contains a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The libpq variables filled into a PostgreSQL URL, with the part each fills.
pub const PG_VARIABLES: [&str; 5] = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSSLMODE"];
/// The mysql client's variables filled into a MySQL URL.
pub const MYSQL_VARIABLES: [&str; 2] = ["MYSQL_HOST", "MYSQL_TCP_PORT"];

/// Whether `s` is a libpq keyword string rather than a URL.
pub fn is_keyword_string(s: &str) -> bool {
    !s.contains("://") && !s.starts_with("sqlite:") && s.contains('=')
}

/// Parse a libpq keyword string into its pairs, in order.
pub fn parse_keywords(s: &str) -> Result<Vec<(String, String)>, Error> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && !b[i].is_whitespace() {
            i += 1;
        }
        let key: String = b[start..i].iter().collect();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != '=' {
            return Err(Error(format!(
                "missing \"=\" after \"{key}\" in the connection info string"
            )));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < b.len() && b[i] == '\'' {
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(Error(format!(
                            "unterminated quoted value of \"{key}\" in the connection info string"
                        )));
                    }
                    Some('\\') => {
                        if let Some(c) = b.get(i + 1) {
                            value.push(*c);
                        }
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_whitespace() {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        if key.is_empty() {
            return Err(Error(
                "an empty keyword in the connection info string".into(),
            ));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The keywords that become query parameters of the URL (sqlx reads them there).
const PG_PARAMS: [&str; 8] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "options",
    "hostaddr",
    "connect_timeout",
];

/// A libpq keyword string as a `postgres://` URL.
pub fn keywords_to_url(s: &str) -> Result<String, Error> {
    let mut url = url::Url::parse("postgres://").expect("a valid base");
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in parse_keywords(s)? {
        match k.as_str() {
            "host" if v.contains(',') => {
                return Err(Error(
                    "several hosts in \"host\" are not supported (give one)".into(),
                ));
            }
            // A socket directory goes in a parameter, as sqlx reads it.
            "host" if v.starts_with('/') => params.push(("host".into(), v)),
            "host" => url
                .set_host(Some(&v))
                .map_err(|_| Error("\"host\" is not a valid host name or address".into()))?,
            "port" => {
                let p: u16 = v
                    .parse()
                    .map_err(|_| Error("\"port\" is not a port number".into()))?;
                url.set_port(Some(p)).expect("postgres URLs take ports");
            }
            "user" => url
                .set_username(&v)
                .map_err(|_| Error("\"user\" cannot be used".into()))?,
            "password" => url
                .set_password(Some(&v))
                .map_err(|_| Error("\"password\" cannot be used".into()))?,
            "dbname" => url.set_path(&format!("/{}", encode_path(&v))),
            k if PG_PARAMS.contains(&k) => params.push((k.to_string(), v)),
            other => {
                return Err(Error(format!(
                    "invalid connection option \"{other}\" (supported: host, port, user, \
                     password, dbname, {})",
                    PG_PARAMS.join(", ")
                )));
            }
        }
    }
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url.to_string())
}

fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `url` with what it leaves out taken from the variables libpq (PostgreSQL) or the mysql
/// client (MySQL/MariaDB) read; other URLs unchanged.
pub fn fill_from_env(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let postgres = matches!(scheme.as_str(), "postgres" | "postgresql");
    let mysql = matches!(scheme.as_str(), "mysql" | "mariadb");
    if !postgres && !mysql {
        return Ok(url.to_string());
    }
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let (host_var, port_var) = if postgres {
        ("PGHOST", "PGPORT")
    } else {
        ("MYSQL_HOST", "MYSQL_TCP_PORT")
    };
    // `mysql://user@/db`: a user and no host, which a URL parser refuses; the host variable
    // goes where the host is missing.
    let mut url = url.to_string();
    if let Some((scheme_part, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.ends_with('@')
            && let Some(h) = var(host_var).filter(|h| !h.starts_with('/') && !h.contains(','))
        {
            let host = if h.contains(':') { format!("[{h}]") } else { h };
            url = format!("{scheme_part}://{authority}{host}{}", &rest[end..]);
        }
    }
    let mut u = url::Url::parse(&url).map_err(|e| Error(format!("not a valid URL: {e}")))?;
    let socket_param = u.query_pairs().any(|(k, _)| k == "host" || k == "socket");
    if u.host_str().is_none_or(str::is_empty) && !socket_param {
        match var(host_var) {
            Some(h) if h.contains(',') => {
                return Err(Error(format!(
                    "{host_var} names several hosts, which is not supported (give one)"
                )));
            }
            Some(h) if h.starts_with('/') => {
                u.query_pairs_mut().append_pair("host", &h);
            }
            Some(h) => u
                .set_host(Some(&h))
                .map_err(|_| Error(format!("{host_var} is not a valid host name or address")))?,
            None => {}
        }
    }
    if u.port().is_none()
        && let Some(p) = var(port_var)
    {
        let p: u16 = p
            .parse()
            .map_err(|_| Error(format!("{port_var} is not a port number")))?;
        if u.host_str().is_some_and(|h| !h.is_empty()) {
            u.set_port(Some(p))
                .map_err(|_| Error(format!("{port_var} cannot be used")))?;
        } else {
            u.query_pairs_mut().append_pair("port", &p.to_string());
        }
    }
    if postgres {
        let has_host = u.host_str().is_some_and(|h| !h.is_empty());
        if u.username().is_empty()
            && let Some(user) = var("PGUSER")
        {
            if has_host {
                u.set_username(&user)
                    .map_err(|_| Error("PGUSER cannot be used".into()))?;
            } else {
                u.query_pairs_mut().append_pair("user", &user);
            }
        }
        if (u.path().is_empty() || u.path() == "/")
            && let Some(db) = var("PGDATABASE")
        {
            if has_host {
                u.set_path(&format!("/{}", encode_path(&db)));
            } else {
                u.query_pairs_mut().append_pair("dbname", &db);
            }
        }
        if !u.query_pairs().any(|(k, _)| k == "sslmode")
            && let Some(mode) = var("PGSSLMODE")
        {
            u.query_pairs_mut().append_pair("sslmode", &mode);
        }
    }
    let mut s = u.to_string();
    // An emptied query leaves a bare `?`.
    if s.ends_with('?') {
        s.pop();
    }
    Ok(s)
}

/// The settings as one URL: `given` (a URL or a libpq keyword string), or, when nothing is
/// given, `postgres://` / `mysql://` if their variables are set; then filled from the
/// variables. `Ok(None)`: nothing given and no variables.
pub fn resolve(
    given: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, Error> {
    let set = |vars: &[&str]| vars.iter().any(|v| env(v).is_some_and(|x| !x.is_empty()));
    let url = match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if is_keyword_string(s) => keywords_to_url(s)?,
        Some(s) => s.to_string(),
        None => match (set(&PG_VARIABLES), set(&MYSQL_VARIABLES)) {
            (true, false) => "postgres://".into(),
            (false, true) => "mysql://".into(),
            (true, true) => {
                return Err(Error(
                    "no URL given, and both PG* and MYSQL_* variables are set: give a URL".into(),
                ));
            }
            (false, false) => return Ok(None),
        },
    };
    fill_from_env(&url, env).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    /// libpq's own examples (libpq docs, "Keyword/Value Connection Strings") and quoting rules.
    #[test]
    fn keyword_strings_by_libpq_rules() {
        assert_eq!(
            parse_keywords("host=localhost port=5432 dbname=mydb connect_timeout=10").unwrap(),
            [
                ("host".into(), "localhost".into()),
                ("port".into(), "5432".into()),
                ("dbname".into(), "mydb".into()),
                ("connect_timeout".into(), "10".into())
            ]
        );
        assert_eq!(
            parse_keywords("  password = 'a b\\'c\\\\'  user= app ").unwrap(),
            [
                ("password".into(), "a b'c\\".into()),
                ("user".into(), "app".into())
            ]
        );
        assert_eq!(parse_keywords("password=''").unwrap()[0].1, "");
        assert!(parse_keywords("host").is_err());
        assert!(parse_keywords("password='open").is_err());
        let e = keywords_to_url("hots=db password=s3cret").unwrap_err();
        assert!(e.0.contains("hots") && !e.0.contains("s3cret"), "{e}");
    }

    #[test]
    fn keyword_strings_become_urls() {
        assert_eq!(
            keywords_to_url(
                "host=db port=6432 user=app password='p@ss w/rd' dbname=my_app sslmode=disable"
            )
            .unwrap(),
            "postgres://app:p%40ss%20w%2Frd@db:6432/my_app?sslmode=disable"
        );
        assert_eq!(
            keywords_to_url("host=/var/run/postgresql dbname=app").unwrap(),
            "postgres:///app?host=%2Fvar%2Frun%2Fpostgresql"
        );
    }

    #[test]
    fn bare_urls_filled_from_variables() {
        let pg = env(&[
            ("PGHOST", "db"),
            ("PGPORT", "6432"),
            ("PGUSER", "app"),
            ("PGDATABASE", "appdb"),
            ("PGSSLMODE", "require"),
        ]);
        assert_eq!(
            resolve(Some("postgres://"), &pg).unwrap().unwrap(),
            "postgres://app@db:6432/appdb?sslmode=require"
        );
        assert_eq!(
            resolve(None, &pg).unwrap().unwrap(),
            "postgres://app@db:6432/appdb?sslmode=require"
        );
        // What the URL says wins.
        assert_eq!(
            resolve(Some("postgresql://u@h/d?sslmode=disable"), &pg)
                .unwrap()
                .unwrap(),
            "postgresql://u@h:6432/d?sslmode=disable"
        );
        let my = env(&[("MYSQL_HOST", "maria"), ("MYSQL_TCP_PORT", "3307")]);
        assert_eq!(
            resolve(Some("mysql:///app"), &my).unwrap().unwrap(),
            "mysql://maria:3307/app"
        );
        assert_eq!(
            resolve(Some("mysql://root@/app"), &my).unwrap().unwrap(),
            "mysql://root@maria:3307/app"
        );
        assert_eq!(resolve(None, &env(&[])).unwrap(), None);
        assert_eq!(
            resolve(Some("sqlite://a.db"), &pg).unwrap().unwrap(),
            "sqlite://a.db"
        );
    }
}
