//! modpost's warnings, kept as findings: "version generation failed" and "undefined!" are how
//! both regressions modverify exists for first showed themselves in a build log.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModpostKind {
    VersionGenerationFailed,
    NoCrc,
    Undefined,
    ExportedTwice,
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModpostFinding {
    pub kind: ModpostKind,
    /// `WARNING` or `ERROR`.
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// `vmlinux` or the module path as modpost prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    pub line: String,
}

fn quoted(s: &str) -> Option<String> {
    let a = s.find('"')? + 1;
    let b = s[a..].find('"')? + a;
    Some(s[a..b].to_string())
}

fn bracketed(s: &str) -> Option<String> {
    let a = s.find('[')? + 1;
    let b = s[a..].find(']')? + a;
    Some(s[a..b].to_string())
}

/// Parses one build-log line; `None` if it is not a modpost message.
pub fn parse(line: &str) -> Option<ModpostFinding> {
    let (level, msg) = if let Some(m) = line.strip_prefix("WARNING: modpost: ") {
        ("WARNING", m)
    } else if let Some(m) = line.strip_prefix("ERROR: modpost: ") {
        ("ERROR", m)
    } else {
        return None;
    };
    let kind = if msg.contains("version generation failed") {
        ModpostKind::VersionGenerationFailed
    } else if msg.ends_with("has no CRC!") {
        ModpostKind::NoCrc
    } else if msg.ends_with("undefined!") {
        ModpostKind::Undefined
    } else if msg.contains("exported twice") {
        ModpostKind::ExportedTwice
    } else {
        ModpostKind::Other
    };
    let (symbol, module) = match kind {
        ModpostKind::ExportedTwice => (
            msg.split('\'').nth(1).map(str::to_string),
            msg.split(':').next().map(str::to_string),
        ),
        ModpostKind::Other => (None, None),
        _ => (quoted(msg), bracketed(msg)),
    };
    Some(ModpostFinding {
        kind,
        level: level.to_string(),
        symbol,
        module,
        line: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_regressions_lines() {
        let f = parse(r#"WARNING: modpost: EXPORT symbol "_mcount" [vmlinux] version generation failed, symbol will not be versioned."#).unwrap();
        assert_eq!(
            (f.kind, f.symbol.as_deref(), f.module.as_deref()),
            (
                ModpostKind::VersionGenerationFailed,
                Some("_mcount"),
                Some("vmlinux")
            )
        );
        let f = parse(r#"ERROR: modpost: "clear_user" [drivers/foo/bar.ko] undefined!"#).unwrap();
        assert_eq!(
            (f.kind, f.symbol.as_deref(), f.module.as_deref()),
            (
                ModpostKind::Undefined,
                Some("clear_user"),
                Some("drivers/foo/bar.ko")
            )
        );
        let f = parse(r#"WARNING: modpost: "x" [m.ko] has no CRC!"#).unwrap();
        assert_eq!(f.kind, ModpostKind::NoCrc);
        assert!(parse("  CC      kernel/fork.o").is_none());
    }
}
