//! Typed data of a recursive type nested deeper than the decoder allows is refused, in both
//! directions, and neither the server nor the client dies of a stack overflow.

use dopy::{CallError, DynObject, Node};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize};

/// A recursive type, as an AST or a JSON-like tree is.
#[derive(Debug, Serialize, Deserialize)]
pub enum Tree {
    /// The end.
    Leaf,
    /// One more level.
    Node(Box<Tree>),
}

impl Tree {
    /// How many levels (without recursion, so that any depth can be measured here).
    fn depth(&self) -> u32 {
        let (mut t, mut n) = (self, 0);
        while let Tree::Node(inner) = t {
            (t, n) = (inner, n + 1);
        }
        n
    }
}

/// The bytes of a `Tree` `levels` deep, written without recursion: postcard writes `Node` as
/// the byte 1 and `Leaf` as 0.
#[derive(Debug)]
pub struct DeepBytes(pub u32);

impl Serialize for DeepBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0 as usize + 1)?;
        for _ in 0..self.0 {
            t.serialize_element(&1u8)?;
        }
        t.serialize_element(&0u8)?;
        t.end()
    }
}

/// Read back as the tree it encodes (the proxy of `grow` decodes its result so).
impl<'de> Deserialize<'de> for DeepBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Tree::deserialize(d).map(|t| DeepBytes(t.depth()))
    }
}

/// Measures trees, and grows them for the caller.
#[derive(Debug)]
pub struct Forest;

#[dopy::remote]
impl Forest {
    /// The depth of `tree`.
    pub fn depth(&self, tree: Tree) -> u32 {
        tree.depth()
    }

    /// A tree `levels` deep, as bytes a typed caller decodes as a `Tree`.
    pub fn grow(&self, levels: u32) -> DeepBytes {
        DeepBytes(levels)
    }
}

async fn forest() -> (Node, DynObject) {
    let server = Node::new();
    server.publish("forest", Forest).unwrap();
    let endpoint = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let obj = Node::new().object(&endpoint.object("forest").to_string()).await.unwrap();
    (server, obj)
}

/// A typed argument 100,000 levels deep (a 100 KB frame) is refused with `BadArguments` naming
/// the parameter and the limit; the connection and the server go on, and a tree of a depth
/// real programs use still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_typed_arguments_are_refused_and_the_server_lives() {
    let (_server, forest) = forest().await;
    let err = forest.call_typed::<_, u32, String>("depth", (DeepBytes(100_000),)).await.unwrap_err();
    assert!(matches!(err, CallError::BadArguments(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("argument `tree`") && text.contains("KiB of stack"), "{text}");
    assert_eq!(forest.call_typed::<_, u32, String>("depth", (DeepBytes(100),)).await.unwrap(), 100);
    // A fresh client is served too.
    let other = Node::new().object(&forest.to_string()).await;
    assert!(other.is_ok());
}

/// A client decoding a hostile server's typed result 100,000 levels deep gets `Codec` instead
/// of overflowing its stack; a shallow one decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_typed_results_are_refused_and_the_client_lives() {
    let (_server, forest) = forest().await;
    let err = forest.call_typed::<_, Tree, String>("grow", (100_000u32,)).await.unwrap_err();
    assert!(matches!(err, CallError::Codec(_)), "{err}");
    assert!(err.to_string().contains("KiB of stack"), "{err}");
    let tree = forest.call_typed::<_, Tree, String>("grow", (100u32,)).await.unwrap();
    assert_eq!(tree.depth(), 100);
}
