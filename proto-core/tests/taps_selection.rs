//! Selection: each preference level on each property changes the choice as
//! RFC 9622 section 6.2 says; impossible sets fail naming the property;
//! security and endpoint kinds prune; the preconnection's plans.

use proto_core::secure::{AllowAny, Identity, TrustedRoots};
use proto_core::taps::cache::{PathCache, RemoteKey};
use proto_core::taps::candidate::Stack;
use proto_core::taps::endpoint::{
    LocalBinding, LocalSpecifier, RemoteSpecifier, Resolution, SpecifierError, SpecifierLimits,
};
use proto_core::taps::preconnection::{
    PlanContext, Preconnection, PreconnectionError, SecurityParameters,
};
use proto_core::taps::properties::{
    Direction, Multipath, Preference, Property, TransportProperties,
};
use proto_core::taps::selection::{
    select, Constraint, EndpointKind, Path, SecurityMode, Selection, SelectionError, SelectionInput,
};
use proto_core::time::Duration;
use std::sync::Arc;

/// The capability table as the module documents it, written out again
/// here so a change to either is caught: (property, stacks providing it).
const PROVIDES: &[(Property, &[Stack])] = &[
    (
        Property::Reliability,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux, Stack::Unix],
    ),
    (Property::PreserveMsgBoundaries, &[Stack::Udp]),
    (Property::PerMsgReliability, &[]),
    (
        Property::PreserveOrder,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux, Stack::Unix],
    ),
    (Property::ZeroRttMsg, &[]),
    (Property::Multistreaming, &[Stack::SecureMux, Stack::Yamux]),
    (
        Property::FullChecksumSend,
        &[
            Stack::Tcp,
            Stack::SecureMux,
            Stack::Yamux,
            Stack::Udp,
            Stack::Unix,
        ],
    ),
    (
        Property::FullChecksumRecv,
        &[
            Stack::Tcp,
            Stack::SecureMux,
            Stack::Yamux,
            Stack::Udp,
            Stack::Unix,
        ],
    ),
    (
        Property::CongestionControl,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux, Stack::Unix],
    ),
    (
        Property::KeepAlive,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux],
    ),
    (
        Property::UseTemporaryLocalAddress,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux, Stack::Udp],
    ),
    (Property::SoftErrorNotify, &[]),
    (
        Property::ActiveReadBeforeSend,
        &[Stack::Tcp, Stack::SecureMux, Stack::Yamux, Stack::Unix],
    ),
];

fn providers(p: Property) -> &'static [Stack] {
    PROVIDES.iter().find(|(q, _)| *q == p).unwrap().1
}

/// Every property at No Preference: only the security and endpoint prune.
fn neutral() -> TransportProperties {
    Property::ALL
        .into_iter()
        .fold(TransportProperties::default(), |t, p| t.ignore(p))
}

fn run(
    props: &TransportProperties,
    security: SecurityMode,
    endpoint: EndpointKind,
) -> Result<Selection, SelectionError> {
    let s = select(&SelectionInput {
        properties: props,
        security,
        endpoint,
        cache: None,
        interfaces: &[],
    });
    if let Ok(s) = &s {
        // Every stack is either kept or pruned with a reason it fails.
        let mut all: Vec<Stack> = s.stacks().to_vec();
        for p in &s.pruned {
            assert!(!p.reason.admits(p.stack), "{p}");
            all.push(p.stack);
        }
        all.sort();
        assert_eq!(
            all,
            [
                Stack::Tcp,
                Stack::SecureMux,
                Stack::Yamux,
                Stack::Udp,
                Stack::Unix
            ]
        );
    }
    s
}

const LEVELS: [Preference; 5] = [
    Preference::Require,
    Preference::Prefer,
    Preference::NoPreference,
    Preference::Avoid,
    Preference::Prohibit,
];

#[test]
fn the_table_matches_the_module() {
    for &(p, stacks) in PROVIDES {
        for s in [
            Stack::Tcp,
            Stack::SecureMux,
            Stack::Yamux,
            Stack::Udp,
            Stack::Unix,
        ] {
            assert_eq!(
                proto_core::taps::selection::provides(s, p),
                stacks.contains(&s),
                "{p} on {s}"
            );
        }
    }
}

#[test]
fn each_level_on_each_property_acts_as_the_rfc_says() {
    for (security, endpoint) in [
        (SecurityMode::Disabled, EndpointKind::Ip),
        (SecurityMode::Weft, EndpointKind::Ip),
        (SecurityMode::Disabled, EndpointKind::Unix),
    ] {
        let base = run(&neutral(), security, endpoint).unwrap();
        let base = base.stacks().to_vec();
        assert!(!base.is_empty());
        for p in Property::ALL {
            let has = providers(p);
            for level in LEVELS {
                let ctx = format!("{p}={level} under {security:?}/{endpoint:?}");
                let got = run(&neutral().set(p, level), security, endpoint);
                match level {
                    Preference::Require | Preference::Prohibit => {
                        let want: Vec<Stack> = base
                            .iter()
                            .copied()
                            .filter(|s| has.contains(s) == (level == Preference::Require))
                            .collect();
                        if want.is_empty() {
                            let Err(SelectionError::Unsatisfiable(c)) = &got else {
                                panic!("{ctx}: expected unsatisfiable, got {got:?}");
                            };
                            assert!(c.contains(&Constraint::Property(p, level)), "{ctx}: {c:?}");
                            assert!(
                                got.unwrap_err().to_string().contains(p.name()),
                                "{ctx}: error does not name the property"
                            );
                        } else {
                            assert_eq!(got.unwrap().stacks(), want.as_slice(), "{ctx}");
                        }
                    }
                    Preference::Prefer | Preference::Avoid => {
                        let got = got.unwrap();
                        let got = got.stacks();
                        let mut sorted = got.to_vec();
                        sorted.sort();
                        let mut b = base.clone();
                        b.sort();
                        assert_eq!(sorted, b, "{ctx}: ordering must not prune");
                        // Prefer: providers first; Avoid: providers last.
                        let first_group =
                            |s: &Stack| has.contains(s) == (level == Preference::Prefer);
                        let split = got.iter().take_while(|s| first_group(s)).count();
                        assert!(
                            got[split..].iter().all(|s| !first_group(s)),
                            "{ctx}: {got:?}"
                        );
                        // Within each group the neutral order is kept.
                        for group in [&got[..split], &got[split..]] {
                            let pos: Vec<usize> = group
                                .iter()
                                .map(|s| base.iter().position(|b| b == s).unwrap())
                                .collect();
                            assert!(pos.windows(2).all(|w| w[0] < w[1]), "{ctx}: {got:?}");
                        }
                    }
                    _ => assert_eq!(got.unwrap().stacks(), base.as_slice(), "{ctx}"),
                }
            }
        }
    }
}

#[test]
fn defaults_are_the_rfcs() {
    use Preference::*;
    let d = TransportProperties::default();
    let want = [
        (Property::Reliability, Require),
        (Property::PreserveMsgBoundaries, NoPreference),
        (Property::PerMsgReliability, NoPreference),
        (Property::PreserveOrder, Require),
        (Property::ZeroRttMsg, NoPreference),
        (Property::Multistreaming, Prefer),
        (Property::FullChecksumSend, Require),
        (Property::FullChecksumRecv, Require),
        (Property::CongestionControl, Require),
        (Property::KeepAlive, NoPreference),
        (Property::UseTemporaryLocalAddress, Prefer),
        (Property::SoftErrorNotify, NoPreference),
        (Property::ActiveReadBeforeSend, NoPreference),
    ];
    for (p, v) in want {
        assert_eq!(d.get(p), v, "{p}");
    }
    assert!(d.interfaces().is_empty());
    assert_eq!(d.multipath_value(), Multipath::Disabled);
    assert!(!d.advertises_altaddr_value());
    assert_eq!(d.direction_value(), Direction::Bidirectional);

    let l = TransportProperties::for_listener();
    assert_eq!(l.get(Property::UseTemporaryLocalAddress), Avoid);
    assert_eq!(l.multipath_value(), Multipath::Passive);
    let r = TransportProperties::for_rendezvous();
    assert_eq!(r.get(Property::UseTemporaryLocalAddress), Avoid);
    assert_eq!(r.multipath_value(), Multipath::Disabled);
    // Only those differ.
    for p in Property::ALL {
        if p != Property::UseTemporaryLocalAddress {
            assert_eq!(l.get(p), d.get(p));
            assert_eq!(r.get(p), d.get(p));
        }
    }
}

#[test]
fn default_properties_pick_reliable_streams_multistreaming_first() {
    let s = run(
        &TransportProperties::default(),
        SecurityMode::Disabled,
        EndpointKind::Ip,
    )
    .unwrap();
    assert_eq!(s.stacks(), &[Stack::Yamux, Stack::Tcp]);
    let udp = s.pruned.iter().find(|p| p.stack == Stack::Udp).unwrap();
    assert_eq!(
        udp.reason,
        Constraint::Property(Property::Reliability, Preference::Require)
    );
    let sm = s
        .pruned
        .iter()
        .find(|p| p.stack == Stack::SecureMux)
        .unwrap();
    assert_eq!(sm.reason, Constraint::Security(SecurityMode::Disabled));
    assert!(sm.to_string().contains("tcp+secure+mux"));
}

#[test]
fn prefers_count_first_then_avoids_then_rfc_order() {
    // Each of the three satisfies one Prefer; yamux has the Avoid'ed
    // multistreaming; udp's Prefer (preserveMsgBoundaries) comes before
    // tcp's (keepAlive) in RFC order.
    let props = neutral()
        .prefer(Property::PreserveMsgBoundaries)
        .prefer(Property::KeepAlive)
        .avoid(Property::Multistreaming);
    let s = run(&props, SecurityMode::Disabled, EndpointKind::Ip).unwrap();
    assert_eq!(s.stacks(), &[Stack::Udp, Stack::Tcp, Stack::Yamux]);

    // Two Prefers beat one, whatever the order of properties.
    let props = neutral()
        .prefer(Property::PreserveMsgBoundaries)
        .prefer(Property::KeepAlive)
        .prefer(Property::Multistreaming);
    let s = run(&props, SecurityMode::Disabled, EndpointKind::Ip).unwrap();
    assert_eq!(s.stacks(), &[Stack::Yamux, Stack::Udp, Stack::Tcp]);
}

#[test]
fn the_cache_breaks_ties_success_then_rtt() {
    let remote = RemoteKey::Host {
        name: "example.com".into(),
        port: 80,
    };
    let mut cache = PathCache::default();
    cache.record_failure(&remote, Stack::Yamux);
    cache.record_success(&remote, Stack::Udp, Duration::from_millis(30));
    cache.record_success(&remote, Stack::Tcp, Duration::from_millis(10));
    let props = neutral();
    let input = |cache| SelectionInput {
        properties: &props,
        security: SecurityMode::Disabled,
        endpoint: EndpointKind::Ip,
        cache: Some((cache, &remote)),
        interfaces: &[],
    };
    assert_eq!(
        select(&input(&cache)).unwrap().stacks(),
        &[Stack::Tcp, Stack::Udp, Stack::Yamux]
    );
    // Preferences come before the cache.
    let props = neutral().prefer(Property::Multistreaming);
    let s = select(&SelectionInput {
        properties: &props,
        ..input(&cache)
    })
    .unwrap();
    assert_eq!(s.stacks(), &[Stack::Yamux, Stack::Tcp, Stack::Udp]);
}

#[test]
fn unsatisfiable_sets_name_the_smallest_conflict() {
    let err =
        |props: TransportProperties| match run(&props, SecurityMode::Disabled, EndpointKind::Ip) {
            Err(SelectionError::Unsatisfiable(c)) => c,
            other => panic!("expected unsatisfiable, got {other:?}"),
        };
    assert_eq!(
        err(TransportProperties::default().require(Property::ZeroRttMsg)),
        [Constraint::Property(
            Property::ZeroRttMsg,
            Preference::Require
        )]
    );
    // Defaults require reliability; message boundaries only UDP keeps.
    let c = err(TransportProperties::default().require(Property::PreserveMsgBoundaries));
    assert_eq!(
        c,
        [
            Constraint::Property(Property::Reliability, Preference::Require),
            Constraint::Property(Property::PreserveMsgBoundaries, Preference::Require)
        ]
    );
    let e = SelectionError::Unsatisfiable(c).to_string();
    assert!(
        e.contains("reliability=Require") && e.contains("preserveMsgBoundaries=Require"),
        "{e}"
    );
    assert_eq!(
        err(TransportProperties::default().multipath(Multipath::Active)),
        [Constraint::Multipath(Multipath::Active)]
    );
    assert_eq!(
        err(TransportProperties::default().advertises_altaddr(true)),
        [Constraint::AdvertisesAltaddr]
    );
    // Multistreaming without a mux: only the plaintext mux is left, and
    // prohibiting keepAlive removes it.
    assert_eq!(
        err(neutral()
            .require(Property::Multistreaming)
            .prohibit(Property::KeepAlive)),
        [
            Constraint::Property(Property::Multistreaming, Preference::Require),
            Constraint::Property(Property::KeepAlive, Preference::Prohibit)
        ]
    );
}

#[test]
fn security_and_endpoint_kind_prune() {
    let d = TransportProperties::default();
    let s = run(&d, SecurityMode::Weft, EndpointKind::Ip).unwrap();
    assert_eq!(s.stacks(), &[Stack::SecureMux]);
    assert!(s
        .pruned
        .iter()
        .filter(|p| p.stack != Stack::Udp && p.stack != Stack::Unix)
        .all(|p| p.reason == Constraint::Security(SecurityMode::Weft)));

    let s = run(&d, SecurityMode::Disabled, EndpointKind::Unix).unwrap();
    assert_eq!(s.stacks(), &[Stack::Unix]);
    assert_eq!(s.branches.len(), 1);
    assert_eq!(s.branches[0].path, Path::Default);

    match run(&d, SecurityMode::Weft, EndpointKind::Unix) {
        Err(SelectionError::Unsatisfiable(c)) => assert_eq!(
            c,
            [
                Constraint::Security(SecurityMode::Weft),
                Constraint::Endpoint(EndpointKind::Unix)
            ]
        ),
        other => panic!("{other:?}"),
    }
    // Weft security with no multistreaming wanted still means the mux.
    let s = run(
        &d.clone().prohibit(Property::Multistreaming),
        SecurityMode::Weft,
        EndpointKind::Ip,
    );
    assert!(matches!(s, Err(SelectionError::Unsatisfiable(_))));
    // An interface cannot be required of a Unix socket.
    let s = run(
        &d.interface("en0", Preference::Require),
        SecurityMode::Disabled,
        EndpointKind::Unix,
    );
    assert!(
        matches!(s, Err(SelectionError::Unsatisfiable(c)) if c.contains(&Constraint::InterfaceRequired))
    );
}

#[test]
fn interfaces_give_the_paths() {
    let known: Vec<String> = ["en0", "wlan0", "eth1"].map(String::from).to_vec();
    let paths = |props: TransportProperties, known: &[String]| {
        select(&SelectionInput {
            properties: &props,
            security: SecurityMode::Disabled,
            endpoint: EndpointKind::Ip,
            cache: None,
            interfaces: known,
        })
        .map(|s| s.branches.into_iter().map(|b| b.path).collect::<Vec<_>>())
    };
    let i = |n: &str| Path::Interface(n.into());
    let d = TransportProperties::default;
    assert_eq!(paths(d(), &[]).unwrap(), [Path::Default]);
    assert_eq!(
        paths(d(), &known).unwrap(),
        [i("en0"), i("wlan0"), i("eth1")]
    );
    assert_eq!(
        paths(d().interface("wlan0", Preference::Require), &known).unwrap(),
        [i("wlan0")]
    );
    assert_eq!(
        paths(d().interface("wwan0", Preference::Require), &known),
        Err(SelectionError::InterfaceUnavailable("wwan0".into()))
    );
    assert_eq!(
        paths(
            d().interface("eth1", Preference::Prefer)
                .interface("en0", Preference::Avoid),
            &known
        )
        .unwrap(),
        [i("eth1"), i("wlan0"), i("en0")]
    );
    assert_eq!(
        paths(d().interface("en0", Preference::Prohibit), &known).unwrap(),
        [i("wlan0"), i("eth1")]
    );
    let all_prohibited = ["en0", "wlan0", "eth1"]
        .into_iter()
        .fold(d(), |t, n| t.interface(n, Preference::Prohibit));
    assert_eq!(paths(all_prohibited, &known), Err(SelectionError::NoPath));
    // Unknown host interfaces: a Prefer'ed one goes before the default path.
    assert_eq!(
        paths(d().interface("en0", Preference::Prefer), &[]).unwrap(),
        [i("en0"), Path::Default]
    );
    // No Preference on an interface has no effect.
    assert_eq!(
        paths(d().interface("en0", Preference::NoPreference), &known).unwrap(),
        paths(d(), &known).unwrap()
    );
    let s = select(&SelectionInput {
        properties: &d().interface("en0", Preference::Prohibit),
        security: SecurityMode::Disabled,
        endpoint: EndpointKind::Ip,
        cache: None,
        interfaces: &[],
    })
    .unwrap();
    assert_eq!(s.prohibited_interfaces, ["en0"]);
}

#[test]
fn candidates_pair_stacks_with_reachable_endpoints() {
    use proto_core::taps::endpoint::Endpoint;
    let s = run(
        &TransportProperties::default(),
        SecurityMode::Disabled,
        EndpointKind::Ip,
    )
    .unwrap();
    let eps = [
        Endpoint::Ip("[2001:db8::1]:80".parse().unwrap()),
        Endpoint::Ip("192.0.2.1:80".parse().unwrap()),
        Endpoint::Unix("/tmp/x".into()),
    ];
    let c = s.candidates(&eps);
    let got: Vec<(Stack, &Endpoint)> = c.iter().map(|(_, c)| (c.stack, &c.endpoint)).collect();
    assert_eq!(
        got,
        [
            (Stack::Yamux, &eps[0]),
            (Stack::Yamux, &eps[1]),
            (Stack::Tcp, &eps[0]),
            (Stack::Tcp, &eps[1])
        ]
    );
}

// ---- endpoint specifiers ----

#[test]
fn remote_specifiers_validate() {
    let l = SpecifierLimits::default();
    let r = RemoteSpecifier::new;
    let ok = |s: RemoteSpecifier| s.validate(&l).unwrap().resolution;
    let err = |s: RemoteSpecifier| s.validate(&l).unwrap_err();
    assert_eq!(
        ok(r().with_host_name("WWW.Example.org.").with_port(8080)),
        Resolution::Lookup {
            host: "www.example.org".into(),
            port: 8080
        }
    );
    assert_eq!(
        ok(r()
            .with_ip_address("192.0.2.7".parse().unwrap())
            .with_service("ssh")),
        Resolution::Ready(proto_core::taps::endpoint::Endpoint::Ip(
            "192.0.2.7:22".parse().unwrap()
        ))
    );
    // A literal address given as a name needs no lookup.
    assert_eq!(
        ok(r().with_host_name("2001:db8::5").with_port(1)),
        Resolution::Ready(proto_core::taps::endpoint::Endpoint::Ip(
            "[2001:db8::5]:1".parse().unwrap()
        ))
    );
    assert_eq!(
        ok(r().with_unix_path("/run/weft.sock")),
        Resolution::Ready(proto_core::taps::endpoint::Endpoint::Unix(
            "/run/weft.sock".into()
        ))
    );
    assert_eq!(
        ok(r().with_host_name("h").with_service("HTTPS").with_port(443)),
        Resolution::Lookup {
            host: "h".into(),
            port: 443
        }
    );

    assert_eq!(err(r()), SpecifierError::NoAddress);
    assert_eq!(err(r().with_port(80)), SpecifierError::NoAddress);
    assert_eq!(
        err(r().with_host_name("example.com")),
        SpecifierError::NoPort
    );
    assert_eq!(
        err(r().with_host_name("example.com").with_port(0)),
        SpecifierError::ZeroPort
    );
    assert_eq!(
        err(r().with_host_name("example.com").with_service("gopherish")),
        SpecifierError::UnknownService("gopherish".into())
    );
    assert!(matches!(
        err(r()
            .with_host_name("example.com")
            .with_service("http")
            .with_port(81)),
        SpecifierError::PortServiceMismatch {
            port: 81,
            service_port: 80,
            ..
        }
    ));
    assert_eq!(
        err(r()
            .with_host_name("a.b")
            .with_ip_address("::1".parse().unwrap())
            .with_port(1)),
        SpecifierError::HostAndAddress
    );
    assert_eq!(
        err(r().with_unix_path("/x").with_port(1)),
        SpecifierError::UnixWithIp
    );
    assert!(matches!(
        err(r().with_unix_path("")),
        SpecifierError::InvalidUnixPath(_)
    ));
    assert!(matches!(
        err(r().with_unix_path(&"a".repeat(108))),
        SpecifierError::InvalidUnixPath(_)
    ));
    assert!(matches!(
        err(r().with_unix_path("a\0b")),
        SpecifierError::InvalidUnixPath(_)
    ));
    let long = vec!["a".repeat(63); 5].join(".");
    assert_eq!(
        err(r().with_host_name(&long).with_port(1)),
        SpecifierError::HostNameTooLong(319)
    );
    for bad in [
        "",
        ".",
        "a..b",
        "-a.com",
        "a-.com",
        "a_b.com",
        "ex ample.com",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(
                err(r().with_host_name(bad).with_port(1)),
                SpecifierError::InvalidHostName(_)
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        err(r().with_host_name("a.b").with_port(1).with_interface("")),
        SpecifierError::InvalidInterface(_)
    ));
    assert!(matches!(
        err(r()
            .with_host_name("a.b")
            .with_port(1)
            .with_interface("sixteen-bytes-xx")),
        SpecifierError::InvalidInterface(_)
    ));
    for e in [
        SpecifierError::NoPort,
        SpecifierError::UnknownService("x".into()),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn local_specifiers_validate() {
    let l = SpecifierLimits::default();
    let v = |s: LocalSpecifier| s.validate(&l).map(|v| v.binding);
    assert_eq!(v(LocalSpecifier::new()), Ok(LocalBinding::Any { port: 0 }));
    assert_eq!(
        v(LocalSpecifier::new().with_service("https")),
        Ok(LocalBinding::Any { port: 443 })
    );
    assert_eq!(
        v(LocalSpecifier::new()
            .with_ip_address("::".parse().unwrap())
            .with_port(9)),
        Ok(LocalBinding::Addr("[::]:9".parse().unwrap()))
    );
    assert_eq!(
        v(LocalSpecifier::new().with_unix_path("/s")),
        Ok(LocalBinding::Unix("/s".into()))
    );
    assert_eq!(
        v(LocalSpecifier::new()
            .with_host_name("Me.local")
            .with_port(5)),
        Ok(LocalBinding::Lookup {
            host: "me.local".into(),
            port: 5
        })
    );
    let iface = LocalSpecifier::new()
        .with_interface("en0")
        .validate(&l)
        .unwrap();
    assert_eq!(iface.interface.as_deref(), Some("en0"));
    assert_eq!(
        v(LocalSpecifier::new().with_service("nope")),
        Err(SpecifierError::UnknownService("nope".into()))
    );
}

// ---- preconnection ----

fn weft() -> SecurityParameters {
    SecurityParameters::weft(
        Identity::from_secret([7; 32]),
        TrustedRoots::new(),
        Arc::new(AllowAny),
    )
}

#[test]
fn plans_need_their_endpoints() {
    let ctx = PlanContext::default();
    let p = Preconnection::new(TransportProperties::default(), SecurityParameters::Disabled);
    assert_eq!(p.initiate(&ctx).unwrap_err(), PreconnectionError::NoRemote);
    assert_eq!(p.listen(&ctx).unwrap_err(), PreconnectionError::NoLocal);
    let with_remote = p.clone().with_remote(
        RemoteSpecifier::new()
            .with_host_name("h.example")
            .with_port(1),
    );
    assert_eq!(
        with_remote.rendezvous(&ctx).unwrap_err(),
        PreconnectionError::NoLocal
    );
    let with_local = p.clone().with_local(LocalSpecifier::new().with_port(9000));
    assert_eq!(
        with_local.rendezvous(&ctx).unwrap_err(),
        PreconnectionError::NoRemote
    );

    let listen = Preconnection::new(TransportProperties::for_listener(), weft())
        .with_local(LocalSpecifier::new().with_port(9000))
        .listen(&ctx)
        .unwrap();
    assert_eq!(listen.local.binding, LocalBinding::Any { port: 9000 });
    assert_eq!(listen.selection.stacks(), &[Stack::SecureMux]);

    let both = with_remote.with_local(LocalSpecifier::new().with_port(9000));
    let r = Preconnection::new(
        TransportProperties::for_rendezvous(),
        SecurityParameters::Disabled,
    )
    .with_local(both.local().unwrap().clone())
    .with_remote(both.remote().unwrap().clone())
    .rendezvous(&ctx)
    .unwrap();
    assert_eq!(
        r.remote_key,
        RemoteKey::Host {
            name: "h.example".into(),
            port: 1
        }
    );
    assert_eq!(r.selection.temporary_address, Preference::Avoid);
}

#[test]
fn initiate_plans_and_errors() {
    let ctx = PlanContext::default();
    let p = Preconnection::new(TransportProperties::default(), weft()).with_remote(
        RemoteSpecifier::new()
            .with_host_name("example.com")
            .with_service("https"),
    );
    let plan = p.initiate(&ctx).unwrap();
    assert_eq!(plan.selection.stacks(), &[Stack::SecureMux]);
    assert!(!plan.send_first_message);
    assert!(matches!(plan.security, SecurityParameters::Weft(_)));

    assert_eq!(
        p.initiate_with_send(&ctx, false).unwrap_err(),
        PreconnectionError::NotSafelyReplayable
    );
    assert!(p.initiate_with_send(&ctx, true).unwrap().send_first_message);

    let bad = p
        .clone()
        .with_remote(RemoteSpecifier::new().with_host_name("example.com"));
    assert_eq!(
        bad.initiate(&ctx).unwrap_err(),
        PreconnectionError::Remote(SpecifierError::NoPort)
    );
    let bad_local = p
        .clone()
        .with_local(LocalSpecifier::new().with_service("zzz"));
    assert!(matches!(
        bad_local.initiate(&ctx),
        Err(PreconnectionError::Local(_))
    ));
    let mixed = p
        .clone()
        .with_local(LocalSpecifier::new().with_unix_path("/l"));
    assert_eq!(
        mixed.initiate(&ctx).unwrap_err(),
        PreconnectionError::MixedEndpoints
    );

    let unix = p
        .clone()
        .with_remote(RemoteSpecifier::new().with_unix_path("/run/s"));
    let e = unix.initiate(&ctx).unwrap_err();
    assert!(matches!(
        e,
        PreconnectionError::Selection(SelectionError::Unsatisfiable(_))
    ));
    assert!(e.to_string().contains("security=weft"), "{e}");

    // The cache reaches the selection.
    let plain = Preconnection::new(TransportProperties::default(), SecurityParameters::Disabled)
        .with_remote(
            RemoteSpecifier::new()
                .with_ip_address("192.0.2.1".parse().unwrap())
                .with_port(5),
        )
        .clone();
    let key = plain.initiate(&ctx).unwrap().remote_key;
    assert_eq!(key, RemoteKey::Addr("192.0.2.1:5".parse().unwrap()));
    let mut cache = PathCache::default();
    cache.record_failure(&key, Stack::Yamux);
    let props = plain.properties().clone().ignore(Property::Multistreaming);
    let mut plain = plain;
    *plain.properties_mut() = props;
    let ctx = PlanContext {
        cache: Some(&cache),
        ..PlanContext::default()
    };
    assert_eq!(
        plain.initiate(&ctx).unwrap().selection.stacks(),
        &[Stack::Tcp, Stack::Yamux]
    );
}
