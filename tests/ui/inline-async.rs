struct Fetcher;

#[dopy::remote]
impl Fetcher {
    #[dopy(inline)]
    pub async fn fetch(&self) -> u64 {
        1
    }
}

fn main() {}
