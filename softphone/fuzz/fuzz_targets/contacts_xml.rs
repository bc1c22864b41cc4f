//! Contacts.xml from any bytes: parsing and validation must never panic,
//! and whatever parses must survive a write and a second read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softphone::config::ContactList;

fuzz_target!(|data: &[u8]| {
    let _ = ContactList::validate(data);
    if let Ok(list) = ContactList::parse(data) {
        let again = ContactList::parse(&list.to_bytes()).expect("what we write reads back");
        assert_eq!(again, list);
    }
});
