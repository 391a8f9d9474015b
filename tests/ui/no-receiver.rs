struct Counter;

#[dopy::remote]
impl Counter {
    pub fn new() -> Self {
        Counter
    }
}

fn main() {}
