//! The API's conveniences: addresses given as text or as `Address`, and the socket address of
//! a bound endpoint.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use dopy::{Address, Endpoint, Error, Node, Value};
use support::{start_server, CalculatorProxy};

/// `Node::object` and `Node::proxy` take an address as `&str`, `String`, `&String`, `Address`
/// or `&Address`: the address of an object on a node just bound needs no `.to_string()`.
#[tokio::test]
async fn object_and_proxy_take_any_form_of_address() {
    let (_server, bound) = start_server().await;
    let client = Node::new();
    let address: Address = bound.object("calc");
    let text = address.to_string();
    let objects = [
        client.object(text.as_str()).await.unwrap(),
        client.object(text.clone()).await.unwrap(),
        client.object(&text).await.unwrap(),
        client.object(&address).await.unwrap(),
        client.object(address.clone()).await.unwrap(),
        client.object(bound.object("calc")).await.unwrap(),
    ];
    for (i, obj) in objects.iter().enumerate() {
        let n = i64::try_from(i).unwrap();
        assert_eq!(obj.call("add", [n.into(), 1.into()]).await.unwrap(), Value::Int(n + 1));
    }
    let calc: CalculatorProxy = client.proxy(bound.object("calc")).await.unwrap();
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    let calc = client.proxy::<CalculatorProxy>(&address).await.unwrap();
    assert_eq!(calc.add(4, 5).await.unwrap(), 9);
}

/// An address that does not parse, or names no object, is refused the same way in every form.
#[tokio::test]
async fn invalid_addresses_are_refused_in_every_form() {
    let client = Node::new();
    let err = client.object("tcp://127.0.0.1/calc").await.unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
    let err = client.object(String::from("nonsense")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
    let endpoint: Endpoint = "unix:/run/app.sock".parse().unwrap();
    let no_object = Address { endpoint, object: None };
    for err in [client.object(&no_object).await.unwrap_err(), client.object("unix:/run/app.sock").await.unwrap_err()] {
        let Error::InvalidAddress { address, reason } = &err else { panic!("expected InvalidAddress, got {err}") };
        assert_eq!(address, "unix:/run/app.sock");
        assert!(reason.contains("`unix:/run/app.sock#calc`"), "{reason}");
    }
}

/// The endpoint `listen` returns gives its bound socket address (the port picked for port 0)
/// without matching on `Endpoint::Tcp`; other transports and host names have none.
#[tokio::test]
async fn bound_endpoint_gives_its_socket_address() {
    let node = Node::new();
    let bound = node.listen("tcp://127.0.0.1:0").await.unwrap();
    let addr = bound.socket_addr().expect("a bound TCP endpoint has a socket address");
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(addr.port(), 0);
    // The socket address is the one clients reach.
    std::net::TcpStream::connect(addr).unwrap();

    let parse = |s: &str| s.parse::<Endpoint>().unwrap().socket_addr();
    assert_eq!(parse("tls://[::1]:9600"), Some(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9600))));
    assert_eq!(parse("tcp://10.0.0.7:80"), Some(SocketAddr::from(([10, 0, 0, 7], 80))));
    assert_eq!(parse("tcp://localhost:9600"), None);
    assert_eq!(parse("unix:/run/app.sock"), None);
    assert_eq!(parse("memory://here"), None);
    assert_eq!(parse("exec:dopy-serve --stdio"), None);
}
