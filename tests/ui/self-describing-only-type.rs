struct Settings;

#[dopy::remote]
impl Settings {
    pub fn set(&self, key: String, value: serde_json::Value) {
        let _ = (key, value);
    }

    pub fn get(&self, key: String) -> Option<serde_json::Value> {
        let _ = key;
        None
    }
}

fn main() {}
