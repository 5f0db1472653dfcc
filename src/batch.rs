//! How one kernel's modules are split between boots: shards (`--shard K/N`, one CI job each,
//! joined again by `modverify merge`) and batches (several guests within one run, when one
//! guest cannot hold them all or when CPUs are free to boot guests side by side). Each
//! batch is closed under dependencies: a module's `depends=` travel with it, and only the
//! modules a batch owns are reported from it.
use crate::image::PlannedModule;
use std::collections::BTreeSet;

/// `K/N`: the K-th of N shards (1-based).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
    /// Where `--shard auto` found it (the CI engine's variables), said once by the command.
    #[serde(skip)]
    pub from: Option<&'static str>,
}

/// Two shards are the same slice whichever way they were named.
impl PartialEq for Shard {
    fn eq(&self, other: &Self) -> bool {
        (self.k, self.n) == (other.k, other.n)
    }
}
impl Eq for Shard {}

impl Shard {
    /// `--shard auto` (GitLab's parallel jobs: `CI_NODE_INDEX`, 1-based, of `CI_NODE_TOTAL`)
    /// or `--shard auto/N` (a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, 0-based, with
    /// the total given, which the pod is not told). `env` reads a variable.
    pub fn from_env(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let given: Option<usize> = match spec.strip_prefix("auto/") {
            Some(n) => Some(n.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("--shard {spec}: the total after `auto/` is not a positive number")
            })?),
            None => None,
        };
        let number = |var: &str, v: String| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("--shard {spec}: {var}={v} is not a number"))
        };
        let (k, n, from) = match (env("CI_NODE_INDEX"), env("CI_NODE_TOTAL")) {
            (Some(i), Some(t)) => {
                let (k, n) = (number("CI_NODE_INDEX", i)?, number("CI_NODE_TOTAL", t)?);
                if given.is_some_and(|g| g != n) {
                    return Err(format!(
                        "--shard {spec}: CI_NODE_TOTAL={n} says otherwise; give --shard auto"
                    ));
                }
                (k, n, "GitLab's CI_NODE_INDEX (1-based) and CI_NODE_TOTAL")
            }
            _ => match env("JOB_COMPLETION_INDEX") {
                Some(i) => {
                    let Some(n) = given else {
                        return Err(format!(
                            "--shard {spec}: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed \
                             Job) but the pod is not told how many there are: give \
                             --shard auto/N with the Job's completions"
                        ));
                    };
                    (
                        number("JOB_COMPLETION_INDEX", i)? + 1,
                        n,
                        "Kubernetes' JOB_COMPLETION_INDEX (0-based)",
                    )
                }
                None => {
                    return Err(format!(
                        "--shard {spec}: no shard index in the environment (GitLab's \
                         CI_NODE_INDEX and CI_NODE_TOTAL, Kubernetes' JOB_COMPLETION_INDEX); \
                         elsewhere give --shard K/N (a GitHub Actions matrix: \
                         --shard ${{{{ matrix.shard }}}}/N)"
                    ))
                }
            },
        };
        if k == 0 || k > n {
            return Err(format!(
                "--shard {spec}: shard {k} of {n} from {from} is out of range"
            ));
        }
        Ok(Shard {
            k,
            n,
            from: Some(from),
        })
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" || s.starts_with("auto/") {
            return Shard::from_env(s, |v| std::env::var(v).ok());
        }
        let bad = || format!("`{s}` is not a shard: K/N with 1 <= K <= N (e.g. 2/4), or auto");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n, from: None })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// Whether this shard boots batch `number` (0-based) of the whole set: every N-th.
    pub fn owns(&self, number: usize) -> bool {
        number % self.n == self.k - 1
    }
}

/// Modules one guest loads at most by default: enough that booting (seconds) is small next
/// to loading, few enough that guests side by side share the work evenly.
pub const MODULES_PER_BATCH: usize = 800;

/// Modules handed to the kernel compressed stay about this much smaller than what the
/// guest allocates for them (kernel modules compress about 4:1).
const COMPRESSED_RATIO: u64 = 4;

/// Bytes the guest needs for a module once loaded, from its file size.
pub fn loaded_bytes(m: &PlannedModule, compressed: bool) -> u64 {
    // The file is read whole, decompressed, and its sections laid out page by page; then
    // its init allocates what it needs. Count the decompressed size plus 64 KiB of pages
    // and bookkeeping (struct module, sysfs, section padding) for each.
    const PER_MODULE: u64 = 64 << 10;
    PER_MODULE
        + if compressed {
            m.file_bytes * COMPRESSED_RATIO
        } else {
            m.file_bytes
        }
}

/// Memory (MiB) a guest needs: the kernel's own share, the initramfs twice (the archive
/// QEMU loads and the files unpacked from it), and every module loaded at once, with half
/// more for slack (memory a guest does not touch costs the host nothing); rounded up to
/// 64 MiB. Measured on Debian trixie riscv64: 1883 modules took 560 MiB with the kernel's
/// own 150.
pub fn guest_memory_mb(
    kernel_mb: u64,
    initramfs_bytes: u64,
    unpacked_bytes: u64,
    loaded_bytes: u64,
) -> u64 {
    let need = (initramfs_bytes + unpacked_bytes + loaded_bytes) as f64 * 1.5 / (1 << 20) as f64;
    (kernel_mb + need.ceil() as u64).div_ceil(64) * 64
}

/// The kernel's own share of a guest's memory: 256 MiB, a distribution kernel's with room
/// to spare, or half of a machine that takes less than twice that (sh4's r2d has 64 MiB
/// fixed: a kernel built for such a board is a small one).
pub fn kernel_share_mb(machine_max_mb: u64) -> u64 {
    256.min(machine_max_mb / 2)
}

/// One boot's share: the modules it reports (`owned`) and the ones it loads, in the run's
/// load order (owned plus everything they depend on).
#[derive(Debug, Clone)]
pub struct Batch {
    /// Its place among the whole set's batches (0-based).
    pub number: usize,
    pub owned: Vec<usize>,
    pub loads: Vec<usize>,
}

/// Splits `owned` (indexes into `plan`, in load order) into `count` batches of about equal
/// loaded size, each closed under what its modules need (`depends=` and softdeps: libcrc32c
/// asks the crypto API for crc32c, which crc32c_generic provides).
pub fn split(plan: &[PlannedModule], owned: &[usize], count: usize, sizes: &[u64]) -> Vec<Batch> {
    let count = count.clamp(1, owned.len().max(1));
    let total: u64 = owned.iter().map(|&i| sizes[i]).sum::<u64>().max(1);
    let share = total.div_ceil(count as u64);
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
    let mut acc = 0u64;
    for &i in owned {
        if acc >= share && chunks.len() < count {
            chunks.push(Vec::new());
            acc = 0;
        }
        chunks.last_mut().expect("one chunk").push(i);
        acc += sizes[i];
    }
    chunks
        .into_iter()
        .filter(|c| !c.is_empty())
        .enumerate()
        .map(|(number, owned)| {
            let mut loads: BTreeSet<usize> = BTreeSet::new();
            let mut stack: Vec<usize> = owned.clone();
            while let Some(i) = stack.pop() {
                if loads.insert(i) {
                    stack.extend(plan[i].needs.iter().copied());
                }
            }
            Batch {
                number,
                owned,
                loads: loads.into_iter().collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(index: usize, name: &str, needs: &[usize]) -> PlannedModule {
        PlannedModule {
            index,
            name: name.into(),
            path: format!("{name}.ko"),
            depends: vec![],
            needs: needs.to_vec(),
            file_bytes: 100,
        }
    }

    #[test]
    fn shard_auto_reads_the_ci_engines_index() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        // GitLab: 1-based, with the total.
        let s = Shard::from_env(
            "auto",
            env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "2")]),
        )
        .unwrap();
        assert_eq!((s.k, s.n), (2, 2));
        assert!(s.from.unwrap().contains("CI_NODE_INDEX"));
        // Kubernetes: 0-based, the total given.
        let s = Shard::from_env("auto/2", env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap();
        assert_eq!((s.k, s.n), (1, 2));
        let e = Shard::from_env("auto", env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err();
        assert!(e.contains("--shard auto/N"), "{e}");
        let e = Shard::from_env("auto/2", env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap_err();
        assert!(e.contains("shard 3 of 2"), "{e}");
        let e = Shard::from_env("auto", env(&[])).unwrap_err();
        assert!(e.contains("give --shard K/N"), "{e}");
        assert!(e.contains("${{ matrix.shard }}/N"), "{e}");
        let e = Shard::from_env(
            "auto/3",
            env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "2")]),
        )
        .unwrap_err();
        assert!(e.contains("CI_NODE_TOTAL=2 says otherwise"), "{e}");
    }

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard {
                k: 2,
                n: 4,
                from: None
            }
        );
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=3)
            .map(|k| Shard {
                k,
                n: 3,
                from: None,
            })
            .collect();
        for i in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns(i)).count(), 1);
        }
    }

    #[test]
    fn batches_carry_their_dependencies_and_own_each_module_once() {
        let plan = vec![
            m(0, "crypto", &[]),
            m(1, "crypto_hash", &[0]),
            m(2, "md5", &[1]),
            m(3, "crc7", &[]),
            m(4, "sha256", &[1]),
        ];
        let owned: Vec<usize> = (0..5).collect();
        let b = split(&plan, &owned, 2, &[100; 5]);
        assert_eq!(b.len(), 2);
        let mut all: Vec<usize> = b.iter().flat_map(|b| b.owned.clone()).collect();
        all.sort();
        assert_eq!(all, owned);
        // sha256 in the second batch brings crypto_hash and crypto along, in load order.
        let last = b.last().unwrap();
        assert!(last.owned.contains(&4));
        assert_eq!(
            last.loads.iter().filter(|&&i| i <= 1).count(),
            2,
            "{last:?}"
        );
        assert!(last.loads.windows(2).all(|w| w[0] < w[1]));
        // One batch asked for is one batch; more batches than modules are not made.
        assert_eq!(split(&plan, &owned, 1, &[100; 5]).len(), 1);
        assert_eq!(split(&plan, &owned[..2], 9, &[100; 5]).len(), 2);
    }

    #[test]
    fn memory_grows_with_the_payload() {
        assert_eq!(guest_memory_mb(256, 0, 0, 0), 256);
        assert_eq!(
            guest_memory_mb(kernel_share_mb(64), 0, 1 << 20, 2 << 20),
            64
        );
        assert_eq!(kernel_share_mb(4096), 256);
        let mb = guest_memory_mb(256, 107 << 20, 107 << 20, 968 << 20);
        assert!((2000..2300).contains(&mb), "{mb}");
        assert_eq!(mb % 64, 0);
    }
}
