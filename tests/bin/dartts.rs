//! The `dartts` binary, built inside the test package so the black-box tests can run it (cargo
//! only exposes `CARGO_BIN_EXE_*` for binaries of the package under test). Same entry point as
//! `api/src/main.rs`.
fn main() -> std::process::ExitCode {
    dartts::cli::main()
}
