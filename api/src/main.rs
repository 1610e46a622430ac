// Many small, short-lived allocations per request: see the `mimalloc` line in Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dartts::cli::main()
}
