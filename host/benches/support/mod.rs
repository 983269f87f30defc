//! What several benches share: the bundled trace and the process's CPU
//! time. Each bench uses what it needs of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use kedastral::model::Series;

/// The bundled 1-minute NASA trace.
pub fn trace() -> Series {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/nasa_http_1m.csv");
    kedastral::history::load_csv(&path, None).expect("bundled trace")
}

/// CPU time of this process so far, every thread included.
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given and touches nothing else.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}
