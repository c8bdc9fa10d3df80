//! With the `faiss` feature, compiles `csrc/faiss_shim.cpp` against the FAISS headers that the
//! `faiss-sys` crate installs into its build directory (it does not export their location, so we
//! look beside our own build directory: `target/<profile>/build/faiss-sys-*/out/include`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // `VECINDEX_BUG=name` injects a known bug (`bug!` in src/sync/bug.rs). Under a model
    // checker (`--cfg vecindex_loom` or `vecindex_shuttle` in RUSTFLAGS, which cargo shows build
    // scripts as CARGO_CFG_*), the library reads it at run time, so one build serves every bug
    // of scripts/loom and scripts/shuttle. Otherwise (scripts/tsan's control run) it builds this
    // crate with `--cfg vecindex_bug="name"`: the real code then carries no check. Unlike
    // RUSTFLAGS, that rebuilds only this crate, not every dependency.
    let model_checked = std::env::var_os("CARGO_CFG_VECINDEX_LOOM").is_some()
        || std::env::var_os("CARGO_CFG_VECINDEX_SHUTTLE").is_some();
    if !model_checked {
        println!("cargo:rerun-if-env-changed=VECINDEX_BUG");
        if let Some(bug) = std::env::var("VECINDEX_BUG").ok().filter(|b| !b.is_empty()) {
            println!("cargo:rustc-cfg=vecindex_bug=\"{bug}\"");
        }
    }
    println!("cargo:rerun-if-changed=csrc/faiss_shim.cpp");
    #[cfg(feature = "faiss")]
    compile_shim();
}

#[cfg(feature = "faiss")]
fn compile_shim() {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR = <target>/<profile>/build/vecindex-<hash>/out
    let build_dir = out_dir.ancestors().nth(2).expect("OUT_DIR has a build directory").to_owned();
    let include = std::fs::read_dir(&build_dir)
        .expect("readable build directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("faiss-sys-"))
        .map(|e| e.path().join("out").join("include"))
        .filter(|p| p.join("faiss").join("IndexHNSW.h").exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "FAISS headers not found under {}/faiss-sys-*/out/include; faiss-sys must build first",
                build_dir.display()
            )
        });
    println!("cargo:rerun-if-changed={}", include.join("faiss").join("Index.h").display());
    // The C++ flags cc gives the shim and faiss-sys's cmake gives FAISS (the first of these cc
    // finds), for the test that checks the shim reports what they assume.
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let flags = [
        format!("CXXFLAGS_{target}"),
        format!("CXXFLAGS_{}", target.replace('-', "_")),
        "TARGET_CXXFLAGS".into(),
        "CXXFLAGS".into(),
    ]
    .iter()
    .inspect(|name| println!("cargo:rerun-if-env-changed={name}"))
    .find_map(|name| std::env::var(name).ok())
    .unwrap_or_default();
    println!("cargo:rustc-env=VECINDEX_CXXFLAGS={flags}");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .flag("-fopenmp")
        .flag_if_supported("-Wno-unused-parameter")
        .include(&include)
        .file("csrc/faiss_shim.cpp")
        .compile("vecindex_faiss_shim");
}
