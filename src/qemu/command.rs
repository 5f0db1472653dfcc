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
        // The machine's serial ports before the console's get nothing attached.
        for _ in 0..self.qemu.console_serial {
            c.arg("-serial").arg("null");
        }
        if let Some(f) = self.serial_file {
            c.arg("-serial").arg(format!("file:{}", f.display()));
            if let Some(r) = self.result_file {
                c.arg("-serial").arg(format!("file:{}", r.display()));
            }
        } else if self.qemu.console_serial > 0 {
            // -nographic puts only the first port on the terminal; a hand run wants the console.
            c.arg("-serial").arg("mon:stdio");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// A console on QEMU's second serial port (sh4's r2d: the SCIF): the first gets nothing,
    /// the console file the second, in a hand run the terminal the second.
    #[test]
    fn console_on_a_later_serial_port_gets_the_ports_before_it_connected_to_nothing() {
        let r = crate::arch::ArchRegistry::load(None).unwrap();
        let mut second = r.get("riscv64").unwrap().clone();
        second.qemu.as_mut().unwrap().console_serial = 1;
        let (k, i, f) = (Path::new("k"), Path::new("i"), Path::new("console"));
        let mut q = QemuCommand::new(&second, k, i, "").unwrap();
        let hand = args(&q.command()).join(" ");
        assert!(hand.ends_with("-serial null -serial mon:stdio"), "{hand}");
        q.serial_file = Some(f);
        let logged = args(&q.command()).join(" ");
        assert!(
            logged.ends_with("-serial null -serial file:console"),
            "{logged}"
        );
        let riscv = r.get("riscv64").unwrap();
        let mut q = QemuCommand::new(riscv, k, i, "").unwrap();
        q.serial_file = Some(f);
        assert!(!args(&q.command()).contains(&"null".to_string()));
    }
}
