//! The log writer: lines are appended to a shared buffer, and a thread of their own writes
//! the buffer out every [`FLUSH_EVERY`], or sooner when it fills.
//!
//! With the access log on, every request logs a line. Writing each line with its own
//! system call, as `std::io::stderr` does, cost the server a fifth of its CPU at load; a
//! writer thread woken for each line (tracing-appender's non-blocking writer) spent nearly
//! as much on waking up. Batching by time makes it one write per interval, whatever the
//! request rate.
//!
//! No line is dropped: when [`MAX_BUFFERED`] bytes are waiting, the logging thread waits
//! for the writer. Dropping the [`FlushGuard`] writes what is left and stops the thread,
//! so a normal exit loses nothing; a `kill -9` loses at most the last interval's lines.
//! (Lines logged after the guard is dropped, as the process ends, are discarded.)

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often the writer thread writes what has been logged.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Bytes waiting to be written at most; past this, logging waits for the writer.
pub const MAX_BUFFERED: usize = 4 * 1024 * 1024;

/// Past this many waiting bytes, the writer thread is woken before its interval ends.
const WAKE_AT: usize = 256 * 1024;

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when there is much to write, or at close.
    more: Condvar,
    /// Signalled after each write, for loggers waiting on a full buffer.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a byte buffer, still fine to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`MakeWriter`] appending to the shared buffer; clone it freely.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

/// Keeps the writer thread; dropping it writes what is left and joins the thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FlushGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushGuard").finish_non_exhaustive()
    }
}

/// A writer over `out` and the guard of its thread.
///
/// # Errors
/// The thread cannot be started.
pub fn batch_writer<W: Write + Send + 'static>(
    out: W,
) -> std::io::Result<(BatchWriter, FlushGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("countersign-log".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_loop(&shared, out)
        })?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            if !state.closed && state.pending.len() < WAKE_AT {
                state = shared
                    .more
                    .wait_timeout(state, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut state.pending, &mut spare);
            state.closed
        };
        if !spare.is_empty() {
            // Nowhere to report a failed write of the log itself; the lines are dropped
            // rather than the process stopped.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            spare.shrink_to(WAKE_AT);
        }
        shared.drained.notify_all();
        if closed {
            let rest = std::mem::take(&mut shared.lock().pending);
            let _ = out.write_all(&rest).and_then(|()| out.flush());
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.more.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One log line's writer: the line is appended when it is written.
#[derive(Debug)]
pub struct Appender<'a> {
    writer: &'a BatchWriter,
}

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let shared = &self.writer.shared;
        let mut state = shared.lock();
        if state.closed {
            // The process is ending and nothing writes any more.
            return Ok(buf.len());
        }
        while state.pending.len() >= MAX_BUFFERED && !state.closed {
            shared.more.notify_one();
            state = shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.pending.extend_from_slice(buf);
        if state.pending.len() >= WAKE_AT {
            shared.more.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = Appender<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Appender { writer: self }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Instant;

    use super::*;

    /// A `Write` into a shared vector, counting its writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(w: &BatchWriter, text: &str) {
        w.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_arrive_in_order_within_an_interval_in_few_writes() {
        let sink = Sink::default();
        let (w, guard) = batch_writer(sink.clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for i in 0..1000 {
            line(&w, &format!("line {i}\n"));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().0.len() < expected.len() {
            assert!(Instant::now() < deadline, "not written within 5 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        // A thousand lines logged at once are not a thousand writes.
        assert!(writes < 50, "{writes} writes");
        drop(guard);
    }

    #[test]
    fn dropping_the_guard_writes_everything_left() {
        let sink = Sink::default();
        let (w, guard) = batch_writer(sink.clone()).unwrap();
        line(&w, "first\n");
        line(&w, "last\n");
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().0, b"first\nlast\n");
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_instead_of_dropping_lines() {
        /// A slow sink: each write takes a while, so the buffer fills.
        #[derive(Clone, Default)]
        struct Slow(Sink);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(2));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (w, guard) = batch_writer(slow.clone()).unwrap();
        let chunk = "x".repeat(64 * 1024) + "\n";
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                let chunk = chunk.clone();
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        line(&w, &chunk);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        // 4 × 40 × 64 KiB = 10 MiB went through a 4 MiB buffer, every byte of it.
        assert_eq!(slow.0.0.lock().unwrap().0.len(), 4 * 40 * chunk.len());
    }
}
