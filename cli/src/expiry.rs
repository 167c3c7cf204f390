//! `catalog`: the certifications (halal, BPOM, P-IRT, trademark) of the products and
//! producers in the node's catalog, by expiry date, soonest first. `--expiring`
//! keeps those that expire within `--days` of today or have already expired.
//!
//! "Today" is the date in NTT (WITA) on this machine's clock, whatever its time
//! zone. It must never hide a certification that needs attention: an expired one is
//! marked expired, and one whose expiry it cannot read is listed first, marked so,
//! rather than dropped.

use anyhow::Result;
use clap::Args;
use mart_proto::v1::{ListProducersRequest, ListProductsRequest, Producer, Product};
use serde::Serialize;

use crate::certs::CertView;
use crate::clock::{date_of_day, day_number, now_unix_ms, wita_day};
use crate::output::{print_json, Format, Table};
use crate::rpc::Node;

/// Furthest `--days` looks ahead: ten years.
const MAX_DAYS: u32 = 3650;

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Only certifications that expire within --days of today (WITA) or have expired
    #[arg(long)]
    pub expiring: bool,
    /// Days ahead that count as expiring soon (0 for today only)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_DAYS))
    )]
    pub days: u32,
}

/// Where a certification stands on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Standing {
    /// Its expiry could not be read: check it by hand.
    Unreadable,
    Expired,
    /// Expires within the window (today included).
    Expiring,
    Valid,
    NoExpiry,
}

impl Standing {
    fn label(self) -> &'static str {
        match self {
            Standing::Unreadable => "unreadable expiry",
            Standing::Expired => "EXPIRED",
            Standing::Expiring => "expiring",
            Standing::Valid => "valid",
            Standing::NoExpiry => "no expiry",
        }
    }

    fn needs_attention(self) -> bool {
        matches!(
            self,
            Standing::Unreadable | Standing::Expired | Standing::Expiring
        )
    }
}

/// One certification of one product or producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Entry {
    /// `product` or `producer`.
    holder: &'static str,
    /// SKU or producer id.
    id: String,
    /// Product name or producer group name.
    name: String,
    kind: String,
    number: String,
    expires_on: Option<String>,
    /// Days from today to the expiry date: 0 on its last day, negative once expired.
    days_left: Option<i64>,
    standing: Standing,
}

#[derive(Debug, Serialize)]
struct ExpiryView {
    today: String,
    within_days: u32,
    only_expiring: bool,
    certifications: Vec<Entry>,
}

fn entries<'a>(
    holder: &'static str,
    id: &str,
    name: &str,
    certs: impl IntoIterator<Item = &'a mart_proto::v1::Certification>,
    today: i64,
    within_days: u32,
) -> Vec<Entry> {
    certs
        .into_iter()
        .map(|c| {
            let cert = CertView::from(c);
            let days_left = cert
                .expires_on
                .as_deref()
                .and_then(|d| day_number(d).ok())
                .map(|day| day - today);
            let standing = match (&cert.expires_on, days_left) {
                (None, _) => Standing::NoExpiry,
                (Some(_), None) => Standing::Unreadable,
                (Some(_), Some(d)) if d < 0 => Standing::Expired,
                (Some(_), Some(d)) if d <= i64::from(within_days) => Standing::Expiring,
                (Some(_), Some(_)) => Standing::Valid,
            };
            Entry {
                holder,
                id: id.to_string(),
                name: name.to_string(),
                kind: cert.kind,
                number: cert.number,
                expires_on: cert.expires_on,
                days_left,
                standing,
            }
        })
        .collect()
}

/// Every certification of `products` and `producers` as it stands on `today` (days
/// since 1970-01-01), sorted: unreadable first, then by expiry, those without one
/// last; with `only_expiring`, only those that need attention.
fn certifications(
    products: &[Product],
    producers: &[Producer],
    today: i64,
    within_days: u32,
    only_expiring: bool,
) -> Vec<Entry> {
    let mut all: Vec<Entry> = products
        .iter()
        .flat_map(|p| {
            entries(
                "product",
                &p.sku,
                &p.name,
                &p.certifications,
                today,
                within_days,
            )
        })
        .chain(producers.iter().flat_map(|p| {
            entries(
                "producer",
                &p.id,
                &p.group_name,
                &p.certifications,
                today,
                within_days,
            )
        }))
        .filter(|e| !only_expiring || e.standing.needs_attention())
        .collect();
    all.sort_by(|a, b| {
        let rank = |e: &Entry| match e.standing {
            Standing::Unreadable => (0, 0),
            Standing::NoExpiry => (2, 0),
            _ => (1, e.days_left.unwrap_or_default()),
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| (a.holder, &a.id, &a.kind).cmp(&(b.holder, &b.id, &b.kind)))
    });
    all
}

pub async fn catalog(node: &Node, args: CatalogArgs, format: Format) -> Result<()> {
    let products = node
        .call(
            node.mart()
                .list_products(node.request(ListProductsRequest::default())),
        )
        .await?
        .products;
    let producers = node
        .call(
            node.mart()
                .list_producers(node.request(ListProducersRequest::default())),
        )
        .await?
        .producers;
    let today = wita_day(now_unix_ms());
    let view = ExpiryView {
        today: date_of_day(today),
        within_days: args.days,
        only_expiring: args.expiring,
        certifications: certifications(&products, &producers, today, args.days, args.expiring),
    };
    match format {
        Format::Json => print_json(&view),
        Format::Table => {
            print!("{}", table(&view));
            Ok(())
        }
    }
}

fn table(view: &ExpiryView) -> String {
    let scope = if view.only_expiring {
        format!(
            "certifications expired or expiring within {} days",
            view.within_days
        )
    } else {
        format!(
            "all certifications (expiring: within {} days)",
            view.within_days
        )
    };
    let mut out = format!("today {} (WITA); {scope}\n", view.today);
    if view.certifications.is_empty() {
        out.push_str(if view.only_expiring {
            "none expired or expiring\n"
        } else {
            "no certifications\n"
        });
        return out;
    }
    let mut table = Table::new(&[
        "EXPIRES", "DAYS", "STATUS", "KIND", "NUMBER", "OF", "ID", "NAME",
    ])
    .right_align(&[1]);
    for e in &view.certifications {
        table.row(vec![
            e.expires_on.clone().unwrap_or_else(|| "-".into()),
            e.days_left.map_or_else(|| "-".into(), |d| d.to_string()),
            e.standing.label().into(),
            e.kind.clone(),
            e.number.clone(),
            e.holder.into(),
            e.id.clone(),
            e.name.clone(),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mart_proto::v1::{Certification, CertificationKind};

    fn cert(kind: CertificationKind, number: &str, expires_on: &str) -> Certification {
        Certification {
            kind: kind as i32,
            number: number.into(),
            expires_on: expires_on.into(),
        }
    }

    fn product(sku: &str, certifications: Vec<Certification>) -> Product {
        Product {
            sku: sku.into(),
            name: format!("name of {sku}"),
            certifications,
            ..Product::default()
        }
    }

    fn fixtures() -> (Vec<Product>, Vec<Producer>) {
        use CertificationKind::*;
        let products = vec![
            product(
                "A",
                vec![
                    cert(Halal, "H-A", "2026-12-20"),
                    cert(Bpom, "TR-A", "2029-08-14"),
                ],
            ),
            product("B", vec![cert(Pirt, "P-B", "2026-11-29")]),
            product("C", vec![cert(Trademark, "IDM-C", "")]),
            product("D", vec![cert(Halal, "H-D", "2026-11-30")]),
            product("E", vec![cert(Halal, "H-E", "30/11/2026")]),
            product("F", vec![]),
        ];
        let producers = vec![Producer {
            id: "ikm-x".into(),
            group_name: "Kelompok X".into(),
            certifications: vec![cert(Pirt, "P-X", "2027-01-29")],
            ..Producer::default()
        }];
        (products, producers)
    }

    fn summary(entries: &[Entry]) -> Vec<(&str, &str, Option<i64>, Standing)> {
        entries
            .iter()
            .map(|e| (e.id.as_str(), e.number.as_str(), e.days_left, e.standing))
            .collect()
    }

    #[test]
    fn expiring_lists_expired_and_soon_expiring_by_expiry() {
        let (products, producers) = fixtures();
        let today = day_number("2026-11-30").unwrap();
        let listed = certifications(&products, &producers, today, 60, true);
        assert_eq!(
            summary(&listed),
            [
                ("E", "H-E", None, Standing::Unreadable),
                ("B", "P-B", Some(-1), Standing::Expired),
                ("D", "H-D", Some(0), Standing::Expiring),
                ("A", "H-A", Some(20), Standing::Expiring),
                ("ikm-x", "P-X", Some(60), Standing::Expiring),
            ]
        );
        assert_eq!(listed[4].holder, "producer");
        assert_eq!(listed[4].name, "Kelompok X");
        assert_eq!(listed[4].kind, "pirt");
        // A window of 59 days leaves out the producer's permit, expiring in 60.
        let narrower = certifications(&products, &producers, today, 59, true);
        assert_eq!(narrower.len(), 4);
    }

    #[test]
    fn without_expiring_every_certification_is_listed_undated_last() {
        let (products, producers) = fixtures();
        let today = day_number("2026-11-30").unwrap();
        let listed = certifications(&products, &producers, today, 60, false);
        let numbers: Vec<&str> = listed.iter().map(|e| e.number.as_str()).collect();
        assert_eq!(
            numbers,
            ["H-E", "P-B", "H-D", "H-A", "P-X", "TR-A", "IDM-C"]
        );
        assert_eq!(listed[5].standing, Standing::Valid);
        assert_eq!(listed[6].standing, Standing::NoExpiry);
    }

    #[test]
    fn the_table_marks_expired_certifications() {
        let (products, producers) = fixtures();
        let today = day_number("2026-11-30").unwrap();
        let view = ExpiryView {
            today: date_of_day(today),
            within_days: 60,
            only_expiring: true,
            certifications: certifications(&products[1..2], &producers[..0], today, 60, true),
        };
        assert_eq!(
            table(&view),
            "today 2026-11-30 (WITA); certifications expired or expiring within 60 days\n\
             EXPIRES     DAYS  STATUS   KIND  NUMBER  OF       ID  NAME\n\
             2026-11-29    -1  EXPIRED  pirt  P-B     product  B   name of B\n"
        );
        let none = ExpiryView {
            certifications: vec![],
            ..view
        };
        assert!(table(&none).ends_with("none expired or expiring\n"));
    }
}
