//! Located problems: every error in a file names the file, the line and the field, e.g.
//! `grid4.toml:57: intersections[3].stages[1]: signal groups N_through and E_through conflict`.

use std::fmt;
use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a path into a document: a key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a document, rendered like `intersections[3].stages[1].groups`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    /// This path with a key appended.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        FieldPath(v)
    }
    /// This path with an index appended.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        FieldPath(v)
    }
    /// Parse the dotted form (`a[2].b`), as produced by `serde_path_to_error`.
    pub fn parse(s: &str) -> Self {
        let mut out = Vec::new();
        for part in s.split('.') {
            if part.is_empty() || part == "?" {
                continue;
            }
            let mut rest = part;
            if let Some(b) = rest.find('[') {
                if b > 0 {
                    out.push(Seg::Key(rest[..b].to_string()));
                }
                rest = &rest[b..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let Some(e) = stripped.find(']') else { break };
                    if let Ok(i) = stripped[..e].parse() {
                        out.push(Seg::Index(i));
                    }
                    rest = &stripped[e + 1..];
                }
            } else {
                out.push(Seg::Key(rest.to_string()));
            }
        }
        FieldPath(out)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            match s {
                Seg::Key(k) => {
                    if !first {
                        write!(f, ".")?;
                    }
                    write!(f, "{k}")?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line, when the problem can be placed.
    pub line: Option<usize>,
    /// The field the problem is about (empty for the whole file).
    pub path: FieldPath,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.path.0.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one or more files. Returned by the loaders; never only the first.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A problem found by a check that knows the field but not the file; the loader places it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: FieldPath,
    pub message: String,
}

impl Problem {
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The format version every file of this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Problems with a file's `kind` and `version` header.
pub fn check_header(kind: &str, version: u32, expected: &str) -> Vec<Problem> {
    let mut p = Vec::new();
    let root = FieldPath::root();
    if kind != expected {
        p.push(Problem::new(
            root.key("kind"),
            format!("expected {expected:?}, found {kind:?}"),
        ));
    }
    if version != FORMAT_VERSION {
        p.push(Problem::new(
            root.key("version"),
            format!("version {version} is not supported (this build reads {FORMAT_VERSION})"),
        ));
    }
    p
}

/// A TOML source kept with its spans, to turn field paths into line numbers.
pub struct SourceMap<'a> {
    pub file: String,
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: impl Into<String>, text: &'a str) -> Self {
        SourceMap {
            file: file.into(),
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The span of the deepest part of `path` that exists in the document.
    pub fn span(&self, path: &FieldPath) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        enum Node<'d> {
            Table(&'d Table),
            Item(&'d Item),
            Value(&'d Value),
        }
        let mut node = Node::Table(doc.as_table());
        let mut best: Option<Range<usize>> = None;
        for seg in &path.0 {
            let next = match (&node, seg) {
                (Node::Table(t), Seg::Key(k)) => {
                    let key_span = t.key(k).and_then(|k| k.span());
                    if key_span.is_some() {
                        best = key_span;
                    }
                    t.get(k).map(Node::Item)
                }
                (Node::Item(Item::Table(t)), Seg::Key(k)) => {
                    let key_span = t.key(k).and_then(|k| k.span());
                    if key_span.is_some() {
                        best = key_span;
                    }
                    t.get(k).map(Node::Item)
                }
                (Node::Item(Item::Value(Value::InlineTable(t))), Seg::Key(k))
                | (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => {
                    let key_span = t.key(k).and_then(|k| k.span());
                    if key_span.is_some() {
                        best = key_span;
                    }
                    t.get(k).map(Node::Value)
                }
                (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => a.get(*i).map(Node::Table),
                (Node::Item(Item::Value(Value::Array(a))), Seg::Index(i))
                | (Node::Value(Value::Array(a)), Seg::Index(i)) => a.get(*i).map(Node::Value),
                _ => None,
            };
            let Some(n) = next else { break };
            let s = match &n {
                Node::Table(t) => t.span(),
                Node::Item(i) => i.span(),
                Node::Value(v) => v.span(),
            };
            if s.is_some() {
                best = s;
            }
            node = n;
        }
        best
    }

    /// The line of the deepest part of `path` that exists in the document.
    pub fn line(&self, path: &FieldPath) -> Option<usize> {
        self.span(path).map(|s| self.line_of(s.start))
    }

    /// Place a problem in this file.
    pub fn locate(&self, p: Problem) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.line(&p.path),
            path: p.path,
            message: p.message,
        }
    }

    /// A problem with the file as a whole or at a known byte offset.
    pub fn at(
        &self,
        offset: Option<usize>,
        path: FieldPath,
        message: impl Into<String>,
    ) -> Diagnostic {
        let line = offset.map(|o| self.line_of(o)).or_else(|| self.line(&path));
        Diagnostic {
            file: self.file.clone(),
            line,
            path,
            message: message.into(),
        }
    }
}

/// A parser message on one line (`file:line: field: what` stays one line per problem).
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Read a text file; a failure is a diagnostic naming the file.
pub fn read_text(path: &std::path::Path) -> Result<String, Diagnostics> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: path.display().to_string(),
            line: None,
            path: FieldPath::root(),
            message: format!("cannot read: {e}"),
        }])
    })
}

/// Deserialize a TOML text into `T`, reporting the field path and line of the first problem
/// (serde stops at the first; semantic checks afterwards report every problem).
pub fn from_toml<T: serde::de::DeserializeOwned>(
    map: &SourceMap<'_>,
    text: &str,
) -> Result<T, Diagnostic> {
    let de = toml::Deserializer::new(text);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = FieldPath::parse(&e.path().to_string());
            let inner = e.into_inner();
            let message = one_line(inner.message());
            Err(map.at(inner.span().map(|s| s.start), path, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_and_parse() {
        let p = FieldPath::root()
            .key("intersections")
            .index(3)
            .key("stages")
            .index(1);
        assert_eq!(p.to_string(), "intersections[3].stages[1]");
        assert_eq!(FieldPath::parse("intersections[3].stages[1]"), p);
    }

    #[test]
    fn spans_find_lines() {
        let text = "a = 1\n[[t]]\nx = 1\n[[t]]\nx = 2\ny = [ {z = 1}, {z = 2} ]\n";
        let m = SourceMap::new("f.toml", text);
        assert_eq!(m.line(&FieldPath::parse("a")), Some(1));
        assert_eq!(m.line(&FieldPath::parse("t[1].x")), Some(5));
        assert_eq!(m.line(&FieldPath::parse("t[1].y[1].z")), Some(6));
        assert_eq!(m.line(&FieldPath::parse("t[1].nothing")), Some(4));
    }
}
