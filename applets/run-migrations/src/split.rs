//! A small SQL lexer that finds statement boundaries: it knows comments, quoted strings and
//! identifiers, PostgreSQL dollar quoting and SQLite trigger bodies, so a `;` inside any of them
//! does not end a statement.
//!
//! Used to name the failing statement of a migration and to run PostgreSQL `no-transaction`
//! migrations one statement at a time (PostgreSQL runs a multi-statement query string in an
//! implicit transaction, which `CREATE INDEX CONCURRENTLY` refuses).

/// Which server's lexical rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// One statement: its first line (1-based, in the text given) and its text (with the `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub text: String,
}

impl Statement {
    /// One line, shortened, for error messages.
    pub fn summary(&self) -> String {
        let flat: String = self
            .text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        let flat = flat.trim_end_matches(';').trim().to_string();
        if flat.chars().count() > 80 {
            let cut: String = flat.chars().take(77).collect();
            format!("{cut}...")
        } else {
            flat
        }
    }
}

/// Split `sql` into its non-empty statements.
pub fn split(sql: &str, dialect: Dialect) -> Vec<Statement> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    // Whether the current statement has any code (not only blanks and comments), and where.
    let mut code_at: Option<(usize, usize)> = None;
    let mut words: Vec<String> = Vec::new(); // first words of the statement, upper-cased
    let mut last_word = String::new();

    let push = |out: &mut Vec<Statement>, from: usize, to: usize, at_line: usize| {
        out.push(Statement {
            line: at_line,
            text: sql[from..to].trim().to_string(),
        });
    };

    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Comments.
        if c == b'-' && next == Some(b'-') || (c == b'#' && dialect == Dialect::MySql) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'\n' {
                    line += 1;
                }
                if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else if dialect == Dialect::Postgres
                    && b[i] == b'/'
                    && b.get(i + 1) == Some(&b'*')
                {
                    depth += 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if code_at.is_none() {
            code_at = Some((i, line));
        }
        match c {
            b'\'' | b'"' | b'`' => {
                let quote = c;
                // Backslash escapes: MySQL strings, and PostgreSQL E'...' strings.
                let is_ident = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
                let e_string = dialect == Dialect::Postgres
                    && quote == b'\''
                    && i >= 1
                    && matches!(b[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident(b[i - 2]));
                let backslash = e_string || (dialect == Dialect::MySql && quote != b'`');
                i += 1;
                while i < b.len() {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    if backslash && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == quote {
                        // A doubled quote is an escaped quote: stay inside.
                        if b.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                last_word.clear();
            }
            b'$' if dialect == Dialect::Postgres => {
                // $tag$ ... $tag$, where the tag is empty or an identifier, and `$` does not
                // continue an identifier or a `$1` parameter.
                let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let tag_ok = j < b.len()
                    && b[j] == b'$'
                    && !prev_ident
                    && !b.get(i + 1).is_some_and(|d| d.is_ascii_digit());
                if !tag_ok {
                    i += 1;
                    continue;
                }
                let tag = &sql[i..=j];
                i = j + 1;
                match sql[i..].find(tag) {
                    Some(k) => {
                        line += sql[i..i + k].matches('\n').count();
                        i += k + tag.len();
                    }
                    None => {
                        line += sql[i..].matches('\n').count();
                        i = b.len();
                    }
                }
                last_word.clear();
            }
            b';' => {
                // SQLite trigger bodies (BEGIN ... END;) contain `;`: only `END;` ends them.
                let in_trigger = dialect == Dialect::Sqlite
                    && words.first().map(String::as_str) == Some("CREATE")
                    && words.iter().take(4).any(|w| w == "TRIGGER");
                if in_trigger && last_word != "END" {
                    i += 1;
                    last_word.clear();
                    continue;
                }
                if let Some((from, at)) = code_at.take() {
                    push(&mut out, from, i + 1, at);
                }
                i += 1;
                words.clear();
                last_word.clear();
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let from = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                last_word = sql[from..i].to_ascii_uppercase();
                if words.len() < 4 {
                    words.push(last_word.clone());
                }
            }
            _ => {
                i += 1;
                last_word.clear();
            }
        }
    }
    if let Some((from, at)) = code_at {
        push(&mut out, from, b.len(), at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str, d: Dialect) -> Vec<String> {
        split(sql, d).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn plain_statements_and_lines() {
        let s = split(
            "-- header\nCREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\n-- trailing\n",
            Dialect::Postgres,
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].line, 2);
        assert_eq!(s[1].line, 4);
        assert_eq!(s[1].text, "INSERT INTO a VALUES (1);");
    }

    #[test]
    fn semicolons_inside_literals_comments_and_dollar_quotes() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\"); /* x; y */ SELECT 1;\n\
                   CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN x := 1; RETURN NEW; END; $body$ LANGUAGE plpgsql;\n\
                   SELECT $$;$$, $1;";
        let t = texts(sql, Dialect::Postgres);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t[2].ends_with("LANGUAGE plpgsql;"));
    }

    #[test]
    fn postgres_escape_strings() {
        let t = texts(
            "INSERT INTO t VALUES (E'it\\'s; fine', 'a\\');\nSELECT 2;",
            Dialect::Postgres,
        );
        assert_eq!(t.len(), 2, "{t:?}");
    }

    #[test]
    fn mysql_backslash_escapes_and_hash_comments() {
        let t = texts(
            "INSERT INTO t VALUES ('it\\'s; fine'); # c;\nSELECT 2;",
            Dialect::MySql,
        );
        assert_eq!(t.len(), 2, "{t:?}");
    }

    #[test]
    fn sqlite_triggers_end_at_end() {
        let t = texts(
            "CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET x = 1; END;\nSELECT 1;",
            Dialect::Sqlite,
        );
        assert_eq!(t.len(), 2, "{t:?}");
    }

    #[test]
    fn last_statement_without_semicolon_and_summary() {
        let s = split("SELECT 1;\nSELECT\n  2", Dialect::Postgres);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].summary(), "SELECT 2");
        assert!(split("-- only a comment\n\n", Dialect::Postgres).is_empty());
    }
}
