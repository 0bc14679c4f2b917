//! The transport-services tour the `taps` example and the demo share: a
//! message server on 127.0.0.1, a tar pit on [::1] at the same port (a
//! listener whose accept queue is full: connects to it hang as to a
//! blackholed address), and a client racing `localhost` to it.

use adapter_tokio::taps::{
    self, Context, Initiated, LocalSpecifier, MessageConnection, MessageProperties, Preconnection,
    Property, RemoteSpecifier, SecurityParameters, SendOutcome, TarPit, TransportProperties,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the tour saw, for its caller to check and print.
pub struct Tour {
    /// The first race's report (attempts and timings).
    pub report: taps::RaceReport,
    /// Where the winner connected.
    pub winner: String,
    /// Replies in the order they came back.
    pub replies: Vec<String>,
    /// The second race's attempt delay (from the cached RTT).
    pub cached_delay: Duration,
    /// The message whose lifetime passed before it could be sent.
    pub expired: bool,
}

/// Serves `listener`: every message comes back upper-cased.
fn serve(listener: taps::Listener) {
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(m) = conn.receive(1 << 20).await {
                    let reply = m.data.to_ascii_uppercase();
                    if conn.send(reply, MessageProperties::default()).await != SendOutcome::Sent {
                        break;
                    }
                }
            });
        }
    });
}

/// A message listener on 127.0.0.1 and a tar pit on [::1], one port.
fn server(ctx: &Context) -> Result<(u16, TarPit), Error> {
    for _ in 0..50 {
        let pre = Preconnection::new(
            TransportProperties::for_listener().prohibit(Property::Multistreaming),
            SecurityParameters::Disabled,
        )
        .with_local(
            LocalSpecifier::new()
                .with_ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
                .with_port(0),
        );
        let listener = taps::listen(ctx, &pre)?;
        let port: u16 = listener.local_addr().parse::<SocketAddr>()?.port();
        if let Ok(pit) = TarPit::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            serve(listener);
            return Ok((port, pit));
        }
    }
    Err("no port free on both 127.0.0.1 and ::1".into())
}

async fn reply(conn: &MessageConnection) -> Result<String, Error> {
    let m = conn.receive(1 << 20).await?;
    Ok(String::from_utf8_lossy(&m.data).into_owned())
}

/// Races `localhost`, talks in messages with priorities and a lifetime,
/// then races again with the RTT the first race measured.
pub async fn tour() -> Result<Tour, Error> {
    let ctx = Context::new();
    let (port, _pit) = server(&ctx)?;
    let pre = Preconnection::new(
        TransportProperties::new().prohibit(Property::Multistreaming),
        SecurityParameters::Disabled,
    )
    .with_remote(
        RemoteSpecifier::new()
            .with_host_name("localhost")
            .with_port(port),
    );

    let Initiated { connection, report } = taps::initiate(&ctx, &pre).await?;
    let winner = connection.candidate().to_string();

    // Queued as one batch: the lower priority number goes first.
    let urgent = MessageProperties {
        priority: 1,
        ..MessageProperties::default()
    };
    connection.send_batch([
        (
            "queued first, priority 100".into(),
            MessageProperties::default(),
        ),
        ("queued second, priority 1".into(), urgent),
    ])?;
    // A message whose lifetime is over before it can go is dropped unsent.
    let stale = MessageProperties {
        lifetime: Some(Duration::ZERO),
        ..MessageProperties::default()
    };
    let expired = connection.send("too late", stale).await;
    let mut replies = vec![reply(&connection).await?, reply(&connection).await?];
    // Clone: another connection of the group (a new race on plain TCP).
    let clone = connection.clone_connection().await?;
    clone
        .send("from the clone", MessageProperties::default())
        .await;
    replies.push(reply(&clone).await?);
    connection.close();
    clone.close();

    // The context cached the RTT: the next race's delay derives from it.
    let again = taps::initiate(&ctx, &pre).await?;
    again.connection.close();
    Ok(Tour {
        report,
        winner,
        replies,
        cached_delay: again.report.attempt_delay,
        expired: expired == SendOutcome::Expired,
    })
}
