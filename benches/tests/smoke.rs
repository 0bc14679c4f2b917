//! Quick end-to-end check of every workload for every baseline, on both
//! runtime flavours, with small sizes (catches a broken harness in CI).

use std::io;

use benches::{build_runtime, raw_tcp, time_on_runtime, weft, yamux_mux, RtMode, BULK_FLOWS};

const BULK_SMALL: usize = 1024 * 1024;
const OPENS: usize = 10;
const ROUND_TRIPS: usize = 10;

fn run_all(mode: RtMode) {
    let rt = build_runtime(mode);
    let run =
        |name: &str,
         fut: std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>>| {
            let ((), elapsed) = time_on_runtime(&rt, (), |()| fut);
            eprintln!("{}/{name}: {elapsed:?}", mode.name());
        };

    for flows in [1, BULK_FLOWS] {
        run(
            &format!("bulk_{flows}/raw_tcp"),
            Box::pin(async move {
                let mut f = raw_tcp::setup_bulk(flows).await?;
                // Twice: the connection must be reusable across iterations.
                raw_tcp::bulk(&mut f, BULK_SMALL).await?;
                raw_tcp::bulk(&mut f, BULK_SMALL).await
            }),
        );
        run(
            &format!("bulk_{flows}/weft"),
            Box::pin(async move {
                let mut f = weft::setup_bulk(flows).await?;
                weft::bulk(&mut f, BULK_SMALL).await?;
                weft::bulk(&mut f, BULK_SMALL).await
            }),
        );
        run(
            &format!("bulk_{flows}/weft_zero_copy"),
            Box::pin(async move {
                let mut f = weft::setup_bulk_zero_copy(flows).await?;
                weft::bulk(&mut f, BULK_SMALL).await?;
                weft::bulk(&mut f, BULK_SMALL).await
            }),
        );
        run(
            &format!("bulk_{flows}/yamux"),
            Box::pin(async move {
                let mut f = yamux_mux::setup_bulk(flows).await?;
                yamux_mux::bulk(&mut f, BULK_SMALL).await?;
                yamux_mux::bulk(&mut f, BULK_SMALL).await
            }),
        );
    }
    run(
        "open_rate/raw_tcp",
        Box::pin(async {
            let mut f = raw_tcp::setup_open_rate().await?;
            raw_tcp::open_rate(&mut f, OPENS).await
        }),
    );
    run(
        "open_rate/weft",
        Box::pin(async {
            let mut f = weft::setup_open_rate().await?;
            weft::open_rate(&mut f, OPENS).await
        }),
    );
    run(
        "pingpong/weft",
        Box::pin(async {
            let mut f = weft::setup_pingpong().await?;
            weft::pingpong(&mut f, ROUND_TRIPS).await
        }),
    );
    run(
        "open_rate/yamux",
        Box::pin(async {
            let mut f = yamux_mux::setup_open_rate().await?;
            yamux_mux::open_rate(&mut f, OPENS).await
        }),
    );
    run(
        "pingpong/raw_tcp",
        Box::pin(async {
            let mut f = raw_tcp::setup_pingpong().await?;
            raw_tcp::pingpong(&mut f, ROUND_TRIPS).await
        }),
    );
    run(
        "pingpong/yamux",
        Box::pin(async {
            let mut f = yamux_mux::setup_pingpong().await?;
            yamux_mux::pingpong(&mut f, ROUND_TRIPS).await
        }),
    );
}

#[test]
fn smoke_st() {
    run_all(RtMode::St);
}

#[test]
fn smoke_mt() {
    run_all(RtMode::Mt);
}
