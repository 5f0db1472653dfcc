//! Parse flags, run, map the outcome to an exit status — nothing else.
use clap::Parser;

fn main() {
    let cli = modverify::cli::Cli::parse();
    let code = match modverify::cli::run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("modverify: error: {}", f.error);
            let mut source = f.error.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            f.code
        }
    };
    std::process::exit(code);
}
