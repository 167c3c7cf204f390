//! The sample provincial catalog every node starts with: IKM producers from eight
//! districts and their products, with the certifications the province tracks.
//!
//! The data is fixed and ordered, so every node builds byte-identical genesis changes
//! from it (see [`crate::domain::actor`]).

use super::catalog::{Catalog, CertKind, Certification, Producer, Product};

fn cert(kind: CertKind, number: &str, expires_on: Option<&str>) -> Certification {
    Certification {
        kind,
        number: number.to_string(),
        expires_on: expires_on.map(str::to_string),
    }
}

#[allow(clippy::too_many_arguments)]
fn producer(
    id: &str,
    group_name: &str,
    leader: &str,
    village: &str,
    subdistrict: &str,
    district: &str,
    certifications: Vec<Certification>,
) -> Producer {
    Producer {
        id: id.into(),
        group_name: group_name.into(),
        leader: leader.into(),
        village: village.into(),
        subdistrict: subdistrict.into(),
        district: district.into(),
        certifications,
    }
}

fn product(
    sku: &str,
    name: &str,
    producer_id: &str,
    category: &str,
    unit: &str,
    price_rupiah: i64,
    certifications: Vec<Certification>,
) -> Product {
    Product {
        sku: sku.into(),
        name: name.into(),
        producer_id: producer_id.into(),
        category: category.into(),
        unit: unit.into(),
        price_rupiah,
        certifications,
        reorder_level: 0,
    }
}

/// The sample provincial catalog.
pub fn provincial_catalog() -> Catalog {
    use CertKind::*;
    let producers = vec![
        producer(
            "ikm-humusu-wini",
            "Kelompok Tani Minyak Kayu Putih Humusu Wini",
            "Yohanes Taolin",
            "Humusu Wini",
            "Insana Utara",
            "ttu",
            vec![cert(Pirt, "2065304010021-28", Some("2028-03-31"))],
        ),
        producer(
            "ikm-tenun-biboki",
            "Kelompok Tenun Ikat Biboki Tamkesi",
            "Maria Bano",
            "Tamkesi",
            "Biboki Selatan",
            "ttu",
            vec![cert(Trademark, "IDM001093344", Some("2033-06-30"))],
        ),
        producer(
            "ikm-kopi-bajawa",
            "Koperasi Kopi Arabika Flores Bajawa",
            "Fransiskus Wea",
            "Beiwali",
            "Bajawa",
            "ngada",
            vec![cert(Halal, "ID53110000231450523", Some("2027-05-22"))],
        ),
        producer(
            "ikm-madu-amfoang",
            "Kelompok Madu Hutan Amfoang",
            "Daniel Oematan",
            "Fatumonas",
            "Amfoang Tengah",
            "kab-kupang",
            vec![cert(Halal, "ID53110000455120224", Some("2027-02-13"))],
        ),
        producer(
            "ikm-mete-nita",
            "UD Mete Nian Tana Sikka",
            "Agustina Moa",
            "Nita",
            "Nita",
            "sikka",
            vec![cert(Halal, "ID53110000512830922", Some("2026-12-20"))],
        ),
        producer(
            "ikm-lontar-oenale",
            "Kelompok Gula Lontar Oenale",
            "Yakobus Ndun",
            "Oenale",
            "Rote Barat Daya",
            "rote-ndao",
            vec![],
        ),
        producer(
            "ikm-sei-baun",
            "Usaha Se'i Sapi Baun",
            "Ruth Manafe",
            "Oebobo",
            "Oebobo",
            "kota-kupang",
            vec![cert(Halal, "ID53110000673210124", Some("2028-01-09"))],
        ),
        producer(
            "ikm-kelor-oebobo",
            "Kelompok Wanita Tani Kelor Oebobo",
            "Ester Bessie",
            "Oebobo",
            "Oebobo",
            "kota-kupang",
            vec![],
        ),
        producer(
            "ikm-sorgum-likotuden",
            "Kelompok Tani Sorgum Likotuden",
            "Maria Loretha",
            "Likotuden",
            "Demon Pagong",
            "flores-timur",
            vec![],
        ),
        producer(
            "ikm-tenun-prailiu",
            "Sanggar Tenun Ikat Prailiu",
            "Rambu Kahi",
            "Prailiu",
            "Kambera",
            "sumba-timur",
            vec![cert(Trademark, "IDM000874512", Some("2031-09-30"))],
        ),
    ];
    let products = vec![
        product(
            "TTU-MKP-060",
            "Minyak Kayu Putih Humusu Wini",
            "ikm-humusu-wini",
            "minyak atsiri",
            "60 ml bottle",
            35_000,
            vec![cert(Bpom, "POM TR 203645071", Some("2029-08-14"))],
        ),
        product(
            "TTU-MKP-120",
            "Minyak Kayu Putih Humusu Wini",
            "ikm-humusu-wini",
            "minyak atsiri",
            "120 ml bottle",
            60_000,
            vec![cert(Bpom, "POM TR 203645072", Some("2029-08-14"))],
        ),
        product(
            "TTU-TNN-SLD",
            "Selendang Tenun Ikat Biboki",
            "ikm-tenun-biboki",
            "tenun",
            "piece",
            350_000,
            vec![],
        ),
        product(
            "NGD-KOP-250",
            "Kopi Arabika Flores Bajawa",
            "ikm-kopi-bajawa",
            "kopi",
            "250 g pack",
            85_000,
            vec![cert(Pirt, "2075309020043-27", Some("2027-11-30"))],
        ),
        product(
            "NGD-KOP-1KG",
            "Kopi Arabika Flores Bajawa",
            "ikm-kopi-bajawa",
            "kopi",
            "1 kg pack",
            300_000,
            vec![cert(Pirt, "2075309020043-27", Some("2027-11-30"))],
        ),
        product(
            "KPG-MDU-500",
            "Madu Hutan Timor Amfoang",
            "ikm-madu-amfoang",
            "madu",
            "500 ml bottle",
            150_000,
            vec![cert(Pirt, "2065301010087-26", Some("2026-12-31"))],
        ),
        product(
            "SKA-MET-250",
            "Kacang Mete Sangrai",
            "ikm-mete-nita",
            "makanan ringan",
            "250 g pack",
            75_000,
            vec![cert(Pirt, "2075310010112-28", Some("2028-04-30"))],
        ),
        product(
            "RTN-GLL-500",
            "Gula Lontar Rote",
            "ikm-lontar-oenale",
            "gula",
            "500 g pack",
            40_000,
            vec![cert(Pirt, "2065314010009-27", Some("2027-07-31"))],
        ),
        product(
            "KOT-SEI-250",
            "Se'i Sapi Asap",
            "ikm-sei-baun",
            "daging olahan",
            "250 g pack",
            95_000,
            vec![cert(Bpom, "BPOM RI MD 259431001234", Some("2030-01-31"))],
        ),
        product(
            "KOT-KLR-100",
            "Teh Daun Kelor",
            "ikm-kelor-oebobo",
            "kelor",
            "100 g pack",
            45_000,
            vec![cert(Pirt, "2065371010044-29", Some("2029-02-28"))],
        ),
        product(
            "FLT-SRG-1KG",
            "Beras Sorgum Likotuden",
            "ikm-sorgum-likotuden",
            "sorgum",
            "1 kg pack",
            30_000,
            vec![cert(Pirt, "2075306010018-28", Some("2028-10-31"))],
        ),
        product(
            "STM-TNN-KAIN",
            "Kain Tenun Ikat Sumba Timur",
            "ikm-tenun-prailiu",
            "tenun",
            "piece",
            1_250_000,
            vec![],
        ),
    ];
    Catalog {
        producers: producers.into_iter().map(|p| (p.id.clone(), p)).collect(),
        products: products.into_iter().map(|p| (p.sku.clone(), p)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn sample_is_valid_and_spans_five_districts() {
        let catalog = provincial_catalog();
        assert!(catalog.products.len() >= 12);
        for p in catalog.producers.values() {
            assert_eq!(p.clone().validated().unwrap(), *p);
        }
        let mut districts = BTreeSet::new();
        for p in catalog.products.values() {
            assert_eq!(p.clone().validated().unwrap(), *p);
            let producer = &catalog.producers[&p.producer_id];
            districts.insert(producer.district.clone());
        }
        assert!(districts.len() >= 5, "{districts:?}");
        assert_eq!(catalog.producers["ikm-humusu-wini"].district, "ttu");
    }
}
