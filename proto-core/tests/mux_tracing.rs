//! With the `tracing` feature, protocol decisions are visible as events.
//! Run: `cargo test -p proto-core --features tracing --test mux_tracing`.

mod common;

use common::{pump_read, Pair};
use proto_core::mux::{initial, Config};
use proto_core::time::Duration;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects every event's message.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0.lock().unwrap().push(m.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn decisions_are_traced() {
    let collect = Collect::default();
    let seen = collect.0.clone();
    tracing::subscriber::with_default(collect, || {
        let mut cfg = Config::default();
        cfg.max_concurrent_flows = initial::MAX_FLOWS;
        let mut pair = Pair::with(1, Config::default(), cfg, Default::default());
        pair.settle();
        // Flows opened, accepted; a window grows under a fast reader.
        let id = pair.a.conn.open_flow().unwrap();
        let data = vec![7u8; 4 << 20];
        let mut pos = 0;
        let mut got = Vec::new();
        while got.len() < data.len() {
            common::pump_write(&mut pair.a.conn, id, &data, &mut pos);
            pair.step();
            let _ = pump_read(&mut pair.b.conn, id, &mut got);
        }
        // The flow limit is hit.
        while pair.a.conn.open_flow().is_ok() {}
        pair.a.conn.flow(id).reset(1).unwrap();
        // GOAWAY, then the keepalive timer and a close.
        pair.b.conn.go_away(0);
        pair.settle();
        pair.advance(Duration::from_secs(20));
        pair.a.conn.close(0, b"");
        pair.settle();
    });
    let seen = seen.lock().unwrap();
    for wanted in [
        "mux flow opened",
        "mux flow accepted",
        "mux window grown",
        "mux open blocked by flow credit",
        "mux flow reset",
        "mux GOAWAY sent",
        "mux GOAWAY received",
        "mux timer fired",
        "mux connection closed",
    ] {
        assert!(
            seen.iter().any(|m| m == wanted),
            "no {wanted:?} in {seen:?}"
        );
    }
}
