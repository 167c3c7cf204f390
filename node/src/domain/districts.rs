//! The 22 regencies and cities (kabupaten/kota) of Nusa Tenggara Timur, and
//! [`KnownDistricts`]: the districts a node accepts as outlets (the hub: as sync
//! peers too), these 22 unless the hub's config lists others.

use std::collections::BTreeSet;

use crate::domain::doc_id::NodeId;

/// One district: its id (used as a node id for its outlet), name and capital.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct District {
    pub id: &'static str,
    pub name: &'static str,
    pub capital: &'static str,
}

const fn d(id: &'static str, name: &'static str, capital: &'static str) -> District {
    District { id, name, capital }
}

/// Every district of NTT, in the province's usual order.
pub const ALL: [District; 22] = [
    d("kota-kupang", "Kota Kupang", "Kupang"),
    d("kab-kupang", "Kupang", "Oelamasi"),
    d("tts", "Timor Tengah Selatan", "Soe"),
    d("ttu", "Timor Tengah Utara", "Kefamenanu"),
    d("belu", "Belu", "Atambua"),
    d("malaka", "Malaka", "Betun"),
    d("alor", "Alor", "Kalabahi"),
    d("lembata", "Lembata", "Lewoleba"),
    d("flores-timur", "Flores Timur", "Larantuka"),
    d("sikka", "Sikka", "Maumere"),
    d("ende", "Ende", "Ende"),
    d("nagekeo", "Nagekeo", "Mbay"),
    d("ngada", "Ngada", "Bajawa"),
    d("manggarai-timur", "Manggarai Timur", "Borong"),
    d("manggarai", "Manggarai", "Ruteng"),
    d("manggarai-barat", "Manggarai Barat", "Labuan Bajo"),
    d("sumba-timur", "Sumba Timur", "Waingapu"),
    d("sumba-tengah", "Sumba Tengah", "Waibakul"),
    d("sumba-barat", "Sumba Barat", "Waikabubak"),
    d("sumba-barat-daya", "Sumba Barat Daya", "Tambolaka"),
    d("rote-ndao", "Rote Ndao", "Ba'a"),
    d("sabu-raijua", "Sabu Raijua", "Seba"),
];

/// The district with this id.
pub fn find(id: &str) -> Option<&'static District> {
    ALL.iter().find(|d| d.id == id)
}

/// The districts a node knows: the only node ids, besides its hub, that may open a
/// sync session at the hub, receive a transfer or a budget. A set: order and
/// repetition of the config's list do not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDistricts(BTreeSet<NodeId>);

impl KnownDistricts {
    pub fn new(ids: impl IntoIterator<Item = NodeId>) -> Self {
        KnownDistricts(ids.into_iter().collect())
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.0.contains(id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The districts, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &NodeId> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for KnownDistricts {
    /// The province's 22 districts.
    fn default() -> Self {
        KnownDistricts::new(
            ALL.iter()
                .map(|d| NodeId::parse(d.id).expect("every district id is a node id")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_two_unique_ids_that_are_valid_node_ids() {
        let mut ids: Vec<_> = ALL.iter().map(|d| d.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 22);
        for id in ids {
            NodeId::parse(id).unwrap();
        }
        assert_eq!(find("ttu").unwrap().capital, "Kefamenanu");
        let known = KnownDistricts::default();
        assert_eq!(known.len(), 22);
        assert!(known.contains(&NodeId::parse("ttu").unwrap()));
        assert!(!known.contains(&NodeId::parse("kupang").unwrap()));
        assert!(!known.contains(&NodeId::parse("evil").unwrap()));
    }
}
