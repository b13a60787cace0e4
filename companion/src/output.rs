//! What the `pinbridge` program prints on standard output.

/// Writes one line to standard output. A reader that went away (`pinbridge logs export |
/// head -1`) ends the program quietly with success, as `cat` does, instead of the panic
/// `println!` gives on a closed pipe.
pub fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("pinbridge: cannot write the output: {error}");
        std::process::exit(1);
    }
}
