// Over 600 lines because it ties PROTOCOL.md to the code, in the document's order: vectors, raw clients, deadlines, faults.
//! PROTOCOL.md is a contract: its byte vectors match the implementation, a client written
//! from the document alone (raw bytes on a socket) can call a published object, the
//! introspection answer decodes with the layout the document gives, and the behaviour the
//! document states (deadlines, cancellation, faults) is what a server does.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use dopy::protocol::{Args, Call, Fault, FaultKind, Hop, Message, ObjectId, Outcome, Payload, RefWire, Target, Wire};
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
            "return-fault-typed",
            Message::Return {
                id: 9,
                refs: vec![],
                outcome: Outcome::Err(Box::new(Fault {
                    kind: FaultKind::Method,
                    message: "cannot divide 10 by zero".into(),
                    detail: Some(Payload::Typed(vec![0x14].into())),
                    causes: vec![],
                    hops: vec![Hop { node: "n".into(), object: "calc".into(), method: "divide".into() }],
                    backtrace: None,
                })),
            },
        ),
        (
            "call-methods",
            Message::Call(Call {
                id: 6,
                target: calc(),
                method: "dopy.methods".into(),
                refs: vec![],
                args: Args::Positional(vec![]),
                flags: 1,
                deadline: None,
                chain: 0,
            }),
        ),
        (
            "call-deadline-zero",
            Message::Call(Call {
                id: 5,
                target: calc(),
                method: "add".into(),
                refs: vec![],
                args: Args::Typed(postcard::to_allocvec(&(2i64, 3i64)).unwrap().into()),
                flags: 0,
                deadline: Some(0),
                chain: 0,
            }),
        ),
        (
            "return-deadline-exceeded",
            Message::Return {
                id: 5,
                refs: vec![],
                outcome: Outcome::Err(Box::new(Fault {
                    kind: FaultKind::DeadlineExceeded,
                    message: "late".into(),
                    detail: None,
                    causes: vec![],
                    hops: vec![Hop { node: "n".into(), object: "calc".into(), method: "add".into() }],
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
// ---------------------------------------------------------------------------------------------
// Section 5, `Interface`: a decoder that knows only the definitions in PROTOCOL.md.

/// A type as section 5 writes it.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    String,
    Bool,
    Option(Box<Ty>),
    Vec(Box<Ty>),
    /// A struct or enum defined in the same block.
    Named(String),
}

/// A definition of section 5: a struct's fields in order, or an enum's variants by index.
#[derive(Debug)]
enum Def {
    Struct(Vec<(String, Ty)>),
    Enum(Vec<(u64, String)>),
}

fn parse_ty(text: &str) -> Ty {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return Ty::Option(Box::new(parse_ty(inner)));
    }
    if let Some(inner) = text.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return Ty::Vec(Box::new(parse_ty(inner)));
    }
    match text {
        "String" => Ty::String,
        "bool" => Ty::Bool,
        other => {
            assert!(other.chars().all(|c| c.is_ascii_alphanumeric()), "PROTOCOL.md section 5: unknown type `{other}`");
            Ty::Named(other.to_owned())
        }
    }
}

/// Reads the definitions of PROTOCOL.md's section 5 (the first `text` block after its heading):
/// `struct NAME { field: Type ... }` and `enum NAME { 0 A  1 B }`, comments stripped.
fn section5() -> HashMap<String, Def> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let section = text.split("\n## 5.").nth(1).expect("PROTOCOL.md has a section 5");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a text block");
    let code: String = block.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let mut defs = HashMap::new();
    let mut rest = code.as_str();
    while let Some(open) = rest.find('{') {
        let head: Vec<&str> = rest[..open].split_whitespace().collect();
        let close = open + rest[open..].find('}').expect("a closing brace");
        let body = &rest[open + 1..close];
        let (kind, name) = match head.as_slice() {
            [.., kind, name] => (*kind, name.to_string()),
            _ => panic!("PROTOCOL.md section 5: cannot read `{}`", &rest[..open]),
        };
        let def = match kind {
            "struct" => Def::Struct(
                body.split([',', '\n'])
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(|f| {
                        let (field, ty) = f.split_once(':').unwrap_or_else(|| panic!("field `{f}` of {name}"));
                        (field.trim().to_owned(), parse_ty(ty))
                    })
                    .collect(),
            ),
            "enum" => {
                let words: Vec<&str> = body.split_whitespace().collect();
                Def::Enum(words.chunks(2).map(|w| (w[0].parse().unwrap(), w[1].to_owned())).collect())
            }
            other => panic!("PROTOCOL.md section 5: `{other} {name}` is neither a struct nor an enum"),
        };
        defs.insert(name, def);
        rest = &rest[close + 1..];
    }
    defs
}

/// What a decoder built from the document reads, in either form.
#[derive(Debug, PartialEq)]
enum Doc {
    Str(String),
    Bool(bool),
    Opt(Option<Box<Doc>>),
    List(Vec<Doc>),
    Struct(Vec<(String, Doc)>),
    Variant(String),
}

/// Reads a postcard varint (section 2).
fn varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or("input ends inside a varint")?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(format!("input ends: {n} bytes wanted, {} left", input.len()));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn string(input: &mut &[u8]) -> Result<String, String> {
    let n = varint(input)? as usize;
    String::from_utf8(take(input, n)?.to_vec()).map_err(|e| e.to_string())
}

fn byte(input: &mut &[u8]) -> Result<u8, String> {
    Ok(take(input, 1)?[0])
}

/// Decodes the postcard form of `ty` (section 2) with the document's definitions.
fn decode_binary(defs: &HashMap<String, Def>, ty: &Ty, input: &mut &[u8]) -> Result<Doc, String> {
    Ok(match ty {
        Ty::String => Doc::Str(string(input)?),
        Ty::Bool => match byte(input)? {
            0 => Doc::Bool(false),
            1 => Doc::Bool(true),
            b => return Err(format!("bool byte {b:02x}")),
        },
        Ty::Option(inner) => match byte(input)? {
            0 => Doc::Opt(None),
            1 => Doc::Opt(Some(Box::new(decode_binary(defs, inner, input)?))),
            b => return Err(format!("option byte {b:02x}")),
        },
        Ty::Vec(inner) => {
            let n = varint(input)?;
            Doc::List((0..n).map(|_| decode_binary(defs, inner, input)).collect::<Result<_, _>>()?)
        }
        Ty::Named(name) => match defs.get(name).ok_or_else(|| format!("`{name}` is not defined"))? {
            Def::Struct(fields) => Doc::Struct(
                fields
                    .iter()
                    .map(|(f, ty)| {
                        Ok((f.clone(), decode_binary(defs, ty, input).map_err(|e| format!("{name}.{f}: {e}"))?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Def::Enum(variants) => {
                let index = varint(input)?;
                let (_, v) =
                    variants.iter().find(|(i, _)| *i == index).ok_or_else(|| format!("{name}: variant {index}"))?;
                Doc::Variant(v.clone())
            }
        },
    })
}

/// A `Value` as section 4 encodes it (the variants `Interface` uses).
#[derive(Debug)]
enum Val {
    Unit,
    Bool(bool),
    Str(String),
    Opt(Option<Box<Val>>),
    Seq(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Variant(String, Box<Val>),
}

fn decode_value(input: &mut &[u8]) -> Result<Val, String> {
    Ok(match varint(input)? {
        0 => Val::Unit,
        1 => Val::Bool(byte(input)? == 1),
        8 => Val::Str(string(input)?),
        10 => match byte(input)? {
            0 => Val::Opt(None),
            _ => Val::Opt(Some(Box::new(decode_value(input)?))),
        },
        11 => {
            let n = varint(input)?;
            Val::Seq((0..n).map(|_| decode_value(input)).collect::<Result<_, _>>()?)
        }
        12 => {
            let n = varint(input)?;
            Val::Map((0..n).map(|_| Ok((decode_value(input)?, decode_value(input)?))).collect::<Result<_, String>>()?)
        }
        13 => Val::Variant(string(input)?, Box::new(decode_value(input)?)),
        tag => return Err(format!("Value tag {tag} has no place in an Interface")),
    })
}

/// Reads the dynamic form of `ty` as section 5 describes it: structs as Maps keyed by the field
/// names in order, every field present.
fn conform(defs: &HashMap<String, Def>, ty: &Ty, value: &Val) -> Result<Doc, String> {
    Ok(match (ty, value) {
        (Ty::String, Val::Str(s)) => Doc::Str(s.clone()),
        (Ty::Bool, Val::Bool(b)) => Doc::Bool(*b),
        (Ty::Option(_), Val::Opt(None)) => Doc::Opt(None),
        (Ty::Option(inner), Val::Opt(Some(v))) => Doc::Opt(Some(Box::new(conform(defs, inner, v)?))),
        (Ty::Vec(inner), Val::Seq(items)) => {
            Doc::List(items.iter().map(|v| conform(defs, inner, v)).collect::<Result<_, _>>()?)
        }
        (Ty::Named(name), value) => match (defs.get(name).ok_or_else(|| format!("`{name}` is not defined"))?, value) {
            (Def::Struct(fields), Val::Map(entries)) => {
                let keys: Vec<String> = entries
                    .iter()
                    .map(|(k, _)| if let Val::Str(k) = k { k.clone() } else { format!("{k:?}") })
                    .collect();
                let want: Vec<&String> = fields.iter().map(|(f, _)| f).collect();
                if keys.iter().collect::<Vec<_>>() != want {
                    return Err(format!(
                        "{name}: the implementation sends the fields {keys:?}, PROTOCOL.md lists {want:?}"
                    ));
                }
                Doc::Struct(
                    fields
                        .iter()
                        .zip(entries)
                        .map(|((f, ty), (_, v))| {
                            Ok((f.clone(), conform(defs, ty, v).map_err(|e| format!("{name}.{f}: {e}"))?))
                        })
                        .collect::<Result<_, String>>()?,
                )
            }
            (Def::Enum(variants), Val::Variant(v, payload)) if matches!(**payload, Val::Unit) => {
                if !variants.iter().any(|(_, known)| known == v) {
                    return Err(format!("{name}: variant `{v}` is not in PROTOCOL.md"));
                }
                Doc::Variant(v.clone())
            }
            (_, other) => return Err(format!("{name}: unexpected {other:?}")),
        },
        (ty, other) => return Err(format!("{ty:?} expected, got {other:?}")),
    })
}

/// A raw connection that speaks only what PROTOCOL.md says: hello, then frames.
struct Raw(tokio::net::TcpStream);

impl Raw {
    async fn open(addr: &dopy::Endpoint) -> Raw {
        let dopy::Endpoint::Tcp { host, port } = addr else { unreachable!() };
        let mut s = tokio::net::TcpStream::connect((host.as_str(), *port)).await.unwrap();
        let hello = &vectors()["hello"];
        s.write_all(hello).await.unwrap();
        let mut theirs = [0u8; 8];
        s.read_exact(&mut theirs).await.unwrap();
        assert_eq!(theirs[..], hello[..]);
        Raw(s)
    }

    async fn send(&mut self, payload: &[u8]) {
        self.0.write_all(&(payload.len() as u32).to_le_bytes()).await.unwrap();
        self.0.write_all(payload).await.unwrap();
    }

    /// The next frame's payload (within 10 s).
    async fn recv(&mut self) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut len = [0u8; 4];
            self.0.read_exact(&mut len).await.unwrap();
            let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
            self.0.read_exact(&mut payload).await.unwrap();
            payload
        })
        .await
        .expect("a frame within 10 s")
    }

    async fn call(&mut self, call: Call) {
        self.send(&Message::Call(call).encode().unwrap()).await;
    }

    /// The next message that is not a heartbeat.
    async fn next(&mut self) -> Message {
        loop {
            match Message::decode(&self.recv().await).unwrap() {
                Message::Ping { nonce } => self.send(&Message::Pong { nonce }.encode().unwrap()).await,
                msg => return msg,
            }
        }
    }

    /// The outcome of the next `Return`, which must be for `id`.
    async fn outcome(&mut self, id: u64) -> (Outcome, Vec<RefWire>) {
        match self.next().await {
            Message::Return { id: got, refs, outcome } if got == id => (outcome, refs),
            other => panic!("expected the Return of call {id}, got {other:?}"),
        }
    }

    /// The fault of the next `Return`, which must be for `id` and fail.
    async fn fault(&mut self, id: u64) -> Fault {
        match self.outcome(id).await.0 {
            Outcome::Err(fault) => *fault,
            ok => panic!("call {id} succeeded: {ok:?}"),
        }
    }
}

/// A call of `method` on `target` with typed arguments (the postcard of `args`).
fn typed_call(id: u64, target: Target, method: &str, args: &impl serde::Serialize, deadline: Option<u64>) -> Call {
    Call {
        id,
        target,
        method: method.into(),
        refs: vec![],
        args: Args::Typed(postcard::to_allocvec(args).unwrap().into()),
        flags: 0,
        deadline,
        chain: 0,
    }
}

fn calc() -> Target {
    Target::Name("calc".into())
}

/// The introspection answer of a real server, in both forms, decodes with the definitions of
/// PROTOCOL.md section 5, read from the document itself: a field that the implementation sends
/// and the document lacks (or the reverse) fails here.
#[tokio::test]
async fn introspection_answer_decodes_with_the_documents_layout() {
    let defs = section5();
    let interface = Ty::Named("Interface".into());
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;

    // Typed: `Args::Typed` with no bytes, no flags; the answer is postcard of `Interface`.
    raw.call(typed_call(1, calc(), "dopy.methods", &(), None)).await;
    let binary = match raw.outcome(1).await.0 {
        Outcome::Ok(Payload::Typed(bytes)) => bytes.to_vec(),
        other => panic!("a typed answer expected: {other:?}"),
    };
    let mut input = &binary[..];
    let from_binary = decode_binary(&defs, &interface, &mut input).unwrap_or_else(|e| panic!("binary form: {e}"));
    assert!(input.is_empty(), "{} bytes after the Interface that PROTOCOL.md does not describe", input.len());

    // Dynamic: the document's `call-methods`; the answer is a `Value`.
    raw.send(&vectors()["call-methods"]).await;
    let payload = raw.recv().await;
    // Return, id 6, no references, Ok, Payload::Dynamic: then the Value (sections 3 and 4).
    assert_eq!(payload[..5], [0x01, 0x06, 0x00, 0x00, 0x01], "{payload:02x?}");
    let mut input = &payload[5..];
    let value = decode_value(&mut input).unwrap();
    assert!(input.is_empty(), "bytes after the Value");
    let from_value = conform(&defs, &interface, &value).unwrap_or_else(|e| panic!("dynamic form: {e}"));
    assert_eq!(from_binary, from_value, "both forms carry the same interface");

    // And it is the calculator's: `accumulate` is `&mut self` and async, `divide` has an error.
    let Doc::Struct(fields) = &from_binary else { unreachable!() };
    assert_eq!(fields[0], ("name".to_owned(), Doc::Str("Calculator".into())));
    let Doc::List(methods) = &fields[2].1 else { panic!("methods: {:?}", fields[2]) };
    let method = |name: &str| {
        methods
            .iter()
            .find_map(|m| match m {
                Doc::Struct(f) if f[0].1 == Doc::Str(name.into()) => {
                    Some(f.iter().map(|(k, v)| (k.as_str(), v)).collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no method `{name}`"))
    };
    let accumulate: HashMap<&str, &Doc> = method("accumulate");
    assert_eq!(accumulate["receiver"], &Doc::Variant("Exclusive".into()));
    assert_eq!(accumulate["is_async"], &Doc::Bool(true));
    assert_eq!(accumulate["no_cancel"], &Doc::Bool(false));
    let divide: HashMap<&str, &Doc> = method("divide");
    assert_eq!(divide["error"], &Doc::Opt(Some(Box::new(Doc::Str("DivideByZero".into())))));
}

/// `dopy.methods` takes no arguments: a call that carries some, typed or dynamic, is refused
/// with `BadArguments` (section 3.1), and the connection serves on.
#[tokio::test]
async fn introspection_with_arguments_is_refused() {
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;
    raw.call(typed_call(1, calc(), "dopy.methods", &(1i64,), None)).await;
    let fault = raw.fault(1).await;
    assert_eq!(fault.kind, FaultKind::BadArguments, "{fault:?}");
    assert!(fault.message.contains("takes no arguments"), "{}", fault.message);
    for args in [Args::Positional(vec![Value::Int(1)]), Args::Named(vec![("x".into(), Value::Int(1))])] {
        let call = Call { args, flags: 1, ..typed_call(2, calc(), "dopy.methods", &(), None) };
        raw.call(call).await;
        assert_eq!(raw.fault(2).await.kind, FaultKind::BadArguments);
    }
    // Through the API too (a local call takes the same path as a remote one).
    let local = dopy::DynObject::in_process(support::Calculator::default());
    let err = local.call("dopy.methods", [Value::Int(1)]).await.unwrap_err();
    assert!(matches!(err, dopy::CallError::BadArguments(_)), "{err}");
    assert_eq!(local.methods().await.unwrap().name, "Calculator");
    raw.send(&vectors()["call-methods"]).await;
    assert!(matches!(raw.outcome(6).await.0, Outcome::Ok(Payload::Dynamic(_))));
}

/// A call whose deadline is 0 is not run, whatever the method (inline `add`, `&mut self`
/// `accumulate`, async `slow_echo`), and is answered `DeadlineExceeded` (section 3.7).
#[tokio::test]
async fn a_deadline_of_zero_is_refused_without_running() {
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;
    raw.send(&vectors()["call-deadline-zero"]).await;
    let fault = raw.fault(5).await;
    assert_eq!(fault.kind, FaultKind::DeadlineExceeded, "{fault:?}");
    assert_eq!(fault.hops.first().map(|h| (h.object.as_str(), h.method.as_str())), Some(("calc", "add")));
    raw.call(typed_call(6, calc(), "accumulate", &(5i64,), Some(0))).await;
    assert_eq!(raw.fault(6).await.kind, FaultKind::DeadlineExceeded);
    raw.call(typed_call(7, calc(), "slow_echo", &(0u64, "x"), Some(0))).await;
    assert_eq!(raw.fault(7).await.kind, FaultKind::DeadlineExceeded);
    // `accumulate` did not run; with time to spare it does.
    raw.call(typed_call(8, calc(), "total", &(), None)).await;
    assert!(matches!(raw.outcome(8).await.0, Outcome::Ok(Payload::Typed(b)) if b[..] == [0x00]));
    raw.call(typed_call(9, calc(), "accumulate", &(5i64,), Some(10_000_000))).await;
    assert!(matches!(raw.outcome(9).await.0, Outcome::Ok(Payload::Typed(b)) if b[..] == [0x0a]));
}

/// A deadline that passes while the method runs stops it, with `DeadlineExceeded`.
#[tokio::test]
async fn a_deadline_passing_while_running_stops_the_method() {
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;
    raw.call(typed_call(1, calc(), "slow_echo", &(60_000u64, "x"), Some(200_000))).await;
    let fault = raw.fault(1).await;
    assert_eq!(fault.kind, FaultKind::DeadlineExceeded, "{fault:?}");
}

/// A cancelled call gets no `Return` (section 3.6): the first call would answer before the
/// second, so a `Return` for it would come first.
#[tokio::test]
async fn a_cancelled_call_gets_no_return() {
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;
    raw.call(typed_call(1, calc(), "slow_echo", &(1_000u64, "cancelled"), None)).await;
    raw.send(&Message::Cancel { id: 1 }.encode().unwrap()).await;
    raw.send(&Message::Cancel { id: 77 }.encode().unwrap()).await; // unknown: ignored
    raw.call(typed_call(2, calc(), "slow_echo", &(2_000u64, "kept"), None)).await;
    let (outcome, _) = raw.outcome(2).await;
    assert!(matches!(outcome, Outcome::Ok(_)), "{outcome:?}");
}

/// The fault's detail is typed or dynamic as the call's `DYNAMIC_RESULT` flag asks (section 3.1).
#[tokio::test]
async fn fault_detail_follows_the_dynamic_result_flag() {
    let (_server, addr) = support::start_server().await;
    let mut raw = Raw::open(&addr).await;
    raw.call(typed_call(1, calc(), "divide", &(10i64, 0i64), None)).await;
    let fault = raw.fault(1).await;
    assert_eq!((fault.kind, fault.detail), (FaultKind::Method, Some(Payload::Typed(vec![0x14].into()))));
    let call = Call { flags: 1, ..typed_call(2, calc(), "divide", &(10i64, 0i64), None) };
    raw.call(call).await;
    assert_eq!(raw.fault(2).await.detail, Some(Payload::Dynamic(Value::Int(10))));
}

/// A reply above the callee's frame limit is answered with the fault `Protocol` for that call
/// alone (section 1.3).
#[tokio::test]
async fn a_reply_too_large_is_answered_with_a_protocol_fault() {
    let server = dopy::Node::builder().max_frame(2100).build();
    server.publish("calc", support::Calculator::default()).unwrap();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let mut raw = Raw::open(&addr).await;
    let text: String = (0..400).map(|i| format!("w{i} ")).collect();
    raw.call(typed_call(1, calc(), "word_count", &(text, None::<usize>), None)).await;
    let fault = raw.fault(1).await;
    assert_eq!(fault.kind, FaultKind::Protocol, "{fault:?}");
    assert!(fault.message.contains("the reply could not be sent"), "{}", fault.message);
    raw.send(&vectors()["call-typed"]).await;
    assert_eq!(raw.recv().await, vectors()["return-typed"]);
}

/// The hop of a call addressed by object id names the object's type, and an unknown id as
/// `#` and its hex digits (section 3.8).
#[tokio::test]
async fn hops_of_a_call_by_object_id() {
    let server = dopy::Node::builder().name("hops").build();
    server.publish("hub", support::hub::Hub::default()).unwrap();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let mut raw = Raw::open(&addr).await;
    raw.call(typed_call(1, Target::Name("hub".into()), "open", &(0u64, 5u64), None)).await;
    let (_, refs) = raw.outcome(1).await;
    let [RefWire::Mine(id)] = refs[..] else { panic!("one reference expected: {refs:?}") };
    raw.call(typed_call(2, Target::Id(id), "bump", &(1u64,), None)).await;
    assert!(matches!(raw.outcome(2).await.0, Outcome::Ok(Payload::Typed(b)) if b[..] == [6]));
    raw.call(typed_call(3, Target::Id(id), "nope", &(), None)).await;
    let fault = raw.fault(3).await;
    assert_eq!(fault.kind, FaultKind::NoSuchMethod);
    assert_eq!(fault.hops, [Hop { node: "hops".into(), object: "Tally".into(), method: "nope".into() }]);
    let unknown = ObjectId([0xab; 16]);
    raw.call(typed_call(4, Target::Id(unknown), "bump", &(1u64,), None)).await;
    let fault = raw.fault(4).await;
    assert_eq!(fault.kind, FaultKind::NoSuchObject);
    assert_eq!(fault.hops[0].object, format!("#{}", "ab".repeat(16)));
}

/// A dispatcher that takes dynamic arguments only, counting the typed calls it refused.
struct ValuesOnly(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl dopy::Dispatch for ValuesOnly {
    fn interface(&self) -> dopy::Interface {
        dopy::Interface::from_static("ValuesOnly", "", &[])
    }

    fn dispatch(&self, call: dopy::Invocation) -> dopy::Dispatched<'_> {
        let args = match call.dynamic_args() {
            Ok(dopy::DynArgs::Positional(args)) => args,
            Ok(_) => return dopy::Dispatched::Ready(Err(dopy::dispatch::bad_args(call.method(), "positional"))),
            Err(fault) => {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return dopy::Dispatched::Ready(Err(fault));
            }
        };
        let sum: i64 = args.iter().filter_map(Value::as_i64).sum();
        dopy::Dispatched::Ready(call.responder().ok(&sum))
    }
}

/// A typed caller refused with `DynamicArgsRequired` retries with values and remembers it: the
/// server refuses one typed call, not one per call (section 3.1).
#[tokio::test]
async fn a_typed_caller_remembers_dynamic_args_required() {
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = dopy::Node::new();
    server.publish("calc", ValuesOnly(refused.clone())).unwrap();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let calc = support::calc_proxy(&addr).await;
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert_eq!(calc.add(4, 5).await.unwrap(), 9);
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1, "typed calls refused");
}
