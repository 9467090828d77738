//! Reading SUMO's XML with every problem located: `file:line: element/attribute: what`.
//! A thin layer over `roxmltree` (which keeps byte offsets, turned into lines here).

use roxmltree::{Document, Node};

/// A SUMO file given to the import: its name (for messages) and its text.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

/// A problem in a SUMO file, located: `file:line: place: message`, where `place` is the
/// element or `element/attribute`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {place}: {message}")]
pub struct SumoError {
    pub file: String,
    pub line: usize,
    pub place: String,
    pub message: String,
}

/// A parsed file: the document, its name, and where its lines start.
pub struct Xml<'a> {
    pub file: &'a str,
    pub doc: Document<'a>,
    /// Byte offset of the start of every line after the first.
    line_starts: Vec<usize>,
}

impl<'a> Xml<'a> {
    /// Parse a file; malformed XML is a located error.
    pub fn parse(src: Source<'a>) -> Result<Xml<'a>, SumoError> {
        match Document::parse(src.text) {
            Ok(doc) => Ok(Xml {
                file: src.file,
                doc,
                line_starts: src
                    .text
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1)
                    .collect(),
            }),
            Err(e) => Err(SumoError {
                file: src.file.to_string(),
                line: e.pos().row as usize,
                place: "xml".into(),
                message: format!("not well-formed XML: {e}"),
            }),
        }
    }

    /// Line of a byte offset (1-based), in logarithmic time (large nets have many elements).
    pub fn line_at(&self, pos: usize) -> usize {
        self.line_starts.partition_point(|s| *s <= pos) + 1
    }

    /// Line where an element starts.
    pub fn line(&self, n: Node) -> usize {
        self.line_at(n.range().start)
    }

    /// An error at an element.
    pub fn err(&self, n: Node, message: impl Into<String>) -> SumoError {
        SumoError {
            file: self.file.to_string(),
            line: self.line(n),
            place: n.tag_name().name().to_string(),
            message: message.into(),
        }
    }

    /// An error at an attribute of an element (at the attribute's line when it has one).
    pub fn err_attr(&self, n: Node, attr: &str, message: impl Into<String>) -> SumoError {
        let line = n
            .attribute_node(attr)
            .map(|a| self.line_at(a.range().start))
            .unwrap_or_else(|| self.line(n));
        SumoError {
            file: self.file.to_string(),
            line,
            place: format!("{}/{attr}", n.tag_name().name()),
            message: message.into(),
        }
    }

    /// A required attribute.
    pub fn req<'n>(&self, n: Node<'n, 'a>, attr: &str) -> Result<&'n str, SumoError> {
        n.attribute(attr)
            .ok_or_else(|| self.err_attr(n, attr, "missing attribute"))
    }

    /// A required number.
    pub fn req_f64(&self, n: Node, attr: &str) -> Result<f64, SumoError> {
        let v = self.req(n, attr)?;
        self.num(n, attr, v)
    }

    /// An optional number.
    pub fn opt_f64(&self, n: Node, attr: &str) -> Result<Option<f64>, SumoError> {
        match n.attribute(attr) {
            None => Ok(None),
            Some(v) => self.num(n, attr, v).map(Some),
        }
    }

    fn num(&self, n: Node, attr: &str, v: &str) -> Result<f64, SumoError> {
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.err_attr(n, attr, format!("{v:?} is not a number"))),
        }
    }

    /// A required non-negative whole number.
    pub fn req_index(&self, n: Node, attr: &str) -> Result<usize, SumoError> {
        let v = self.req(n, attr)?;
        v.trim()
            .parse::<usize>()
            .map_err(|_| self.err_attr(n, attr, format!("{v:?} is not a non-negative integer")))
    }

    /// The root element, which must be one of `names`.
    pub fn root(&self, names: &[&str]) -> Result<Node<'_, 'a>, SumoError> {
        let r = self.doc.root_element();
        if names.contains(&r.tag_name().name()) {
            Ok(r)
        } else {
            Err(self.err(
                r,
                format!(
                    "unexpected root element; expected <{}>",
                    names.join("> or <")
                ),
            ))
        }
    }
}

/// A SUMO time: seconds (`"42"`, `"42.5"`) or `HH:MM:SS` / `D:HH:MM:SS`.
pub fn parse_time(v: &str) -> Option<f64> {
    let v = v.trim();
    if let Ok(x) = v.parse::<f64>() {
        return x.is_finite().then_some(x);
    }
    let parts: Vec<&str> = v.split(':').collect();
    if !(3..=4).contains(&parts.len()) {
        return None;
    }
    let mut total = 0.0;
    let scale = [86_400.0, 3600.0, 60.0, 1.0];
    let off = 4 - parts.len();
    for (k, p) in parts.iter().enumerate() {
        let x: f64 = p.parse().ok()?;
        total += x * scale[off + k];
    }
    Some(total)
}

impl Xml<'_> {
    /// A required time (seconds or `HH:MM:SS`).
    pub fn req_time(&self, n: Node, attr: &str) -> Result<f64, SumoError> {
        let v = self.req(n, attr)?;
        parse_time(v).ok_or_else(|| self.err_attr(n, attr, format!("{v:?} is not a time")))
    }

    /// An optional time.
    pub fn opt_time(&self, n: Node, attr: &str) -> Result<Option<f64>, SumoError> {
        match n.attribute(attr) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| self.err_attr(n, attr, format!("{v:?} is not a time"))),
        }
    }
}

/// Greenwave's id for a SUMO id: characters other than ASCII letters, digits, `_`, `-`, `.`
/// and `:` become `_`. Ids are otherwise kept as they are (an id longer than Greenwave's 64
/// characters is an error where it is read).
pub fn greenwave_id(sumo_id: &str) -> String {
    sumo_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ids() {
        assert_eq!(parse_time("42.5"), Some(42.5));
        assert_eq!(parse_time("01:00:05"), Some(3605.0));
        assert_eq!(parse_time("1:00:00:00"), Some(86_400.0));
        assert_eq!(parse_time("abc"), None);
        assert_eq!(greenwave_id("-1234#2"), "-1234_2");
        assert_eq!(greenwave_id("a b/c"), "a_b_c");
    }

    #[test]
    fn malformed_xml_is_located() {
        let e = Xml::parse(Source {
            file: "x.xml",
            text: "<net>\n  <edge id=\"a\">\n</net>\n",
        })
        .err()
        .expect("malformed");
        assert_eq!(e.file, "x.xml");
        assert_eq!(e.line, 3);
        assert!(e
            .to_string()
            .starts_with("x.xml:3: xml: not well-formed XML"));
    }

    #[test]
    fn lines_of_elements_and_attributes() {
        let src = Source {
            file: "x.xml",
            text: "<a>\n<b/>\n\n  <c\n  d=\"1\"/></a>",
        };
        let x = Xml::parse(src).unwrap();
        let lines: Vec<(String, usize)> = x
            .doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| (n.tag_name().name().to_string(), x.line(n)))
            .collect();
        assert_eq!(lines, [("a".into(), 1), ("b".into(), 2), ("c".into(), 4)]);
        let c = x.doc.descendants().find(|n| n.has_tag_name("c")).unwrap();
        assert_eq!(x.err_attr(c, "d", "bad").to_string(), "x.xml:5: c/d: bad");
        assert_eq!(
            x.req(c, "e").unwrap_err().to_string(),
            "x.xml:4: c/e: missing attribute"
        );
    }
}
