//! The C allocator, tuned for a daemon that is idle most of the time.
//!
//! glibc's malloc gives each thread that allocates its own arena and keeps freed memory
//! for reuse. For an exporter that works for a second every ten minutes, that is memory
//! held for nothing: one arena serves its few threads without contention, and what a poll
//! cycle freed goes back to the system when the cycle ends, as Go's runtime returns it.
//! Elsewhere (musl, other systems) both are no-ops.

/// Sets up the allocator; call first thing in `main`, before any thread starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters, before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the memory freed since the last call to the system (a few milliseconds at
/// 10,000 pairs); called after each poll cycle.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
