//! The CA end to end on real files: `init`, then `issue` for each role, the results
//! parsed back with x509-parser and verified with rustls-webpki the way a node will.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::Parser;
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use time::macros::datetime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::*;
use mart_pki::leaf;

const NOW: OffsetDateTime = datetime!(2026-11-30 06:05:00 UTC);

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Parses a PEM certificate file and hands it to `f`.
fn with_cert<R>(path: &Path, f: impl FnOnce(&X509Certificate<'_>) -> R) -> R {
    let bytes = fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).unwrap();
    let cert = pem.parse_x509().unwrap();
    f(&cert)
}

fn der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

/// The `pki` subcommands alone, to check what the command line accepts.
#[derive(Debug, Parser)]
struct Pki {
    #[command(subcommand)]
    cmd: PkiCmd,
}

fn parse(args: &[&str]) -> Result<PkiCmd, clap::Error> {
    Pki::try_parse_from(std::iter::once("pki").chain(args.iter().copied())).map(|p| p.cmd)
}

fn init_ca(dir: &Path) -> InitReport {
    let args = InitArgs {
        dir: dir.to_path_buf(),
        name: "NTT Mart Provincial CA".into(),
        days: 3650,
    };
    init(&args, NOW).unwrap()
}

fn issue_args(ca: &Path, out: &Path, extra: &[&str]) -> IssueArgs {
    let mut args = vec![
        "issue",
        "--ca",
        ca.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    match parse(&args).unwrap() {
        PkiCmd::Issue(a) => a,
        PkiCmd::Init(_) => unreachable!(),
    }
}

fn uris<'a>(cert: &'a X509Certificate<'_>) -> (Vec<&'a str>, Vec<&'a str>, Vec<IpAddr>) {
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let (mut uri, mut dns, mut ip) = (Vec::new(), Vec::new(), Vec::new());
    for name in &san.general_names {
        match name {
            GeneralName::URI(u) => uri.push(*u),
            GeneralName::DNSName(d) => dns.push(*d),
            GeneralName::IPAddress(b) => ip.push(match b.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                _ => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
            }),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (uri, dns, ip)
}

#[test]
fn init_makes_a_ca_that_signs_only_node_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let report = init_ca(&dir);
    assert_eq!(report.subject, "CN=NTT Mart Provincial CA");
    assert_eq!(report.not_before, "2026-11-30T05:05:00Z");
    assert_eq!(report.not_after, "2036-11-27T06:05:00Z");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("ca.pem")), 0o644);

    with_cert(&dir.join("ca.pem"), |ca| {
        assert_eq!(ca.subject().to_string(), "CN=NTT Mart Provincial CA");
        assert_eq!(ca.issuer().to_string(), ca.subject().to_string());
        let bc = ca.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = ca.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        assert_eq!(ca.validity().not_before.timestamp(), 1_796_015_100);
        ca.verify_signature(None).expect("self-signed");
        let key = KeyPair::from_pem(&fs::read_to_string(dir.join("ca-key.pem")).unwrap());
        assert_eq!(
            key.unwrap().subject_public_key_info(),
            ca.public_key().raw,
            "ca-key.pem is the key of ca.pem"
        );
    });
}

#[test]
fn init_refuses_to_overwrite_a_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    init_ca(&dir);
    let key_before = fs::read(dir.join("ca-key.pem")).unwrap();
    let args = InitArgs {
        dir: dir.clone(),
        name: "Another CA".into(),
        days: 1,
    };
    let err = init(&args, NOW).unwrap_err().to_string();
    assert!(err.contains("ca-key.pem already exists"), "{err}");
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read(dir.join("ca-key.pem")).unwrap(), key_before);

    // A stray ca.pem without its key is not overwritten either.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("ca.pem"), "stray").unwrap();
    let args = InitArgs {
        dir: other.clone(),
        ..args
    };
    let err = init(&args, NOW).unwrap_err().to_string();
    assert!(err.contains("ca.pem already exists"), "{err}");
    assert!(!other.join("ca-key.pem").exists());
}

#[test]
fn issues_a_district_certificate_a_node_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("nodes/ttu");
    init_ca(&ca_dir);
    let args = issue_args(
        &ca_dir,
        &out,
        &[
            "--id",
            "ttu",
            "--role",
            "district",
            "--host",
            "TTU.nttmart.example",
            "--host",
            "10.8.0.2",
            "--host",
            "::1",
        ],
    );
    let report = issue(&args, NOW).unwrap();
    assert_eq!(report.uri, "nttmart://district/ttu");
    assert_eq!(report.dns, ["ttu.nttmart.example"]);
    assert_eq!(report.ip, ["10.8.0.2", "::1"]);
    assert_eq!(report.extended_key_usage, ["server_auth", "client_auth"]);
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("key.pem")), 0o600);
    assert_eq!(mode(&out.join("cert.pem")), 0o644);
    assert_eq!(
        fs::read(out.join("ca.pem")).unwrap(),
        fs::read(ca_dir.join("ca.pem")).unwrap()
    );

    let ca_bytes = fs::read(ca_dir.join("ca.pem")).unwrap();
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_bytes).unwrap();
    let ca = ca_pem.parse_x509().unwrap();
    with_cert(&out.join("cert.pem"), |cert| {
        assert_eq!(cert.subject().to_string(), "CN=ttu");
        assert_eq!(cert.issuer(), ca.subject());
        let (uri, dns, ip) = uris(cert);
        assert_eq!(uri, ["nttmart://district/ttu"]);
        assert_eq!(dns, ["ttu.nttmart.example"]);
        assert_eq!(
            ip,
            [
                "10.8.0.2".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth && !eku.any);
        assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        assert_eq!(cert.validity().not_before.timestamp(), 1_796_015_100);
        assert_eq!(
            cert.validity().not_after.timestamp(),
            datetime!(2029-03-04 06:05:00 UTC).unix_timestamp()
        );
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
        assert!(cert.verify_signature(None).is_err(), "not self-signed");
        let key = KeyPair::from_pem(&fs::read_to_string(out.join("key.pem")).unwrap()).unwrap();
        assert_eq!(key.subject_public_key_info(), cert.public_key().raw);
    });

    // The chain, usages, hosts and identity as rustls-webpki sees them.
    let req = Request {
        node_id: "ttu".into(),
        role: Role::District,
        hosts: args.hosts.clone(),
        validity: Validity::from_args(NOW, 825, None, None).unwrap(),
    };
    let leaf = der(&out.join("cert.pem"));
    leaf::check(&der(&ca_dir.join("ca.pem")), &leaf, &req).unwrap();
    let impostor = Request {
        node_id: "kupang".into(),
        ..req.clone()
    };
    let err = leaf::check(&der(&ca_dir.join("ca.pem")), &leaf, &impostor).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected only nttmart://district/kupang"),
        "{err}"
    );
}

#[test]
fn operator_certificates_are_for_clients_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("alice");
    init_ca(&ca_dir);
    let args = issue_args(&ca_dir, &out, &["--id", "alice", "--role", "operator"]);
    let report = issue(&args, NOW).unwrap();
    assert_eq!(report.uri, "nttmart://operator/alice");
    assert_eq!(report.extended_key_usage, ["client_auth"]);
    with_cert(&out.join("cert.pem"), |cert| {
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(uris(cert).0, ["nttmart://operator/alice"]);
    });

    let ca = der(&ca_dir.join("ca.pem"));
    let anchors = [webpki::anchor_from_trusted_cert(&ca).unwrap()];
    let leaf = der(&out.join("cert.pem"));
    let cert = webpki::EndEntityCert::try_from(&leaf).unwrap();
    let at =
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW.unix_timestamp() as u64));
    let verify = |usage| {
        cert.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &anchors,
            &[],
            at,
            usage,
            None,
            None,
        )
        .map(|_| ())
    };
    verify(webpki::KeyUsage::client_auth()).unwrap();
    assert!(verify(webpki::KeyUsage::server_auth()).is_err());
}

#[test]
fn issues_expired_certificates_for_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("old");
    init_ca(&ca_dir);
    let args = issue_args(
        &ca_dir,
        &out,
        &[
            "--id",
            "ttu",
            "--role",
            "district",
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2020-12-31",
        ],
    );
    let report = issue(&args, NOW).unwrap();
    assert_eq!(report.not_before, "2020-01-01T00:00:00Z");
    assert_eq!(report.not_after, "2020-12-31T23:59:59Z");
    with_cert(&out.join("cert.pem"), |cert| {
        assert!(!cert.validity().is_valid());
        assert_eq!(
            cert.validity().not_after.timestamp(),
            datetime!(2020-12-31 23:59:59 UTC).unix_timestamp()
        );
    });
    let ca = der(&ca_dir.join("ca.pem"));
    let anchors = [webpki::anchor_from_trusted_cert(&ca).unwrap()];
    let leaf = der(&out.join("cert.pem"));
    let err = webpki::EndEntityCert::try_from(&leaf)
        .unwrap()
        .verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &anchors,
            &[],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, webpki::Error::CertExpired { .. }), "{err:?}");
}

#[test]
fn issue_never_overwrites_a_node_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("ttu");
    init_ca(&ca_dir);
    let args = issue_args(&ca_dir, &out, &["--id", "ttu", "--role", "district"]);
    issue(&args, NOW).unwrap();
    let key_before = fs::read(out.join("key.pem")).unwrap();
    let err = issue(&args, NOW).unwrap_err().to_string();
    assert!(err.contains("already exist"), "{err}");
    assert_eq!(fs::read(out.join("key.pem")).unwrap(), key_before);
}

#[test]
fn issue_refuses_a_ca_key_that_is_not_the_ca_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    init_ca(&one);
    init_ca(&two);
    fs::remove_file(one.join("ca-key.pem")).unwrap();
    fs::copy(two.join("ca-key.pem"), one.join("ca-key.pem")).unwrap();
    let out = tmp.path().join("ttu");
    let args = issue_args(&one, &out, &["--id", "ttu", "--role", "district"]);
    let err = issue(&args, NOW).unwrap_err().to_string();
    assert!(err.contains("is not the key of"), "{err}");
    assert!(!out.exists(), "nothing written");

    let empty = tmp.path().join("empty");
    let args = issue_args(&empty, &out, &["--id", "ttu", "--role", "district"]);
    let err = format!("{:#}", issue(&args, NOW).unwrap_err());
    assert!(err.contains("pki init"), "{err}");
}

#[test]
fn command_line_refuses_bad_ids_roles_hosts_and_dates() {
    let base = ["issue", "--ca", "ca", "--out", "out"];
    let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
    assert!(with(&["--id", "ttu", "--role", "hub", "--host", "kupang.example"]).is_ok());
    for bad in [
        &["--id", "TTU", "--role", "district"][..],
        &["--id", "1ttu", "--role", "district"],
        &["--id", "", "--role", "district"],
        &["--id", "ttu", "--role", "outlet"],
        &["--id", "ttu"],
        &["--id", "ttu", "--role", "hub", "--host", "*.example"],
        &["--id", "ttu", "--role", "hub", "--not-after", "2027-02-29"],
        &["--id", "ttu", "--role", "hub", "--days", "0"],
        &[
            "--id",
            "ttu",
            "--role",
            "hub",
            "--days",
            "9",
            "--not-after",
            "2030-01-01",
        ],
    ] {
        let err = with(bad).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
    }
    assert!(parse(&["init", "--dir", "ca", "--days", "0"]).is_err());
    let Ok(PkiCmd::Init(a)) = parse(&["init", "--dir", "ca"]) else {
        panic!("init parses");
    };
    assert_eq!((a.name.as_str(), a.days), ("NTT Mart Provincial CA", 3650));
}
