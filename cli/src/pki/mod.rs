//! `pki init` and `pki issue`: the command line over `mart-pki`, the province's
//! certificate authority. `init` makes the CA once; `issue` signs the certificate that
//! gives a hub, a district or an operator its identity (`nttmart://<role>/<id>` in the
//! SAN) for mutual TLS.
//!
//! It must never talk to a node; what it may write is `mart-pki`'s to decide.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use time::{Date, OffsetDateTime};

use mart_pki::identity::{self, Host, Role};
use mart_pki::leaf::Request;
use mart_pki::validity::{self, rfc3339, Validity};
use mart_pki::{ca, Issued};

use crate::output::{fields, print_json, Format};

#[derive(Debug, Subcommand)]
pub enum PkiCmd {
    /// Create the provincial certificate authority (once; never overwrites one)
    Init(InitArgs),
    /// Sign a certificate for a hub, a district or an operator
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create (mode 0700) for ca.pem and ca-key.pem
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Common name of the CA certificate
    #[arg(long, default_value = "NTT Mart Provincial CA")]
    name: String,
    /// Days the CA certificate is valid
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Directory of the certificate authority (ca.pem and ca-key.pem)
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,
    /// Node id (the operator's name for an operator): 1-32 lowercase letters, digits
    /// or '-', starting with a letter. Not `--node`: that is the global node address
    #[arg(long, value_name = "ID", value_parser = identity::node_id)]
    id: String,
    /// Role the certificate grants
    #[arg(long, value_enum)]
    role: Role,
    /// Directory to create (mode 0700) for cert.pem, key.pem and ca.pem
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Host name or IP address the node is reached at (repeatable); rustls matches the
    /// server name against these SANs, never the CN
    #[arg(long = "host", value_name = "NAME_OR_IP", value_parser = identity::host)]
    hosts: Vec<Host>,
    /// Days the certificate is valid
    #[arg(long, default_value_t = 825, value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with = "not_after")]
    days: u32,
    /// First day of validity, UTC (default: an hour ago)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = validity::date)]
    not_before: Option<Date>,
    /// Last day of validity, UTC, included (default: --days after the start)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = validity::date)]
    not_after: Option<Date>,
}

pub fn run(cmd: PkiCmd, format: Format) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    match cmd {
        PkiCmd::Init(args) => {
            let report = init(&args, now)?;
            show(&report, format, init_fields(&report))
        }
        PkiCmd::Issue(args) => {
            let report = issue(&args, now)?;
            if report.role == Role::Hub && report.dns.is_empty() && report.ip.is_empty() {
                eprintln!(
                    "warning: a hub certificate without --host: districts dialing it by name \
                     or address will refuse it"
                );
            }
            show(&report, format, issue_fields(&report))
        }
    }
}

fn show<T: Serialize>(report: &T, format: Format, table: Vec<(&str, String)>) -> Result<()> {
    match format {
        Format::Json => print_json(report),
        Format::Table => {
            print!("{}", fields(&table));
            Ok(())
        }
    }
}

/// What `pki init` reports.
#[derive(Debug, Serialize)]
struct InitReport {
    cert: String,
    key: String,
    subject: String,
    serial: String,
    not_before: String,
    not_after: String,
}

fn init(args: &InitArgs, now: OffsetDateTime) -> Result<InitReport> {
    let created = ca::init(&args.dir, &args.name, args.days, now)?;
    Ok(InitReport {
        cert: shown(&created.cert_path),
        key: shown(&created.key_path),
        subject: format!("CN={}", args.name.trim()),
        serial: created.serial,
        not_before: rfc3339(created.validity.not_before),
        not_after: rfc3339(created.validity.not_after),
    })
}

fn init_fields(r: &InitReport) -> Vec<(&'static str, String)> {
    vec![
        ("ca certificate", r.cert.clone()),
        ("ca key", r.key.clone()),
        ("subject", r.subject.clone()),
        ("serial", r.serial.clone()),
        ("not before", r.not_before.clone()),
        ("not after", r.not_after.clone()),
    ]
}

/// What `pki issue` reports.
#[derive(Debug, Serialize)]
struct IssueReport {
    node_id: String,
    role: Role,
    cert: String,
    key: String,
    ca: String,
    subject: String,
    uri: String,
    dns: Vec<String>,
    ip: Vec<String>,
    extended_key_usage: Vec<&'static str>,
    serial: String,
    not_before: String,
    not_after: String,
}

fn issue(args: &IssueArgs, now: OffsetDateTime) -> Result<IssueReport> {
    let validity = Validity::from_args(now, args.days, args.not_before, args.not_after)
        .map_err(|e| anyhow!(e))?;
    let req = Request {
        node_id: args.id.clone(),
        role: args.role,
        hosts: args.hosts.clone(),
        validity,
    };
    let Issued {
        cert_path,
        key_path,
        ca_path,
        serial,
    } = mart_pki::issue(&args.ca, &req, &args.out)?;

    let (dns, ip) = req
        .hosts
        .iter()
        .partition::<Vec<_>, _>(|h| matches!(h, Host::Dns(_)));
    Ok(IssueReport {
        node_id: req.node_id.clone(),
        role: req.role,
        cert: shown(&cert_path),
        key: shown(&key_path),
        ca: shown(&ca_path),
        subject: format!("CN={}", req.node_id),
        uri: req.uri(),
        dns: dns.iter().map(|h| h.to_string()).collect(),
        ip: ip.iter().map(|h| h.to_string()).collect(),
        extended_key_usage: req.usages(),
        serial,
        not_before: rfc3339(validity.not_before),
        not_after: rfc3339(validity.not_after),
    })
}

fn issue_fields(r: &IssueReport) -> Vec<(&'static str, String)> {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    vec![
        ("certificate", r.cert.clone()),
        ("key", r.key.clone()),
        ("ca certificate", r.ca.clone()),
        ("subject", r.subject.clone()),
        ("identity", r.uri.clone()),
        ("dns names", list(&r.dns)),
        ("ip addresses", list(&r.ip)),
        ("key usage", r.extended_key_usage.join(", ")),
        ("serial", r.serial.clone()),
        ("not before", r.not_before.clone()),
        ("not after", r.not_after.clone()),
    ]
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}
