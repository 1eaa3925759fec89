//! A summary of repeated samples: the median and its spread.

use super::Unit;
use serde::{Deserialize, Serialize};

/// The median of repeated samples with their spread, in one unit.
///
/// `rounds` holds the median of each independent round when the samples were
/// taken in rounds; the gate and `siteboss compare` judge those, because
/// samples within one round are not independent of each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The unit of every value below.
    pub unit: Unit,
    /// How many samples were summarised (after the warm-up, which is dropped).
    pub n: usize,
    /// The median sample.
    pub median: f64,
    /// The 25th percentile.
    pub p25: f64,
    /// The 75th percentile.
    pub p75: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
    /// The median absolute deviation from the median (unscaled).
    pub mad: f64,
    /// How many samples have a modified z-score (median/MAD) above 3.5.
    /// They are kept in every figure and only warned about.
    pub outliers: usize,
    /// The median of each independent round, in the order measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
}
