//! The instruction sets the FAISS build assumed, checked against the CPU before any FAISS code
//! runs.
//!
//! FAISS picks its SIMD kernels at compile time (`#ifdef __AVX2__`), and this workspace builds
//! it for AVX2 (`.cargo/config.toml`); code compiled that way dies with SIGILL on a CPU without
//! those instructions. The shim is compiled with the same C++ flags and reports what the
//! compiler was allowed to assume, so a CPU that lacks any of it gets
//! [`Error::UnsupportedCpu`] instead. A portable build (`CXXFLAGS_x86_64_unknown_linux_gnu=`
//! set empty) assumes nothing and passes everywhere.

use std::ffi::c_int;

use crate::error::{Error, Result};

unsafe extern "C" {
    fn vecindex_faiss_assumed_simd() -> c_int;
}

/// The bits the shim reports, with each one's name as `is_x86_feature_detected!` spells it.
const ASSUMED: [(c_int, &str); 4] = [(1, "avx2"), (2, "fma"), (4, "f16c"), (8, "popcnt")];

/// The instruction sets the build assumed, by name.
pub fn assumed() -> Vec<&'static str> {
    // SAFETY: returns a compile-time constant; touches no memory.
    let bits = unsafe { vecindex_faiss_assumed_simd() };
    ASSUMED.iter().filter(|(bit, _)| bits & bit != 0).map(|&(_, name)| name).collect()
}

/// `Ok` when this CPU has every instruction set the FAISS build assumed.
///
/// # Errors
/// [`Error::UnsupportedCpu`] naming what is missing.
pub fn check() -> Result<()> {
    let assumed = assumed();
    let missing: Vec<&str> = assumed.iter().copied().filter(|name| !has(name)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedCpu { assumed: assumed.join(", "), missing: missing.join(", ") })
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn has(name: &str) -> bool {
    match name {
        "avx2" => std::is_x86_feature_detected!("avx2"),
        "fma" => std::is_x86_feature_detected!("fma"),
        "f16c" => std::is_x86_feature_detected!("f16c"),
        "popcnt" => std::is_x86_feature_detected!("popcnt"),
        _ => false,
    }
}

/// Off x86 the shim never reports an x86 instruction set.
#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn has(_name: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_runs_what_it_built() {
        assert!(check().is_ok(), "{:?}", check());
    }

    /// Each `-m` flag the C++ build was given is reported, and an empty set of flags (the
    /// portable build) assumes nothing.
    #[test]
    fn the_build_assumes_what_its_flags_say() {
        let flags = env!("VECINDEX_CXXFLAGS");
        for (flag, name) in [("-mavx2", "avx2"), ("-mfma", "fma"), ("-mf16c", "f16c"), ("-mpopcnt", "popcnt")] {
            if flags.split_whitespace().any(|f| f == flag) {
                assert!(assumed().contains(&name), "{flag} in {flags:?} but {:?} assumed", assumed());
            }
        }
        if flags.trim().is_empty() {
            assert_eq!(assumed(), Vec::<&str>::new());
        }
    }
}
