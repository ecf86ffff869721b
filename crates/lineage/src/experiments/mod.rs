//! The five experiments, one a file, each a pure function of a [`crate::Corpus`] and
//! [`crate::Options`] returning a serializable report whose `Display` is markdown.

pub mod attribution;
pub mod calibration;
pub mod power;
pub mod radioactivity;
pub mod robustness;
