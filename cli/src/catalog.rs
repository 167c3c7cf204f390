//! `producer` and `product` commands: add to and read the catalog of the node.
//!
//! It must never write stock: the catalog says what exists and at what price, and
//! quantities move only through the movement commands.

use anyhow::Result;
use clap::Subcommand;
use mart_proto::v1::{
    AddProducerRequest, AddProductRequest, GetProductRequest, ListProducersRequest,
    ListProductsRequest, Producer, Product, PromoteProductRequest, UpdateProductRequest,
};
use serde::Serialize;

use crate::certs::{self, CertView};
use crate::output::{fields, print_json, rupiah, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Subcommand)]
pub enum ProducerCmd {
    /// Register a producer (IKM group or business)
    Add {
        /// Producer id, e.g. ikm-humusu
        #[arg(long)]
        id: String,
        /// Name of the group or business
        #[arg(long)]
        group_name: String,
        /// Leader's name
        #[arg(long)]
        leader: String,
        /// Village (desa/kelurahan)
        #[arg(long)]
        village: String,
        /// Sub-district (kecamatan)
        #[arg(long)]
        subdistrict: String,
        /// District id, e.g. ttu
        #[arg(long)]
        district: String,
        /// KIND:NUMBER[:YYYY-MM-DD], KIND one of halal|bpom|pirt|trademark; repeatable
        #[arg(long = "cert", value_name = "KIND:NUMBER[:EXPIRY]", value_parser = certs::parse)]
        certs: Vec<mart_proto::v1::Certification>,
    },
    /// List producers
    List {
        /// Only producers of this district
        #[arg(long)]
        district: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProductCmd {
    /// Add a product to the catalog
    Add {
        /// Product SKU, e.g. TTU-MKP-060
        #[arg(long)]
        sku: String,
        /// Product name
        #[arg(long)]
        name: String,
        /// Producer id
        #[arg(long)]
        producer: String,
        /// Category, e.g. herbal, tenun, coffee
        #[arg(long)]
        category: String,
        /// Unit of sale, e.g. "60 ml bottle"
        #[arg(long)]
        unit: String,
        /// Price in rupiah, e.g. 45000 or 45.000
        #[arg(long, value_name = "RP", value_parser = crate::args::rupiah)]
        price: i64,
        /// KIND:NUMBER[:YYYY-MM-DD], KIND one of halal|bpom|pirt|trademark; repeatable
        #[arg(long = "cert", value_name = "KIND:NUMBER[:EXPIRY]", value_parser = certs::parse)]
        certs: Vec<mart_proto::v1::Certification>,
        /// The hub lists the product as low stock at an outlet with this many or fewer
        /// (default 5)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        reorder_level: Option<i64>,
    },
    /// Change a product of the catalog this node owns (the hub: official products and
    /// prices, which reach every district); fields not given stay as they are
    Update {
        /// The product to change, e.g. TTU-MKP-060
        #[arg(long)]
        sku: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        /// New producer id
        #[arg(long)]
        producer: Option<String>,
        /// New category, e.g. herbal, tenun, coffee
        #[arg(long)]
        category: Option<String>,
        /// New unit, e.g. "60 ml bottle"
        #[arg(long)]
        unit: Option<String>,
        /// New price in rupiah, e.g. 45000 or 45.000
        #[arg(long, value_name = "RP", value_parser = crate::args::rupiah)]
        price: Option<i64>,
        /// Replaces every certification when given; repeatable
        #[arg(long = "cert", value_name = "KIND:NUMBER[:EXPIRY]", value_parser = certs::parse)]
        certs: Vec<mart_proto::v1::Certification>,
        /// The hub lists the product as low stock at an outlet with this many or fewer
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        reorder_level: Option<i64>,
    },
    /// At the hub: copy a district's local product into the provincial catalog
    Promote {
        /// The district product's SKU
        #[arg(long)]
        sku: String,
        /// The district whose catalog holds it
        #[arg(long, value_name = "DISTRICT")]
        from: String,
    },
    /// List products
    List {
        /// Only products in this category, e.g. herbal, tenun, coffee
        #[arg(long)]
        category: Option<String>,
    },
    /// Show one product with its certifications
    Show {
        /// e.g. TTU-MKP-060
        sku: String,
    },
}

#[derive(Debug, Serialize)]
struct ProducerView {
    id: String,
    group_name: String,
    leader: String,
    village: String,
    subdistrict: String,
    district: String,
    certifications: Vec<CertView>,
    document_id: String,
}

impl From<Producer> for ProducerView {
    fn from(p: Producer) -> Self {
        ProducerView {
            certifications: certs::views(&p.certifications),
            id: p.id,
            group_name: p.group_name,
            leader: p.leader,
            village: p.village,
            subdistrict: p.subdistrict,
            district: p.district,
            document_id: p.document_id,
        }
    }
}

#[derive(Debug, Serialize)]
struct ProductView {
    sku: String,
    name: String,
    producer_id: String,
    category: String,
    unit: String,
    price_rupiah: i64,
    certifications: Vec<CertView>,
    document_id: String,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        ProductView {
            certifications: certs::views(&p.certifications),
            sku: p.sku,
            name: p.name,
            producer_id: p.producer_id,
            category: p.category,
            unit: p.unit,
            price_rupiah: p.price_rupiah,
            document_id: p.document_id,
        }
    }
}

pub async fn producer(node: &Node, cmd: ProducerCmd, format: Format) -> Result<()> {
    match cmd {
        ProducerCmd::Add {
            id,
            group_name,
            leader,
            village,
            subdistrict,
            district,
            certs,
        } => {
            let producer = Producer {
                id,
                group_name,
                leader,
                village,
                subdistrict,
                district,
                certifications: certs,
                document_id: String::new(),
            };
            let req = node.request(AddProducerRequest {
                producer: Some(producer),
            });
            let added = ProducerView::from(node.call(node.mart().add_producer(req)).await?);
            match format {
                Format::Json => print_json(&added),
                Format::Table => {
                    println!("producer added");
                    print!("{}", producer_fields(&added));
                    Ok(())
                }
            }
        }
        ProducerCmd::List { district } => {
            let req = node.request(ListProducersRequest {
                district: district.unwrap_or_default(),
            });
            let list = node.call(node.mart().list_producers(req)).await?;
            let views: Vec<ProducerView> = list.producers.into_iter().map(Into::into).collect();
            if format == Format::Json {
                return print_json(&views);
            }
            let mut table = Table::new(&[
                "ID",
                "GROUP",
                "LEADER",
                "VILLAGE",
                "SUBDISTRICT",
                "DISTRICT",
                "CERTS",
            ]);
            for p in &views {
                table.row(vec![
                    p.id.clone(),
                    p.group_name.clone(),
                    p.leader.clone(),
                    p.village.clone(),
                    p.subdistrict.clone(),
                    p.district.clone(),
                    certs::kinds(&p.certifications),
                ]);
            }
            table.print_or("no producers");
            Ok(())
        }
    }
}

pub async fn product(node: &Node, cmd: ProductCmd, format: Format) -> Result<()> {
    match cmd {
        ProductCmd::Add {
            sku,
            name,
            producer,
            category,
            unit,
            price,
            certs,
            reorder_level,
        } => {
            let product = Product {
                sku,
                name,
                producer_id: producer,
                category,
                unit,
                price_rupiah: price,
                certifications: certs,
                document_id: String::new(),
                reorder_level: reorder_level.unwrap_or(0),
            };
            let req = node.request(AddProductRequest {
                product: Some(product),
            });
            let added = ProductView::from(node.call(node.mart().add_product(req)).await?);
            show_product(&added, format, "product added")
        }
        ProductCmd::List { category } => {
            let req = node.request(ListProductsRequest {
                category: category.unwrap_or_default(),
            });
            let list = node.call(node.mart().list_products(req)).await?;
            let views: Vec<ProductView> = list.products.into_iter().map(Into::into).collect();
            if format == Format::Json {
                return print_json(&views);
            }
            let mut table = Table::new(&[
                "SKU", "NAME", "PRODUCER", "CATEGORY", "UNIT", "PRICE", "CERTS",
            ])
            .right_align(&[5]);
            for p in &views {
                table.row(vec![
                    p.sku.clone(),
                    p.name.clone(),
                    p.producer_id.clone(),
                    p.category.clone(),
                    p.unit.clone(),
                    rupiah(p.price_rupiah),
                    certs::kinds(&p.certifications),
                ]);
            }
            table.print_or("no products");
            Ok(())
        }
        ProductCmd::Update {
            sku,
            name,
            producer,
            category,
            unit,
            price,
            certs,
            reorder_level,
        } => {
            let req = node.request(GetProductRequest { sku });
            let mut product = node.call(node.mart().get_product(req)).await?;
            product.name = name.unwrap_or(product.name);
            product.producer_id = producer.unwrap_or(product.producer_id);
            product.category = category.unwrap_or(product.category);
            product.unit = unit.unwrap_or(product.unit);
            product.price_rupiah = price.unwrap_or(product.price_rupiah);
            if !certs.is_empty() {
                product.certifications = certs;
            }
            product.reorder_level = reorder_level.unwrap_or(product.reorder_level);
            let req = node.request(UpdateProductRequest {
                product: Some(product),
            });
            let updated = ProductView::from(node.call(node.mart().update_product(req)).await?);
            show_product(&updated, format, "product updated")
        }
        ProductCmd::Promote { sku, from } => {
            let req = node.request(PromoteProductRequest {
                sku,
                from_district: from,
            });
            let promoted = ProductView::from(node.call(node.hub().promote_product(req)).await?);
            show_product(
                &promoted,
                format,
                "product promoted into the provincial catalog",
            )
        }
        ProductCmd::Show { sku } => {
            let req = node.request(GetProductRequest { sku });
            let product = ProductView::from(node.call(node.mart().get_product(req)).await?);
            show_product(&product, format, "")
        }
    }
}

fn producer_fields(p: &ProducerView) -> String {
    fields(&[
        ("id", p.id.clone()),
        ("group", p.group_name.clone()),
        ("leader", p.leader.clone()),
        ("village", p.village.clone()),
        ("subdistrict", p.subdistrict.clone()),
        ("district", p.district.clone()),
        ("certifications", describe_all(&p.certifications)),
        ("document", p.document_id.clone()),
    ])
}

fn show_product(p: &ProductView, format: Format, headline: &str) -> Result<()> {
    if format == Format::Json {
        return print_json(p);
    }
    if !headline.is_empty() {
        println!("{headline}");
    }
    print!(
        "{}",
        fields(&[
            ("sku", p.sku.clone()),
            ("name", p.name.clone()),
            ("producer", p.producer_id.clone()),
            ("category", p.category.clone()),
            ("unit", p.unit.clone()),
            ("price", rupiah(p.price_rupiah)),
            ("certifications", describe_all(&p.certifications)),
            ("document", p.document_id.clone()),
        ])
    );
    Ok(())
}

/// All certifications on one line, `-` when there are none.
fn describe_all(certs: &[CertView]) -> String {
    if certs.is_empty() {
        return "-".into();
    }
    let described: Vec<String> = certs.iter().map(CertView::describe).collect();
    described.join("; ")
}
