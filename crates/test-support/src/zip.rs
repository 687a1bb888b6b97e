//! Module zips.

use std::io::Write;

use bytes::Bytes;

/// A module zip with `files` (names relative to the module root) under `module@version/`,
/// deflated.
pub fn make_zip(module: &str, version: &str, files: &[(&str, &[u8])]) -> Bytes {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer
            .start_file(format!("{module}@{version}/{name}"), options)
            .expect("zip entry");
        writer.write_all(content).expect("zip entry body");
    }
    Bytes::from(writer.finish().expect("zip").into_inner())
}
