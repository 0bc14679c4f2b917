//! The process memory budget across real connections: each draws its share,
//! the stats show it, and when a new connection cannot get its floor the
//! one holding the most unread data is closed with a precise reason.

use adapter_core::{BudgetConfig, CloseReason, ErrorCode, MemoryBudget};
use adapter_tokio::{Config, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;

fn config(budget: &MemoryBudget) -> Config {
    let mut c = Config::default();
    c.budget = Some(budget.clone());
    c
}

/// A plaintext pair over an in-memory pipe; the server draws from `budget`.
fn pair(budget: &MemoryBudget) -> (Connection, Connection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let client = Connection::client(a, Config::default()).unwrap();
    let server = Connection::server(b, config(budget)).unwrap();
    (client, server)
}

/// The client sends `n` bytes on new flows (within each flow's initial
/// window) that the server accepts but never reads.
async fn stuff(client: &Connection, server: &Connection, n: usize) -> Vec<adapter_tokio::Flow> {
    let before = server.stats().recv_buffered as usize;
    let mut accepted = Vec::new();
    let mut left = n;
    while left > 0 {
        let piece = left.min(200 << 10);
        let mut flow = client.open_flow().await.unwrap();
        flow.write_all(&vec![7u8; piece]).await.unwrap();
        accepted.push(server.accept_flow().await.unwrap());
        left -= piece;
    }
    for _ in 0..1000 {
        if server.stats().recv_buffered as usize >= before + n {
            return accepted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the server never got {n} bytes: {:?}", server.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_are_visible_and_come_back() {
    let budget = MemoryBudget::new(BudgetConfig::with_limit(64 * MIB));
    let (client, server) = pair(&budget);
    let _held = stuff(&client, &server, 300 << 10).await;
    let s = server.stats();
    assert!(s.budget_held >= 300 << 10, "{s:?}");
    assert_eq!(server.budget(), Some(budget.clone()));
    assert_eq!(budget.stats().shares, 1);
    assert!(budget.used() >= 300 << 10);
    // The driver's read buffer counts too, beside the connection's share.
    assert!(
        budget.used() > s.budget_held as usize,
        "{:?} vs {s:?}",
        budget.stats()
    );
    drop(_held);
    client.close(0, b"done");
    server.closed().await;
    drop(server);
    // The driver ends after its linger; the share goes with the state.
    for _ in 0..500 {
        if budget.stats().shares == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(budget.stats().shares, 0);
    assert_eq!(budget.used(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_holding_the_most_unread_data_makes_room() {
    // Room for three connections (1 MiB of connection window each, plus
    // their drivers' read buffers) but not for a fourth's floor (1 MiB
    // and the driver's buffers, 1.375 MiB).
    let budget = MemoryBudget::new(BudgetConfig::with_limit(4 * MIB));
    let mut pairs = Vec::new();
    let mut held = Vec::new();
    for n in [100 << 10, 600 << 10, 200 << 10] {
        let (c, s) = pair(&budget);
        held.push(stuff(&c, &s, n).await);
        pairs.push((c, s));
    }
    assert_eq!(budget.stats().evictions, 0);
    assert!(!budget.fits(MIB + 384 * 1024), "{:?}", budget.stats());
    // A fourth connection needs its floor: the second pair's server, with
    // 600 KiB unread, is closed for it.
    let (c4, s4) = pair(&budget);
    let victim = &pairs[1];
    match victim.1.closed().await {
        CloseReason::Evicted { reason } => {
            let text = String::from_utf8(reason).unwrap();
            assert!(text.contains("memory budget"), "{text}");
            assert!(text.contains(&(600 << 10).to_string()), "{text}");
        }
        other => panic!("victim closed with {other:?}"),
    }
    match victim.0.closed().await {
        CloseReason::Transport { code, reason } => {
            assert_eq!(code, ErrorCode::MemoryBudget);
            assert!(String::from_utf8(reason).unwrap().contains("memory budget"));
        }
        other => panic!("peer saw {other:?}"),
    }
    assert_eq!(budget.stats().evictions, 1);
    // Its unread data was dropped to make the room: reads fail.
    let mut buf = [0u8; 16];
    let e = held[1][0].read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!(
        adapter_core::reset_code(&e),
        Some(adapter_core::proto_core::mux::OVERLOADED)
    );
    // Room enough that the newcomer's flows are not refused.
    assert!(
        budget.pressure() < adapter_core::proto_core::budget::Pressure::Refuse,
        "{:?}",
        budget.stats()
    );
    for (i, (_, s)) in pairs.iter().enumerate() {
        if i != 1 {
            assert!(s.close_reason().is_none(), "pair {i} untouched");
        }
    }
    // The newcomer works.
    let mut f = c4.open_flow().await.unwrap();
    f.write_all(b"hello").await.unwrap();
    f.finish().unwrap();
    let mut g = s4.accept_flow().await.unwrap();
    let mut got = Vec::new();
    g.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello");
}
