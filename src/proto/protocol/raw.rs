//! The raw (tutorial) mode's binary file frame: a `u16` LE name length,
//! the name, then the file's bytes.

/// Why a raw binary frame is not a tutorial-format file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHeaderError {
    /// Fewer than two bytes, or fewer than the name length announces.
    Truncated,
    /// The name bytes are not UTF-8.
    NameNotUtf8,
}

/// Splits a tutorial-format file frame (`u16` LE name length, name, bytes)
/// into its name and the offset where the file's bytes begin.
pub fn parse_file_header(frame: &[u8]) -> Result<(&str, usize), FileHeaderError> {
    let [lo, hi, rest @ ..] = frame else {
        return Err(FileHeaderError::Truncated);
    };
    let len = u16::from_le_bytes([*lo, *hi]) as usize;
    let name = rest.get(..len).ok_or(FileHeaderError::Truncated)?;
    let name = std::str::from_utf8(name).map_err(|_| FileHeaderError::NameNotUtf8)?;
    Ok((name, 2 + len))
}

/// Builds a tutorial-format file frame.
pub fn file_frame(name: &str, bytes: &[u8]) -> Vec<u8> {
    // A name longer than u16::MAX cannot be expressed; v1 names are <= 255 bytes.
    let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(2 + name.len() + bytes.len());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(bytes);
    out
}

/// A media type for a file name, from its extension.
pub fn guess_mime(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}
