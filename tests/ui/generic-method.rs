struct Store;

#[dopy::remote]
impl Store {
    pub fn put<T: serde::Serialize>(&self, value: T) {
        let _ = value;
    }
}

fn main() {}
