//! Directory trees, shared by the applets that lay down or fix up a volume's files.
//!
//! - [`Chmod`]: modes to force, rsync's numeric `--chmod` form (`D0750,F0640`);
//! - [`tree`]: the incremental ownership and mode pass over a volume (`prepare-volume`);
//! - [`swap`]: a directory's lock, its data entries, and replacing them with a staging
//!   directory's, journaled so a kill is finished by the next run (`restore`, `git-checkout`).

mod chmod;
pub mod swap;
pub mod tree;

pub use chmod::Chmod;
