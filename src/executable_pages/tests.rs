use std::path::Path;

use super::*;

/// An excerpt of a real service's smaps (lld, PIE), fields trimmed.
const SMAPS: &str = "\
5643dd8f2000-5643ddc5a000 r--p 00000000 fe:00 5309284                    /srv/otp-service
Size:               3488 kB
Rss:                1952 kB
Anonymous:             0 kB
5643ddc5a000-5643de48d000 r-xp 00367000 fe:00 5309284                    /srv/otp-service
Size:               8396 kB
Rss:                5828 kB
Anonymous:             0 kB
5643de48d000-5643de501000 r--p 00b99000 fe:00 5309284                    /srv/otp-service
Size:                464 kB
Rss:                 464 kB
Anonymous:           464 kB
5643de501000-5643de51d000 rw-p 00c0c000 fe:00 5309284                    /srv/otp-service
Rss:                  40 kB
Anonymous:            40 kB
5643de600000-5643de700000 r--p 00000000 fe:00 77                         /srv/otp service copy
Rss:                  12 kB
Anonymous:             0 kB
7ff62c659000-7ff62c7af000 r-xp 00028000 fe:00 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 984 kB
Anonymous:             0 kB
59ab7800000-59af7800000 rw-p 00000000 00:00 0 
Rss:               23744 kB
Anonymous:         23744 kB
7fff00000000-7fff00001000 r-xp 00000000 fe:00 5309284                    /srv/otp-service
Rss:                   4 kB
7fff00002000-7fff00001000 r-xp 00000000 fe:00 5309284                    /srv/otp-service
Rss:                   4 kB
Anonymous:             0 kB
";

#[test]
fn only_the_executables_unmodified_read_only_mappings_are_releasable() {
    let found: Vec<_> = releasable(SMAPS, Path::new("/srv/otp-service"))
        .map(|mapping| (mapping.start, mapping.end, mapping.resident_kib))
        .collect();
    // Not the relocated read-only data (modified pages), not the writable
    // data, not libc, not anonymous memory, not a mapping whose
    // `Anonymous:` line is missing, and not one whose header does not parse
    // (its fields are not taken for the mapping before it).
    assert_eq!(
        found,
        [
            (0x5643dd8f2000, 0x5643ddc5a000, 1952),
            (0x5643ddc5a000, 0x5643de48d000, 5828)
        ]
    );
}

#[test]
fn paths_with_spaces_and_anonymous_mappings_parse() {
    let all: Vec<_> = mappings(SMAPS).collect();
    assert_eq!(all.len(), 8);
    assert_eq!(all[4].path, "/srv/otp service copy");
    assert_eq!(all[6].path, "");
    assert!(all[6].writable);
    assert_eq!(all[6].modified_kib, 23_744);
    assert_eq!(all[7].modified_kib, u64::MAX);
    assert_eq!(
        releasable(SMAPS, Path::new("/srv/otp service copy")).count(),
        1
    );
}

#[cfg(target_os = "linux")]
fn own_image_kib() -> (u64, u64) {
    let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
    let read_only = releasable(&smaps, &exe)
        .map(|mapping| mapping.resident_kib)
        .sum();
    // Read-only: the writable data's modified pages grow as other tests run.
    let modified = mappings(&smaps)
        .filter(|mapping| Path::new(mapping.path) == exe && !mapping.writable)
        .map(|mapping| mapping.modified_kib)
        .sum();
    (read_only, modified)
}

#[cfg(target_os = "linux")]
#[test]
fn the_image_is_released_and_still_runs() {
    let (before, modified_before) = own_image_kib();
    let released = release_read_only().expect("madvise");
    let (after, modified_after) = own_image_kib();
    assert!(released > 0, "released nothing of {before} KiB");
    // Code run between the readings (this test's, other tests' on other
    // threads) maps some pages in and back, but not the whole image.
    assert!(
        after < before,
        "resident read-only image {before} KiB -> {after} KiB"
    );
    // The relocated read-only data was left alone.
    assert_eq!(modified_after, modified_before);
    // Code, constant data and unwinding tables all map back on use.
    let text = format!("{:?}", std::hint::black_box(vec![1.5_f64, 2.0]));
    assert_eq!(text, "[1.5, 2.0]");
    assert!(std::panic::catch_unwind(|| std::panic::resume_unwind(Box::new(0))).is_err());
}
