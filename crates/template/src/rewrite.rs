//! Two pieces of Jinja2 syntax that minijinja's parser does not take, read by rewriting the
//! template source into calls before minijinja sees it:
//!
//! - Python's `%` operator (`"%s:%d" % (host, port)`) becomes `__initbox_mod(lhs, rhs)`,
//!   which formats when the left side is a string and takes the remainder otherwise;
//! - `{% do EXPR %}` with any expression (minijinja's `do` takes only a call) becomes
//!   `{% do __initbox_do(EXPR) %}`.
//!
//! Only the code inside tags is touched (never text, comments or `{% raw %}` blocks, never
//! string literals), with the delimiters the template is read with. Every insertion is kept
//! in a [`SourceMap`] so that errors point at the user's own line and column.

use crate::jinja::Delimiters;

/// The function `%` becomes.
pub const MOD_FUNCTION: &str = "__initbox_mod";
/// The function a `do` expression is wrapped in.
pub const DO_FUNCTION: &str = "__initbox_do";

/// Where text was inserted into a source: `(offset in the rewritten text, length)`, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    inserts: Vec<(usize, usize)>,
}

impl SourceMap {
    /// The offset in the original source of offset `pos` of the rewritten one (inside an
    /// insertion: where it was inserted).
    pub fn original(&self, pos: usize) -> usize {
        let mut shift = 0;
        for &(at, len) in &self.inserts {
            if pos < at {
                break;
            }
            if pos < at + len {
                return at - shift;
            }
            shift += len;
        }
        pos - shift
    }

    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    Literal,
    Open,
    Close,
    Op,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Rewrite `source`; `None` when nothing needs rewriting (the common case costs one scan).
pub fn rewrite(source: &str, delimiters: &Delimiters) -> Option<(String, SourceMap)> {
    let (var_start, var_end) = (&delimiters.variable.0, &delimiters.variable.1);
    let (block_start, block_end) = (&delimiters.block.0, &delimiters.block.1);
    let (comment_start, comment_end) = (&delimiters.comment.0, &delimiters.comment.1);
    // (offset in the original source, text to insert, order among inserts at one offset)
    let mut inserts: Vec<(usize, &'static str, usize)> = Vec::new();
    let mut commas: Vec<usize> = Vec::new();
    let mut pos = 0;
    // The next offset of each opening delimiter, searched again only once passed: one scan of
    // the source in all (a 5 MB template has no comment, and must not be searched for one per
    // tag).
    let starts = [comment_start, block_start, var_start];
    let mut found: [Option<usize>; 3] = [Some(0); 3];
    let mut searched = [false; 3];
    while pos < source.len() {
        for k in 0..3 {
            if !searched[k] || found[k].is_some_and(|f| f < pos) {
                found[k] = source[pos..].find(starts[k].as_str()).map(|i| pos + i);
                searched[k] = true;
            }
        }
        let next = (0..3u8)
            .filter_map(|k| found[usize::from(k)].map(|at| (at, k)))
            .min();
        let Some((tag, kind)) = next else { break };
        match kind {
            0 => {
                let body = tag + comment_start.len();
                pos = match source[body..].find(comment_end.as_str()) {
                    Some(e) => body + e + comment_end.len(),
                    None => source.len(),
                };
            }
            _ => {
                let (open_len, end) = if kind == 1 {
                    (block_start.len(), block_end.as_str())
                } else {
                    (var_start.len(), var_end.as_str())
                };
                let mut body = tag + open_len;
                if matches!(source.as_bytes().get(body), Some(b'-' | b'+')) {
                    body += 1;
                }
                let Some((toks, after)) = lex(source, body, end) else {
                    break; // unterminated: minijinja reports it
                };
                pos = after;
                if kind == 1 {
                    let first = toks.first().map(|t| &source[t.start..t.end]);
                    if first == Some("raw") {
                        pos = skip_raw(source, after, block_start, block_end);
                        continue;
                    }
                    if first == Some("do") && toks.len() > 1 {
                        inserts.push((toks[1].start, "__initbox_do(", 0));
                        inserts.push((toks[toks.len() - 1].end, ")", 0));
                    }
                }
                percent(source, &toks, &mut inserts, &mut commas);
            }
        }
    }
    if inserts.is_empty() {
        return None;
    }
    // At one offset, closing parentheses come before opening calls, and an outer call (a
    // larger order) opens before an inner one.
    inserts.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| (a.1 != ")").cmp(&(b.1 != ")")))
            .then_with(|| b.2.cmp(&a.2))
    });
    let mut out = String::with_capacity(source.len() + inserts.len() * 16);
    let mut map = SourceMap::default();
    // `%` operators become commas: one byte for one, in source order.
    commas.sort_unstable();
    let mut commas = commas.into_iter().peekable();
    let mut copy_to = |out: &mut String, from: usize, to: usize| {
        let mut p = from;
        while let Some(c) = commas.next_if(|&c| c < to) {
            out.push_str(&source[p..c]);
            out.push(',');
            p = c + 1;
        }
        out.push_str(&source[p..to]);
    };
    let mut last = 0;
    for (at, text, _) in inserts {
        copy_to(&mut out, last, at);
        map.inserts.push((out.len(), text.len()));
        out.push_str(text);
        last = at;
    }
    copy_to(&mut out, last, source.len());
    Some((out, map))
}

/// Skip a `{% raw %}` block's body and its `{% endraw %}` tag.
fn skip_raw(source: &str, from: usize, block_start: &str, block_end: &str) -> usize {
    let mut p = from;
    while let Some(i) = source[p..].find(block_start) {
        let mut q = p + i + block_start.len();
        if matches!(source.as_bytes().get(q), Some(b'-' | b'+')) {
            q += 1;
        }
        let word = source[q..].trim_start();
        if word.starts_with("endraw") {
            let after = source.len() - word.len() + "endraw".len();
            return match source[after..].find(block_end) {
                Some(e) => after + e + block_end.len(),
                None => source.len(),
            };
        }
        p = q;
    }
    source.len()
}

/// The tokens of a tag's code from `from` up to its end delimiter (a `-`/`+` before it is
/// whitespace control), and the offset after the delimiter; `None` if the tag never ends.
fn lex(source: &str, from: usize, end: &str) -> Option<(Vec<Tok>, usize)> {
    let b = source.as_bytes();
    let mut toks = Vec::new();
    let mut depth = 0i32;
    let mut p = from;
    loop {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        if p >= b.len() {
            return None;
        }
        if depth <= 0 {
            if matches!(b[p], b'-' | b'+') && source[p + 1..].starts_with(end) {
                return Some((toks, p + 1 + end.len()));
            }
            if source[p..].starts_with(end) {
                return Some((toks, p + end.len()));
            }
        }
        let start = p;
        let c = b[p];
        let kind = match c {
            b'"' | b'\'' => {
                p += 1;
                while p < b.len() && b[p] != c {
                    p += if b[p] == b'\\' { 2 } else { 1 };
                }
                p = (p + 1).min(b.len());
                Kind::Literal
            }
            b'0'..=b'9' => {
                while p < b.len() && (b[p].is_ascii_alphanumeric() || matches!(b[p], b'.' | b'_')) {
                    p += 1;
                }
                Kind::Literal
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                p += 1;
                Kind::Open
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                p += 1;
                Kind::Close
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                while p < b.len() && (b[p] == b'_' || b[p].is_ascii_alphanumeric() || b[p] >= 0x80)
                {
                    p += 1;
                }
                Kind::Name
            }
            _ => {
                let two = source.get(p..p + 2).unwrap_or("");
                p += if matches!(two, "//" | "**" | "==" | "!=" | "<=" | ">=") {
                    2
                } else {
                    1
                };
                Kind::Op
            }
        };
        // Never split a character: the end of a token is moved to a boundary.
        while !source.is_char_boundary(p.min(b.len())) {
            p += 1;
        }
        p = p.min(b.len());
        toks.push(Tok {
            kind,
            start,
            end: p,
        });
    }
}

/// Record the rewrite of every `%` operator among `toks`.
fn percent(
    source: &str,
    toks: &[Tok],
    inserts: &mut Vec<(usize, &'static str, usize)>,
    commas: &mut Vec<usize>,
) {
    let text = |t: &Tok| &source[t.start..t.end];
    let is_op = |i: usize, ops: &[&str]| {
        toks.get(i)
            .is_some_and(|t| t.kind == Kind::Op && ops.contains(&text(t)))
    };
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Op || text(t) != "%" {
            continue;
        }
        let (Some(left), Some(right)) = (
            left_operand(source, toks, i),
            right_operand(source, toks, i),
        ) else {
            continue; // not an operator minijinja could read: leave its error alone
        };
        // How many `%` operators of this chain come before: outer calls open first.
        let order = (left..i).filter(|&k| is_op(k, &["%"])).count();
        inserts.push((toks[left].start, "__initbox_mod(", order));
        inserts.push((toks[right].end, ")", order));
        commas.push(t.start);
    }
}

const KEYWORDS: &[&str] = &["and", "or", "not", "in", "is", "if", "else"];

/// The first token of the left operand of the `%` at `i` (`%` binds like `*` and `/`, left to
/// right, over unary signs, `**`, attributes, calls, subscripts and filters).
fn left_operand(source: &str, toks: &[Tok], i: usize) -> Option<usize> {
    let text = |t: &Tok| &source[t.start..t.end];
    let mut j = i.checked_sub(1)?;
    let mut start = None;
    loop {
        let t = toks[j];
        match t.kind {
            Kind::Close => {
                // Jump to the matching opener.
                let mut depth = 0;
                let mut k = j;
                loop {
                    match toks[k].kind {
                        Kind::Close => depth += 1,
                        Kind::Open => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k = k.checked_sub(1)?;
                }
                start = Some(k);
                // A call or subscript: the group belongs to what stands before it.
                match k.checked_sub(1).map(|p| toks[p]) {
                    Some(p)
                        if matches!(p.kind, Kind::Name | Kind::Close | Kind::Literal)
                            && !KEYWORDS.contains(&text(&p)) =>
                    {
                        j = k - 1;
                        continue;
                    }
                    _ => {}
                }
            }
            Kind::Name if KEYWORDS.contains(&text(&t)) => return start,
            Kind::Name | Kind::Literal => start = Some(j),
            Kind::Open => return start,
            Kind::Op => return start,
        }
        // What stands before the atom: an operator that binds at least as tightly continues it.
        let Some(p) = start?.checked_sub(1) else {
            return start;
        };
        let prev = toks[p];
        if prev.kind != Kind::Op {
            return start;
        }
        match text(&prev) {
            "." | "|" | "*" | "/" | "//" | "%" | "**" => {
                j = p.checked_sub(1)?;
            }
            "-" | "+" => {
                // A unary sign (nothing, an operator, an opener or a keyword before it)
                // belongs to the operand; a binary one ends it.
                let unary = match p.checked_sub(1).map(|q| toks[q]) {
                    None => true,
                    Some(q) => {
                        matches!(q.kind, Kind::Op | Kind::Open)
                            || (q.kind == Kind::Name && KEYWORDS.contains(&text(&q)))
                    }
                };
                if !unary {
                    return start;
                }
                start = Some(p);
                match p.checked_sub(1) {
                    Some(q)
                        if toks[q].kind == Kind::Op
                            && matches!(text(&toks[q]), "*" | "/" | "//" | "%" | "**") =>
                    {
                        j = q.checked_sub(1)?;
                    }
                    _ => return start,
                }
            }
            _ => return start,
        }
    }
}

/// The last token of the right operand of the `%` at `i`: unary signs, then a primary with
/// its attributes, calls, subscripts, filters and `**` powers.
fn right_operand(source: &str, toks: &[Tok], i: usize) -> Option<usize> {
    let text = |t: &Tok| &source[t.start..t.end];
    let group_end = |k: usize| -> Option<usize> {
        let mut depth = 0;
        for (m, t) in toks.iter().enumerate().skip(k) {
            match t.kind {
                Kind::Open => depth += 1,
                Kind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(m);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let mut j = i + 1;
    let primary = |mut j: usize| -> Option<usize> {
        while toks
            .get(j)
            .is_some_and(|t| t.kind == Kind::Op && matches!(text(t), "-" | "+"))
        {
            j += 1;
        }
        let t = toks.get(j)?;
        match t.kind {
            Kind::Name if KEYWORDS.contains(&text(t)) => None,
            Kind::Name | Kind::Literal => Some(j),
            Kind::Open => group_end(j),
            _ => None,
        }
    };
    let mut last = primary(j)?;
    loop {
        j = last + 1;
        let Some(t) = toks.get(j) else {
            return Some(last);
        };
        match (t.kind, text(t)) {
            (Kind::Open, "(" | "[") => last = group_end(j)?,
            (Kind::Op, ".") => {
                let n = toks.get(j + 1)?;
                if !matches!(n.kind, Kind::Name | Kind::Literal) {
                    return None;
                }
                last = j + 1;
            }
            (Kind::Op, "|") => {
                let n = toks.get(j + 1)?;
                if n.kind != Kind::Name {
                    return None;
                }
                last = j + 1;
            }
            (Kind::Op, "**") => last = primary(j + 1)?,
            _ => return Some(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(s: &str) -> String {
        rewrite(s, &Delimiters::default()).map_or_else(|| s.to_string(), |(r, _)| r)
    }

    #[test]
    fn percent_operands_follow_jinja2_precedence() {
        let m = MOD_FUNCTION;
        assert_eq!(rw("{{ '%s' % x }}"), format!("{{{{ {m}('%s' , x) }}}}"));
        // Left-associative chains, `*` on the left, `+` outside, filters and calls inside.
        assert_eq!(
            rw("{{ a % b % c }}"),
            format!("{{{{ {m}({m}(a , b) , c) }}}}")
        );
        assert_eq!(
            rw("{{ 1 + a * b % c - d }}"),
            format!("{{{{ 1 + {m}(a * b , c) - d }}}}")
        );
        assert_eq!(
            rw("{{ x.y|f(1) % z.w[0](q)|g }}"),
            format!("{{{{ {m}(x.y|f(1) , z.w[0](q)|g) }}}}")
        );
        assert_eq!(
            rw("{% if loop.index % 2 == 0 %}"),
            format!("{{% if {m}(loop.index , 2) == 0 %}}")
        );
        assert_eq!(
            rw("{{ -a % -b ** 2 }}"),
            format!("{{{{ {m}(-a , -b ** 2) }}}}")
        );
        assert_eq!(
            rw("{{ '%s' % ('%d' % n) }}"),
            format!("{{{{ {m}('%s' , ({m}('%d' , n))) }}}}")
        );
        assert_eq!(
            rw("{{ f(a % b, c) }}"),
            format!("{{{{ f({m}(a , b), c) }}}}")
        );
    }

    #[test]
    fn text_strings_comments_and_raw_blocks_are_left_alone() {
        for s in [
            "100% {{ '50%' }} {# a % b #}",
            "{% raw %}{{ a % b }}{% do x %}{% endraw %}",
            "{%- raw -%} {{ a % b }} {%- endraw %}",
            "{{ \"it's %s\" }}",
            "{% do f(1) %}x",
        ] {
            let out = rw(s);
            assert!(!out.contains(MOD_FUNCTION), "{s}: {out}");
        }
        // A call is wrapped too: the result is the same.
        assert_eq!(
            rw("{%- do ns.n + 1 -%}"),
            format!("{{%- do {DO_FUNCTION}(ns.n + 1) -%}}")
        );
    }

    #[test]
    fn custom_delimiters_are_honoured() {
        let d = Delimiters::parse("[[ ]]").unwrap();
        let (out, _) = rewrite("{{ a % b }} [[ a % b ]] [% do x %]", &d).unwrap();
        assert_eq!(
            out,
            format!("{{{{ a % b }}}} [[ {MOD_FUNCTION}(a , b) ]] [% do {DO_FUNCTION}(x) %]")
        );
    }

    #[test]
    fn the_source_map_gives_back_original_offsets() {
        let src = "ab {{ x % y }} {{ z }}";
        let (out, map) = rewrite(src, &Delimiters::default()).unwrap();
        let z = out.find('z').unwrap();
        assert_eq!(map.original(z), src.find('z').unwrap());
        let x = out.find("x ,").unwrap();
        assert_eq!(map.original(x), src.find('x').unwrap());
        // Inside an insertion: where it was inserted.
        let call = out.find(MOD_FUNCTION).unwrap();
        assert_eq!(map.original(call + 3), src.find('x').unwrap());
        assert_eq!(map.original(0), 0);
    }

    #[test]
    fn unterminated_and_odd_tags_do_not_panic() {
        for s in [
            "{{ a %",
            "{{ % }}",
            "{{ a % }}",
            "{% do %}",
            "{{ 'é' % é }}",
            "{{ (a % b }}",
            "{{ a %) }}",
            "{% raw %}{{ a % b }}",
        ] {
            let _ = rewrite(s, &Delimiters::default());
        }
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any mix of tag pieces: no panic, and every offset maps back into the original.
        #[test]
        fn fuzz_rewrite_never_panics_and_maps_inside_the_source(parts in proptest::collection::vec(
            prop_oneof![
                Just("{{"), Just("}}"), Just("{%"), Just("%}"), Just("{#"), Just("#}"), Just("%"),
                Just(" a "), Just("'x%'"), Just("\"%s\""), Just("("), Just(")"), Just("["),
                Just("]"), Just("do "), Just("raw"), Just("endraw"), Just("-"), Just("+"),
                Just("é"), Just("|f"), Just(".b"), Just("**"), Just("\\"), Just("not"),
            ],
            0..40,
        )) {
            let s: String = parts.concat();
            if let Some((out, map)) = rewrite(&s, &Delimiters::default()) {
                prop_assert!(out.len() > s.len());
                for i in 0..=out.len() {
                    prop_assert!(map.original(i) <= s.len());
                }
            }
        }
    }
}
