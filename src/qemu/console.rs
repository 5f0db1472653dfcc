//! Reading the guest's console: framed agent records (token, sequence number and CRC-32 of
//! the payload checked, so no kernel or module message can forge or break one), and the
//! kernel's own crash markers.

/// One agent record, payload unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub kind: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEvent {
    Record(Record),
    /// A line with our token whose CRC or shape is wrong: a record was damaged.
    Damaged(String),
    /// A sequence gap: records were lost.
    Gap {
        expected: u64,
        got: u64,
    },
    /// `Kernel panic`, `Oops`, `BUG:` and their arch spellings.
    Crash(String),
}

/// Lines that mean the kernel crashed, as boot watchers in the wild match them.
const CRASH_MARKERS: [&str; 7] = [
    "Kernel panic",
    "Oops",
    "BUG:",
    "Unable to handle kernel",
    "Internal error:",
    "kernel BUG at",
    "Attempted to kill init",
];

pub struct ConsoleParser {
    token: String,
    next_seq: u64,
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
        }
    }
    !c
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A console line as a person reads it: an agent record's payload unescaped (`@MV 7 kmsg:
/// md5 3 Unknown symbol …` instead of `@MV TOKEN 7 CRC kmsg md5%203%20Unknown…`); other
/// lines as they are. The raw lines stay in serial.log; events.jsonl has the records parsed.
pub fn readable(line: &str) -> std::borrow::Cow<'_, str> {
    let Some(pos) = line.find("@MV ") else {
        return line.into();
    };
    let parts: Vec<&str> = line[pos + 4..].trim_end().splitn(5, ' ').collect();
    match parts.as_slice() {
        [_token, seq, _crc, kind, rest @ ..] => format!(
            "{}@MV {seq} {kind}: {}",
            &line[..pos],
            unescape(rest.first().copied().unwrap_or(""))
        )
        .into(),
        _ => line.into(),
    }
}

impl ConsoleParser {
    pub fn new(token: &str) -> Self {
        ConsoleParser {
            token: token.to_string(),
            next_seq: 0,
        }
    }

    /// Records carry a per-boot sequence; a new boot starts again at 0.
    pub fn new_boot(&mut self) {
        self.next_seq = 0;
    }

    pub fn feed(&mut self, line: &str) -> Vec<ConsoleEvent> {
        let mut out = Vec::new();
        if let Some(pos) = line.find("@MV ") {
            let rec = &line[pos + 4..];
            let parts: Vec<&str> = rec.trim_end().splitn(5, ' ').collect();
            if parts.first() != Some(&self.token.as_str()) {
                return out; // another run's (or a forged) record
            }
            let parsed = (|| {
                let seq: u64 = parts.get(1)?.parse().ok()?;
                let crc = u32::from_str_radix(parts.get(2)?, 16).ok()?;
                let kind = parts.get(3)?.to_string();
                let payload = parts.get(4).copied().unwrap_or("");
                (crc32(payload.as_bytes()) == crc).then_some((seq, kind, payload))
            })();
            match parsed {
                Some((seq, kind, payload)) => {
                    if seq != self.next_seq {
                        out.push(ConsoleEvent::Gap {
                            expected: self.next_seq,
                            got: seq,
                        });
                    }
                    self.next_seq = seq + 1;
                    let fields = unescape(payload)
                        .splitn(4, ' ')
                        .map(str::to_string)
                        .collect();
                    out.push(ConsoleEvent::Record(Record { seq, kind, fields }));
                }
                None => out.push(ConsoleEvent::Damaged(line.to_string())),
            }
            return out;
        }
        if CRASH_MARKERS.iter().any(|m| line.contains(m)) {
            out.push(ConsoleEvent::Crash(line.trim().to_string()));
        }
        out
    }
}

/// The console as a person sees it: every byte but the agent's records (`@MV TOKEN …` up to
/// the end of its line, wherever it starts: a record written after a prompt is mid-line),
/// passed on as it comes, so a prompt without a newline shows at once.
#[derive(Debug)]
pub struct Unframed {
    prefix: Vec<u8>,
    /// The bytes so far that may yet be a record's start.
    held: Vec<u8>,
    in_record: bool,
}

impl Unframed {
    pub fn new(token: &str) -> Self {
        Unframed {
            prefix: format!("@MV {token} ").into_bytes(),
            held: Vec::new(),
            in_record: false,
        }
    }

    /// Takes one byte of console output; appends what is to be shown to `out`.
    pub fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.in_record {
            self.in_record = b != b'\n';
            return;
        }
        if self.prefix.get(self.held.len()) == Some(&b) {
            self.held.push(b);
            if self.held.len() == self.prefix.len() {
                self.held.clear();
                self.in_record = true;
            }
            return;
        }
        // Not a record after all ('@' starts the prefix and appears in it once: the byte that
        // broke the match may start a new one).
        out.append(&mut self.held);
        if b == self.prefix[0] {
            self.held.push(b);
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_are_readable_in_the_console_log() {
        assert_eq!(
            super::readable(
                "@MV 7122d5 12 2601bb2f kmsg md5%203%20Unknown%20symbol%20x%20(err%20-2)"
            ),
            "@MV 12 kmsg: md5 3 Unknown symbol x (err -2)"
        );
        assert_eq!(
            super::readable("[    0.1] Linux version"),
            "[    0.1] Linux version"
        );
    }

    use super::*;

    fn rec(token: &str, seq: u64, kind: &str, payload: &str) -> String {
        format!(
            "@MV {token} {seq} {:08x} {kind} {payload}",
            crc32(payload.as_bytes())
        )
    }

    #[test]
    fn records_are_checked_and_unescaped() {
        let mut p = ConsoleParser::new("abc");
        let ev = p.feed(&rec("abc", 0, "result", "3 md5 -1 22 1500"));
        assert_eq!(
            ev,
            vec![ConsoleEvent::Record(Record {
                seq: 0,
                kind: "result".into(),
                fields: vec!["3".into(), "md5".into(), "-1".into(), "22 1500".into()]
            })]
        );
        let ev = p.feed(&rec(
            "abc",
            1,
            "kmsg",
            "md5 4 md5:%20disagrees%20about%20version%20of%20symbol%20module_layout",
        ));
        let ConsoleEvent::Record(r) = &ev[0] else {
            panic!()
        };
        assert_eq!(
            r.fields[2..].join(" "),
            "md5: disagrees about version of symbol module_layout"
        );
    }

    #[test]
    fn forged_damaged_and_lost_records_are_told_apart() {
        let mut p = ConsoleParser::new("abc");
        assert!(
            p.feed(&rec("evil", 0, "done", "1")).is_empty(),
            "another token is ignored"
        );
        let mut bad = rec("abc", 0, "done", "1");
        bad.push('x');
        assert!(matches!(p.feed(&bad)[0], ConsoleEvent::Damaged(_)));
        let ev = p.feed(&rec("abc", 5, "done", "1"));
        assert_eq!(
            ev[0],
            ConsoleEvent::Gap {
                expected: 0,
                got: 5
            }
        );
        assert!(matches!(
            p.feed("[   12.3] Kernel panic - not syncing: boom")[0],
            ConsoleEvent::Crash(_)
        ));
        assert!(p.feed("[    1.0] Linux version 6.1").is_empty());
    }

    #[test]
    fn records_are_taken_out_of_what_a_person_sees_and_prompts_pass_at_once() {
        let mut u = Unframed::new("tok");
        let mut out = Vec::new();
        let input = b"insmod md5: loaded\r\n@MV tok 3 0000 shell insmod%20md5\r\nmodverify# @MV tok 4 0 bye 0\r\nmodverify# @M";
        for &b in input.iter() {
            u.push(b, &mut out);
        }
        assert_eq!(out, b"insmod md5: loaded\r\nmodverify# modverify# ");
        // "@M" not followed by "V TOKEN " is shown after all.
        let mut more = Vec::new();
        u.push(b'x', &mut more);
        assert_eq!(more, b"@Mx");
    }
}
