//! Directory trees, shared by the applets that lay down or fix up a volume's files.
//!
//! - [`Chmod`]: modes to force or adjust, rsync's `--chmod` list (`D0750,F0640`, `u=rwX,go=rX`);
//! - [`tree`]: the incremental ownership and mode pass over a volume (`prepare-volume`);
//! - [`prune`]: deleting what a mirror does not have, never following a link or leaving the volume;
//! - [`swap`]: a directory's lock, its data entries, and replacing them with a staging
//!   directory's, journaled so a kill is finished by the next run (`restore`, `git-checkout`).

mod chmod;
pub mod prune;
pub mod swap;
pub mod tree;

pub use chmod::Chmod;
