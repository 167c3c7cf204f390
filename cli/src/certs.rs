//! Certifications on the command line: `--cert KIND:NUMBER[:YYYY-MM-DD]` in, and the
//! way producers' and products' certifications are shown back.
//!
//! It must never invent a certification: an unknown kind or a malformed expiry is an
//! error, never an "unspecified" kind sent to the node.

use mart_proto::v1::{Certification, CertificationKind};
use serde::Serialize;

use crate::clock::check_date;

/// Parses `KIND:NUMBER[:YYYY-MM-DD]`, KIND one of halal, bpom, pirt, trademark.
pub fn parse(s: &str) -> Result<Certification, String> {
    let mut parts = s.splitn(3, ':');
    let kind_text = parts.next().unwrap_or_default();
    let number = parts.next().unwrap_or_default().trim();
    let expires_on = parts.next().unwrap_or_default().trim();
    let kind = kind_from_name(kind_text).ok_or_else(|| {
        format!("unknown certification kind '{kind_text}': use halal, bpom, pirt or trademark")
    })?;
    if number.is_empty() {
        return Err(format!(
            "'{s}' has no number: write KIND:NUMBER[:YYYY-MM-DD], e.g. halal:ID31110000123:2027-06-30"
        ));
    }
    if !expires_on.is_empty() {
        check_date(expires_on).map_err(|e| format!("expiry of '{s}': {e}"))?;
    }
    Ok(Certification {
        kind: kind as i32,
        number: number.to_string(),
        expires_on: expires_on.to_string(),
    })
}

fn kind_from_name(name: &str) -> Option<CertificationKind> {
    match name.trim().to_ascii_lowercase().as_str() {
        "halal" => Some(CertificationKind::Halal),
        "bpom" => Some(CertificationKind::Bpom),
        "pirt" | "p-irt" => Some(CertificationKind::Pirt),
        "trademark" | "merek" => Some(CertificationKind::Trademark),
        _ => None,
    }
}

/// The short name of a kind as the node sent it; unknown values show as a number.
fn kind_name(kind: i32) -> String {
    match CertificationKind::try_from(kind) {
        Ok(CertificationKind::Halal) => "halal".into(),
        Ok(CertificationKind::Bpom) => "bpom".into(),
        Ok(CertificationKind::Pirt) => "pirt".into(),
        Ok(CertificationKind::Trademark) => "trademark".into(),
        Ok(CertificationKind::Unspecified) => "unspecified".into(),
        Err(_) => format!("kind-{kind}"),
    }
}

/// A certification as JSON shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CertView {
    pub kind: String,
    pub number: String,
    /// `null` when the certification does not expire.
    pub expires_on: Option<String>,
}

impl From<&Certification> for CertView {
    fn from(c: &Certification) -> Self {
        CertView {
            kind: kind_name(c.kind),
            number: c.number.clone(),
            expires_on: (!c.expires_on.is_empty()).then(|| c.expires_on.clone()),
        }
    }
}

impl CertView {
    /// `halal ID311100 (until 2027-06-30)`.
    pub fn describe(&self) -> String {
        match &self.expires_on {
            Some(date) => format!("{} {} (until {date})", self.kind, self.number),
            None => format!("{} {}", self.kind, self.number),
        }
    }
}

pub fn views(certs: &[Certification]) -> Vec<CertView> {
    certs.iter().map(CertView::from).collect()
}

/// The kinds only, comma-separated, for list tables: `halal,bpom`.
pub fn kinds(certs: &[CertView]) -> String {
    let kinds: Vec<&str> = certs.iter().map(|c| c.kind.as_str()).collect();
    kinds.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_number_and_expiry() {
        let c = parse("halal:ID31110000123450321:2027-06-30").unwrap();
        assert_eq!(c.kind, CertificationKind::Halal as i32);
        assert_eq!(c.number, "ID31110000123450321");
        assert_eq!(c.expires_on, "2027-06-30");

        let c = parse("BPOM:TR 203 012 345").unwrap();
        assert_eq!(c.kind, CertificationKind::Bpom as i32);
        assert_eq!(c.number, "TR 203 012 345");
        assert_eq!(c.expires_on, "");

        assert_eq!(
            parse("pirt:2065303010123-26").unwrap().kind,
            CertificationKind::Pirt as i32
        );
        assert_eq!(
            parse("p-irt:1").unwrap().kind,
            CertificationKind::Pirt as i32
        );
        assert_eq!(
            parse("merek:IDM000123").unwrap().kind,
            CertificationKind::Trademark as i32
        );
    }

    #[test]
    fn refuses_bad_certifications() {
        assert!(parse("organic:123")
            .unwrap_err()
            .contains("unknown certification kind"));
        assert!(parse("halal").unwrap_err().contains("has no number"));
        assert!(parse("halal:").unwrap_err().contains("has no number"));
        assert!(parse("halal:123:2027-02-30")
            .unwrap_err()
            .contains("not a calendar date"));
        assert!(parse("halal:123:30/06/2027").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn shows_certifications() {
        let view = CertView::from(&parse("halal:ID311:2027-06-30").unwrap());
        assert_eq!(view.describe(), "halal ID311 (until 2027-06-30)");
        let none = CertView::from(&parse("trademark:IDM1").unwrap());
        assert_eq!(none.expires_on, None);
        assert_eq!(kinds(&[view, none]), "halal,trademark");
    }
}
