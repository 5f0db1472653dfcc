//! The QEMU command line, entirely from the arch descriptor plus kernel, initrd and append.
use crate::arch::{ArchDescriptor, QemuFacts};
use std::path::Path;
use std::process::Command;

pub struct QemuCommand<'a> {
    pub qemu: &'a QemuFacts,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub append: String,
    /// Send the serial console to this file instead of stdio (what modverify follows).
    pub serial_file: Option<&'a Path>,
    /// A second serial port, for the agent's results, into this file (needs `serial_file`:
    /// QEMU numbers serial ports in the order they are given).
    pub result_file: Option<&'a Path>,
    /// Guest memory in MiB, replacing the descriptor's `-m` (which is the minimum).
    pub memory_mb: Option<u64>,
}

impl<'a> QemuCommand<'a> {
    pub fn new(
        arch: &'a ArchDescriptor,
        kernel: &'a Path,
        initrd: &'a Path,
        extra_append: &str,
    ) -> Option<Self> {
        let qemu = arch.qemu.as_ref()?;
        // panic=-1 with -no-reboot: a panicking guest makes QEMU exit instead of hanging.
        // rcu_expedited: module exit paths wait for RCU grace periods (synchronize_rcu,
        // rcu_barrier), each several ticks of an emulated CPU; expedited, unloading a
        // distribution's modules takes a fraction of the time.
        let append = format!(
            "console={} panic=-1 rcupdate.rcu_expedited=1 {extra_append}",
            qemu.console
        )
        .trim()
        .to_string();
        Some(QemuCommand {
            qemu,
            kernel,
            initrd,
            append,
            serial_file: None,
            result_file: None,
            memory_mb: None,
        })
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.qemu.binary);
        match self.memory_mb {
            Some(mb) => {
                let mut args = self.qemu.args.iter();
                while let Some(a) = args.next() {
                    if a == "-m" {
                        args.next();
                    } else {
                        c.arg(a);
                    }
                }
                c.arg("-m").arg(mb.to_string());
            }
            None => {
                c.args(&self.qemu.args);
            }
        }
        c.arg("-kernel")
            .arg(self.kernel)
            .arg("-initrd")
            .arg(self.initrd)
            .arg("-append")
            .arg(&self.append);
        if let Some(f) = self.serial_file {
            c.arg("-serial").arg(format!("file:{}", f.display()));
            if let Some(r) = self.result_file {
                c.arg("-serial").arg(format!("file:{}", r.display()));
            }
        }
        c
    }

    /// Shell-quoted, for --show-command and reproducer lines.
    pub fn show(&self) -> String {
        crate::proc::command_line(&self.command())
    }
}

/// The descriptor's `-m` value in MiB (QEMU's default unit), if it gives one.
pub fn descriptor_memory_mb(args: &[String]) -> Option<u64> {
    let v = args.iter().skip_while(|a| *a != "-m").nth(1)?;
    let v = v.split(',').next()?.trim_start_matches("size=");
    let (num, mult) = match v.as_bytes().last()? {
        b'G' | b'g' => (&v[..v.len() - 1], 1024),
        b'M' | b'm' => (&v[..v.len() - 1], 1),
        _ => (v, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}
