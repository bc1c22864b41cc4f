//! microsip.ini from any bytes: parsing, validation and the typed view must
//! never panic, and whatever parses must write back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softphone::config::{validate_ini, Account, CallRecord, Dialed, IniDocument, Settings};

fuzz_target!(|data: &[u8]| {
    let (doc, _) = validate_ini(data);
    if let Some(doc) = doc {
        assert_eq!(doc.to_bytes(), data, "an untouched document must round-trip");
        let _ = Settings::from_document(&doc);
        let _ = Account::list(&doc);
        let _ = CallRecord::list(&doc);
        let _ = Dialed::list(&doc);
        let mut edited = doc.clone();
        if edited.set("Settings", "EC", "0").is_ok() {
            let again = IniDocument::parse(&edited.to_bytes()).expect("what we write reads back");
            assert_eq!(again.get("Settings", "EC"), Some("0"));
        }
    }
});
