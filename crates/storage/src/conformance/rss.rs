//! Sampling this process's resident set size, to show that a store streams instead of buffering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the sampler looks at the RSS.
const INTERVAL: Duration = Duration::from_millis(50);

/// The resident set size of this process in bytes, from `/proc/self/status` (`VmRSS`).
/// `None` where that file does not exist (not Linux) or cannot be parsed.
pub(super) fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Samples the RSS on its own OS thread, so that a busy or single-threaded async runtime cannot
/// starve it.
pub(super) struct RssSampler {
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What a sampler saw between its start and its finish.
#[derive(Debug, Clone, Copy)]
pub(super) struct RssReport {
    /// RSS when sampling started.
    pub baseline: u64,
    /// Highest RSS seen.
    pub peak: u64,
}

impl RssReport {
    /// How far the RSS rose above the baseline at its peak.
    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.baseline)
    }
}

impl RssSampler {
    /// Starts sampling; `None` if the RSS cannot be read on this platform.
    pub fn start() -> Option<Self> {
        let baseline = current_rss()?;
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::Builder::new()
                .name("conformance-rss".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(rss) = current_rss() {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                        std::thread::sleep(INTERVAL);
                    }
                })
                .ok()?
        };
        Some(RssSampler {
            baseline,
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sampling (taking one last sample) and reports.
    pub fn finish(mut self) -> RssReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panicked sampler thread only loses samples; the peak so far is still valid.
            let _ = thread.join();
        }
        if let Some(rss) = current_rss() {
            self.peak.fetch_max(rss, Ordering::Relaxed);
        }
        RssReport {
            baseline: self.baseline,
            peak: self.peak.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The large-object check is only as good as the sampler: it must see memory that is really
    // touched, even if it is freed again before `finish`.
    #[test]
    #[cfg(target_os = "linux")]
    fn sampler_sees_a_transient_allocation() {
        const SIZE: usize = 64 * 1024 * 1024;
        let sampler = RssSampler::start().unwrap();
        let mut buf = vec![0u8; SIZE];
        for (i, b) in buf.iter_mut().enumerate().step_by(4096) {
            *b = i as u8 | 1;
        }
        std::thread::sleep(INTERVAL * 4);
        assert!(buf.iter().step_by(4096).all(|b| *b != 0));
        drop(buf);
        let report = sampler.finish();
        assert!(
            report.growth() >= (SIZE as u64) * 9 / 10,
            "sampler saw only {} bytes of growth for a {SIZE}-byte allocation",
            report.growth()
        );
    }
}
