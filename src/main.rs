//! The `vezasock` binary: a thin front end over the library's `cli` module.

fn main() -> std::process::ExitCode {
    vezasock::cli::main()
}
