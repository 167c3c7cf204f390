//! A document as plain JSON, for a spreadsheet or a data team (`martctl export --json`).
//!
//! Walks any document generically: maps become objects, lists arrays, text strings,
//! counters numbers. Records the schema keeps as JSON text (a journal's movements, a
//! ledger's opening balances) are embedded as the objects they spell, never as
//! strings. Read-only: it never changes the document, and never fails on a value it
//! does not know (bytes become base64-free hex, an unknown scalar `null`).

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde_json::{Map, Value as Json};

/// The whole document from its root.
pub fn to_json(doc: &impl ReadDoc) -> Json {
    object(doc, &automerge::ROOT, ObjType::Map)
}

fn object(doc: &impl ReadDoc, obj: &ObjId, kind: ObjType) -> Json {
    match kind {
        ObjType::Map | ObjType::Table => {
            let mut out = Map::new();
            for key in doc.keys(obj) {
                if let Ok(Some((value, id))) = doc.get(obj, key.as_str()) {
                    out.insert(key, value_to_json(doc, value, &id));
                }
            }
            Json::Object(out)
        }
        ObjType::List => Json::Array(
            (0..doc.length(obj))
                .filter_map(|i| doc.get(obj, i).ok().flatten())
                .map(|(value, id)| value_to_json(doc, value, &id))
                .collect(),
        ),
        ObjType::Text => Json::String(doc.text(obj).unwrap_or_default()),
    }
}

fn value_to_json(doc: &impl ReadDoc, value: Value<'_>, id: &ObjId) -> Json {
    match value {
        Value::Object(kind) => object(doc, id, kind),
        Value::Scalar(scalar) => scalar_to_json(&scalar),
    }
}

fn scalar_to_json(scalar: &ScalarValue) -> Json {
    match scalar {
        ScalarValue::Str(text) => embedded(text),
        ScalarValue::Int(v) => Json::from(*v),
        ScalarValue::Uint(v) => Json::from(*v),
        ScalarValue::F64(v) => Json::from(*v),
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        ScalarValue::Timestamp(ms) => Json::from(*ms),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Bytes(bytes) => {
            Json::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
        ScalarValue::Null | ScalarValue::Unknown { .. } => Json::Null,
    }
}

/// A string that spells a JSON object or array is that object; any other string
/// (a name, a SKU, a number written as text) stays a string.
fn embedded(text: &str) -> Json {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value @ (Json::Object(_) | Json::Array(_))) = serde_json::from_str(text) {
            return value;
        }
    }
    Json::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ScalarValue};
    use serde_json::json;

    #[test]
    fn records_kept_as_json_text_become_objects_and_plain_strings_stay_strings() {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "opening", r#"{"TTU-CJP-060":4}"#)
            .unwrap();
        doc.put(automerge::ROOT, "name", "Minyak {kayu} putih")
            .unwrap();
        doc.put(automerge::ROOT, "broken", "{not json").unwrap();
        doc.put(automerge::ROOT, "sold", ScalarValue::counter(3))
            .unwrap();
        let list = doc
            .put_object(automerge::ROOT, "movements", ObjType::List)
            .unwrap();
        doc.insert(&list, 0, r#"{"id":"s-1","qty":-2}"#).unwrap();
        doc.insert(&list, 1, 7_i64).unwrap();
        let text = doc
            .put_object(automerge::ROOT, "note", ObjType::Text)
            .unwrap();
        doc.splice_text(&text, 0, 0, "tenun").unwrap();

        assert_eq!(
            to_json(&doc),
            json!({
                "opening": {"TTU-CJP-060": 4},
                "name": "Minyak {kayu} putih",
                "broken": "{not json",
                "sold": 3,
                "movements": [{"id": "s-1", "qty": -2}, 7],
                "note": "tenun",
            })
        );
    }

    #[test]
    fn an_empty_document_is_an_empty_object() {
        assert_eq!(to_json(&AutoCommit::new()), json!({}));
    }
}
