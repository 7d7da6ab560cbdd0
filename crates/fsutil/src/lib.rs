//! Directory trees, shared by the applets that lay down or fix up a volume's files.
//!
//! - [`Chmod`]: modes to force or adjust, rsync's `--chmod` list (`D0750,F0640`, `u=rwX,go=rX`);
//! - [`tree`]: the incremental ownership and mode pass over a volume (`prepare-volume`);
//! - [`prune`]: deleting what a mirror does not have, never following a link or leaving the volume.

mod chmod;
pub mod prune;
pub mod tree;

pub use chmod::Chmod;
