struct Store;

#[dopy::remote]
impl Store {
    pub fn consume(self) {}
}

fn main() {}
