//! Pagination: the `cursor` of node and deployment pages and the page query
//! (`?limit=&cursor=`) as the list routes read them. Nothing may panic, and a
//! cursor the server writes must read back as what it was made from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miaas_core::model::page::{
    PageQuery, deployment_cursor, node_cursor, parse_deployment_cursor, parse_node_cursor,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(name) = parse_node_cursor(&text) {
        assert_eq!(parse_node_cursor(&node_cursor(&name)).ok(), Some(name));
    }
    if let Ok(key) = parse_deployment_cursor(&text) {
        let again = parse_deployment_cursor(&deployment_cursor(&key));
        assert!(again.is_ok(), "a written cursor reads back");
    }
    if let Ok(query) = serde_urlencoded::from_str::<PageQuery>(&text) {
        let _ = query.limit();
    }
});
