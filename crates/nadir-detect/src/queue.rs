//! A bounded queue whose memory follows what it holds.
//!
//! std's `sync_channel` allocates every slot when it is made: `watch`'s two 65,536-slot
//! queues were 58 of an idle sensor's 91 MiB (2026-12-07, `nadir watch` on an idle
//! loopback). The unbounded channel allocates blocks of slots as they fill and frees them as
//! they drain; a shared count keeps it bounded. No crate found here does both: crossbeam's and
//! flume's bounded channels allocate, or keep, the whole capacity.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, RecvTimeoutError, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Duration;

pub fn bounded<T>(capacity: usize) -> (BoundedSender<T>, BoundedReceiver<T>) {
    let (tx, rx) = mpsc::channel();
    let len = Arc::new(AtomicUsize::new(0));
    (
        BoundedSender {
            tx,
            len: Arc::clone(&len),
            capacity: capacity.max(1),
        },
        BoundedReceiver { rx, len },
    )
}

pub struct BoundedSender<T> {
    tx: mpsc::Sender<T>,
    len: Arc<AtomicUsize>,
    capacity: usize,
}

impl<T> BoundedSender<T> {
    /// Queues `value` unless the queue holds `capacity` values or the receiver is gone; never
    /// waits.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(TrySendError::Full(value));
        }
        self.tx.send(value).map_err(|mpsc::SendError(value)| {
            self.len.fetch_sub(1, Ordering::AcqRel);
            TrySendError::Disconnected(value)
        })
    }
}

pub struct BoundedReceiver<T> {
    rx: mpsc::Receiver<T>,
    len: Arc<AtomicUsize>,
}

impl<T> BoundedReceiver<T> {
    fn taken<E>(&self, got: Result<T, E>) -> Result<T, E> {
        if got.is_ok() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        got
    }

    pub fn recv(&self) -> Result<T, RecvError> {
        self.taken(self.rx.recv())
    }

    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.taken(self.rx.try_recv())
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.taken(self.rx.recv_timeout(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_frees_room_as_it_drains() {
        let (tx, rx) = bounded(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        assert_eq!(rx.recv().unwrap(), 0);
        tx.try_send(3).unwrap();
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        assert_eq!(rx.try_recv().unwrap(), 1);
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)).unwrap(), 2);
        assert_eq!(rx.recv().unwrap(), 3);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        ));
        // Empty again: the whole capacity is free.
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        drop(rx);
        let (tx, rx) = bounded::<u8>(2);
        drop(rx);
        assert!(matches!(tx.try_send(1), Err(TrySendError::Disconnected(1))));
        // A value refused for a lost receiver takes no room.
        assert!(matches!(tx.try_send(2), Err(TrySendError::Disconnected(2))));
        assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
    }

    #[test]
    fn senders_on_many_threads_never_overfill_it() {
        let (tx, rx) = bounded(100);
        let tx = Arc::new(tx);
        let accepted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let tx = Arc::clone(&tx);
                    scope.spawn(move || (0..1000).filter(|&i| tx.try_send(i).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 100);
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 100);
    }
}
