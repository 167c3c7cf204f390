//! Conversion between `nttmart.v1` messages and domain types. Unknown enum values
//! and missing messages become `INVALID_ARGUMENT` naming the field.

use mart_proto::tonic::Status;
use mart_proto::v1 as pb;

use super::status::invalid;
use crate::domain::catalog::{CertKind, Certification, Producer, Product};
use crate::domain::doc_id::DocId;
use crate::domain::movement::{AdjustReason, Buyer, Channel, Movement, MovementKind};
use crate::engine::{MovementAck, StockLine};

fn cert_kind(value: i32) -> Result<CertKind, Status> {
    match pb::CertificationKind::try_from(value) {
        Ok(pb::CertificationKind::Halal) => Ok(CertKind::Halal),
        Ok(pb::CertificationKind::Bpom) => Ok(CertKind::Bpom),
        Ok(pb::CertificationKind::Pirt) => Ok(CertKind::Pirt),
        Ok(pb::CertificationKind::Trademark) => Ok(CertKind::Trademark),
        _ => Err(invalid(
            "certifications.kind",
            format!("must be halal, bpom, pirt or trademark, got {value}"),
        )),
    }
}

fn certs_from_pb(certs: Vec<pb::Certification>) -> Result<Vec<Certification>, Status> {
    certs
        .into_iter()
        .map(|c| {
            Ok(Certification {
                kind: cert_kind(c.kind)?,
                number: c.number,
                expires_on: Some(c.expires_on).filter(|d| !d.is_empty()),
            })
        })
        .collect()
}

fn certs_to_pb(certs: &[Certification]) -> Vec<pb::Certification> {
    certs
        .iter()
        .map(|c| pb::Certification {
            kind: match c.kind {
                CertKind::Halal => pb::CertificationKind::Halal,
                CertKind::Bpom => pb::CertificationKind::Bpom,
                CertKind::Pirt => pb::CertificationKind::Pirt,
                CertKind::Trademark => pb::CertificationKind::Trademark,
            } as i32,
            number: c.number.clone(),
            expires_on: c.expires_on.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn producer_from_pb(p: Option<pb::Producer>) -> Result<Producer, Status> {
    let p = p.ok_or_else(|| invalid("producer", "is required"))?;
    Ok(Producer {
        id: p.id,
        group_name: p.group_name,
        leader: p.leader,
        village: p.village,
        subdistrict: p.subdistrict,
        district: p.district,
        certifications: certs_from_pb(p.certifications)?,
    })
}

pub fn producer_to_pb(p: &Producer, doc: &DocId) -> pb::Producer {
    pb::Producer {
        id: p.id.clone(),
        group_name: p.group_name.clone(),
        leader: p.leader.clone(),
        village: p.village.clone(),
        subdistrict: p.subdistrict.clone(),
        district: p.district.clone(),
        certifications: certs_to_pb(&p.certifications),
        document_id: doc.to_string(),
    }
}

pub fn product_from_pb(p: Option<pb::Product>) -> Result<Product, Status> {
    let p = p.ok_or_else(|| invalid("product", "is required"))?;
    Ok(Product {
        sku: p.sku,
        name: p.name,
        producer_id: p.producer_id,
        category: p.category,
        unit: p.unit,
        price_rupiah: p.price_rupiah,
        certifications: certs_from_pb(p.certifications)?,
        reorder_level: p.reorder_level,
    })
}

pub fn product_to_pb(p: &Product, doc: &DocId) -> pb::Product {
    pb::Product {
        sku: p.sku.clone(),
        name: p.name.clone(),
        producer_id: p.producer_id.clone(),
        category: p.category.clone(),
        unit: p.unit.clone(),
        price_rupiah: p.price_rupiah,
        certifications: certs_to_pb(&p.certifications),
        document_id: doc.to_string(),
        reorder_level: p.reorder_level,
    }
}

pub fn channel(value: i32) -> Result<Channel, Status> {
    match pb::Channel::try_from(value) {
        Ok(pb::Channel::Unspecified | pb::Channel::Store) => Ok(Channel::Store),
        Ok(pb::Channel::Online) => Ok(Channel::Online),
        Err(_) => Err(invalid("channel", format!("unknown channel {value}"))),
    }
}

pub fn buyer(value: i32) -> Result<Buyer, Status> {
    match pb::Buyer::try_from(value) {
        Ok(pb::Buyer::Unspecified | pb::Buyer::Public) => Ok(Buyer::Public),
        Ok(pb::Buyer::Asn) => Ok(Buyer::Asn),
        Err(_) => Err(invalid("buyer", format!("unknown buyer {value}"))),
    }
}

pub fn channel_to_pb(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Store => pb::Channel::Store,
        Channel::Online => pb::Channel::Online,
    }
}

pub fn buyer_to_pb(buyer: Buyer) -> pb::Buyer {
    match buyer {
        Buyer::Public => pb::Buyer::Public,
        Buyer::Asn => pb::Buyer::Asn,
    }
}

pub fn reason(value: i32) -> Result<AdjustReason, Status> {
    match pb::AdjustmentReason::try_from(value) {
        Ok(pb::AdjustmentReason::Count) => Ok(AdjustReason::Count),
        Ok(pb::AdjustmentReason::Damage) => Ok(AdjustReason::Damage),
        Ok(pb::AdjustmentReason::Expiry) => Ok(AdjustReason::Expiry),
        _ => Err(invalid(
            "reason",
            format!("must be count, damage or expiry, got {value}"),
        )),
    }
}

pub fn ack_to_pb(ack: MovementAck) -> pb::MovementAck {
    pb::MovementAck {
        movement_id: ack.movement_id,
        sku: ack.sku,
        quantity_on_hand: ack.quantity_on_hand,
        document_id: ack.document.to_string(),
        duplicate: ack.duplicate,
        ..Default::default()
    }
}

pub fn stock_to_pb(line: StockLine) -> pb::StockLevel {
    pb::StockLevel {
        sku: line.sku,
        name: line.name,
        quantity: line.quantity,
        unit: line.unit,
    }
}

pub fn movement_to_pb(m: Movement) -> pb::Movement {
    let (unit_rupiah, detail) = match &m.kind {
        MovementKind::Receipt {
            unit_cost,
            producer,
            ..
        } => (
            *unit_cost,
            producer
                .clone()
                .map(|p| format!("from {p}"))
                .unwrap_or_default(),
        ),
        MovementKind::Sale {
            unit_price,
            channel,
            buyer,
            ..
        } => {
            let channel = if *channel == Channel::Online {
                "online"
            } else {
                "store"
            };
            let buyer = if *buyer == Buyer::Asn {
                "asn"
            } else {
                "public"
            };
            let order = match &m.kind {
                MovementKind::Sale {
                    order: Some(order), ..
                } => format!(", order {order}"),
                _ => String::new(),
            };
            (
                unit_price.unwrap_or(0),
                format!("{channel}, {buyer}{order}"),
            )
        }
        MovementKind::Adjustment { reason, note, .. } => {
            let reason = match reason {
                AdjustReason::Count => "count",
                AdjustReason::Damage => "damage",
                AdjustReason::Expiry => "expiry",
            };
            (
                0,
                if note.is_empty() {
                    reason.to_string()
                } else {
                    format!("{reason}: {note}")
                },
            )
        }
        MovementKind::TransferOut {
            transfer_id, to, ..
        } => (0, format!("{transfer_id} to {to}")),
        MovementKind::TransferIn {
            transfer_id, from, ..
        } => (0, format!("{transfer_id} from {from}")),
        MovementKind::QuotaGrant { quantity } => (0, format!("{quantity} granted to the hub")),
        MovementKind::QuotaReturn { quantity } => {
            (0, format!("{quantity} asked back from the hub"))
        }
        MovementKind::OrderCancel { quantity, order } => {
            (0, format!("order {order} of {quantity} cancelled"))
        }
    };
    let (receipt_number, payment, basket_line) = match &m.kind {
        MovementKind::Sale {
            basket: Some(mark), ..
        } => (
            mark.receipt,
            mark.payment
                .map(|p| p.name().to_string())
                .unwrap_or_default(),
            mark.line(),
        ),
        _ => (0, String::new(), 0),
    };
    pb::Movement {
        receipt_number,
        payment,
        basket_line,
        kind: m.kind.name().to_string(),
        delta: m.kind.delta(),
        id: m.id,
        sku: m.sku,
        unit_rupiah,
        detail,
        at_unix_ms: m.at_ms,
    }
}
