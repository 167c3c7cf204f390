//! `report`: reports the node makes from its ledgers, as a table, JSON (`--json`) or
//! CSV (`--csv`). `report sales`: sales per local date in NTT (WITA), district,
//! channel and buyer category.
//!
//! It must never total, date or filter sales itself: rows and totals are the node's,
//! so martctl can never disagree with another client of the same report.

use anyhow::Result;
use clap::{Args, Subcommand};
use mart_proto::v1::{Buyer, Channel, SalesReportRequest, SalesReportResponse};
use serde::Serialize;

use crate::clock::check_date;
use crate::csv;
use crate::output::{print_json, rupiah, Format, Table};
use crate::rpc::Node;

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Sales per local date (WITA), district, channel and buyer: number, units, revenue
    Sales(SalesArgs),
    /// At the hub: regional stock per SKU and district, with the age of each
    /// district's figures (table, --json or --csv)
    Stock {
        /// Only this SKU
        #[arg(long)]
        sku: Option<String>,
        /// Only this district
        #[arg(long)]
        district: Option<String>,
        /// Print CSV: a header line, then one line per SKU and district
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
}

#[derive(Debug, Args)]
pub struct SalesArgs {
    /// First local date (WITA) of the report, YYYY-MM-DD
    #[arg(long, value_name = "DATE", value_parser = date)]
    pub from: String,
    /// Last local date (WITA) of the report, YYYY-MM-DD, included
    #[arg(long, value_name = "DATE", value_parser = date)]
    pub to: String,
    /// Only this district (at the hub); a district node reports only its own sales
    #[arg(long, value_name = "ID")]
    pub district: Option<String>,
    /// Print CSV: a header line, then one line per row (no total line)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

fn date(s: &str) -> Result<String, String> {
    check_date(s)?;
    Ok(s.to_string())
}

pub async fn report(node: &Node, cmd: ReportCmd, format: Format) -> Result<()> {
    match cmd {
        ReportCmd::Sales(args) => sales(node, args, format).await,
        ReportCmd::Stock { sku, district, csv } if csv => {
            let rows = crate::regional::regional_rows(node, sku, district).await?;
            print!(
                "{}",
                crate::csv::record(&[
                    "sku",
                    "name",
                    "district",
                    "quantity",
                    "sku_total",
                    "as_of_wita",
                    "stale"
                ])
            );
            for r in rows {
                print!(
                    "{}",
                    crate::csv::record(&[
                        r.sku,
                        r.name,
                        r.district,
                        r.quantity.to_string(),
                        r.sku_total.to_string(),
                        crate::clock::wita(r.as_of_unix_ms.unwrap_or_default()),
                        r.stale.to_string(),
                    ])
                );
            }
            Ok(())
        }
        ReportCmd::Stock { sku, district, .. } => {
            crate::regional::regional(node, sku, district, format).await
        }
    }
}

async fn sales(node: &Node, args: SalesArgs, format: Format) -> Result<()> {
    let req = node.request(SalesReportRequest {
        from: args.from,
        to: args.to,
        district: args.district.unwrap_or_default(),
    });
    let view = SalesView::from(node.call(node.report().sales_report(req)).await?);
    if args.csv {
        print!("{}", view.csv());
        return Ok(());
    }
    match format {
        Format::Json => print_json(&view),
        Format::Table => {
            print!("{}", view.table());
            Ok(())
        }
    }
}

#[derive(Debug, Serialize)]
struct RowView {
    date: String,
    district: String,
    channel: String,
    buyer: String,
    sales: u64,
    units: i64,
    revenue_rupiah: i64,
}

#[derive(Debug, Default, Serialize)]
struct TotalsView {
    sales: u64,
    units: i64,
    revenue_rupiah: i64,
}

#[derive(Debug, Serialize)]
struct SalesView {
    from: String,
    to: String,
    districts: Vec<String>,
    rows: Vec<RowView>,
    totals: TotalsView,
}

fn channel_name(value: i32) -> String {
    match Channel::try_from(value) {
        Ok(Channel::Store) => "store".into(),
        Ok(Channel::Online) => "online".into(),
        _ => format!("channel-{value}"),
    }
}

fn buyer_name(value: i32) -> String {
    match Buyer::try_from(value) {
        Ok(Buyer::Public) => "public".into(),
        Ok(Buyer::Asn) => "asn".into(),
        _ => format!("buyer-{value}"),
    }
}

impl From<SalesReportResponse> for SalesView {
    fn from(r: SalesReportResponse) -> Self {
        let totals = r.totals.map_or_else(TotalsView::default, |t| TotalsView {
            sales: t.sales,
            units: t.units,
            revenue_rupiah: t.revenue_rupiah,
        });
        SalesView {
            from: r.from,
            to: r.to,
            districts: r.districts,
            rows: r
                .rows
                .into_iter()
                .map(|row| RowView {
                    channel: channel_name(row.channel),
                    buyer: buyer_name(row.buyer),
                    date: row.date,
                    district: row.district,
                    sales: row.sales,
                    units: row.units,
                    revenue_rupiah: row.revenue_rupiah,
                })
                .collect(),
            totals,
        }
    }
}

impl SalesView {
    const CSV_HEADER: [&'static str; 7] = [
        "date",
        "district",
        "channel",
        "buyer",
        "sales",
        "units",
        "revenue_rupiah",
    ];

    fn csv(&self) -> String {
        let mut out = csv::record(&Self::CSV_HEADER);
        for r in &self.rows {
            out.push_str(&csv::record(&[
                r.date.clone(),
                r.district.clone(),
                r.channel.clone(),
                r.buyer.clone(),
                r.sales.to_string(),
                r.units.to_string(),
                r.revenue_rupiah.to_string(),
            ]));
        }
        out
    }

    fn table(&self) -> String {
        let ledgers = if self.districts.is_empty() {
            "none".to_string()
        } else {
            self.districts.join(", ")
        };
        let mut out = format!(
            "sales from {} to {} (WITA dates); ledgers: {ledgers}\n",
            self.from, self.to
        );
        if self.rows.is_empty() {
            out.push_str("no sales in this period\n");
            return out;
        }
        let mut table = Table::new(&[
            "DATE", "DISTRICT", "CHANNEL", "BUYER", "SALES", "UNITS", "REVENUE",
        ])
        .right_align(&[4, 5, 6]);
        for r in &self.rows {
            table.row(vec![
                r.date.clone(),
                r.district.clone(),
                r.channel.clone(),
                r.buyer.clone(),
                r.sales.to_string(),
                r.units.to_string(),
                rupiah(r.revenue_rupiah),
            ]);
        }
        let t = &self.totals;
        table.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            String::new(),
            t.sales.to_string(),
            t.units.to_string(),
            rupiah(t.revenue_rupiah),
        ]);
        out.push_str(&table.render());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mart_proto::v1::{SalesReportRow, SalesTotals};

    fn response() -> SalesReportResponse {
        let row = |date: &str,
                   district: &str,
                   channel: Channel,
                   buyer: Buyer,
                   n: u64,
                   units: i64,
                   rp: i64| {
            SalesReportRow {
                date: date.into(),
                district: district.into(),
                channel: channel as i32,
                buyer: buyer as i32,
                sales: n,
                units,
                revenue_rupiah: rp,
                ..Default::default()
            }
        };
        SalesReportResponse {
            from: "2026-11-30".into(),
            to: "2026-12-01".into(),
            districts: vec!["sikka".into(), "ttu".into()],
            rows: vec![
                row(
                    "2026-11-30",
                    "ttu",
                    Channel::Store,
                    Buyer::Asn,
                    2,
                    5,
                    175_000,
                ),
                row(
                    "2026-11-30",
                    "ttu",
                    Channel::Online,
                    Buyer::Public,
                    1,
                    1,
                    35_000,
                ),
                row(
                    "2026-12-01",
                    "sikka",
                    Channel::Store,
                    Buyer::Public,
                    1,
                    4,
                    1_250_000,
                ),
            ],
            totals: Some(SalesTotals {
                sales: 4,
                units: 10,
                revenue_rupiah: 1_460_000,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn csv_has_a_header_and_one_line_per_row_with_plain_amounts() {
        assert_eq!(
            SalesView::from(response()).csv(),
            "date,district,channel,buyer,sales,units,revenue_rupiah\n\
             2026-11-30,ttu,store,asn,2,5,175000\n\
             2026-11-30,ttu,online,public,1,1,35000\n\
             2026-12-01,sikka,store,public,1,4,1250000\n"
        );
    }

    #[test]
    fn the_table_shows_rupiah_and_a_total_line() {
        assert_eq!(
            SalesView::from(response()).table(),
            "sales from 2026-11-30 to 2026-12-01 (WITA dates); ledgers: sikka, ttu\n\
             DATE        DISTRICT  CHANNEL  BUYER   SALES  UNITS       REVENUE\n\
             2026-11-30  ttu       store    asn         2      5    Rp 175.000\n\
             2026-11-30  ttu       online   public      1      1     Rp 35.000\n\
             2026-12-01  sikka     store    public      1      4  Rp 1.250.000\n\
             total                                      4     10  Rp 1.460.000\n"
        );
    }

    #[test]
    fn an_empty_period_says_so_and_csv_keeps_its_header() {
        let empty = SalesReportResponse {
            from: "2020-01-01".into(),
            to: "2020-01-31".into(),
            districts: vec!["ttu".into()],
            rows: vec![],
            totals: None,
        };
        let view = SalesView::from(empty);
        assert_eq!(
            view.table(),
            "sales from 2020-01-01 to 2020-01-31 (WITA dates); ledgers: ttu\nno sales in this period\n"
        );
        assert_eq!(view.csv().lines().count(), 1);
        assert_eq!(view.totals.revenue_rupiah, 0);
    }

    #[test]
    fn unknown_enum_values_show_as_numbers() {
        assert_eq!(channel_name(9), "channel-9");
        assert_eq!(buyer_name(Buyer::Asn as i32), "asn");
        assert_eq!(buyer_name(-1), "buyer--1");
    }
}
