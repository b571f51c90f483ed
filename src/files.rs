//! Reading files whose size we do not control (configuration, keys, web configuration,
//! scenarios, certificates) with a cap, so that `/dev/zero` or a huge file is an error,
//! not unbounded memory.

use std::io::Read;
use std::path::Path;

/// The cap for configuration-like files: far beyond any real one.
pub const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;
/// The cap for secrets such as the API key file.
pub const SECRET_LIMIT: u64 = 64 * 1024;

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than the cap (or endless, like `/dev/zero`).
    #[error("the file is larger than {limit} bytes; expected a small text file")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("the file is not UTF-8 text")]
    NotText,
}

/// Reads at most `limit` bytes of `path`; a longer file is [`ReadError::TooLarge`].
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Reads at most `limit` bytes of `path` as UTF-8 text.
pub fn read_text_capped(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, limit)?).map_err(|_| ReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_the_cap() {
        match read_capped(Path::new("/dev/zero"), 1024) {
            Err(ReadError::TooLarge { limit: 1024 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_at_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x".repeat(16)).unwrap();
        assert_eq!(read_text_capped(&path, 16).unwrap().len(), 16);
        assert!(matches!(read_text_capped(&path, 15), Err(ReadError::TooLarge { .. })));
    }
}
