//! Sync protocol versions: the range this build speaks, the range a peer announces in
//! its `Hello`, and the version both speak (the highest in both ranges).
//!
//! Builds before ranges sent `Hello.protocol = 1` alone and required the peer's to
//! be 1: a range-speaking build puts its lowest version there, so an old peer and a
//! new one meet on 1 while both ranges hold it. This module must never pick a
//! version outside either range.

use std::fmt;

use mart_proto::v1::Hello;

/// The versions this build speaks: 1, every bundle sent at once; 2, bundles
/// numbered, answered by number and paced (see `sync::outgoing`).
pub const PROTOCOLS: Versions = Versions { min: 1, max: 2 };

/// The first version whose bundles are numbered and answered by number.
pub const PACED: u32 = 2;

/// An inclusive range of protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: u32,
    pub max: u32,
}

impl Versions {
    /// What a peer's `Hello` announces: its range, or `protocol` alone from an old
    /// build (range fields absent). `None` for a range that holds no version.
    pub fn announced(hello: &Hello) -> Option<Versions> {
        let versions = match (hello.protocol_min, hello.protocol_max) {
            (0, 0) => Versions {
                min: hello.protocol,
                max: hello.protocol,
            },
            (min, max) => Versions { min, max },
        };
        (versions.min >= 1 && versions.min <= versions.max).then_some(versions)
    }

    /// The highest version both ranges hold.
    pub fn common(self, other: Versions) -> Option<u32> {
        let high = self.max.min(other.max);
        (high >= self.min.max(other.min)).then_some(high)
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "protocol {}", self.min)
        } else {
            write!(f, "protocols {}..={}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(protocol: u32, min: u32, max: u32) -> Hello {
        Hello {
            node_id: "ttu".into(),
            protocol,
            protocol_min: min,
            protocol_max: max,
            ..Hello::default()
        }
    }

    #[test]
    fn both_sides_pick_the_highest_common_version() {
        let v = |min, max| Versions { min, max };
        assert_eq!(v(1, 1).common(v(1, 2)), Some(1));
        assert_eq!(v(1, 3).common(v(2, 5)), Some(3));
        assert_eq!(v(1, 1).common(v(2, 2)), None);
        // Symmetric: each side computes the same version on its own.
        for (a, b) in [(v(1, 2), v(2, 3)), (v(1, 4), v(3, 3)), (v(1, 1), v(1, 1))] {
            assert_eq!(a.common(b), b.common(a));
        }
    }

    #[test]
    fn an_old_hello_announces_its_one_version() {
        assert_eq!(
            Versions::announced(&hello(1, 0, 0)),
            Some(Versions { min: 1, max: 1 })
        );
        // This build meets an old one on 1, unpaced.
        assert_eq!(PROTOCOLS.common(Versions { min: 1, max: 1 }), Some(1));
        assert_eq!(PROTOCOLS.common(PROTOCOLS), Some(PACED));
        assert_eq!(
            Versions::announced(&hello(1, 1, 2)),
            Some(Versions { min: 1, max: 2 })
        );
        assert_eq!(Versions::announced(&hello(0, 0, 0)), None);
        assert_eq!(Versions::announced(&hello(1, 3, 2)), None);
    }
}
