struct Calculator;

#[dopy::remote]
impl Calculator {
    pub fn consume(self) {}

    pub fn generic<T>(&self) {}

    pub fn borrow(&self, name: &str, (a, b): (u8, u8)) {
        let _ = (name, a, b);
    }

    pub fn opaque(&self) -> impl std::fmt::Debug {}
}

fn main() {}
