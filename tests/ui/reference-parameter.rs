struct Greeter;

#[dopy::remote]
impl Greeter {
    pub fn greet(&self, name: &str) -> String {
        format!("hello, {name}")
    }
}

fn main() {}
