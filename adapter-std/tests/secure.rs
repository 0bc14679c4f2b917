//! std-only secure behaviour: the handshake's timeout on a `Stream` whose
//! `set_read_timeout` is the no-op default. The handshake cases written
//! once for every adapter (authorizers, refusals, addresses, timeouts on
//! TCP, the pipe and a peer that never reads, 100 encrypted flows) are the
//! link cases of the conformance suite (`tests/conformance.rs`, `links`).

/// The handshake's timeout holds on streams without read timeouts of
/// their own.
mod timeout {
    use adapter_core::secure::test_credentials;
    use adapter_std::secure::{Addresses, SecureHandshakeError};
    use adapter_std::{Config, Connection, PipeStream, Side, Stream};
    use std::io::{self, Read, Write};
    use std::net::Shutdown;
    use std::time::Duration;

    fn timed_out(e: io::Error) {
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let inner: &SecureHandshakeError = e.get_ref().unwrap().downcast_ref().unwrap();
        assert_eq!(inner, &SecureHandshakeError::Timeout);
    }

    fn quick(side: Side) -> adapter_std::Credentials {
        let mut creds = test_credentials(side);
        creds.config.handshake_timeout = Duration::from_millis(200);
        creds
    }

    /// A stream with no read timeout at all: only the handshake's own
    /// deadline (the driver's timer) can end the server's wait for a
    /// client that never speaks.
    #[test]
    fn a_silent_peer_on_a_stream_without_read_timeouts() {
        #[derive(Clone)]
        struct NoTimeouts(PipeStream);
        impl Read for NoTimeouts {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for NoTimeouts {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        impl Stream for NoTimeouts {
            fn try_clone(&self) -> io::Result<Self> {
                Ok(self.clone())
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                self.0.shutdown(how)
            }
        }
        let (b, _silent) = adapter_std::pipe();
        let mem = Addresses::new("mem:server", "mem:client");
        let e = Connection::accept_with(
            NoTimeouts(b),
            mem,
            Config::default(),
            &quick(Side::Acceptor),
        );
        timed_out(e.unwrap_err());
    }
}
