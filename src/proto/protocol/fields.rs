//! The typed fields of a v1 command's JSON object, each refused with a
//! precise `bad_field` error naming the field: shared by every command's
//! parser (`commands`, `changes`).

use serde_json::{Map, Value};

use super::{ErrorCode, FrameRefusal};

/// Longest `cid`, in characters.
const MAX_CID_CHARS: usize = 64;

/// A client's id for a message: 1-64 characters, none of them control.
pub(super) fn opt_cid(obj: &Map<String, Value>) -> Result<Option<String>, FrameRefusal> {
    let cid = opt_string(obj, "cid")?;
    if let Some(cid) = &cid {
        let chars = cid.chars().count();
        if chars == 0 || chars > MAX_CID_CHARS || cid.chars().any(char::is_control) {
            return Err(FrameRefusal::new(
                ErrorCode::BadField,
                "field \"cid\" must be 1-64 characters without control characters",
            ));
        }
    }
    Ok(cid)
}

/// A string field, absent or null as `None`.
pub(super) fn opt_string(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, FrameRefusal> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameRefusal::new(
            ErrorCode::BadField,
            format!("field \"{field}\" must be a string"),
        )),
    }
}

/// A string field that must be there.
pub(super) fn req_string(obj: &Map<String, Value>, field: &str) -> Result<String, FrameRefusal> {
    opt_string(obj, field)?
        .ok_or_else(|| FrameRefusal::new(ErrorCode::BadField, format!("missing field \"{field}\"")))
}

/// A non-negative integer field, absent or null as `None`.
pub(super) fn opt_u64(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, FrameRefusal> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(_) => Err(FrameRefusal::new(
            ErrorCode::BadField,
            format!("field \"{field}\" must be a non-negative integer"),
        )),
    }
}
