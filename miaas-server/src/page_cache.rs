//! The last node page served, as JSON, kept while what it was made of holds: a
//! dashboard polling a fleet of 1,000 nodes does not serialize half a megabyte
//! per poll when nothing changed.

use std::sync::Mutex;

use axum::body::Bytes;
use miaas_core::model::page::PageQuery;
use miaas_core::service::NodePageValidity;

/// What a page was made of: see [`miaas_core::service::Service::node_views_version`].
pub type ViewsVersion = (u64, u64);

/// A serialized page with its cursor to the next one.
#[derive(Debug, Clone)]
pub struct CachedPage {
    /// The JSON array.
    pub body: Bytes,
    /// The next page's cursor, if any.
    pub next: Option<String>,
}

#[derive(Debug)]
struct Entry {
    /// What the page was made at and until when it is right (the core's rule).
    validity: NodePageValidity,
    query: PageQuery,
    page: CachedPage,
}

/// One kept page.
#[derive(Debug, Default)]
pub struct PageCache {
    entry: Mutex<Option<Entry>>,
}

impl PageCache {
    /// The page kept for `query`, if its validity [holds](NodePageValidity::holds)
    /// at `version` and `now`.
    pub fn get(&self, version: ViewsVersion, query: &PageQuery, now: f64) -> Option<CachedPage> {
        let entry = self.entry.lock().ok()?;
        entry
            .as_ref()
            .filter(|e| &e.query == query && e.validity.holds(version, now))
            .map(|e| e.page.clone())
    }

    /// Keeps `page`, made for `query`, while `validity` holds.
    pub fn put(&self, validity: NodePageValidity, query: &PageQuery, page: CachedPage) {
        if let Ok(mut entry) = self.entry.lock() {
            *entry = Some(Entry {
                validity,
                query: query.clone(),
                page,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &'static str) -> CachedPage {
        CachedPage {
            body: Bytes::from_static(text.as_bytes()),
            next: None,
        }
    }

    #[test]
    fn a_page_is_served_only_for_its_version_query_and_time() {
        let cache = PageCache::default();
        let query = PageQuery::default();
        let validity = NodePageValidity {
            version: (1, 1),
            until: 100.0,
        };
        cache.put(validity, &query, page("[1]"));
        assert!(cache.get((1, 1), &query, 99.0).is_some());
        assert!(
            cache.get((2, 1), &query, 99.0).is_none(),
            "the fleet changed"
        );
        assert!(
            cache.get((1, 2), &query, 99.0).is_none(),
            "a heartbeat came"
        );
        assert!(
            cache.get((1, 1), &query, 100.0).is_none(),
            "a node went offline"
        );
        let other = PageQuery {
            limit: Some(5),
            cursor: None,
        };
        assert!(cache.get((1, 1), &other, 99.0).is_none(), "another page");
    }
}
