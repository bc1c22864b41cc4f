//! `handlers register --emit-reg FILE`: the registry layout as a `.reg`
//! file (UTF-16 LE with BOM, CRLF, `Windows Registry Editor Version 5.00`),
//! for admins who deploy registry items by GPO.

use super::{registry_layout, RegKey};

/// The `.reg` text for `exe` handling `schemes`.
pub fn reg_text(exe: &str, schemes: &[String]) -> String {
    let mut out = String::from("Windows Registry Editor Version 5.00\r\n");
    for RegKey { path, values } in registry_layout(exe, schemes) {
        out.push_str(&format!("\r\n[HKEY_CURRENT_USER\\{path}]\r\n"));
        for (name, data) in values {
            let name = if name.is_empty() {
                "@".to_owned()
            } else {
                format!("\"{}\"", escape(&name))
            };
            out.push_str(&format!("{name}=\"{}\"\r\n", escape(&data)));
        }
    }
    out
}

/// The `.reg` file's bytes: UTF-16 LE with BOM, as regedit exports.
pub fn reg_bytes(exe: &str, schemes: &[String]) -> Vec<u8> {
    softphone::config::encoding::encode(
        &reg_text(exe, schemes),
        softphone::config::Encoding::Utf16LeBom,
    )
}

/// `.reg` string escaping: backslash and double quote.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reg_file_has_the_header_and_escaped_values() {
        let text = reg_text(
            "C:\\Program Files\\msipphone\\msipphone.exe",
            &["tel".into()],
        );
        assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Classes\\tel]\r\n@=\"URL:tel Protocol\"\r\n\"URL Protocol\"=\"\"\r\n"));
        assert!(text.contains(
            "[HKEY_CURRENT_USER\\Software\\Classes\\tel\\shell\\open\\command]\r\n@=\"\\\"C:\\\\Program Files\\\\msipphone\\\\msipphone.exe\\\" \\\"%1\\\"\"\r\n"
        ));
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        let bytes = reg_bytes("C:\\x.exe", &["sip".into()]);
        assert_eq!(&bytes[..4], &[0xFF, 0xFE, b'W', 0]);
    }
}
