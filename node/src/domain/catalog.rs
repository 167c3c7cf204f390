//! Producers (IKM) and products, and how a catalog document stores them.
//!
//! Schema of a catalog document: `producers` is a map from producer id to a map of
//! its fields, `products` a map from SKU to a map of its fields. Certifications are
//! one JSON string per entry, replaced as a whole. Only the document's owner writes
//! it, so concurrent edits come from one node's own history.

use std::collections::BTreeMap;

use automerge::{transaction::Transactable, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde::{Deserialize, Serialize};

use super::{bounds, districts, text, DomainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    Halal,
    Bpom,
    Pirt,
    Trademark,
}

impl CertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Halal => "halal",
            CertKind::Bpom => "bpom",
            CertKind::Pirt => "pirt",
            CertKind::Trademark => "trademark",
        }
    }
}

/// A certification the province helps a producer or product get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    pub kind: CertKind,
    pub number: String,
    /// `YYYY-MM-DD`, or `None` when it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<String>,
}

impl Certification {
    fn validated(self) -> Result<Self, DomainError> {
        Ok(Certification {
            kind: self.kind,
            number: text::required("certifications.number", &self.number)?,
            expires_on: self
                .expires_on
                .filter(|d| !d.is_empty())
                .map(|d| text::date("certifications.expires_on", &d))
                .transpose()?,
        })
    }
}

/// A small producer (IKM): a group or business with a leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    pub id: String,
    pub group_name: String,
    pub leader: String,
    pub village: String,
    pub subdistrict: String,
    /// District id, one of [`districts::ALL`].
    pub district: String,
    pub certifications: Vec<Certification>,
}

impl Producer {
    /// Checks and normalises every field; the error names the first bad field.
    pub fn validated(self) -> Result<Self, DomainError> {
        let district = text::identifier("district", &self.district)?;
        if districts::find(&district).is_none() {
            return Err(DomainError::invalid(
                "district",
                format!("unknown district {district:?}"),
            ));
        }
        Ok(Producer {
            id: text::identifier("id", &self.id)?,
            group_name: text::required("group_name", &self.group_name)?,
            leader: text::optional("leader", &self.leader)?,
            village: text::optional("village", &self.village)?,
            subdistrict: text::optional("subdistrict", &self.subdistrict)?,
            district,
            certifications: validated_certs(self.certifications)?,
        })
    }
}

/// A product an outlet sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub producer_id: String,
    pub category: String,
    /// Unit of sale, e.g. `60 ml bottle`.
    pub unit: String,
    pub price_rupiah: i64,
    pub certifications: Vec<Certification>,
    /// Stock at or below this is listed as low at the hub; 0 for the default level.
    pub reorder_level: i64,
}

impl Product {
    /// Checks and normalises every field; the error names the first bad field.
    pub fn validated(self) -> Result<Self, DomainError> {
        Ok(Product {
            sku: text::identifier("sku", &self.sku)?,
            name: text::required("name", &self.name)?,
            producer_id: text::identifier("producer_id", &self.producer_id)?,
            category: text::required("category", &self.category)?,
            unit: text::required("unit", &self.unit)?,
            price_rupiah: bounds::unit_rupiah("price_rupiah", self.price_rupiah)?,
            certifications: validated_certs(self.certifications)?,
            reorder_level: bounds::quantity_or_zero("reorder_level", self.reorder_level)?,
        })
    }
}

fn validated_certs(certs: Vec<Certification>) -> Result<Vec<Certification>, DomainError> {
    const MAX_CERTS: usize = 16;
    if certs.len() > MAX_CERTS {
        return Err(DomainError::invalid(
            "certifications",
            format!("at most {MAX_CERTS} allowed, got {}", certs.len()),
        ));
    }
    certs.into_iter().map(Certification::validated).collect()
}

/// The contents of one catalog document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub producers: BTreeMap<String, Producer>,
    pub products: BTreeMap<String, Product>,
}

const PRODUCERS: &str = "producers";
const PRODUCTS: &str = "products";

/// Creates the empty maps of a new catalog document.
pub fn init(tx: &mut impl Transactable) -> Result<(), automerge::AutomergeError> {
    tx.put_object(ROOT, PRODUCERS, ObjType::Map)?;
    tx.put_object(ROOT, PRODUCTS, ObjType::Map)?;
    Ok(())
}

/// Writes a producer (already validated) into a catalog document.
pub fn put_producer(
    tx: &mut impl Transactable,
    producer: &Producer,
) -> Result<(), automerge::AutomergeError> {
    let producers = child_map(tx, PRODUCERS)?;
    let obj = tx.put_object(&producers, producer.id.as_str(), ObjType::Map)?;
    tx.put(&obj, "group_name", producer.group_name.as_str())?;
    tx.put(&obj, "leader", producer.leader.as_str())?;
    tx.put(&obj, "village", producer.village.as_str())?;
    tx.put(&obj, "subdistrict", producer.subdistrict.as_str())?;
    tx.put(&obj, "district", producer.district.as_str())?;
    tx.put(&obj, "certifications", certs_json(&producer.certifications))?;
    Ok(())
}

/// Writes a product (already validated) into a catalog document.
pub fn put_product(
    tx: &mut impl Transactable,
    product: &Product,
) -> Result<(), automerge::AutomergeError> {
    let products = child_map(tx, PRODUCTS)?;
    let obj = tx.put_object(&products, product.sku.as_str(), ObjType::Map)?;
    tx.put(&obj, "name", product.name.as_str())?;
    tx.put(&obj, "producer", product.producer_id.as_str())?;
    tx.put(&obj, "category", product.category.as_str())?;
    tx.put(&obj, "unit", product.unit.as_str())?;
    tx.put(&obj, "price", ScalarValue::Int(product.price_rupiah))?;
    tx.put(&obj, "certifications", certs_json(&product.certifications))?;
    if product.reorder_level > 0 {
        tx.put(&obj, "reorder", ScalarValue::Int(product.reorder_level))?;
    }
    Ok(())
}

fn certs_json(certs: &[Certification]) -> String {
    serde_json::to_string(certs).expect("certifications serialize")
}

fn child_map(doc: &impl ReadDoc, key: &str) -> Result<ObjId, automerge::AutomergeError> {
    match doc.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Err(automerge::AutomergeError::InvalidObjId(key.to_string())),
    }
}

/// Reads a whole catalog document. `doc_name` only labels errors.
pub fn read(doc: &impl ReadDoc, doc_name: &str) -> Result<Catalog, DomainError> {
    let fields = FieldReader { doc, doc_name };
    let mut catalog = Catalog::default();
    let producers = child_map(doc, PRODUCERS).map_err(|e| DomainError::schema(doc_name, e))?;
    for id in doc.keys(&producers) {
        let obj = fields.object(&producers, &id)?;
        catalog.producers.insert(
            id.clone(),
            Producer {
                group_name: fields.string(&obj, "group_name")?,
                leader: fields.string(&obj, "leader")?,
                village: fields.string(&obj, "village")?,
                subdistrict: fields.string(&obj, "subdistrict")?,
                district: fields.string(&obj, "district")?,
                certifications: fields.certs(&obj)?,
                id,
            },
        );
    }
    let products = child_map(doc, PRODUCTS).map_err(|e| DomainError::schema(doc_name, e))?;
    for sku in doc.keys(&products) {
        let obj = fields.object(&products, &sku)?;
        catalog.products.insert(
            sku.clone(),
            Product {
                name: fields.string(&obj, "name")?,
                producer_id: fields.string(&obj, "producer")?,
                category: fields.string(&obj, "category")?,
                unit: fields.string(&obj, "unit")?,
                price_rupiah: fields.bounded(
                    &sku,
                    bounds::unit_rupiah("price_rupiah", fields.int(&obj, "price")?),
                )?,
                certifications: fields.certs(&obj)?,
                reorder_level: fields.bounded(
                    &sku,
                    bounds::quantity_or_zero(
                        "reorder_level",
                        match doc.get(&obj, "reorder") {
                            Ok(Some((Value::Scalar(v), _))) => v.as_i64().unwrap_or(0),
                            _ => 0,
                        },
                    ),
                )?,
                sku,
            },
        );
    }
    Ok(catalog)
}

struct FieldReader<'a, D> {
    doc: &'a D,
    doc_name: &'a str,
}

impl<D: ReadDoc> FieldReader<'_, D> {
    /// A number of product `sku` checked against its bound: beyond it, the document
    /// breaks its schema (the same bound a local write keeps).
    fn bounded(&self, sku: &str, checked: Result<i64, DomainError>) -> Result<i64, DomainError> {
        checked.map_err(|e| DomainError::schema(self.doc_name, format!("product {sku}: {e}")))
    }

    fn scalar(&self, obj: &ObjId, key: &str) -> Result<ScalarValue, DomainError> {
        match self.doc.get(obj, key) {
            Ok(Some((Value::Scalar(value), _))) => Ok(value.into_owned()),
            _ => Err(DomainError::schema(
                self.doc_name,
                format!("missing field {key}"),
            )),
        }
    }

    fn object(&self, parent: &ObjId, key: &str) -> Result<ObjId, DomainError> {
        match self.doc.get(parent, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
            _ => Err(DomainError::schema(
                self.doc_name,
                format!("entry {key} is not a map"),
            )),
        }
    }

    fn string(&self, obj: &ObjId, key: &str) -> Result<String, DomainError> {
        match self.scalar(obj, key)? {
            ScalarValue::Str(s) => Ok(s.to_string()),
            other => Err(DomainError::schema(
                self.doc_name,
                format!("field {key} is {other:?}, not text"),
            )),
        }
    }

    fn int(&self, obj: &ObjId, key: &str) -> Result<i64, DomainError> {
        match self.scalar(obj, key)? {
            ScalarValue::Int(i) => Ok(i),
            other => Err(DomainError::schema(
                self.doc_name,
                format!("field {key} is {other:?}, not an integer"),
            )),
        }
    }

    fn certs(&self, obj: &ObjId) -> Result<Vec<Certification>, DomainError> {
        let json = self.string(obj, "certifications")?;
        serde_json::from_str(&json).map_err(|e| DomainError::schema(self.doc_name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seed;
    use automerge::Automerge;

    #[test]
    fn catalog_round_trips_through_a_document() {
        let mut doc = Automerge::new();
        let sample = seed::provincial_catalog();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            init(tx)?;
            for p in sample.producers.values() {
                put_producer(tx, p)?;
            }
            for p in sample.products.values() {
                put_product(tx, p)?;
            }
            Ok(())
        })
        .unwrap();
        let loaded = Automerge::load(&doc.save()).unwrap();
        assert_eq!(read(&loaded, "catalog/province").unwrap(), sample);
    }

    #[test]
    fn validation_names_the_field() {
        let mut product = seed::provincial_catalog()
            .products
            .into_values()
            .next()
            .unwrap();
        product.price_rupiah = -5;
        let err = product.validated().unwrap_err();
        assert!(
            matches!(
                err,
                DomainError::InvalidField {
                    field: "price_rupiah",
                    ..
                }
            ),
            "{err}"
        );
    }
}
