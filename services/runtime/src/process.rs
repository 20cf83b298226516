//! Process-wide behaviour every MCPG binary wants at start-up.

/// Makes a closed stdout (`mcpg-license verify … | head -1`, `mcpg-entitlements status | head`) end the process quietly with
/// status 0, as a reader that stopped reading is not an error of ours. Without it, the first
/// `println!` after the reader exits panics with a backtrace. Call once at the start of
/// `main`; every other panic still goes to the default hook.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
