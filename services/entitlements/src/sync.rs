//! Locks that keep working after a panic.
//!
//! A panic while a lock is held poisons it, and `lock().unwrap()` would then turn one bug
//! in one task into a panic in every later `check()`, refresh and status page. Recovering
//! is right here because no lock in this crate guards a value a panic can leave invalid:
//! maps and lists are replaced or changed by one insert or remove, counters and refresh
//! bookkeeping are plain fields each written whole, and the RNG has no invariant to break.
//! So every lock goes through these helpers, and none through `unwrap`.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`], recovering the guard of a poisoned mutex (see the module docs).
pub(crate) trait MutexExt<T> {
    /// Locks, ignoring poisoning.
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
}

impl<T> MutexExt<T> for Mutex<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`RwLock::read`] and [`RwLock::write`], recovering the guards of a poisoned lock (see
/// the module docs).
pub(crate) trait RwLockExt<T> {
    /// Takes a read lock, ignoring poisoning.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;
    /// Takes the write lock, ignoring poisoning.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_gives_its_value() {
        let mutex = Arc::new(Mutex::new(1));
        let rwlock = Arc::new(RwLock::new(2));
        let (m, r) = (mutex.clone(), rwlock.clone());
        let panicked = std::thread::spawn(move || {
            let _m = m.lock_or_recover();
            let _r = r.write_or_recover();
            panic!("poison both");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned() && rwlock.is_poisoned());
        *mutex.lock_or_recover() += 1;
        *rwlock.write_or_recover() += 1;
        assert_eq!(*mutex.lock_or_recover(), 2);
        assert_eq!(*rwlock.read_or_recover(), 3);
    }
}
