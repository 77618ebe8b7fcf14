//! What each binary does to itself at start: no core dumps. A crash would
//! otherwise write the unlocked vault's secrets (or the server's keys and
//! tokens) to disk.
//!
//! The server also marks itself not dumpable, which keeps other processes
//! of its user from reading its memory with ptrace. The app cannot: the
//! xdg-desktop-portal identifies its callers through `/proc/PID/root`,
//! which a non-dumpable process hides, and then refuses every request
//! (screenshots for *Scan screen*, the file chooser).

/// Turns core dumps off (`RLIMIT_CORE` 0). A failure only leaves the
/// operating system's default.
pub fn forbid_core_dumps() {
    #[cfg(unix)]
    {
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: setrlimit only reads the struct given.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
    }
}

/// [`forbid_core_dumps`], and on Linux `PR_SET_DUMPABLE` 0: no ptrace by
/// processes of the same user either. For the server, which needs no portal.
pub fn forbid_core_dumps_and_tracing() {
    forbid_core_dumps();
    // SAFETY: prctl with these arguments only changes this process's dumpable flag.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    fn core_limit() -> (libc::rlim_t, libc::rlim_t) {
        let mut limit = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
        // SAFETY: reads this process's limit into the struct given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        (limit.rlim_cur, limit.rlim_max)
    }

    fn dumpable() -> i32 {
        // SAFETY: reads this process's flag.
        unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }
    }

    // One test: both change the whole test process, in this order.
    #[test]
    fn the_app_keeps_portals_working_and_the_server_is_not_dumpable() {
        super::forbid_core_dumps();
        assert_eq!(core_limit(), (0, 0));
        assert_eq!(dumpable(), 1, "the app stays dumpable: portals read /proc/PID/root");
        super::forbid_core_dumps_and_tracing();
        assert_eq!(dumpable(), 0);
    }
}
