//! Writes the synthetic ELF files into fuzz/corpus/parse_elf when MODVERIFY_WRITE_SEEDS is
//! set (ci/fuzz does), so the fuzzer starts from valid vmlinux and module layouts.
mod support;
use support::synth::{all_targets, export, KernelSpec, ModuleSpec};

#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("MODVERIFY_WRITE_SEEDS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (i, t) in all_targets().into_iter().enumerate() {
        let mut k = KernelSpec::new(
            t,
            vec![
                export("a", false, 1),
                export("module_layout", false, 2),
                export("g", true, 3),
            ],
        );
        k.symtab = i % 2 == 0;
        std::fs::write(
            std::path::Path::new(&dir).join(format!("vmlinux{i}")),
            k.build(),
        )
        .unwrap();
        let mut m = ModuleSpec::new(t, "m")
            .import("a", 1)
            .import("module_layout", 2);
        m.exports = vec![export("e", false, 5), export("f", true, 6)];
        std::fs::write(
            std::path::Path::new(&dir).join(format!("module{i}.ko")),
            m.build(),
        )
        .unwrap();
    }
}
