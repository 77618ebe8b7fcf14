//! What each binary does to itself at start: no core dumps. A crash of the
//! app would otherwise write the unlocked vault's secrets (or the server's
//! keys and tokens) to disk, and a dumpable process can also be read with
//! ptrace by any other process of the same user.

/// Turns core dumps off (`RLIMIT_CORE` 0) and, on Linux, marks the process
/// not dumpable (`PR_SET_DUMPABLE` 0). Failures are ignored: they only
/// leave the operating system's defaults.
pub fn forbid_core_dumps() {
    #[cfg(unix)]
    {
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: setrlimit reads the struct given; prctl with these
        // arguments only changes this process's dumpable flag.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn afterwards_the_process_is_not_dumpable_and_has_no_core_limit() {
        super::forbid_core_dumps();
        // SAFETY: reading this process's flag and limit.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        assert_eq!(dumpable, 0);
        let mut limit = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        assert_eq!((limit.rlim_cur, limit.rlim_max), (0, 0));
    }
}
