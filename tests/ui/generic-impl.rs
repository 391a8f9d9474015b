struct Wrapper<T>(T);

#[dopy::remote]
impl<T: Send + Sync + 'static> Wrapper<T> {
    pub fn get(&self) -> u8 {
        0
    }
}

fn main() {}
