//! Editing a catalog after the fact: a node changes a product of the catalog it owns
//! (the hub: official products and prices of the provincial catalog), and the hub
//! promotes a district's local product into the provincial catalog, so that it
//! reaches every district.
//!
//! It must never edit a catalog this node does not own, and never change a SKU.

use super::held::View;
use super::{Engine, EngineError};
use crate::domain::catalog::{self, Product};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::DomainError;

impl Engine {
    /// Replaces a product of the catalog this node owns with `product` (same SKU).
    pub async fn update_product(&self, product: Product) -> Result<(Product, DocId), EngineError> {
        let product = product.validated()?;
        let own = {
            let mut docs = self.docs();
            let own = docs.own_catalog.clone();
            let owned = docs
                .held(&own)?
                .catalog()
                .is_some_and(|c| c.products.contains_key(&product.sku));
            if !owned {
                return Err(match Self::find_product(docs.catalogs(), &product.sku) {
                    Some((_, doc)) => DomainError::Forbidden {
                        doc: doc.to_string(),
                        reason: format!(
                            "{} belongs to {doc}; this node edits only {own}",
                            product.sku
                        ),
                    },
                    None => DomainError::UnknownSku(product.sku),
                }
                .into());
            }
            if !docs
                .catalogs()
                .any(|(_, c)| c.producers.contains_key(&product.producer_id))
            {
                return Err(DomainError::UnknownProducer(product.producer_id).into());
            }
            self.put_own_product(&mut docs, &product)?;
            own
        };
        self.after_local_write().await?;
        Ok((product, own))
    }

    /// At the hub: copies district `from`'s local product `sku` (and its producer, if
    /// the provincial catalog lacks it) into the provincial catalog.
    pub async fn promote_product(
        &self,
        sku: &str,
        from: &str,
    ) -> Result<(Product, DocId), EngineError> {
        self.hub_only("promoting a product into the provincial catalog")?;
        let from = NodeId::parse(from.trim()).map_err(|_| {
            DomainError::invalid("from_district", format!("not a node id: {from:?}"))
        })?;
        {
            let mut docs = self.docs();
            let local = DocId::LocalCatalog(from.clone());
            let source = docs
                .held
                .get(&local)
                .and_then(|h| h.catalog())
                .ok_or_else(|| DomainError::UnknownOutlet(from.to_string()))?;
            let product = source
                .products
                .get(sku.trim())
                .cloned()
                .ok_or_else(|| DomainError::UnknownSku(format!("{} in {local}", sku.trim())))?;
            let producer = source.producers.get(&product.producer_id).cloned();
            let provincial = docs.held(&DocId::ProvincialCatalog)?.catalog().cloned();
            let provincial = provincial.unwrap_or_default();
            if provincial.products.contains_key(&product.sku) {
                return Err(DomainError::DuplicateSku(product.sku).into());
            }
            let producer = producer.filter(|p| !provincial.producers.contains_key(&p.id));
            if producer.is_none() && !provincial.producers.contains_key(&product.producer_id) {
                return Err(DomainError::UnknownProducer(product.producer_id).into());
            }
            let held = docs.held_mut(&DocId::ProvincialCatalog)?;
            held.replica.commit(&self.store(), |tx| {
                if let Some(p) = &producer {
                    catalog::put_producer(tx, p)?;
                }
                catalog::put_product(tx, &product)
            })?;
            if let View::Catalog(c) = &mut held.view {
                if let Some(p) = producer {
                    c.producers.insert(p.id.clone(), p);
                }
                c.products.insert(product.sku.clone(), product.clone());
            }
        }
        self.after_local_write().await?;
        self.product(sku)
    }
}
