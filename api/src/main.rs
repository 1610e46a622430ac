fn main() -> std::process::ExitCode {
    dartts::cli::main()
}
