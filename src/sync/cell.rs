//! `UnsafeCell` with loom's API (`with`, `with_mut`), so protocol code is written once; loom's
//! own is used under loom.

#![allow(clippy::disallowed_types)] // the shim's cell, over std's

/// `repr(transparent)`, like std's: a slice of cells has the layout of a slice of values.
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
