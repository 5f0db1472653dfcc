//! CRCs in JSON as `0x%08x` strings, as in Module.symvers: how every report writes them and
//! how results.json reads them back.
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:#010x}")),
        None => s.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Crc {
        Text(String),
        Number(u64),
    }
    match Option::<Crc>::deserialize(d)? {
        None => Ok(None),
        Some(Crc::Number(n)) => Ok(Some(n)),
        Some(Crc::Text(t)) => {
            let digits = t.strip_prefix("0x").unwrap_or(&t);
            u64::from_str_radix(digits, 16)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a 0x… CRC")))
        }
    }
}
