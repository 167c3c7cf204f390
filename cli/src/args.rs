//! Parsers for argument values shared by several commands: rupiah amounts, signed
//! quantities and the request ids that make movement retries safe.
//!
//! It must never round: rupiah are whole numbers, so `45.5` or `45,5` is an error,
//! not 45 or 46.

/// Parses a rupiah amount: `45000`, `45.000` (Indonesian grouping) or `Rp 45.000`.
pub fn rupiah(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("Rp")
        .or_else(|| t.strip_prefix("rp"))
        .unwrap_or(t)
        .trim_start();
    if t.contains(',') {
        return Err(format!("'{s}': rupiah are whole numbers, without decimals"));
    }
    if t.is_empty() || t.starts_with('-') {
        return Err(format!("'{s}' is not an amount in rupiah (e.g. 45000)"));
    }
    let groups: Vec<&str> = t.split('.').collect();
    let grouped_ok = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3));
    let digits = groups.concat();
    if !grouped_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{s}' is not an amount in rupiah: write 45000 or 45.000, whole rupiah only"
        ));
    }
    digits
        .parse::<i64>()
        .map_err(|_| format!("'{s}' is too large an amount"))
}

/// Parses a signed, non-zero change of stock, e.g. `-3` or `+2`.
pub fn signed_qty(s: &str) -> Result<i64, String> {
    let n: i64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if n == 0 {
        return Err("an adjustment must change stock: the quantity cannot be 0".into());
    }
    Ok(n)
}

/// A fresh request id, `martctl-` and 16 random hex digits, so a retried call is
/// recognised by the node as the same movement.
pub fn new_request_id() -> String {
    format!("martctl-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rupiah() {
        assert_eq!(rupiah("45000"), Ok(45_000));
        assert_eq!(rupiah("45.000"), Ok(45_000));
        assert_eq!(rupiah("1.250.000"), Ok(1_250_000));
        assert_eq!(rupiah("Rp 45.000"), Ok(45_000));
        assert_eq!(rupiah("Rp45000"), Ok(45_000));
        assert_eq!(rupiah("0"), Ok(0));
    }

    #[test]
    fn refuses_fractions_and_odd_grouping() {
        for bad in [
            "45.5",
            "45,50",
            "4.50.000",
            ".000",
            "45.",
            "-5000",
            "",
            "Rp",
            "abc",
            "1e6",
            "99999999999999999999",
        ] {
            assert!(rupiah(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn parses_signed_quantities() {
        assert_eq!(signed_qty("-3"), Ok(-3));
        assert_eq!(signed_qty("+2"), Ok(2));
        assert_eq!(signed_qty("12"), Ok(12));
        assert!(signed_qty("0").is_err());
        assert!(signed_qty("1.5").is_err());
        assert!(signed_qty("x").is_err());
        assert!(signed_qty("++2").is_err());
    }

    #[test]
    fn request_ids_are_fresh_and_well_formed() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "martctl-".len() + 16);
        assert!(a.starts_with("martctl-"));
        assert!(a[8..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
