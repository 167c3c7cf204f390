//! Validation of the identifiers and free text that cross the API (numbers: see
//! [`super::bounds`]).

use super::DomainError;

/// Longest free-text field (names, notes, villages) in bytes.
pub const MAX_TEXT_BYTES: usize = 200;
/// Longest identifier (SKU, producer id, request id, transfer id) in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// An identifier: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
pub fn identifier(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_ID_BYTES} bytes, got {}", value.len()),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(DomainError::invalid(
            field,
            format!("may hold only letters, digits, '-', '_' and '.', found {bad:?}"),
        ));
    }
    Ok(value.to_string())
}

/// Required free text: not empty after trimming, at most [`MAX_TEXT_BYTES`].
pub fn required(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = optional(field, value)?;
    if value.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    Ok(value)
}

/// Optional free text: at most [`MAX_TEXT_BYTES`], trimmed, no control characters.
pub fn optional(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.len() > MAX_TEXT_BYTES {
        return Err(DomainError::invalid(
            field,
            format!(
                "must be at most {MAX_TEXT_BYTES} bytes, got {}",
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A date written `YYYY-MM-DD` (calendar-checked, years 2000 to 2999).
pub fn date(field: &'static str, value: &str) -> Result<String, DomainError> {
    let bad = || DomainError::invalid(field, format!("must be a date YYYY-MM-DD, got {value:?}"));
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    // Digits only: `parse` alone would take "+1" for a month.
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || ![*y, *m, *d].into_iter().all(digits) {
        return Err(bad());
    }
    let (y, m, d): (u32, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(2000..=2999).contains(&y) || d == 0 || d > days {
        return Err(bad());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert_eq!(identifier("sku", " TTU-CJP-060 ").unwrap(), "TTU-CJP-060");
        assert!(identifier("sku", "").is_err());
        assert!(identifier("sku", "a b").is_err());
        assert!(identifier("sku", &"x".repeat(65)).is_err());
    }

    #[test]
    fn dates_are_calendar_checked() {
        assert!(date("expires_on", "2028-02-29").is_ok());
        assert!(date("expires_on", "2027-02-29").is_err());
        assert!(date("expires_on", "2027-13-01").is_err());
        assert!(date("expires_on", "27-01-01").is_err());
        assert!(date("expires_on", "2027-+1-01").is_err());
        assert!(date("expires_on", "+027-01-01").is_err());
    }

    #[test]
    fn text_rejects_control_characters_and_oversize() {
        assert!(required("name", "  ").is_err());
        assert!(optional("note", "a\u{0}b").is_err());
        assert!(optional("note", &"x".repeat(201)).is_err());
    }
}
