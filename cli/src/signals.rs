//! SIGINT, SIGTERM and SIGHUP: remove the staging directory and temporary files, keep the last
//! complete checkpoint (checkpoints are replaced by rename, never removed), and exit with the
//! conventional status 128 + signal number. A second SIGINT exits at once.
//!
//! The handler itself only does what is allowed in a signal handler: it writes the signal number to a
//! pipe (or, on a second signal, calls `_exit`). A watcher thread reads the pipe, removes what
//! [`nff_core::io::cleanup`] holds and exits.
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static GOT_ONE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signo: libc::c_int) {
    if GOT_ONE.swap(true, Ordering::SeqCst) {
        // Second signal: leave now.
        unsafe { libc::_exit(128 + signo) };
    }
    let fd = WRITE_FD.load(Ordering::SeqCst);
    let byte = signo as u8;
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}

/// Install the handlers and start the watcher thread (once, at the start of `main`).
pub fn install() {
    let mut fds = [0 as libc::c_int; 2];
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    WRITE_FD.store(write_fd, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("nff-signals".into())
        .spawn(move || loop {
            let mut byte = 0u8;
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                let _held = nff_core::io::cleanup::remove_all();
                std::process::exit(128 + i32::from(byte));
            }
            if n == 0 {
                return;
            }
        });
    if spawned.is_err() {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}
