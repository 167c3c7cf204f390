//! CSV for spreadsheets and scripts: one record per line, fields quoted as RFC 4180
//! says (a field holding a comma, a double quote or a line break is put in double
//! quotes, its double quotes doubled).
//!
//! It must never change a value: no trimming, no thousands separators, no "Rp";
//! callers pass amounts as plain integers. Lines end with LF, as the other Unix
//! tools an operator pipes into expect (spreadsheets read LF as well as CRLF).

use std::borrow::Cow;

/// One field, quoted when RFC 4180 requires it.
pub fn field(value: &str) -> Cow<'_, str> {
    if value.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

/// One record: the fields joined by commas, ending with a line break.
pub fn record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(field("ttu"), "ttu");
        assert_eq!(field(""), "");
        assert_eq!(field("Se'i babi"), "Se'i babi");
        assert_eq!(field("Kupang, NTT"), "\"Kupang, NTT\"");
        assert_eq!(field("60 ml \"botol\""), "\"60 ml \"\"botol\"\"\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
        assert_eq!(field("a\r\nb"), "\"a\r\nb\"");
    }

    #[test]
    fn records_join_fields_and_end_the_line() {
        assert_eq!(record(&["date", "units"]), "date,units\n");
        assert_eq!(
            record(&["2026-11-30", "Kupang, NTT", "105000"]),
            "2026-11-30,\"Kupang, NTT\",105000\n"
        );
        assert_eq!(record(&[""; 3]), ",,\n");
    }

    /// Splits one record the RFC 4180 way, to check that quoting round-trips.
    fn parse(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut chars = line.strip_suffix('\n').unwrap().chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (false, ',') => fields.push(String::new()),
                (false, '"') => quoted = true,
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                (true, '"') => quoted = false,
                (_, c) => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }

    #[test]
    fn quoted_records_read_back_as_the_same_fields() {
        let values = [
            "plain",
            "with, comma",
            "\"quoted\"",
            "line\nbreak",
            "",
            "\",\"",
        ];
        assert_eq!(parse(&record(&values)), values);
    }
}
