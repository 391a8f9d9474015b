struct Greeter;

#[dopy::remote]
impl Greeter {
    #[dopy(rename = "hello")]
    pub fn greet(&self) {}
}

fn main() {}
