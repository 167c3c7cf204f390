//! Who is calling: the node id and role in the caller's client certificate (a SAN
//! URI `nttmart://<role>/<id>`), and the checks each service makes of them.

use mart_proto::tonic::{Request, Status};
use x509_parser::extensions::GeneralName;

use crate::config::Role;
use crate::domain::doc_id::NodeId;

/// A role a certificate can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Hub,
    District,
    Operator,
}

impl PeerRole {
    /// The role as the identity URI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Hub => "hub",
            PeerRole::District => "district",
            PeerRole::Operator => "operator",
        }
    }
}

impl From<Role> for PeerRole {
    /// The role a node's own certificate carries.
    fn from(role: Role) -> Self {
        match role {
            Role::Hub => PeerRole::Hub,
            Role::District => PeerRole::District,
        }
    }
}

/// The identity proven by a caller's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub node: NodeId,
    pub role: PeerRole,
}

impl std::fmt::Display for PeerIdentity {
    /// The identity URI, `nttmart://<role>/<id>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nttmart://{}/{}", self.role.as_str(), self.node)
    }
}

/// Reads the identity URI of a DER certificate.
pub fn identity_of_certificate(der: &[u8]) -> Result<PeerIdentity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative names: {e}"))?
        .ok_or("the certificate has no subject alternative names")?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    let [uri] = uris.as_slice() else {
        return Err(format!("expected one nttmart:// URI, found {}", uris.len()));
    };
    parse_identity_uri(uri)
}

/// Parses `nttmart://<role>/<id>`.
pub fn parse_identity_uri(uri: &str) -> Result<PeerIdentity, String> {
    let rest = uri
        .strip_prefix("nttmart://")
        .ok_or_else(|| format!("{uri:?} is not an nttmart:// URI"))?;
    let (role, id) = rest
        .split_once('/')
        .ok_or_else(|| format!("{uri:?} has no node id"))?;
    let role = match role {
        "hub" => PeerRole::Hub,
        "district" => PeerRole::District,
        "operator" => PeerRole::Operator,
        other => return Err(format!("unknown role {other:?} in {uri:?}")),
    };
    let node = NodeId::parse(id).map_err(|e| e.to_string())?;
    Ok(PeerIdentity { node, role })
}

/// The caller's identity, from the client certificate tonic's TLS verified.
/// `None` when the connection has no TLS (the admin socket, or an insecure node).
pub fn caller<T>(request: &Request<T>) -> Option<Result<PeerIdentity, Status>> {
    let certs = request.peer_certs()?;
    let first = certs.first()?;
    Some(identity_of_certificate(first.as_ref()).map_err(Status::unauthenticated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_uris_parse_strictly() {
        let id = parse_identity_uri("nttmart://district/ttu").unwrap();
        assert_eq!((id.node.as_str(), id.role), ("ttu", PeerRole::District));
        assert_eq!(
            parse_identity_uri("nttmart://hub/kupang").unwrap().role,
            PeerRole::Hub
        );
        assert!(parse_identity_uri("https://district/ttu").is_err());
        assert!(parse_identity_uri("nttmart://mayor/ttu").is_err());
        assert!(parse_identity_uri("nttmart://district/TTU").is_err());
    }
}
