//! One registration on its own: who makes it, its checks against the limits and the name
//! rules, and its encoding in the database.

use super::*;

/// Who registers: the endpoint of the address (the process serving the object), else the
/// connection the reference came over.
pub(super) fn registrant(address: Option<&str>, object: Option<&DynObject>) -> String {
    if let Some(address) = address {
        return match address.parse::<crate::Address>() {
            Ok(parsed) => parsed.endpoint.to_string(),
            Err(_) => address.to_owned(),
        };
    }
    match object.and_then(DynObject::connection) {
        Some(connection) => format!("connection {}", connection.info()),
        None => "references from this process or a previous run".to_owned(),
    }
}

/// At most 64 characters of `name`, for messages.
pub(super) fn truncated(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &name[..at]),
        None => name.to_owned(),
    }
}

/// Checks the sizes of a registration against the limits.
pub(super) fn sizes(name: &str, address: Option<&str>, tags: &[&str], limits: &Limits) -> Result<(), NamingError> {
    let limit = |limit: Limit| NamingError::LimitReached { limit, max: limits.of(limit) as u64 };
    if name.len() > limits.name_bytes {
        return Err(limit(Limit::NameBytes));
    }
    if address.is_some_and(|a| a.len() > limits.address_bytes) {
        return Err(limit(Limit::AddressBytes));
    }
    if tags.iter().any(|t| t.len() > limits.tag_bytes) {
        return Err(limit(Limit::TagBytes));
    }
    if tags.len() > limits.tags && tags.iter().collect::<BTreeSet<_>>().len() > limits.tags {
        return Err(limit(Limit::Tags));
    }
    Ok(())
}

pub(super) fn validate(name: &str, address: Option<&str>, by_reference: bool) -> Result<(), NamingError> {
    let invalid = |reason: &str| NamingError::Invalid { name: name.to_owned(), reason: reason.to_owned() };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(invalid("a name must be non-empty, without control characters"));
    }
    match address {
        None if !by_reference => return Err(invalid("give an address, an object reference, or both")),
        None => {}
        Some(address) => match address.parse::<crate::Address>() {
            Ok(parsed) => {
                super::super::dialable(&parsed).map_err(|e| invalid(&e))?;
                if parsed.object.is_none() {
                    return Err(invalid("the address names no object (expected e.g. tcp://HOST:PORT/OBJECT)"));
                }
            }
            Err(e) => return Err(invalid(&e.to_string())),
        },
    }
    Ok(())
}

pub(super) fn encode(slot: &Slot) -> Vec<u8> {
    let stored = Stored {
        address: slot.address.clone(),
        by_reference: slot.by_reference,
        tags: slot.tags.clone(),
        lease: slot.lease.clone(),
        ttl_ms: slot.ttl.map(millis),
    };
    let mut bytes = postcard::to_allocvec(&FORMAT).unwrap_or_default();
    // Strings, options and sets of strings: encoding cannot fail.
    bytes.extend(postcard::to_allocvec(&stored).unwrap_or_default());
    bytes
}

pub(super) fn decode(bytes: &[u8]) -> Result<Stored, String> {
    let (format, rest) = postcard::take_from_bytes::<u32>(bytes).map_err(|e| e.to_string())?;
    if format != FORMAT {
        return Err(format!("it is in format {format}, written by a newer version of dopy"));
    }
    postcard::from_bytes(rest).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_registration_round_trips() {
        let slot = Slot {
            address: Some("tcp://127.0.0.1:1/calc".into()),
            object: None,
            by_reference: true,
            tags: ["a".to_owned(), "b".to_owned()].into(),
            lease: "0123".into(),
            ttl: Some(Duration::from_millis(1500)),
            expires: None,
            registrant: String::new(),
        };
        let stored = decode(&encode(&slot)).unwrap();
        assert_eq!(stored.address, slot.address);
        assert!(stored.by_reference);
        assert_eq!(stored.tags, slot.tags);
        assert_eq!((stored.lease.as_str(), stored.ttl_ms), ("0123", Some(1500)));
    }

    #[test]
    fn registrations_are_validated() {
        assert!(validate("calc", Some("tcp://127.0.0.1:9600/calc"), false).is_ok());
        assert!(validate("calc", None, true).is_ok());
        assert!(matches!(validate("", None, true), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", None, false), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", Some("tcp://127.0.0.1:9600"), false), Err(NamingError::Invalid { .. })));
        assert!(matches!(validate("calc", Some("nonsense"), false), Err(NamingError::Invalid { .. })));
    }
}
