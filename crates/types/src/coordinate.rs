//! Network coordinates as Consul's `/v1/coordinate/*` endpoints and `Coordinate.*` RPCs carry
//! them (`structs.Coordinate`, serf's `coordinate.Coordinate`). Every length is in seconds.

use serde::{Deserialize, Serialize};

/// Dimensions of Consul's (Serf's) coordinates; updates with any other count are refused.
pub const COORDINATE_DIMENSIONS: usize = 8;

/// A Vivaldi coordinate (`Coord`), with serf's field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Coord {
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl Coord {
    /// No NaN or infinity anywhere (serf's `IsValid`).
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|x| x.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    /// Estimated RTT to `other` in seconds (serf's `DistanceTo`: Euclidean distance plus both
    /// heights, plus both adjustments unless that makes it non-positive), truncated to whole
    /// nanoseconds like Go's `time.Duration`. `None` when the dimensions differ.
    pub fn distance_secs(&self, other: &Coord) -> Option<f64> {
        if self.vec.len() != other.vec.len() {
            return None;
        }
        let euclid = self
            .vec
            .iter()
            .zip(&other.vec)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let raw = euclid + self.height + other.height;
        let adjusted = raw + self.adjustment + other.adjustment;
        let d = if adjusted > 0.0 { adjusted } else { raw };
        Some((d * 1.0e9).trunc() / 1.0e9)
    }
}

/// One node's LAN coordinate (`/v1/coordinate/nodes`, `/v1/coordinate/node/:node`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CoordinateEntry {
    pub node: String,
    pub segment: String,
    pub coord: Coord,
}

/// `PUT /v1/coordinate/update` body (`structs.CoordinateUpdateRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CoordinateUpdateRequest {
    pub datacenter: String,
    pub node: String,
    pub segment: String,
    /// Absent in the body means no coordinate, which the server refuses.
    pub coord: Option<Coord>,
}

/// One datacenter's servers and their WAN coordinates (`/v1/coordinate/datacenters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DatacenterCoordinates {
    pub datacenter: String,
    #[serde(rename = "AreaID")]
    pub area_id: String,
    pub coordinates: Vec<CoordinateEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_consuls() {
        let e = CoordinateEntry {
            node: "a".into(),
            segment: String::new(),
            coord: Coord {
                vec: vec![0.0; 2],
                error: 1.5,
                adjustment: 0.0,
                height: 1e-5,
            },
        };
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(
            j,
            r#"{"Node":"a","Segment":"","Coord":{"Vec":[0.0,0.0],"Error":1.5,"Adjustment":0.0,"Height":0.00001}}"#
        );
    }

    #[test]
    fn distance_follows_serf() {
        let a = Coord {
            vec: vec![0.0, 0.0],
            height: 0.001,
            ..Default::default()
        };
        let b = Coord {
            vec: vec![0.003, 0.004],
            height: 0.002,
            adjustment: 0.0005,
            ..Default::default()
        };
        let d = a.distance_secs(&b).unwrap();
        assert!((d - (0.005 + 0.003 + 0.0005)).abs() < 1e-9, "{d}");
        // A negative total adjustment that would make the estimate non-positive is dropped.
        let c = Coord {
            adjustment: -1.0,
            ..b.clone()
        };
        assert!((a.distance_secs(&c).unwrap() - 0.008).abs() < 1e-9);
        assert_eq!(a.distance_secs(&Coord::default()), None);
    }
}
