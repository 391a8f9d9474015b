//! PROTOCOL.md is a contract: its byte vectors match the implementation, and a client written
//! from the document alone (raw bytes on a socket) can call a published object.

mod support;

use std::collections::HashMap;

use dopy::core::message::{Args, Call, Fault, FaultKind, Hop, Message, ObjectId, Outcome, Payload, RefWire, Target};
use dopy::core::value::wire::Wire;
use dopy::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads every `vector NAME` / hex line pair of PROTOCOL.md.
fn vectors() -> HashMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let mut lines = text.lines();
    let mut out = HashMap::new();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("vector ") {
            let hex = lines.next().unwrap();
            let bytes = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            out.insert(name.to_owned(), bytes);
        }
    }
    out
}

fn messages() -> Vec<(&'static str, Message)> {
    let calc = || Target::Name("calc".into());
    let typed = postcard::to_allocvec(&(2i64, 3i64)).unwrap();
    vec![
        (
            "call-typed",
            Message::Call(Call {
                id: 1,
                target: calc(),
                method: "add".into(),
                refs: vec![],
                args: Args::Typed(typed.into()),
                flags: 0,
                deadline: None,
                chain: 0,
            }),
        ),
        (
            "call-positional",
            Message::Call(Call {
                id: 2,
                target: calc(),
                method: "add".into(),
                refs: vec![],
                args: Args::Positional(vec![Value::Int(2), Value::Int(3)]),
                flags: 1,
                deadline: None,
                chain: 0,
            }),
        ),
        (
            "call-named",
            Message::Call(Call {
                id: 3,
                target: calc(),
                method: "divide".into(),
                refs: vec![],
                args: Args::Named(vec![("b".into(), Value::Int(2)), ("a".into(), Value::Int(10))]),
                flags: 1,
                deadline: Some(1_000_000),
                chain: 0,
            }),
        ),
        (
            "return-typed",
            Message::Return { id: 1, refs: vec![], outcome: Outcome::Ok(Payload::Typed(vec![0x0a].into())) },
        ),
        (
            "return-dynamic",
            Message::Return { id: 2, refs: vec![], outcome: Outcome::Ok(Payload::Dynamic(Value::Int(5))) },
        ),
        (
            "return-fault",
            Message::Return {
                id: 3,
                refs: vec![],
                outcome: Outcome::Err(Box::new(Fault {
                    kind: FaultKind::Method,
                    message: "cannot divide 10 by zero".into(),
                    detail: Some(Payload::Dynamic(Value::Int(10))),
                    causes: vec![],
                    hops: vec![Hop { node: "n".into(), object: "calc".into(), method: "divide".into() }],
                    backtrace: None,
                })),
            },
        ),
        (
            "call-with-ref",
            Message::Call(Call {
                id: 4,
                target: calc(),
                method: "watch".into(),
                refs: vec![RefWire::Mine(ObjectId([0x22; 16]))],
                args: Args::Typed(vec![0x00].into()),
                flags: 0,
                deadline: None,
                chain: 0,
            }),
        ),
        (
            "return-with-ref",
            Message::Return {
                id: 4,
                refs: vec![RefWire::Yours(Target::Name("calc".into()))],
                outcome: Outcome::Ok(Payload::Typed(vec![0x00].into())),
            },
        ),
        ("cancel", Message::Cancel { id: 7 }),
        ("release", Message::Release { object: ObjectId([0x11; 16]), count: 2 }),
        ("ping", Message::Ping { nonce: 9 }),
        ("pong", Message::Pong { nonce: 9 }),
        ("goodbye", Message::Goodbye),
        ("abort", Message::Abort { reason: "bye".into() }),
    ]
}

/// Every message vector in PROTOCOL.md is what the implementation encodes, and decodes back.
#[test]
fn message_vectors_match_the_implementation() {
    let vectors = vectors();
    for (name, msg) in messages() {
        let got = msg.encode().unwrap();
        let hex: Vec<String> = got.iter().map(|b| format!("{b:02x}")).collect();
        let want = vectors.get(name).unwrap_or_else(|| panic!("PROTOCOL.md lacks vector {name}: {}", hex.join(" ")));
        assert_eq!(&got[..], &want[..], "vector {name}: implementation gives {}", hex.join(" "));
        assert_eq!(&msg.encode().unwrap()[..], &want[..], "vector {name}");
        assert_eq!(Message::decode(want).unwrap(), msg, "vector {name}");
    }
    assert_eq!(vectors["hello"], dopy::transport::handshake::HELLO);
}

/// Every `Value` vector in PROTOCOL.md is the implementation's wire encoding.
#[test]
fn value_vectors_match_the_implementation() {
    let vectors = vectors();
    let values = [
        ("value-int-minus-one", Value::Int(-1)),
        ("value-string-hi", Value::from("hi")),
        ("value-float-one-half", Value::Float(0.5)),
        ("value-map-x-1", Value::Map(vec![(Value::from("x"), Value::Int(1))])),
        ("value-variant-circle", Value::Variant("Circle".into(), Box::new(Value::Float(1.0)))),
        ("value-option-none", Value::Option(None)),
    ];
    for (name, value) in values {
        assert_eq!(postcard::to_allocvec(&Wire(&value)).unwrap(), vectors[name], "vector {name}");
    }
}

/// A client that knows only PROTOCOL.md (raw bytes, no dopy types) calls a published object.
#[tokio::test]
async fn raw_client_from_the_document_calls_an_object() {
    let (_server, addr) = support::start_server().await;
    let dopy::Endpoint::Tcp { host, port } = &addr else { unreachable!() };
    let mut s = tokio::net::TcpStream::connect((host.as_str(), *port)).await.unwrap();
    let v = vectors();
    s.write_all(&v["hello"]).await.unwrap();
    let mut hello = [0u8; 8];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello[..], v["hello"][..]);
    for call in ["call-positional", "call-typed"] {
        let frame = &v[call];
        s.write_all(&(frame.len() as u32).to_le_bytes()).await.unwrap();
        s.write_all(frame).await.unwrap();
    }
    // Both replies, in whatever order: the dynamic one is return-dynamic, the typed one return-typed.
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.unwrap();
        let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut payload).await.unwrap();
        got.push(payload);
    }
    got.sort();
    let mut want = vec![v["return-typed"].clone(), v["return-dynamic"].clone()];
    want.sort();
    assert_eq!(got, want);
}

/// A client that knows only PROTOCOL.md authenticates as section 1.2 says (its nonce, then its
/// proof, and only then the server's proof comes back) and calls a published object.
#[tokio::test]
async fn raw_client_from_the_document_authenticates_and_calls() {
    use dopy::transport::handshake::{proof, Role, Secret};
    let server = dopy::Node::builder().secret("sesame").build();
    server.publish("calc", support::Calculator::default()).unwrap();
    let dopy::Endpoint::Tcp { host, port } = server.listen("tcp://127.0.0.1:0").await.unwrap() else { unreachable!() };
    let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
    let v = vectors();
    let secret = Secret::new("sesame");

    // Hellos, then nonces, both ways.
    let ours = [1u8; 32];
    s.write_all(&v["hello-auth"]).await.unwrap();
    s.write_all(&ours).await.unwrap();
    let mut hello = [0u8; 8];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello[..], v["hello-auth"][..]);
    let mut theirs = [0u8; 32];
    s.read_exact(&mut theirs).await.unwrap();
    // The server waits for our proof before it proves anything.
    let mut early = [0u8; 1];
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut early)).await;
    assert!(waited.is_err(), "the server sent something before our proof: {waited:?}");
    s.write_all(&proof(&secret, Role::Connector, &ours, &theirs)).await.unwrap();
    let mut server_proof = [0u8; 32];
    s.read_exact(&mut server_proof).await.unwrap();
    assert_eq!(server_proof, proof(&secret, Role::Acceptor, &ours, &theirs), "the server knows the secret");

    let frame = &v["call-typed"];
    s.write_all(&(frame.len() as u32).to_le_bytes()).await.unwrap();
    s.write_all(frame).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut payload).await.unwrap();
    assert_eq!(payload, v["return-typed"]);
}

/// Hands back the object it is given.
#[derive(Debug)]
pub struct Mirror;

#[dopy::remote]
impl Mirror {
    /// Returns `obj` to the caller.
    pub fn hand_back(&self, obj: dopy::DynObject) -> dopy::DynObject {
        obj
    }
}

/// A raw client exports one of its objects in a call whose result hands it straight back: the
/// `Return` naming the object (`Yours`) comes before the `Release` of the server's reference, as
/// PROTOCOL.md's ordering rule for releases says, so the client's export is still there.
#[tokio::test]
async fn raw_client_gets_its_object_back_before_the_release() {
    let server = dopy::Node::new();
    server.publish("mirror", Mirror).unwrap();
    let dopy::Endpoint::Tcp { host, port } = server.listen("tcp://127.0.0.1:0").await.unwrap() else { unreachable!() };
    let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
    let v = vectors();
    s.write_all(&v["hello"]).await.unwrap();
    let mut hello = [0u8; 8];
    s.read_exact(&mut hello).await.unwrap();
    let ours = ObjectId([7; 16]);
    for id in 1..=20u64 {
        let call = Message::Call(Call {
            id,
            target: Target::Name("mirror".into()),
            method: "hand_back".into(),
            refs: vec![RefWire::Mine(ours)],
            // The argument tuple `(reference #0,)`: a reference is its table index.
            args: Args::Typed(vec![0u8].into()),
            flags: 0,
            deadline: None,
            chain: 0,
        });
        let frame = call.encode().unwrap();
        s.write_all(&(frame.len() as u32).to_le_bytes()).await.unwrap();
        s.write_all(&frame).await.unwrap();
        let mut returned = false;
        loop {
            let mut len = [0u8; 4];
            s.read_exact(&mut len).await.unwrap();
            let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
            s.read_exact(&mut payload).await.unwrap();
            match Message::decode(&payload).unwrap() {
                Message::Return { id: got, refs, outcome: Outcome::Ok(_) } if got == id => {
                    assert_eq!(refs, vec![RefWire::Yours(Target::Id(ours))], "call {id}");
                    returned = true;
                }
                Message::Release { object, count } => {
                    assert!(returned, "call {id}: the release came before the reply naming the object");
                    assert_eq!((object, count), (ours, 1), "call {id}");
                    break;
                }
                other => panic!("call {id}: unexpected {other:?}"),
            }
        }
    }
}
