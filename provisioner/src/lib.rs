//! `provisioner`: the library behind `msipprov`, which provisions
//! MicroSIP-style softphones. Every file format rule comes from
//! [`softphone::config`]; this crate never formats MicroSIP files itself.

pub mod lint;
