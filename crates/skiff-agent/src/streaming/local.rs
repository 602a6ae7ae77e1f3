//! A [`StreamRuntime`] that runs commands as local processes and forwards ports to
//! 127.0.0.1 (host network). [`spawn`] is the building block: it starts any prepared
//! [`Command`] with pipes or a pseudo-terminal and returns its [`Session`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{BoxRead, BoxWrite, Exit, Session, StreamError, StreamOpts, StreamRuntime, TerminalSize};

/// Runs `exec` commands on this host, in the agent's working directory and environment.
/// `attach` is not supported (there is no main process to attach to).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalProcessRuntime;

impl StreamRuntime for LocalProcessRuntime {
    fn exec(
        &self,
        _ns: &str,
        _pod: &str,
        _container: &str,
        command: Vec<String>,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>> {
        async move {
            let (program, args) = command
                .split_first()
                .ok_or_else(|| StreamError::Failed("no command given".into()))?;
            let mut cmd = Command::new(program);
            cmd.args(args);
            spawn(cmd, opts)
        }
        .boxed()
    }

    fn attach(
        &self,
        _ns: &str,
        _pod: &str,
        container: &str,
        _opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>> {
        let msg = format!("attach to container {container:?} is not supported by the local process runtime");
        async move { Err(StreamError::Unsupported(msg)) }.boxed()
    }

    fn port_forward(
        &self,
        _ns: &str,
        _pod: &str,
        port: u16,
    ) -> BoxFuture<'static, Result<tokio::net::TcpStream, StreamError>> {
        async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| StreamError::Failed(format!("failed to connect to localhost:{port}: {e}")))
        }
        .boxed()
    }
}

/// Starts `cmd` with the streams `opts` asks for: pipes, or with `tty` one pseudo-terminal for
/// stdin, stdout and stderr (the process gets its own session with the terminal as controlling
/// terminal). The process runs in its own process group, which is killed if the session's
/// `exit` future is dropped before the process ends (the client went away).
pub fn spawn(mut cmd: Command, opts: StreamOpts) -> Result<Session, StreamError> {
    let failed = |e: io::Error| StreamError::Failed(format!("failed to start the command: {e}"));
    cmd.kill_on_drop(true);
    if opts.tty {
        let (master, slave) = open_pty().map_err(failed)?;
        let stdio = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
        cmd.stdin(stdio(&slave).map_err(failed)?)
            .stdout(stdio(&slave).map_err(failed)?)
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(failed)?;
        // Our copies of the terminal's slave side go with `cmd`, so reads see the end once the
        // process (and whatever inherited the terminal) is gone.
        drop(cmd);
        // SAFETY: the OwnedFd is moved in, so the descriptor stays open and the same while the
        // AsyncFd lives.
        let master = unsafe { AsyncFd::register(master) }.map_err(|e| failed(e.into()))?;
        let master = Arc::new(master);
        let (resize_tx, mut resize_rx) = mpsc::channel::<TerminalSize>(4);
        let winsize_fd = master.clone();
        tokio::spawn(async move {
            while let Some(size) = resize_rx.recv().await {
                set_window_size(winsize_fd.get_ref().as_raw_fd(), size);
            }
        });
        let exit = wait(child);
        return Ok(Session {
            stdin: opts.stdin.then(|| Box::new(Pty(master.clone())) as BoxWrite),
            stdout: Some(Box::new(Pty(master)) as BoxRead),
            stderr: None,
            resize: Some(resize_tx),
            exit,
        });
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(opts.stdin))
        .stdout(pipe(opts.stdout))
        .stderr(pipe(opts.stderr))
        .process_group(0);
    let mut child = cmd.spawn().map_err(failed)?;
    let stdin = child.stdin.take().map(|s| Box::new(s) as BoxWrite);
    let stdout = child.stdout.take().map(|s| Box::new(s) as BoxRead);
    let stderr = child.stderr.take().map(|s| Box::new(s) as BoxRead);
    Ok(Session {
        stdin,
        stdout,
        stderr,
        resize: None,
        exit: wait(child),
    })
}

/// Waits for the child; dropped early, kills its process group (the child leads it).
fn wait(mut child: tokio::process::Child) -> BoxFuture<'static, Exit> {
    struct KillGroup(Option<i32>);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            if let Some(pgid) = self.0.filter(|p| *p > 0) {
                // SAFETY: plain kill(2) of the group this child leads.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
    }
    let guard = KillGroup(child.id().map(|p| p as i32));
    async move {
        // Move the whole guard in (not just its field), so it lives as long as the future.
        let mut guard = guard;
        let r = child.wait().await;
        guard.0 = None;
        exit_of(r)
    }
    .boxed()
}

fn exit_of(r: io::Result<std::process::ExitStatus>) -> Exit {
    match r {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Error(format!("unknown exit status {st}")),
        },
        Err(e) => Exit::Error(e.to_string()),
    }
}

/// Opens a pseudo-terminal: (master, non-blocking and close-on-exec; slave).
fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave): (RawFd, RawFd) = (-1, -1);
    // SAFETY: openpty writes two fds on success; the name/termios/winsize pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for (fd, nonblock) in [(master.as_raw_fd(), true), (slave.as_raw_fd(), false)] {
        // SAFETY: fcntl on fds we own.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            if nonblock {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    Ok((master, slave))
}

fn set_window_size(fd: RawFd, size: TerminalSize) {
    let ws = libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    unsafe {
        libc::ioctl(fd, libc::TIOCSWINSZ as _, &ws);
    }
}

/// The master side of a pseudo-terminal, read and written without blocking.
struct Pty(Arc<AsyncFd<OwnedFd>>);

impl AsyncRead for Pty {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let res = guard.try_io(|fd| {
                // SAFETY: reading into an initialized buffer of the given length.
                let n = unsafe { libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // EIO: every slave side is closed, the terminal's end of output.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            let res = guard.try_io(|fd| {
                // SAFETY: writing from a valid buffer of the given length.
                let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A terminal has no half close; the client ends input with ^D or by leaving.
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tty_session_has_a_terminal_and_follows_resizes() {
        let mut cmd = Command::new("sh");
        // The resize is applied asynchronously: the shell waits (bounded) until it shows.
        let script =
            "read x; tty; for i in $(seq 100); do [ \"$(stty size)\" = '33 101' ] && break; sleep 0.05; done; \
                      stty size; echo got=$x; exit 4";
        cmd.args(["-c", script]);
        let opts = StreamOpts {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let mut s = spawn(cmd, opts).unwrap();
        assert!(s.stderr.is_none());
        s.resize
            .as_ref()
            .unwrap()
            .send(TerminalSize { width: 101, height: 33 })
            .await
            .unwrap();
        s.stdin.as_mut().unwrap().write_all(b"hello\n").await.unwrap();
        let mut out = String::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            s.stdout.as_mut().unwrap().read_to_string(&mut out).await
        });
        read.await.unwrap().unwrap();
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("33 101"), "{out}");
        assert!(out.contains("got=hello"), "{out}");
        assert_eq!(s.exit.await, Exit::Code(4));
    }

    #[tokio::test]
    async fn pipes_session_separates_streams() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2; exit 2"]);
        let opts = StreamOpts {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let mut s = spawn(cmd, opts).unwrap();
        let mut stdin = s.stdin.take().unwrap();
        stdin.write_all(b"abc").await.unwrap();
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let (mut out, mut err) = (String::new(), String::new());
        s.stdout.as_mut().unwrap().read_to_string(&mut out).await.unwrap();
        s.stderr.as_mut().unwrap().read_to_string(&mut err).await.unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("abc", "err\n"));
        assert_eq!(s.exit.await, Exit::Code(2));
    }
}
