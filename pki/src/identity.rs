//! Who a node certificate says its holder is: the node id and role, written as the
//! SAN URI `nttmart://<role>/<id>`, and the host names or addresses it serves under.
//!
//! It must never let through an identity a node would refuse: ids follow the node's own
//! rule (1 to 32 lowercase letters, digits or '-', starting with a letter), roles are
//! one of three words, and hosts are names rustls can match (no wildcards).

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::DnsName;
use serde::Serialize;

/// Scheme of the identity URI; the node reads identity from this SAN only, never the CN.
pub const URI_SCHEME: &str = "nttmart";

/// Longest node id, as the node's `NodeId` allows.
const MAX_ID_LEN: usize = 32;

/// The role a certificate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The provincial hub: serves sync to districts and dials them
    Hub,
    /// A district outlet: dials the hub, may serve
    District,
    /// A person running martctl: a client only
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::District => "district",
            Role::Operator => "operator",
        }
    }

    fn from_name(name: &str) -> Option<Role> {
        match name {
            "hub" => Some(Role::Hub),
            "district" => Some(Role::District),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    /// Whether the certificate may authenticate a TLS server (extended key usage
    /// server auth as well as client auth); an operator only ever dials.
    pub fn serves(self) -> bool {
        !matches!(self, Role::Operator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a node id against the node's rule; used as a clap value parser.
pub fn node_id(s: &str) -> Result<String, String> {
    let ok_start = s.starts_with(|c: char| c.is_ascii_lowercase());
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_start || !ok_chars || s.len() > MAX_ID_LEN {
        return Err(format!(
            "'{s}' is not a node id: use 1 to {MAX_ID_LEN} lowercase letters, digits or '-', \
             starting with a letter (e.g. ttu, kupang)"
        ));
    }
    Ok(s.to_string())
}

/// The identity URI of a node: `nttmart://district/ttu`.
pub fn identity_uri(role: Role, id: &str) -> String {
    format!("{URI_SCHEME}://{role}/{id}")
}

/// Reads an identity URI back into role and node id; `None` unless it is exactly
/// `nttmart://<role>/<id>` with a known role and a valid id.
pub fn parse_identity_uri(uri: &str) -> Option<(Role, &str)> {
    let rest = uri.strip_prefix(URI_SCHEME)?.strip_prefix("://")?;
    let (role, id) = rest.split_once('/')?;
    let role = Role::from_name(role)?;
    node_id(id).ok()?;
    Some((role, id))
}

/// A name the node answers to, for a DNS or an IP address SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Parses `--host`: an IP address if it reads as one, otherwise a DNS name, lowercased.
pub fn host(s: &str) -> Result<Host, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = s.to_ascii_lowercase();
    if name.contains(':') {
        return Err(format!(
            "'{s}': give the host name or IP address alone, without a port"
        ));
    }
    if name.contains('*') {
        return Err(format!(
            "'{s}': wildcard names are not issued, name each host"
        ));
    }
    DnsName::try_from(name.as_str())
        .map_err(|_| format!("'{s}' is neither an IP address nor a DNS name"))?;
    Ok(Host::Dns(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_follow_the_node_rule() {
        for good in ["ttu", "kupang", "a", "sumba-barat-2", &"a".repeat(32)] {
            assert_eq!(node_id(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "TTU",
            "2ttu",
            "-ttu",
            "ttu_1",
            "ttu.kupang",
            "t u",
            "tt/u",
            &"a".repeat(33),
            "kefamenanú",
        ] {
            assert!(node_id(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn identity_uris_round_trip() {
        assert_eq!(
            identity_uri(Role::District, "ttu"),
            "nttmart://district/ttu"
        );
        assert_eq!(identity_uri(Role::Hub, "kupang"), "nttmart://hub/kupang");
        assert_eq!(
            identity_uri(Role::Operator, "alice"),
            "nttmart://operator/alice"
        );
        for role in [Role::Hub, Role::District, Role::Operator] {
            let uri = identity_uri(role, "sumba-1");
            assert_eq!(parse_identity_uri(&uri), Some((role, "sumba-1")));
        }
        for bad in [
            "nttmart://outlet/ttu",
            "nttmart://district/TTU",
            "nttmart://district/",
            "nttmart://district/ttu/x",
            "nttmart:/district/ttu",
            "https://district/ttu",
            "nttmart://district",
        ] {
            assert_eq!(parse_identity_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts_are_ips_or_dns_names() {
        assert_eq!(host("10.8.0.1"), Ok(Host::Ip("10.8.0.1".parse().unwrap())));
        assert_eq!(host("::1"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(
            host("Hub.NTTMart.example"),
            Ok(Host::Dns("hub.nttmart.example".into()))
        );
        assert_eq!(host("localhost"), Ok(Host::Dns("localhost".into())));
        assert!(host("*.nttmart.example").unwrap_err().contains("wildcard"));
        assert!(host("kupang.example:50051")
            .unwrap_err()
            .contains("without a port"));
        for bad in ["", "hub kupang", "hub..kupang", "-hub.example", "[::1]"] {
            assert!(host(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Role::Operator.to_string(), "operator");
        assert!(Role::Hub.serves() && Role::District.serves() && !Role::Operator.serves());
    }
}
