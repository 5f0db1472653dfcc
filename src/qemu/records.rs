//! What the guest agent's records say, parsed once (the other half of the protocol is
//! `images/agent/agent.c`'s `record()` calls; the framing — token, sequence, CRC — is
//! `console.rs`'s). The boot loop, its progress and the results read these, never the words.
use super::console::Record;

/// How one `finit_module` ended, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadEnd {
    /// The call returned: its value, errno and errno's name (`ENOENT`; none on success).
    Returned {
        ret: Option<i64>,
        errno: Option<i32>,
        errno_name: Option<String>,
    },
    /// It never returned within the agent's watch (a fresh guest goes on from the next).
    Hung,
    /// The kernel went down while it ran.
    Crashed,
}

/// One export the agent read from the running kernel's table (`ksym`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportItem {
    pub index: usize,
    pub name: String,
    pub crc: Option<u32>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRecord {
    /// `hello NMODS START LAYOUT`: the agent is running.
    Hello,
    /// `memory TOTAL AVAIL` (KiB).
    Memory { total_kib: u64, avail_kib: u64 },
    /// `nodecompress I ERRNO`: the kernel could not decompress module I itself.
    NoDecompress { index: usize, errno: i32 },
    /// `load I NAME`: loading the plan's module I.
    Load { index: Option<usize>, name: String },
    /// `result I NAME (RET ERRNO MICROS ERRNAME | hung 0 MICROS | crashed E MICROS)`.
    Result {
        index: Option<usize>,
        end: Option<LoadEnd>,
        micros: Option<u64>,
    },
    /// `kmsg WHO LEVEL TEXT`: a kernel message about a module.
    Kmsg {
        who: String,
        level: u8,
        text: String,
    },
    /// `unloading I`: about to unload the plan's module I.
    Unloading { index: Option<usize> },
    /// `unload I NAME RET ERRNO`.
    Unload {
        index: Option<usize>,
        ret: i64,
        errno: i32,
    },
    /// `table NAME ENTRIES CRC_SLOTS [FLAG_BYTES]`: one of the running kernel's tables.
    Table {
        name: String,
        entries: usize,
        crc_slots: usize,
        flag_bytes: Option<usize>,
    },
    /// A `table` record that says why a table could not be read (`__ksymtab_gpl missing`).
    TableNote(String),
    /// `kflags TABLE START HEX`: one hex digit of flags per entry from START.
    KFlags {
        table: String,
        start: usize,
        digits: String,
    },
    /// `ksym TABLE I,NAME,CRC[,NS]/…`: exports with their names.
    Ksym {
        table: String,
        items: Vec<ExportItem>,
    },
    /// `kdig TABLE START NAMES_CRC CRC,CRC,…`: a run of CRCs whose names are covered by one
    /// digest.
    Kdig {
        table: String,
        start: usize,
        names_crc: u32,
        crcs: Vec<Option<u32>>,
    },
    /// `shell (insmod|rmmod) NAME RET ERRNO ERRNAME`: what a person did in the shell.
    Shell {
        what: String,
        name: String,
        ok: bool,
        errno_name: String,
    },
    /// `done`: the plan is through; `shell` when a person's shell follows.
    Done { shell: bool },
    /// `bye`: the person left the shell.
    Bye,
    /// A record of another kind (`error …`), or one whose words do not parse.
    Other,
}

impl GuestRecord {
    pub fn parse(r: &Record) -> Self {
        let f = &r.fields;
        // The payload's words (the framing splits it into at most four fields).
        let words = || -> Vec<&str> { f.iter().flat_map(|s| s.split(' ')).collect() };
        let rest = || -> Vec<&str> {
            f.get(2..)
                .map(|v| v.iter().flat_map(|s| s.split(' ')).collect())
                .unwrap_or_default()
        };
        let first_number = || {
            f.first()
                .and_then(|s| s.split(' ').next()?.parse::<usize>().ok())
        };
        match r.kind.as_str() {
            "hello" => GuestRecord::Hello,
            "memory" => {
                let w: Vec<u64> = words().iter().filter_map(|s| s.parse().ok()).collect();
                match w[..] {
                    [total_kib, avail_kib] => GuestRecord::Memory {
                        total_kib,
                        avail_kib,
                    },
                    _ => GuestRecord::Other,
                }
            }
            "nodecompress" => {
                let w = words();
                GuestRecord::NoDecompress {
                    index: w.first().and_then(|s| s.parse().ok()).unwrap_or(0),
                    errno: w.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
                }
            }
            "load" => GuestRecord::Load {
                index: first_number(),
                name: f
                    .get(1)
                    .or(f.first())
                    .and_then(|s| s.split(' ').next_back())
                    .unwrap_or("?")
                    .to_string(),
            },
            "result" => {
                let rest = rest();
                let end = rest.first().map(|w| match *w {
                    "hung" => LoadEnd::Hung,
                    "crashed" => LoadEnd::Crashed,
                    ret => LoadEnd::Returned {
                        ret: ret.parse().ok(),
                        errno: rest.get(1).and_then(|s| s.parse().ok()),
                        errno_name: rest
                            .get(3)
                            .filter(|s| s.starts_with('E'))
                            .map(|s| s.to_string()),
                    },
                });
                GuestRecord::Result {
                    index: first_number(),
                    end,
                    micros: rest.get(2).and_then(|s| s.parse().ok()),
                }
            }
            "kmsg" => GuestRecord::Kmsg {
                who: f.first().cloned().unwrap_or_default(),
                level: f.get(1).and_then(|s| s.parse().ok()).unwrap_or(6),
                text: f.get(2..).map(|v| v.join(" ")).unwrap_or_default(),
            },
            "unloading" => GuestRecord::Unloading {
                index: first_number(),
            },
            "unload" => {
                let rest = rest();
                GuestRecord::Unload {
                    index: first_number(),
                    ret: rest.first().and_then(|s| s.parse().ok()).unwrap_or(-1),
                    errno: rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
                }
            }
            "table" => {
                let w = words();
                match (
                    w.first(),
                    w.get(1).and_then(|s| s.parse().ok()),
                    w.get(2).and_then(|s| s.parse().ok()),
                ) {
                    (Some(name), Some(entries), Some(crc_slots)) => GuestRecord::Table {
                        name: name.to_string(),
                        entries,
                        crc_slots,
                        flag_bytes: w.get(3).and_then(|s| s.parse().ok()),
                    },
                    _ => GuestRecord::TableNote(w.join(" ")),
                }
            }
            "kflags" => {
                let w = words();
                match (
                    w.first(),
                    w.get(1).and_then(|s| s.parse::<usize>().ok()),
                    w.get(2),
                ) {
                    (Some(table), Some(start), Some(digits)) => GuestRecord::KFlags {
                        table: table.to_string(),
                        start,
                        digits: digits.to_string(),
                    },
                    _ => GuestRecord::Other,
                }
            }
            "ksym" => {
                let table = f.first().cloned().unwrap_or_default();
                let list = f.get(1..).map(|v| v.join(" ")).unwrap_or_default();
                let items = list
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .filter_map(|item| {
                        let p: Vec<&str> = item.splitn(4, ',').collect();
                        (p.len() >= 3).then(|| ExportItem {
                            index: p[0].parse().unwrap_or(usize::MAX),
                            name: p[1].to_string(),
                            crc: u32::from_str_radix(p[2], 16).ok(),
                            namespace: p.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string()),
                        })
                    })
                    .collect();
                GuestRecord::Ksym { table, items }
            }
            "kdig" => {
                let w = words();
                match (
                    w.first(),
                    w.get(1).and_then(|s| s.parse::<usize>().ok()),
                    w.get(2).and_then(|s| u32::from_str_radix(s, 16).ok()),
                    w.get(3),
                ) {
                    (Some(table), Some(start), Some(names_crc), Some(list)) => GuestRecord::Kdig {
                        table: table.to_string(),
                        start,
                        names_crc,
                        crcs: list
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(|c| u32::from_str_radix(c, 16).ok())
                            .collect(),
                    },
                    _ => GuestRecord::Other,
                }
            }
            "shell" => match words()[..] {
                [what, name, ret, _, errno_name, ..] => GuestRecord::Shell {
                    what: what.to_string(),
                    name: name.to_string(),
                    ok: ret == "0",
                    errno_name: errno_name.to_string(),
                },
                _ => GuestRecord::Other,
            },
            "done" => GuestRecord::Done {
                shell: f.iter().any(|s| s.contains("shell")),
            },
            "bye" => GuestRecord::Bye,
            _ => GuestRecord::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the console parser hands it over: the payload split at its first three
    /// spaces.
    fn rec(kind: &str, payload: &str) -> GuestRecord {
        GuestRecord::parse(&Record {
            seq: 0,
            kind: kind.into(),
            fields: payload.splitn(4, ' ').map(str::to_string).collect(),
        })
    }

    /// Each of agent.c's record formats, as it writes them.
    #[test]
    fn every_record_the_agent_writes_reads_as_what_it_says() {
        assert_eq!(rec("hello", "33 0 abs"), GuestRecord::Hello);
        assert_eq!(
            rec("memory", "1000 900"),
            GuestRecord::Memory {
                total_kib: 1000,
                avail_kib: 900
            }
        );
        assert_eq!(
            rec("load", "3 zlib_deflate"),
            GuestRecord::Load {
                index: Some(3),
                name: "zlib_deflate".into()
            }
        );
        assert_eq!(
            rec("result", "3 zlib_deflate -1 2 8123 ENOENT"),
            GuestRecord::Result {
                index: Some(3),
                end: Some(LoadEnd::Returned {
                    ret: Some(-1),
                    errno: Some(2),
                    errno_name: Some("ENOENT".into())
                }),
                micros: Some(8123)
            }
        );
        assert_eq!(
            rec("result", "4 hangme hung 0 30000000"),
            GuestRecord::Result {
                index: Some(4),
                end: Some(LoadEnd::Hung),
                micros: Some(30000000)
            }
        );
        assert_eq!(
            rec("result", "5 panicme crashed 11 12"),
            GuestRecord::Result {
                index: Some(5),
                end: Some(LoadEnd::Crashed),
                micros: Some(12)
            }
        );
        assert_eq!(
            rec("kmsg", "md5 3 Unknown symbol foo (err -2)"),
            GuestRecord::Kmsg {
                who: "md5".into(),
                level: 3,
                text: "Unknown symbol foo (err -2)".into()
            }
        );
        assert_eq!(
            rec("unload", "3 md5 -1 16"),
            GuestRecord::Unload {
                index: Some(3),
                ret: -1,
                errno: 16
            }
        );
        assert_eq!(
            rec("table", "__ksymtab 3199 3199 3199"),
            GuestRecord::Table {
                name: "__ksymtab".into(),
                entries: 3199,
                crc_slots: 3199,
                flag_bytes: Some(3199)
            }
        );
        assert_eq!(
            rec("table", "__ksymtab_gpl missing"),
            GuestRecord::TableNote("__ksymtab_gpl missing".into())
        );
        assert_eq!(
            rec("ksym", "__ksymtab 0,a,1f,/1,b,2,NS/"),
            GuestRecord::Ksym {
                table: "__ksymtab".into(),
                items: vec![
                    ExportItem {
                        index: 0,
                        name: "a".into(),
                        crc: Some(0x1f),
                        namespace: None
                    },
                    ExportItem {
                        index: 1,
                        name: "b".into(),
                        crc: Some(2),
                        namespace: Some("NS".into())
                    }
                ]
            }
        );
        assert_eq!(
            rec("kdig", "__ksymtab 8 0000abcd 1,2,"),
            GuestRecord::Kdig {
                table: "__ksymtab".into(),
                start: 8,
                names_crc: 0xabcd,
                crcs: vec![Some(1), Some(2)]
            }
        );
        assert_eq!(
            rec("kflags", "__ksymtab 0 0101"),
            GuestRecord::KFlags {
                table: "__ksymtab".into(),
                start: 0,
                digits: "0101".into()
            }
        );
        assert_eq!(
            rec("shell", "insmod zlib_deflate -1 2 ENOENT"),
            GuestRecord::Shell {
                what: "insmod".into(),
                name: "zlib_deflate".into(),
                ok: false,
                errno_name: "ENOENT".into()
            }
        );
        assert_eq!(rec("done", "33 shell"), GuestRecord::Done { shell: true });
        assert_eq!(rec("done", "33"), GuestRecord::Done { shell: false });
        assert_eq!(
            rec("nodecompress", "7 22"),
            GuestRecord::NoDecompress {
                index: 7,
                errno: 22
            }
        );
        assert_eq!(
            rec("unloading", "3 md5"),
            GuestRecord::Unloading { index: Some(3) }
        );
        assert_eq!(rec("bye", "0"), GuestRecord::Bye);
        assert_eq!(rec("error", "cannot open"), GuestRecord::Other);
    }
}
