//! AIP-158 paging: page sizes and opaque page tokens that say where a list stopped and for which filters.
//!
//! A token is base64url of a version byte, the first 8 bytes of the SHA-256
//! of the list's name and its filters, and the last key the page held. A
//! token of another list, or of the same list with other filters, is refused
//! rather than quietly read as a position somewhere else.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::CoordinatorError;

/// The page size when a request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page; a larger request gets this many.
pub const MAX_PAGE_SIZE: usize = 1_000;
const TOKEN_VERSION: u8 = 1;
const MAX_TOKEN_CHARS: usize = 512;

/// Which page of a list a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    /// The last key of the previous page; `None` for the first page.
    pub after: Option<Vec<u8>>,
}

fn list_fingerprint(list: &str, filter: &str) -> [u8; 8] {
    let digest = Sha256::digest(format!("{list}\n{filter}").as_bytes());
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&digest[..8]);
    fingerprint
}

/// Reads a request's `page_size` and `page_token` for `list` with `filter` (its filters, as text).
pub fn page_request(
    list: &str,
    filter: &str,
    page_size: i32,
    page_token: &str,
) -> Result<PageRequest, CoordinatorError> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => return Err(CoordinatorError::invalid("page_size", "must not be negative")),
        n => usize::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
    };
    if page_token.is_empty() {
        return Ok(PageRequest { size, after: None });
    }
    let refused = || CoordinatorError::invalid("page_token", "not a token of this list with these filters");
    if page_token.len() > MAX_TOKEN_CHARS {
        return Err(refused());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(page_token).map_err(|_| refused())?;
    match bytes.split_first() {
        Some((&TOKEN_VERSION, rest)) if rest.len() > 8 && rest[..8] == list_fingerprint(list, filter) => {
            Ok(PageRequest { size, after: Some(rest[8..].to_vec()) })
        }
        _ => Err(refused()),
    }
}

/// The token of the page after the one that ended with `last_key`.
pub fn next_page_token(list: &str, filter: &str, last_key: &[u8]) -> String {
    let mut bytes = vec![TOKEN_VERSION];
    bytes.extend_from_slice(&list_fingerprint(list, filter));
    bytes.extend_from_slice(last_key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Cuts `items` (fetched as `page.size + 1` of them) to the page, and gives the next page's token.
pub fn finish_page<T>(list: &str, filter: &str, page: &PageRequest, mut items: Vec<(Vec<u8>, T)>) -> (Vec<T>, String) {
    let more = items.len() > page.size;
    items.truncate(page.size);
    let token = match items.last() {
        Some((key, _)) if more => next_page_token(list, filter, key),
        _ => String::new(),
    };
    (items.into_iter().map(|(_, item)| item).collect(), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_belong_to_their_list_and_filters() {
        let token = next_page_token("sales", "L1", b"L1-ABC");
        let page = page_request("sales", "L1", 0, &token).unwrap();
        assert_eq!(page, PageRequest { size: DEFAULT_PAGE_SIZE, after: Some(b"L1-ABC".to_vec()) });
        assert!(page_request("sales", "L2", 10, &token).is_err(), "another filter");
        assert!(page_request("payments", "L1", 10, &token).is_err(), "another list");
        assert!(page_request("sales", "L1", 10, "bm90IGEgdG9rZW4").is_err(), "made up");
        assert!(page_request("sales", "L1", -1, "").is_err());
        assert_eq!(page_request("sales", "L1", 1_000_000, "").unwrap().size, MAX_PAGE_SIZE);
        let items: Vec<(Vec<u8>, u32)> = (0..4).map(|n| (vec![n as u8], n)).collect();
        let page = PageRequest { size: 3, after: None };
        let (items, token) = finish_page("x", "", &page, items);
        assert_eq!(items, [0, 1, 2]);
        assert_eq!(page_request("x", "", 3, &token).unwrap().after, Some(vec![2]));
        let (_, last) = finish_page("x", "", &page, vec![(vec![9], 9)]);
        assert!(last.is_empty(), "the last page has no next token");
    }
}
