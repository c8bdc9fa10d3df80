//! `bug!("name")`: whether the known bug `name` is injected, for the loom and shuttle models to
//! catch (scripts/loom, scripts/shuttle). The sites read `if bug!("name") { broken } else { real }`.
//!
//! - Normally it is `cfg!(vecindex_bug = "name")`, which build.rs sets from `VECINDEX_BUG` at
//!   build time: a constant, so the real code carries no check (and the broken one, only when
//!   asked for, as in scripts/tsan's control run).
//! - Under a model checker it compares `name` with `VECINDEX_BUG` at run time, so that one
//!   build serves every bug. The variable is read once into a `std::sync::OnceLock`, not the
//!   shim's: the checkers must not take the test harness's own state for the protocol's.

/// Whether the injected bug `$name` (a string literal) is on; see the module docs.
#[cfg(any(vecindex_loom, vecindex_shuttle))]
macro_rules! bug {
    ($name:tt) => {
        $crate::sync::bug::injected($name)
    };
}

/// Whether the injected bug `$name` (a string literal) is on; see the module docs.
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
macro_rules! bug {
    ($name:tt) => {
        cfg!(vecindex_bug = $name)
    };
}

pub(crate) use bug;

/// Whether `VECINDEX_BUG` names the bug `name`.
#[cfg(any(vecindex_loom, vecindex_shuttle))]
#[allow(clippy::disallowed_types)] // std's OnceLock on purpose: see the module docs
pub(crate) fn injected(name: &str) -> bool {
    static BUG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let bug = BUG.get_or_init(|| std::env::var("VECINDEX_BUG").ok().filter(|bug| !bug.is_empty()));
    bug.as_deref() == Some(name)
}
