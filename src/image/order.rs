//! Load order: every module after the modules it depends on (`depends=`), and after its
//! `softdep pre:` modules resolved through module names and aliases — without those, some
//! modules fail with no kernel message at all (libcrc32c asks for crc32c, which nothing
//! loads: there is no modprobe in the guest). A softdep that would close a cycle (crypto_algapi
//! lists cryptomgr, which depends on crypto_algapi) is placed right after the module instead,
//! before anything else that depends on it.
use std::collections::{BTreeSet, HashMap};

pub struct OrderInput {
    pub name: String,
    pub depends: Vec<String>,
    pub softdep_pre: Vec<String>,
    pub aliases: Vec<String>,
}

/// Returns indexes into `mods` in load order, and notes about dependencies it could not honour.
pub fn load_order(mods: &[OrderInput]) -> (Vec<usize>, Vec<String>) {
    let (order, notes, _) = load_order_with_edges(mods);
    (order, notes)
}

/// `load_order`, with the edges it honoured: for each module, the modules that must be
/// loaded before it (`depends=` and resolved softdeps), so a part of the set can be loaded
/// on its own with everything it needs.
pub fn load_order_with_edges(
    mods: &[OrderInput],
) -> (Vec<usize>, Vec<String>, Vec<BTreeSet<usize>>) {
    let norm = crate::depmod::normalise;
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, m) in mods.iter().enumerate() {
        by_name.insert(norm(&m.name), i);
    }
    let mut by_alias: HashMap<String, usize> = HashMap::new();
    for (i, m) in mods.iter().enumerate() {
        for a in &m.aliases {
            by_alias.entry(a.clone()).or_insert(i);
        }
    }
    let resolve = |s: &str| by_name.get(&norm(s)).or_else(|| by_alias.get(s)).copied();
    let mut notes = Vec::new();
    // Hard edges: before[i] = modules that must load before i.
    let mut before: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); mods.len()];
    for (i, m) in mods.iter().enumerate() {
        for d in &joined_names(&m.depends, |n| resolve(n).is_some()) {
            match resolve(d) {
                Some(j) if j != i => {
                    before[i].insert(j);
                }
                Some(_) => {}
                None => notes.push(format!(
                    "{} depends on {d}, which is not among the modules",
                    m.name
                )),
            }
        }
    }
    let reaches = |before: &Vec<BTreeSet<usize>>, from: usize, to: usize| -> bool {
        // does `from` (transitively) need `to` loaded first?
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(x) = stack.pop() {
            if x == to {
                return true;
            }
            if seen.insert(x) {
                stack.extend(before[x].iter().copied());
            }
        }
        false
    };
    for (i, m) in mods.iter().enumerate() {
        for s in &m.softdep_pre {
            let Some(j) = resolve(s) else { continue };
            if j == i {
                continue;
            }
            if !reaches(&before, j, i) {
                before[i].insert(j);
            } else {
                // j needs i: load j right after i, before i's other dependents.
                let dependents: Vec<usize> = (0..mods.len())
                    .filter(|&k| k != j && before[k].contains(&i) && !reaches(&before, j, k))
                    .collect();
                for k in dependents {
                    before[k].insert(j);
                }
            }
        }
    }
    // Kahn's algorithm, lowest index first for a stable order.
    let mut indeg: Vec<usize> = before.iter().map(|b| b.len()).collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); mods.len()];
    for (i, b) in before.iter().enumerate() {
        for &j in b {
            after[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..mods.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(mods.len());
    while let Some(&i) = ready.iter().next() {
        ready.remove(&i);
        order.push(i);
        for &k in &after[i] {
            indeg[k] -= 1;
            if indeg[k] == 0 {
                ready.insert(k);
            }
        }
    }
    if order.len() < mods.len() {
        let stuck: Vec<&str> = (0..mods.len())
            .filter(|i| !order.contains(i))
            .map(|i| mods[i].name.as_str())
            .collect();
        notes.push(format!("dependency cycle among: {}", stuck.join(", ")));
        order.extend(
            (0..mods.len())
                .filter(|i| !order.contains(i))
                .collect::<Vec<_>>(),
        );
    }
    (order, notes, before)
}

/// `depends=` is a comma-separated list, yet a module's name may hold a comma (7.x has
/// `thead,th1520-aon`, from its file name): rejoin neighbours that name a module only
/// together.
fn joined_names(parts: &[String], known: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let two = parts.get(i + 1).map(|next| format!("{},{next}", parts[i]));
        match two {
            Some(t) if !known(&parts[i]) && known(&t) => {
                out.push(t);
                i += 2;
            }
            _ => {
                out.push(parts[i].clone());
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_module_name_with_a_comma_is_one_dependency() {
        let mods = vec![
            m("th1520_pm_domains", &["thead", "th1520-aon"], &[], &[]),
            m("thead,th1520_aon", &[], &[], &[]),
        ];
        let (order, notes) = load_order(&mods);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(order, vec![1, 0]);
    }

    use super::*;

    fn m(name: &str, depends: &[&str], softdep: &[&str], aliases: &[&str]) -> OrderInput {
        OrderInput {
            name: name.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            softdep_pre: softdep.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn crypto_chain_with_cyclic_softdep_and_alias() {
        let mods = vec![
            m("md5", &["crypto_hash"], &[], &["crypto-md5"]),
            m("libcrc32c", &[], &["crc32c"], &[]),
            m(
                "crc32c_generic",
                &["crypto_hash"],
                &[],
                &["crypto-crc32c", "crc32c"],
            ),
            m("crypto_hash", &["crypto_algapi"], &[], &[]),
            m("cryptomgr", &["crypto_algapi"], &[], &[]),
            m("crypto_algapi", &["crypto"], &["cryptomgr"], &[]),
            m("crypto", &[], &[], &[]),
        ];
        let (order, notes) = load_order(&mods);
        let pos = |n: &str| order.iter().position(|&i| mods[i].name == n).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert!(pos("crypto") < pos("crypto_algapi"));
        assert!(pos("crypto_algapi") < pos("cryptomgr"));
        assert!(
            pos("cryptomgr") < pos("crypto_hash"),
            "cryptomgr before the algorithm chain"
        );
        assert!(
            pos("crc32c_generic") < pos("libcrc32c"),
            "softdep through an alias"
        );
        assert!(pos("crypto_hash") < pos("md5"));
    }
}
