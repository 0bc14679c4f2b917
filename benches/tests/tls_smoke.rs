//! Quick end-to-end check of every `tls_compare` contender with small
//! sizes: bulk bytes arrive intact (hash checked by the server), every
//! handshake completes and verifies its peer, and mismatched credentials
//! fail (so the verification being timed is real).

use std::io;

use benches::tls::{
    bulk, handshake, rustls_configs, rustls_pair, setup_bulk, setup_handshake, weft_credentials,
    weft_pair, BulkStack, HandshakeStack,
};
use benches::{build_runtime, RtMode};

/// Not a multiple of the 64 KiB write size, so the last write is partial.
const BULK_SMALL: usize = 300_007;

fn on_runtime<F: std::future::Future<Output = io::Result<()>>>(fut: F) {
    build_runtime(RtMode::St).block_on(fut).unwrap();
}

#[test]
fn bulk_arrives_intact_on_every_stack() {
    for stack in BulkStack::ALL {
        on_runtime(async move {
            let mut f = setup_bulk(stack, true).await?;
            // Twice: the connection is reused across bench iterations.
            bulk(&mut f, BULK_SMALL).await?;
            bulk(&mut f, BULK_SMALL).await?;
            eprintln!("tls_bulk/{}: ok", stack.name());
            Ok(())
        });
    }
}

#[test]
fn handshakes_complete_on_every_stack() {
    for stack in HandshakeStack::ALL {
        on_runtime(async move {
            let f = setup_handshake(stack).await?;
            // Twice: one listener serves every bench iteration.
            handshake(&f).await?;
            handshake(&f).await?;
            eprintln!("tls_handshake/{}: ok", stack.name());
            Ok(())
        });
    }
}

#[test]
fn rustls_defaults_negotiate_tls13() {
    on_runtime(async {
        let (cc, sc) = rustls_configs(None, false)?;
        let (c, s) = rustls_pair(&cc, &sc).await?;
        let conn = c.get_ref().1;
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert!(conn.peer_certificates().is_some());
        // What `tls_handshake/st/rustls` negotiates, for the report.
        eprintln!(
            "rustls defaults: {:?}, {:?}",
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            conn.negotiated_key_exchange_group().map(|g| g.name())
        );
        drop(s);
        Ok(())
    });
}

#[test]
fn rustls_refuses_an_unknown_certificate() {
    for mutual in [false, true] {
        on_runtime(async move {
            let (_, server) = rustls_configs(None, mutual)?;
            // Another fresh certificate pair: this client trusts a different server.
            let (stranger, _) = rustls_configs(None, mutual)?;
            let r = rustls_pair(&stranger, &server).await;
            assert!(
                r.is_err(),
                "mutual={mutual}: a stranger's handshake succeeded"
            );
            Ok(())
        });
    }
}

#[test]
fn weft_refuses_a_server_it_does_not_authorize() {
    on_runtime(async {
        let (mut client, server) = weft_credentials();
        client.authorizer = std::sync::Arc::new(adapter_tokio::secure::AllowNames::new([
            "acme:someone-else",
        ]));
        let e = weft_pair(Some(&(client, server))).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        Ok(())
    });
}
