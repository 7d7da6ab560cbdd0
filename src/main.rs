//! The multi-call front of initbox: `initbox APPLET ARGS`, or a link named after an applet.
//! It only dispatches; every behaviour lives in the applet crates under `applets/`.

#[cfg(feature = "completions")]
mod docs;
mod front;
mod registry;

/// The system allocator, with the bounded sections templates render in (exit 3 instead of an
/// abort when a template builds a value past its limit).
#[global_allocator]
static ALLOCATOR: initbox_runtime::alloc::Allocator = initbox_runtime::alloc::Allocator;

fn main() {
    front::main(std::env::args_os().collect())
}
