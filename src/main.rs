//! Parse flags, run, map the outcome to an exit status — nothing else.
use clap::Parser;

fn main() {
    let cli = match modverify::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Under `git bisect run`, a usage error must abort the bisection, not mark "bad".
            let bisecting = std::env::args().nth(1).as_deref() == Some("bisect-step");
            std::process::exit(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ if bisecting => modverify::cli::bisect::ABORT,
                _ => modverify::cli::exit::USAGE,
            });
        }
    };
    let code = match modverify::cli::run(cli) {
        Ok(code) => code,
        Err(f) => {
            let top = f.error.to_string();
            // The same prefix as clap's own usage errors: one shape for every error.
            modverify::errln!("error: {top}");
            // Layers put their cause into their own message ("PATH: …: cause"); a cause
            // line is printed only where it adds something.
            let mut said = top;
            let mut source = f.error.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !said.contains(&text) {
                    modverify::errln!("  caused by: {text}");
                    said.push_str(&text);
                }
                source = s.source();
            }
            f.code
        }
    };
    std::process::exit(code);
}
