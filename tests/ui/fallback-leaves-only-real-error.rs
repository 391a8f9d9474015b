use dopy::{Dispatch, Proxy, RemoteObject};

#[derive(Default)]
pub struct Calculator;

#[dopy::remote]
impl Calculator {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    pub fn broken(&self, text: &str) -> usize {
        text.len()
    }
}

// Valid code that uses what the macro generates: the proxy type and its methods, and the
// `Dispatch` and `Remote` impls. None of it may add errors to the one above.
async fn use_proxy(proxy: CalculatorProxy) -> Result<i64, dopy::Error> {
    let copy: CalculatorProxy = Proxy::from_object(proxy.object().clone());
    Ok(copy.add(1, 2).await?)
}

fn publishable<T: Dispatch + RemoteObject<Proxy = CalculatorProxy>>(_: T) {}

fn main() {
    publishable(Calculator);
    let _ = use_proxy;
}
