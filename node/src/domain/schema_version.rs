//! Which version of its schema a document was written by, and refusing one newer than
//! this build knows.
//!
//! A document may carry an integer `schema` at its root. None means version 1 (every
//! document written before versions existed, and every genesis: a genesis must stay
//! byte-identical on every node, so it never writes the field). A later build that
//! changes a schema writes its version there; this build then refuses to derive the
//! document (a derive error: a peer's bundle is refused before staging, a stored
//! document is quarantined) instead of misreading it. This must never read anything
//! but the one root key: it runs on every bundle applied.

use automerge::{ReadDoc, ScalarValue, Value};

use super::DomainError;

/// The newest schema version this build reads.
pub const SCHEMA_VERSION: i64 = 1;

const KEY: &str = "schema";

/// The schema version of `doc`: 1 when it carries none.
pub fn version(doc: &impl ReadDoc, doc_name: &str) -> Result<i64, DomainError> {
    match doc.get(automerge::ROOT, KEY) {
        Ok(None) => Ok(1),
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Int(v) => Ok(*v),
            ScalarValue::Uint(v) => i64::try_from(*v)
                .map_err(|_| DomainError::schema(doc_name, format!("{KEY} version {v}"))),
            other => Err(DomainError::schema(doc_name, format!("{KEY} is {other:?}"))),
        },
        Ok(Some(_)) => Err(DomainError::schema(doc_name, format!("{KEY} is an object"))),
        Err(e) => Err(DomainError::schema(doc_name, format!("{KEY}: {e}"))),
    }
}

/// Refuses a document written by a schema this build does not know.
pub fn check(doc: &impl ReadDoc, doc_name: &str) -> Result<(), DomainError> {
    match version(doc, doc_name)? {
        v if (1..=SCHEMA_VERSION).contains(&v) => Ok(()),
        v => Err(DomainError::schema(
            doc_name,
            format!(
                "written by schema version {v}; this build reads versions 1 to {SCHEMA_VERSION}: upgrade this node"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::Automerge;

    fn with(value: Option<ScalarValue>) -> Automerge {
        let mut doc = Automerge::new();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "movements", "x")?;
            if let Some(v) = value {
                tx.put(automerge::ROOT, KEY, v)?;
            }
            Ok(())
        })
        .unwrap();
        doc
    }

    #[test]
    fn no_field_is_version_one_and_a_newer_version_is_refused() {
        assert_eq!(version(&with(None), "d").unwrap(), 1);
        assert!(check(&with(None), "d").is_ok());
        assert!(check(&with(Some(ScalarValue::Int(1))), "d").is_ok());
        let newer = check(&with(Some(ScalarValue::Int(2))), "d").unwrap_err();
        assert!(newer.to_string().contains("schema version 2"), "{newer}");
        for bad in [
            ScalarValue::Int(0),
            ScalarValue::Int(-1),
            ScalarValue::Uint(u64::MAX),
            ScalarValue::Str("2".into()),
        ] {
            assert!(check(&with(Some(bad.clone())), "d").is_err(), "{bad:?}");
        }
    }
}
