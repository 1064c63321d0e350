//! Releases the resident pages of the service's own read-only image once
//! start-up is over, so that only what calls still run is mapped again.
//!
//! Start-up runs code no call runs again (configuration, TLS and Redis set-up,
//! loading the numbering plan), and the kernel maps the pages around each page
//! it faults in (fault-around, 64 KiB), so an idle service kept about 8 MiB of
//! its 12 MiB binary resident; a VerifyOtp load maps back 4.5–6.5 MiB of it.
//! `MADV_DONTNEED` unmaps a read-only mapping's pages; the ones used again map
//! back on first use, from the page cache while it still holds them (the
//! pages stay cached and charged to the container's cgroup until the kernel
//! reclaims them, which it now may). BENCHMARKS.md (issue 14, fifth round):
//! idle RSS 15.1 -> 9.2 MiB.

use std::{io, path::Path};

/// One mapping of `/proc/self/smaps`, as far as releasing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping<'a> {
    start: usize,
    end: usize,
    writable: bool,
    path: &'a str,
    resident_kib: u64,
    /// Privately modified (copied-on-write) KiB: relocations, a debugger's
    /// breakpoints, uprobes. Dropping them would lose the modification.
    modified_kib: u64,
}

/// Releases every mapping of this executable that is read-only and holds no
/// privately modified page; returns the KiB that were resident in them.
///
/// Only such mappings are released, so nothing is lost: each page is then
/// exactly the file's bytes, and maps back from the file. Relocated read-only
/// data (RELRO) holds modified pages and stays, and so does any mapping a
/// debugger or a uprobe has written a breakpoint into.
#[cfg(target_os = "linux")]
pub fn release_read_only() -> io::Result<u64> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in releasable(&smaps, &exe) {
        // SAFETY: the range is one whole mapping of our own executable that
        // is not writable and holds no modified page (checked just above
        // from smaps), so the next access maps the same bytes from the file;
        // no Rust reference into it sees different bytes.
        let result = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                mapping.end - mapping.start,
                libc::MADV_DONTNEED,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        released += mapping.resident_kib;
    }
    Ok(released)
}

/// Elsewhere there is nothing to release.
#[cfg(not(target_os = "linux"))]
pub fn release_read_only() -> io::Result<u64> {
    Ok(0)
}

/// The mappings of `exe` in `smaps` that [`release_read_only`] may release.
fn releasable<'a>(smaps: &'a str, exe: &Path) -> impl Iterator<Item = Mapping<'a>> {
    mappings(smaps).filter(move |mapping| {
        Path::new(mapping.path) == exe && !mapping.writable && mapping.modified_kib == 0
    })
}

/// Every mapping in `smaps`, each with its resident and modified sizes.
/// A mapping whose header does not parse is skipped with its fields, never
/// guessed at.
fn mappings(smaps: &str) -> impl Iterator<Item = Mapping<'_>> {
    let mut lines = smaps.lines().peekable();
    std::iter::from_fn(move || {
        loop {
            let header = lines.next()?;
            let mut mapping = parse_header(header);
            // The mapping's fields (`Name: value`) follow its header until
            // the next header.
            while let Some(line) = lines.next_if(|line| is_field(line)) {
                if let Some(mapping) = mapping.as_mut() {
                    if let Some(kib) = field_kib(line, "Rss:") {
                        mapping.resident_kib = kib;
                    } else if let Some(kib) = field_kib(line, "Anonymous:") {
                        mapping.modified_kib = kib;
                    }
                }
            }
            if mapping.is_some() {
                return mapping;
            }
        }
    })
}

/// `start-end perms offset dev inode [path]`; `None` for any other line.
fn parse_header(line: &str) -> Option<Mapping<'_>> {
    // Five fields, one space apart, then padding and the path (which may
    // hold spaces; none for anonymous memory).
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next().filter(|perms| perms.len() == 4)?;
    let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
    let path = fields.next().unwrap_or_default().trim();
    (start < end).then_some(Mapping {
        start,
        end,
        writable: perms.as_bytes()[1] == b'w',
        path,
        resident_kib: 0,
        // Unknown until read: assumed modified, so a mapping whose
        // `Anonymous:` line is missing is never released.
        modified_kib: u64::MAX,
    })
}

/// Whether `line` is one of a mapping's fields rather than a header: a
/// field's name ends with a colon, a header starts with an address range.
fn is_field(line: &str) -> bool {
    line.split_ascii_whitespace()
        .next()
        .is_some_and(|name| name.ends_with(':'))
}

fn field_kib(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests;
