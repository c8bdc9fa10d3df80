//! Model stand-in for `std::sync::OnceLock` (see the module docs of `sync`).

use super::model::checker::sync::atomic::{AtomicPtr, Ordering};
use std::marker::PhantomData;

pub(crate) struct OnceLock<T> {
    value: AtomicPtr<T>,
    /// Owns a `T`: Send and Sync only as `T` is.
    _owns: PhantomData<Box<T>>,
}

impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        Self { value: AtomicPtr::new(std::ptr::null_mut()), _owns: PhantomData }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire: pairs with the AcqRel exchange in `set`, so the value is fully written.
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `set` and is freed only
        // in `drop`, which `&self` outlives; nobody mutates it after the exchange.
        unsafe { value.as_ref() }
    }

    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        let boxed = Box::into_raw(Box::new(value));
        match self.value.compare_exchange(std::ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            // SAFETY: the exchange failed, so `boxed` was never shared: we still own it.
            Err(_) => Err(*unsafe { Box::from_raw(boxed) }),
        }
    }
}

impl<T> OnceLock<T> {
    /// As std's, except that threads racing to fill it each run `init` (one value is kept)
    /// instead of waiting for the first: the models never race here.
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let _ = self.set(init());
        match self.get() {
            Some(value) => value,
            None => unreachable!("a OnceLock is empty after a set"),
        }
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        let value = self.value.load(Ordering::Acquire);
        if !value.is_null() {
            // SAFETY: set once from `Box::into_raw`, and `&mut self` means no reader is left.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}
