//! Hands back the memory the phone's start-up used and idling does not.
//!
//! Starting touches far more code than idling runs (argument parsing,
//! config validation, socket and TLS set-up), and the kernel maps code in
//! 64 KiB runs around each page touched. Windows trims an idle program's
//! working set the same way (which is how MicroSIP is measured under
//! 5 MB); on Linux we ask for it: `MADV_PAGEOUT` on our read-only file
//! mappings (code and constants of the binary and its libraries). They
//! are clean pages, still in the page cache: whatever runs again comes back
//! on its first touch. Nothing writable is touched. Elsewhere a no-op.

/// Releases the resident pages of every read-only file mapping of this
/// process; best effort (an old kernel without `MADV_PAGEOUT` ignores it).
pub fn trim() {
    #[cfg(target_os = "linux")]
    {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        for line in maps.lines() {
            // start-end perms offset dev inode [path]
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms), Some(_), Some(_), Some(inode)) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                continue;
            };
            let file_backed = inode != "0" && fields.next().is_some_and(|p| p.starts_with('/'));
            if !file_backed || perms.as_bytes().get(1) != Some(&b'-') {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            // SAFETY: a range the kernel reports as one of our read-only,
            // file-backed mappings; MADV_PAGEOUT only drops clean pages
            // from our page tables, never their contents.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end.saturating_sub(start),
                    libc::MADV_PAGEOUT,
                );
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    fn rss_file_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn trimming_releases_resident_code_pages() {
        let before = rss_file_kb();
        super::trim();
        let after = rss_file_kb();
        assert!(
            after < before,
            "file-backed resident memory went from {before} kB to {after} kB"
        );
    }
}
