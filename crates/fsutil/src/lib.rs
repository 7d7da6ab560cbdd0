//! Directory trees, shared by the applets that lay down or fix up a volume's files.
//!
//! - [`Chmod`]: modes to force, rsync's numeric `--chmod` form (`D0750,F0640`);
//! - [`tree`]: the incremental ownership and mode pass over a volume (`prepare-volume`).

mod chmod;
pub mod tree;

pub use chmod::Chmod;
