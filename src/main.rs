//! The multi-call front of initbox: `initbox APPLET ARGS`, or a link named after an applet.
//! It only dispatches; every behaviour lives in the applet crates under `applets/`.

#[cfg(feature = "completions")]
mod docs;
mod front;
mod registry;

fn main() {
    front::main(std::env::args_os().collect())
}
