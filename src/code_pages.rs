//! Unmaps the service's own machine code once start-up is over, so that only
//! the code calls still run is mapped again.
//!
//! Start-up runs code no call runs again: configuration, TLS and Redis set-up,
//! loading the numbering plan. The kernel also maps the pages around each page
//! it faults in (fault-around, 64 KiB), so an idle service keeps about 8 MiB
//! of its 12 MiB binary resident, and on the hottest path only about 4 MiB of
//! it is needed. `MADV_DONTNEED` unmaps the whole read-only image; pages that
//! are run again come back on first use as minor faults from the page cache,
//! never from disk, and the page cache itself is untouched (it is still charged
//! to the container until the kernel reclaims it, which it now may).
//! Measured in BENCHMARKS.md (issue 14): idle RSS 15.3 -> 9.0 MiB.

use std::io;

/// Unmaps the resident pages of this executable's read-only image (from its
/// first byte to the end of `.text`) and returns how many bytes that range
/// spans. Only pages that are never written are unmapped: the relocated
/// read-only data and everything writable sit after `.text`, outside it.
/// A debugger's breakpoints are writes into the code: any set before this
/// call are lost with it.
#[cfg(target_os = "linux")]
pub fn unmap_start_up_code() -> io::Result<usize> {
    // The linker defines both: the first byte of the image and the end of
    // `.text` (GNU ld and lld alike, on Linux).
    unsafe extern "C" {
        static __executable_start: u8;
        static etext: u8;
    }
    let page = page_size()?;
    let start = (&raw const __executable_start) as usize;
    let end = (&raw const etext) as usize;
    // Whole pages strictly inside the range: a partial page at either end
    // could be shared with a mapping that is written.
    let first = start.next_multiple_of(page);
    let last = end - end % page;
    if last <= first {
        return Ok(0);
    }
    let length = last - first;
    // SAFETY: [first, last) lies inside this executable's own read-only,
    // never-written mappings (see above), so dropping its pages loses
    // nothing: the next access maps the same bytes again from the file. No
    // Rust reference into the range is invalidated, since the bytes stay the
    // same.
    let result = unsafe { libc::madvise(first as *mut libc::c_void, length, libc::MADV_DONTNEED) };
    if result == 0 {
        Ok(length)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere there is nothing to unmap.
#[cfg(not(target_os = "linux"))]
pub fn unmap_start_up_code() -> io::Result<usize> {
    Ok(0)
}

#[cfg(target_os = "linux")]
fn page_size() -> io::Result<usize> {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|size| size.is_power_of_two())
        .ok_or_else(|| io::Error::other("sysconf(_SC_PAGESIZE) gave no page size"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Resident KiB of this test binary's own executable mappings.
    fn own_code_resident_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut ours = false;
        let mut total = 0;
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let range = fields.next().unwrap_or_default();
            if range.contains('-') && range.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
                let writable = fields.next().is_some_and(|perms| perms.contains('w'));
                ours = line.ends_with(&exe) && !writable;
            } else if ours && let Some(kib) = line.strip_prefix("Rss:") {
                total += kib
                    .trim()
                    .trim_end_matches(" kB")
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
        total
    }

    #[test]
    fn the_code_is_unmapped_and_still_runs() {
        let before = own_code_resident_kib();
        let length = unmap_start_up_code().expect("madvise");
        let after = own_code_resident_kib();
        assert!(length > 1 << 20, "only {length} bytes of code in range");
        // Other tests run on other threads meanwhile and map some code back,
        // but not the whole binary.
        assert!(after < before, "resident code {before} KiB -> {after} KiB");
        // Code, constant data and unwinding tables all map back on use.
        let text = format!("{:?}", std::hint::black_box(vec![1.5_f64, 2.0]));
        assert_eq!(text, "[1.5, 2.0]");
        assert!(std::panic::catch_unwind(|| panic!("unwinds")).is_err());
    }
}
